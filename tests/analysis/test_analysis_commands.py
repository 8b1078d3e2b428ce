"""analyze, select, trajectory, landscape and report on a trained two-component mixture: the clusters
recover the components, the subsets reconstruct each component, and bad input leaves nothing behind."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import starfile

from cryoscape.analysis import adjusted_rand_index
from cryoscape.cli.main import main
from cryoscape.data.particle_io import load_particles, save_cs
from cryoscape.imaging.fsc import fsc
from cryoscape.io.cs import read_cs
from cryoscape.io.mrc import read_map, write_map


def _components(mixture):
    return np.load(mixture / "sim/labels.npz")["component"]


def _gt(mixture):
    return [read_map(mixture / "sim/gt" / name)[0] for name in ("00_adk_open.mrc", "01_1hvr.mrc")]


def test_analyze_clusters_recover_the_components(mixture, analysed):
    labels = np.load(analysed / "kmeans_labels.npy")
    n = len(_components(mixture))
    assert labels.shape == (n,)
    ari = adjusted_rand_index(_components(mixture), labels)
    assert ari >= 0.95
    summary = json.loads((analysed / "analysis.json").read_text())
    assert summary["truth"]["ari"] == pytest.approx(ari)
    assert summary["truth"]["per_image"]["n"] == 50 and summary["truth"]["per_image"]["mean_resolution_A"] < 14
    assert np.load(analysed / "umap.npy").shape == (n, 2)
    assert np.load(analysed / "z_pca.npy").shape == (n, 2)
    for name in (
        "pca.png",
        "umap.png",
        "cluster_sizes.png",
        "explained_variance.png",
        "truth_umap.png",
        "summary.txt",
        "kmeans/projections.png",
        "pc1/vol_003.mrc",
        "pc2/vol_000.mrc",
    ):
        assert (analysed / name).exists(), name
    # Each cluster's map matches its own component's truth far better than the other's.
    gt = _gt(mixture)
    for k in range(2):
        volume, apix, _ = read_map(analysed / f"kmeans/vol_{k:03d}.mrc")
        assert apix == pytest.approx(3.0)
        own = int(np.bincount(_components(mixture)[labels == k]).argmax())
        assert fsc(volume, gt[own], 3.0).auc() > fsc(volume, gt[1 - own], 3.0).auc() + 0.1
    # The on-data centres are particles of their own cluster.
    centres = np.loadtxt(analysed / "kmeans_centers_ind.txt", dtype=int)
    assert list(labels[centres]) == [0, 1]


def test_select_writes_subsets_that_reconstruct_each_component(mixture, analysed, tmp_path):
    star = mixture / "sim/particles.star"
    labels = np.load(analysed / "kmeans_labels.npy")
    gt = _gt(mixture)
    original = starfile.read(star, always_dict=True)
    for k in range(2):
        subset = tmp_path / "subsets" / f"cluster{k}.star"  # another folder: image paths must be rewritten
        assert (
            main(
                [
                    "select",
                    str(star),
                    "--labels",
                    str(analysed / "kmeans_labels.npy"),
                    "--keep",
                    str(k),
                    "-o",
                    str(subset),
                    "-q",
                ]
            )
            == 0
        )
        chosen = np.load(tmp_path / "subsets" / f"cluster{k}_ind.npy")
        np.testing.assert_array_equal(chosen, np.nonzero(labels == k)[0])
        written = starfile.read(subset, always_dict=True)
        assert list(written["particles"].columns) == list(original["particles"].columns)
        assert written["optics"].equals(original["optics"])
        np.testing.assert_array_equal(
            written["particles"]["rlnAngleRot"], original["particles"]["rlnAngleRot"].to_numpy()[chosen]
        )
        out = tmp_path / f"bp{k}.mrc"
        assert main(["backproject", str(subset), "-o", str(out), "-q"]) == 0
        volume = read_map(out)[0]
        own = int(np.bincount(_components(mixture)[chosen]).argmax())
        assert fsc(volume, gt[own], 3.0).resolution_A(0.5) < 12.0
        assert fsc(volume, gt[own], 3.0).auc() > fsc(volume, gt[1 - own], 3.0).auc() + 0.1


def test_select_inverse_ranges_and_cryosparc(mixture, analysed, tmp_path):
    star = str(mixture / "sim/particles.star")
    labels = str(analysed / "kmeans_labels.npy")
    assert (
        main(["select", star, "--labels", labels, "--keep", "0", "--invert", "-o", str(tmp_path / "inv.star"), "-q"])
        == 0
    )
    np.testing.assert_array_equal(np.load(tmp_path / "inv_ind.npy"), np.nonzero(np.load(labels) != 0)[0])
    pcs = np.load(analysed / "z_pca.npy")
    low, high = np.percentile(pcs[:, 0], [25, 75])
    assert (
        main(
            [
                "select",
                star,
                "--coords",
                str(analysed / "z_pca.npy"),
                "--range",
                f"1:{low}:{high}",
                "-o",
                str(tmp_path / "mid.star"),
                "-q",
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(
        np.load(tmp_path / "mid_ind.npy"), np.nonzero((pcs[:, 0] >= low) & (pcs[:, 0] <= high))[0]
    )
    box = [
        pcs[:, 0].min() - 1,
        pcs[:, 1].min() - 1,
        high,
        pcs[:, 1].min() - 1,
        high,
        pcs[:, 1].max() + 1,
        pcs[:, 0].min() - 1,
        pcs[:, 1].max() + 1,
    ]
    assert (
        main(
            [
                "select",
                star,
                "--coords",
                str(analysed / "z_pca.npy"),
                f"--polygon={','.join(map(str, box))}",
                "-o",
                str(tmp_path / "poly.star"),
                "-q",
            ]
        )
        == 0
    )
    np.testing.assert_array_equal(np.load(tmp_path / "poly_ind.npy"), np.nonzero(pcs[:, 0] <= high)[0])
    # cryoSPARC in, cryoSPARC out, every field kept.
    cs = tmp_path / "particles.cs"
    save_cs(cs, load_particles(star))
    index = tmp_path / "some.txt"
    index.write_text("5 3 900")
    assert main(["select", str(cs), "--ind", str(index), "-o", str(tmp_path / "some.cs"), "-q"]) == 0
    full, part = read_cs(cs), read_cs(tmp_path / "some.cs")
    assert part.dtype == full.dtype
    np.testing.assert_array_equal(part, full[[3, 5, 900]])


def test_trajectory_follows_the_data_between_two_particles(mixture, analysed, tmp_path):
    # The two ends of one component's cloud along PC1 (the components themselves lie apart).
    labels, pc1 = np.load(analysed / "kmeans_labels.npy"), np.load(analysed / "z_pca.npy")[:, 0]
    members = np.nonzero(labels == 0)[0]
    start, end = members[np.argsort(pc1[members])[[5, -5]]]
    out = tmp_path / "traj"
    assert (
        main(
            [
                "trajectory",
                str(mixture / "run"),
                "--start",
                str(start),
                "--end",
                str(end),
                "-n",
                "5",
                "-o",
                str(out),
                "--device",
                "cpu",
                "-q",
            ]
        )
        == 0
    )
    maps = np.loadtxt(out / "maps_ind.txt", dtype=int)
    path = np.loadtxt(out / "path_ind.txt", dtype=int)
    assert len(maps) == 5 and maps[0] == start and maps[-1] == end and set(maps) <= set(path)
    assert sorted(p.name for p in out.glob("vol_*.mrc")) == [f"vol_{i:03d}.mrc" for i in range(5)]
    assert "vseries true" in (out / "movie.cxc").read_text()
    # Each step of the path is short compared with the straight line between the ends.
    z = np.load(mixture / "run/z.npy")
    steps = np.linalg.norm(np.diff(z[path], axis=0), axis=1)
    assert steps.max() < 0.5 * np.linalg.norm(z[end] - z[start])


def test_landscape_finds_the_two_components(mixture, tmp_path):
    out = tmp_path / "landscape"
    assert (
        main(
            [
                "landscape",
                str(mixture / "run"),
                "-o",
                str(out),
                "--sketch-size",
                "20",
                "--states",
                "2",
                "--pc-dim",
                "5",
                "--plot-dim",
                "2",
                "--n-train",
                "40",
                "--mapping-epochs",
                "30",
                "--dilate",
                "2",
                "--device",
                "cpu",
                "-q",
            ]
        )
        == 0
    )
    summary = json.loads((out / "landscape.json").read_text())
    explained = summary["explained_variance"]
    assert explained[0] == max(explained) and explained[0] > 0.5
    states = np.load(out / "states/particle_states.npy")
    assert adjusted_rand_index(_components(mixture), states) >= 0.9
    assert min(summary["mapping_validation_r2"][:1]) > 0.8
    assert np.load(out / "vol_pca_all.npy").shape == (1500, 5)
    gt = _gt(mixture)
    for s in range(2):
        own = int(np.bincount(_components(mixture)[states == s]).argmax())
        mean = read_map(out / f"states/state_{s:02d}_mean.mrc")[0]
        assert fsc(mean, gt[own], 3.0).auc() > fsc(mean, gt[1 - own], 3.0).auc() + 0.1
    for name in (
        "mask.mrc",
        "mask_slices.png",
        "vol_pca.png",
        "landscape_density.png",
        "vol_pcs/pc2/vol_009.mrc",
        "kmeans/vol_019.mrc",
        "states/counts.png",
        "summary.txt",
    ):
        assert (out / name).exists(), name
    # A user mask: a ball around the centre replaces the automatic one; a mask of another box is refused.
    k = np.arange(32) - 16
    ball = (np.sqrt(sum(a**2 for a in np.meshgrid(k, k, k, indexing="ij"))) <= 10).astype(np.float32)
    write_map(tmp_path / "ball.mrc", ball, 3.0)
    small = ["--sketch-size", "10", "--states", "2", "--n-train", "0", "--mapping-epochs", "5", "--device", "cpu", "-q"]
    assert (
        main(
            [
                "landscape",
                str(mixture / "run"),
                "-o",
                str(tmp_path / "masked"),
                "--mask",
                str(tmp_path / "ball.mrc"),
                *small,
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "masked/landscape.json").read_text())["mask_voxels"] == int(ball.sum())
    write_map(tmp_path / "ball16.mrc", ball[:16, :16, :16], 3.0)
    assert (
        main(
            [
                "landscape",
                str(mixture / "run"),
                "-o",
                str(tmp_path / "bad"),
                "--mask",
                str(tmp_path / "ball16.mrc"),
                *small,
            ]
        )
        == 1
    )
    assert not (tmp_path / "bad").exists()


def _chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


def test_report_renders_in_a_headless_browser(mixture, analysed, tmp_path):
    report = tmp_path / "report.html"
    assert (
        main(
            [
                "report",
                str(mixture / "run"),
                "-o",
                str(report),
                "--analysis",
                str(analysed),
                "--color-by",
                "rlnDefocusU",
                "-q",
            ]
        )
        == 0
    )
    page = report.read_text()
    assert "particle 1499\\u003cbr\\u003ecluster" in page and "<script src=" not in page  # self-contained
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=20000",
    ]
    dom = subprocess.run(
        [_chromium(), *flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    assert 'data-rendered="yes"' in dom
    assert dom.count('class="point"') >= 1500  # every particle drawn in the embedding
    shot = tmp_path / "report.png"
    subprocess.run(
        [_chromium(), *flags, "--window-size=1300,1600", f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        timeout=120,
    )
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (1600, 1300)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1])[:, :3], axis=0)) > 50  # a plot, not a blank page


def test_bad_input_leaves_no_output(mixture, analysed, tmp_path, capsys):
    run = mixture / "run"
    empty = tmp_path / "empty_run"
    empty.mkdir()
    shutil.copy(run / "config.json", empty / "config.json")
    cases = [
        (["analyze", str(empty), "-o", str(tmp_path / "a1")], "no checkpoint", tmp_path / "a1"),
        (["analyze", str(run), "-o", str(tmp_path / "a2"), "--epoch", "99"], "epoch 99", tmp_path / "a2"),
        (["analyze", str(run), "-o", str(tmp_path / "a3"), "--ksample", "0"], "at least 1", tmp_path / "a3"),
        (
            [
                "select",
                str(mixture / "sim/particles.star"),
                "--labels",
                str(analysed / "kmeans_labels.npy"),
                "--keep",
                "0",
                "--ind",
                str(_write(tmp_path / "i.txt", "0")),
                "--invert",
                "--run-ind",
                str(_write(tmp_path / "r.txt", "0")),
                "-o",
                str(tmp_path / "s1.star"),
            ],
            None,
            tmp_path / "s1.star",
        ),
        (
            [
                "select",
                str(mixture / "sim/particles.star"),
                "--coords",
                str(analysed / "z_pca.npy"),
                "--polygon",
                "100,100,101,100,101,101",
                "-o",
                str(tmp_path / "s2.star"),
            ],
            "empty",
            tmp_path / "s2.star",
        ),
        (
            [
                "select",
                str(mixture / "sim/particles.star"),
                "--labels",
                str(analysed / "kmeans_labels.npy"),
                "--keep",
                "7",
                "-o",
                str(tmp_path / "s3.star"),
            ],
            "do not occur",
            tmp_path / "s3.star",
        ),
        (
            ["trajectory", str(run), "--start", "0", "--end", "5000", "-o", str(tmp_path / "t1")],
            "out of range",
            tmp_path / "t1",
        ),
        (["report", str(tmp_path), "-o", str(tmp_path / "r.html")], "not a run folder", tmp_path / "r.html"),
    ]
    for argv, message, output in cases:
        assert main([*argv, "-q"]) == 1, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        if message:
            assert message in err, err
        assert not output.exists(), output
    assert not list(tmp_path.glob(".a*"))  # no staging folders left behind
    # An existing analysis folder is not replaced without --force.
    assert main(["analyze", str(run), "-o", str(analysed), "--ksample", "2", "-q"]) == 1
    assert "--force" in capsys.readouterr().err


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
