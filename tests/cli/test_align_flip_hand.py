"""The flip-hand and align commands: outputs, printed results, and bad input as one line on stderr."""

import logging

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from cryoscape.analysis.map_alignment import flip_hand
from cryoscape.cli.main import main
from cryoscape.io.mrc import read_map, write_map

D, APIX = 32, 2.5


def _blob_map(R=None, t_vox=(0.0, 0.0, 0.0)):
    """Four anisotropic Gaussians at asymmetric positions (voxels from the centre), turned by R and
    shifted by t: M(q) = F(Rᵀ(q − t))."""
    R = np.eye(3) if R is None else R
    a = np.arange(D) - D // 2
    z, y, x = np.meshgrid(a, a, a, indexing="ij")
    p = np.stack([x, y, z], -1).astype(np.float64)
    V = np.zeros((D, D, D))
    centres = np.array([[5.0, 1.0, -2.0], [-4.0, 3.0, 1.0], [0.0, -5.0, 3.0], [2.0, 2.0, 6.0]])
    widths = np.array([[2.5, 1.5, 1.2], [1.4, 2.6, 1.8], [1.6, 1.3, 2.4], [1.2, 1.2, 1.2]])
    axes = Rotation.random(4, random_state=3).as_matrix()
    for c, w, Q in zip(centres, widths, axes):
        C = R @ Q @ np.diag(w**2) @ Q.T @ R.T
        d = p - (R @ c + t_vox)
        V += np.exp(-0.5 * np.einsum("...i,ij,...j->...", d, np.linalg.inv(C), d))
    return V.astype(np.float32)


def _one_line_error(capsys, code):
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "error:" in err[0] and "Traceback" not in err[0], err
    return err[0]


def test_flip_hand_twice_gives_the_input_and_keeps_the_voxel_size(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="cryoscape")
    V = np.random.default_rng(0).normal(size=(D, D, D)).astype(np.float32)
    write_map(tmp_path / "m.mrc", V, APIX, origin_A=np.array([1.0, 2.0, 3.0]))
    assert main(["flip-hand", str(tmp_path / "m.mrc"), "-o", str(tmp_path / "f.mrc")]) == 0
    assert main(["flip-hand", str(tmp_path / "f.mrc"), "-o", str(tmp_path / "ff.mrc")]) == 0
    flipped, apix, origin = read_map(tmp_path / "f.mrc")
    assert np.array_equal(flipped, flip_hand(V)) and not np.array_equal(flipped, V)
    assert apix == pytest.approx(APIX) and np.allclose(origin, [1, 2, 3])
    assert np.array_equal(read_map(tmp_path / "ff.mrc")[0], V)
    assert "hand of an ab initio map is undetermined" in caplog.text


def test_flip_hand_does_not_overwrite_without_force(tmp_path, capsys):
    V = np.random.default_rng(1).normal(size=(D, D, D)).astype(np.float32)
    write_map(tmp_path / "m.mrc", V, APIX)
    (tmp_path / "f.mrc").write_text("keep me")
    line = _one_line_error(capsys, main(["flip-hand", str(tmp_path / "m.mrc"), "-o", str(tmp_path / "f.mrc")]))
    assert "--force" in line and (tmp_path / "f.mrc").read_text() == "keep me"
    assert main(["flip-hand", str(tmp_path / "m.mrc"), "-o", str(tmp_path / "f.mrc"), "--force"]) == 0
    assert np.array_equal(read_map(tmp_path / "f.mrc")[0], flip_hand(V))


def test_flip_hand_missing_input(tmp_path, capsys):
    line = _one_line_error(capsys, main(["flip-hand", str(tmp_path / "nope.mrc"), "-o", str(tmp_path / "f.mrc")]))
    assert "nope.mrc" in line and not (tmp_path / "f.mrc").exists()


def test_align_finds_the_mirror_image(tmp_path, capsys):
    R = Rotation.from_euler("zyz", [30.0, 70.0, -50.0], degrees=True).as_matrix()
    t_vox = np.array([1.3, -0.6, 0.8])
    write_map(tmp_path / "ref.mrc", _blob_map(), APIX)
    write_map(tmp_path / "abinitio.mrc", flip_hand(_blob_map(R, t_vox)), APIX)
    assert main(["align", str(tmp_path / "abinitio.mrc"), "--to", str(tmp_path / "ref.mrc"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "undetermined" in out and "hand: FLIPPED" in out
    assert "FSC=0.5" in out and "FSC=0.143" in out and "rotation (RELION rot, tilt, psi)" in out
    shift = [float(v) for v in out.split("shift (x, y, z):")[1].split("Å")[0].split()]
    assert np.allclose(shift, t_vox * APIX, atol=0.5 * APIX)
    aligned, apix, _ = read_map(tmp_path / "abinitio_aligned.mrc")
    assert apix == pytest.approx(APIX)
    assert np.corrcoef(aligned.ravel(), _blob_map().ravel())[0, 1] > 0.98

    # --no-flip keeps the wrong hand and says so; the existing output needs --force
    args = ["align", str(tmp_path / "abinitio.mrc"), "--to", str(tmp_path / "ref.mrc"), "--no-flip", "-q"]
    _one_line_error(capsys, main(args))
    assert main([*args, "--force", "-o", str(tmp_path / "same_hand.mrc")]) == 0
    out = capsys.readouterr().out
    assert "hand: kept as is" in out and "--no-flip" in out
    worse = float(out.split("correlation:")[1].split()[0])
    assert worse < 0.9


@pytest.mark.parametrize("case", ["box", "voxel", "missing"])
def test_align_bad_input_is_one_line_and_leaves_no_output(tmp_path, capsys, case):
    write_map(tmp_path / "a.mrc", _blob_map(), APIX)
    if case == "box":
        write_map(tmp_path / "b.mrc", np.zeros((16, 16, 16), np.float32), APIX)
    elif case == "voxel":
        write_map(tmp_path / "b.mrc", _blob_map(), 2 * APIX)
    out = tmp_path / "out.mrc"
    line = _one_line_error(
        capsys, main(["align", str(tmp_path / "a.mrc"), "--to", str(tmp_path / "b.mrc"), "-o", str(out)])
    )
    assert {"box": "box size", "voxel": "voxel size", "missing": "b.mrc"}[case] in line
    assert not out.exists() and not list(tmp_path.glob(".out*"))
