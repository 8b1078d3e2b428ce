"""The downsample and preprocess commands: numbers, headers, exit codes and messages."""

from __future__ import annotations

import numpy as np
import pytest

from cryoscape.cli.main import main
from cryoscape.io.mrc import stack_info
from cryoscape.io.mrc_stacks import MRCStack
from cryoscape.io.mrc_writer import write_stack


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    return code, capsys.readouterr().err


def band_limited(D, n=3, seed=0):
    """Images that are sums of cosines with integer frequencies |k| <= 5 cycles per box, origin at
    pixel D/2, and the analytic function to evaluate them anywhere: f(x, y) in pixels."""
    rng = np.random.default_rng(seed)
    terms = [
        (rng.integers(-5, 6, size=(4, 2)), rng.normal(size=4), rng.uniform(0, 2 * np.pi, 4), rng.normal())
        for _ in range(n)
    ]

    def f(x, y, D_grid):
        out = []
        for ks, amps, phases, offset in terms:
            img = np.full(np.broadcast(x, y).shape, offset)
            for (kx, ky), a, p in zip(ks, amps, phases):
                img = img + a * np.cos(2 * np.pi * (kx * (x - D_grid / 2) + ky * (y - D_grid / 2)) / D_grid + p)
            out.append(img)
        return np.stack(out)

    y, x = np.mgrid[:D, :D].astype(float)
    return f(x, y, D), f


def test_downsample_keeps_band_limited_images_and_mean(tmp_path, capsys, caplog):
    caplog.set_level("INFO", logger="cryoscape")
    big, f = band_limited(64)
    write_stack(tmp_path / "in.mrcs", big, 1.25)
    code, err = run(capsys, "downsample", tmp_path / "in.mrcs", "-D", 16, "-o", tmp_path / "out.mrcs", "--chunk", 2)
    assert code == 0, err
    n, D, apix = stack_info(tmp_path / "out.mrcs")
    assert (n, D) == (3, 16) and apix == pytest.approx(1.25 * 64 / 16, abs=1e-5)
    with MRCStack(tmp_path / "out.mrcs") as stack:
        small = stack.read_all()
    # analytic: the same functions sampled on the coarse grid (same centre pixel)
    y, x = np.mgrid[:16, :16].astype(float)
    np.testing.assert_allclose(small, f(x, y, 16), atol=1e-4)
    np.testing.assert_allclose(small.mean(axis=(1, 2)), big.mean(axis=(1, 2)), atol=1e-5)
    assert "wrote 3 particles of 16×16 px (5.0000 Å/px)" in caplog.text


def test_downsample_preserves_mean_of_noise_and_matches_scipy(tmp_path, capsys):
    from scipy.signal import resample

    rng = np.random.default_rng(1)
    imgs = rng.normal(2.0, 1.0, size=(5, 32, 32)).astype(np.float32)
    write_stack(tmp_path / "in.mrcs", imgs, 1.0)
    assert run(capsys, "downsample", tmp_path / "in.mrcs", "-D", 20, "-o", tmp_path / "out.mrcs")[0] == 0
    with MRCStack(tmp_path / "out.mrcs") as stack:
        small = stack.read_all()
    np.testing.assert_allclose(small.mean(axis=(1, 2)), imgs.mean(axis=(1, 2)), atol=1e-5)
    # scipy's Fourier resampling (keeps values; origin at pixel 0) after moving the centre pixel to 0, then back
    ref = np.roll(
        resample(resample(np.roll(imgs, (-16, -16), axis=(1, 2)), 20, axis=1), 20, axis=2), (10, 10), axis=(1, 2)
    )
    # scipy splits the Nyquist term symmetrically, cropping keeps one side: compare below Nyquist
    lowpass = np.fft.fft2(small - ref)
    lowpass[:, 10, :] = 0
    lowpass[:, :, 10] = 0
    assert np.abs(np.fft.ifft2(lowpass).real).max() < 1e-4


def test_downsample_errors_and_overwrite(tmp_path, capsys):
    write_stack(tmp_path / "in.mrcs", np.zeros((2, 32, 32)), 1.0)
    out = tmp_path / "out.mrcs"
    code, err = run(capsys, "downsample", tmp_path / "missing.mrcs", "-D", 16, "-o", out)
    assert code == 1 and err.strip().count("\n") == 0 and "missing.mrcs does not exist" in err
    code, err = run(capsys, "downsample", tmp_path / "in.mrcs", "-D", 15, "-o", out)
    assert code == 1 and "new box size must be even and between 2 and 32" in err and not out.exists()
    code, err = run(capsys, "downsample", tmp_path / "in.mrcs", "-D", 64, "-o", out)
    assert code == 1 and "between 2 and 32" in err
    assert run(capsys, "downsample", tmp_path / "in.mrcs", "-D", 16, "-o", out)[0] == 0
    code, err = run(capsys, "downsample", tmp_path / "in.mrcs", "-D", 8, "-o", out)
    assert code == 1 and "out.mrcs exists; use --force to overwrite it" in err
    assert stack_info(out)[1] == 16
    assert run(capsys, "downsample", tmp_path / "in.mrcs", "-D", 8, "-o", out, "--force")[0] == 0
    assert stack_info(out)[1] == 8


def test_downsample_truncated_input_is_one_line(tmp_path, capsys):
    path = write_stack(tmp_path / "in.mrcs", np.zeros((4, 16, 16)), 1.0)
    with open(path, "r+b") as f:
        f.truncate(2000)
    code, err = run(capsys, "downsample", path, "-D", 8, "-o", tmp_path / "o.mrcs")
    assert code == 1
    assert err.strip().endswith("in.mrcs is truncated: header says 4 images of 16×16 but the file holds only 0")
    assert len(err.strip().splitlines()) == 1


def test_downsample_list_of_stacks(tmp_path, capsys):
    write_stack(tmp_path / "a.mrcs", np.ones((2, 16, 16)), 2.0)
    write_stack(tmp_path / "b.mrcs", 3 * np.ones((3, 16, 16)), 2.0)
    (tmp_path / "all.txt").write_text("a.mrcs\nb.mrcs\n")
    assert run(capsys, "downsample", tmp_path / "all.txt", "-D", 8, "-o", tmp_path / "o.mrcs")[0] == 0
    with MRCStack(tmp_path / "o.mrcs") as stack:
        np.testing.assert_allclose(stack.read_all().mean(axis=(1, 2)), [1, 1, 3, 3, 3], atol=1e-6)
        assert stack.apix == pytest.approx(4.0)


def test_preprocess_select_invert_normalize(tmp_path, capsys):
    rng = np.random.default_rng(2)
    D = 24
    imgs = rng.normal(5.0, 3.0, size=(6, D, D)).astype(np.float32)
    imgs[:, 8:16, 8:16] += 10.0  # a "particle" inside the circle must not affect the normalization
    write_stack(tmp_path / "in.mrcs", imgs, 1.7)
    np.save(tmp_path / "sel.npy", np.array([4, 1, 1]))
    code, err = run(
        capsys,
        "preprocess",
        tmp_path / "in.mrcs",
        "-o",
        tmp_path / "out.mrcs",
        "--select",
        tmp_path / "sel.npy",
        "--invert",
        "--normalize",
    )
    assert code == 0, err
    assert stack_info(tmp_path / "out.mrcs") == (3, D, pytest.approx(1.7, abs=1e-6))
    with MRCStack(tmp_path / "out.mrcs") as stack:
        out = stack.read_all()
    y, x = np.mgrid[:D, :D] - D // 2
    background = x**2 + y**2 >= (D / 2) ** 2
    assert background.sum() == 4 * (D // 2) ** 2 - int((x**2 + y**2 < (D / 2) ** 2).sum())
    np.testing.assert_allclose(out[:, background].mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(out[:, background].std(axis=1), 1, atol=1e-5)
    for o, i in zip(out, [4, 1, 1]):
        src = -imgs[i]
        bg = src[background]
        np.testing.assert_allclose(o, (src - bg.mean()) / bg.std(), atol=1e-5)
    assert out[:, 8:16, 8:16].mean() < -2  # inverted: the bright particle became dark


def test_preprocess_text_selection_and_invert_only(tmp_path, capsys):
    imgs = np.arange(4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8)
    write_stack(tmp_path / "in.mrcs", imgs, 1.0)
    (tmp_path / "sel.txt").write_text("3\n0, 2\n")
    assert (
        run(
            capsys,
            "preprocess",
            tmp_path / "in.mrcs",
            "-o",
            tmp_path / "o.mrcs",
            "--select",
            tmp_path / "sel.txt",
            "--invert",
        )[0]
        == 0
    )
    with MRCStack(tmp_path / "o.mrcs") as stack:
        np.testing.assert_array_equal(stack.read_all(), -imgs[[3, 0, 2]])
    assert run(capsys, "preprocess", tmp_path / "in.mrcs", "-o", tmp_path / "copy.mrcs")[0] == 0
    with MRCStack(tmp_path / "copy.mrcs") as stack:
        np.testing.assert_array_equal(stack.read_all(), imgs)


def test_preprocess_errors(tmp_path, capsys):
    write_stack(tmp_path / "in.mrcs", np.ones((4, 8, 8)), 1.0)
    np.save(tmp_path / "bad.npy", np.array([0, 4]))
    code, err = run(
        capsys, "preprocess", tmp_path / "in.mrcs", "-o", tmp_path / "o.mrcs", "--select", tmp_path / "bad.npy"
    )
    assert code == 1 and "bad.npy: index 4 is out of range for 4 particles" in err
    (tmp_path / "words.txt").write_text("one two\n")
    code, err = run(
        capsys, "preprocess", tmp_path / "in.mrcs", "-o", tmp_path / "o.mrcs", "--select", tmp_path / "words.txt"
    )
    assert code == 1 and "words.txt is not a list of particle indices" in err
    code, err = run(capsys, "preprocess", tmp_path / "in.mrcs", "-o", tmp_path / "o.mrcs", "--normalize")
    assert code == 1 and "particle 0 has a constant background" in err
    assert run(capsys, "preprocess", tmp_path / "in.mrcs", "-o", tmp_path / "o.mrcs", "--force")[0] == 0
    code, err = run(capsys, "preprocess", tmp_path / "in.mrcs", "-o", tmp_path / "o.mrcs")
    assert code == 1 and "exists; use --force" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["downsample", "preprocess"])
def test_help_explains_every_option(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--force", "-o", "--datadir", "--chunk"):
        assert option in text
    assert "pixels" in text or "px" in text


@pytest.fixture
def star_input(tmp_path):
    """A RELION star file of 6 particles (images in reverse stack order) with poses, shifts and CTF."""
    particle_io = pytest.importorskip("cryoscape.data.particle_io")
    from scipy.spatial.transform import Rotation

    from cryoscape.data.particles import CTFParams, ParticleTable

    rng = np.random.default_rng(3)
    imgs = rng.normal(size=(6, 32, 32)).astype(np.float32)
    (tmp_path / "in").mkdir()
    stack = write_stack(tmp_path / "in" / "stack.mrcs", imgs, 1.2)
    table = ParticleTable(
        image_paths=np.array([str(stack)] * 6, dtype=object),
        image_indices=np.arange(6)[::-1].copy(),
        box_size=32,
        apix=np.full(6, 1.2),
        rotations=Rotation.random(6, random_state=1).as_matrix(),
        shifts_A=rng.uniform(-5, 5, size=(6, 2)),
        ctf=CTFParams.constant(6, defocus_u_A=12000.0),
    )
    star = particle_io.save_star(tmp_path / "in" / "particles.star", table)
    return star, table, imgs, particle_io


def test_downsample_star_writes_a_matching_star(star_input, tmp_path, capsys):
    import torch

    from cryoscape.imaging.fft import downsample_images

    star, table, imgs, particle_io = star_input
    out = tmp_path / "out" / "small.mrcs"
    code, err = run(capsys, "downsample", star, "-D", 16, "-o", out)
    assert code == 0, err
    new = particle_io.load_particles(tmp_path / "out" / "small.star")
    assert len(new) == 6 and new.box_size == 16
    np.testing.assert_allclose(new.apix, 2.4, atol=1e-6)
    np.testing.assert_allclose(new.shifts_A, table.shifts_A, atol=1e-5)  # Å: unchanged
    np.testing.assert_allclose(new.rotations, table.rotations, atol=1e-5)
    np.testing.assert_allclose(new.ctf.defocus_u_A, 12000.0)
    np.testing.assert_array_equal(new.image_indices, np.arange(6))
    assert {str(p) for p in new.image_paths} == {str(out.resolve())}
    with MRCStack(out) as stack:
        want = downsample_images(torch.from_numpy(imgs[::-1].copy()), 16).numpy()
        np.testing.assert_allclose(stack.read_all(), want, atol=1e-5)
    code, err = run(capsys, "downsample", star, "-D", 16, "-o", tmp_path / "out" / "other.mrcs")
    assert code == 0  # a new stack name: OK
    (tmp_path / "out" / "third.star").write_text("keep me")
    code, err = run(capsys, "downsample", star, "-D", 16, "-o", tmp_path / "out" / "third.mrcs")
    assert code == 1 and "third.star exists; use --force" in err and not (tmp_path / "out" / "third.mrcs").exists()


def test_preprocess_star_with_selection(star_input, tmp_path, capsys):
    star, table, imgs, particle_io = star_input
    (tmp_path / "sel.txt").write_text("2 0\n")
    out = tmp_path / "clean.mrcs"
    code, err = run(capsys, "preprocess", star, "-o", out, "--select", tmp_path / "sel.txt", "--invert")
    assert code == 0, err
    new = particle_io.load_particles(tmp_path / "clean.star")
    assert len(new) == 2 and new.box_size == 32
    np.testing.assert_allclose(new.apix, 1.2, atol=1e-6)
    np.testing.assert_allclose(new.shifts_A, table.shifts_A[[2, 0]], atol=1e-5)
    with MRCStack(out) as stack:
        # particle 2 is stack image 3, particle 0 is stack image 5
        np.testing.assert_array_equal(stack.read_all(), -imgs[[3, 5]])
