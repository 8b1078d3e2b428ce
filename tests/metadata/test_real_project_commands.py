"""Every command that reads particles, run through ``cryoscape.cli.main.main`` on the real-shaped
project of real_project.py (200 micrograph stacks of 2-5 images, two optics groups at 300 and 200 kV,
a RELION 3.0 conversion without amplitude contrast, a downsampled cryoSPARC job, cryoDRGN pickles at
the original box), with results checked against the simulation's ground truth (issue 11)."""

from __future__ import annotations

import json
import logging
import pickle

import mrcfile
import numpy as np
import pytest
import starfile
from real_project import APIX, BOX, fourier_crop_volume
from scipy.spatial.transform import Rotation

from cryoscape.cli.main import main
from cryoscape.data.particle_io import load_particles
from cryoscape.imaging.fsc import fsc


def run(*args) -> int:
    return main([str(a) for a in args] + ["-q"])


def fsc_vs_truth(path, project, size=BOX):
    truth = mrcfile.read(project.gt)
    truth = truth if size == BOX else fourier_crop_volume(truth, size)
    return fsc(mrcfile.read(path), truth, apix=APIX * BOX / size)


@pytest.fixture(scope="module")
def reference_map(real_project, tmp_path_factory):
    """backproject of the RELION 3.1 file: the map every other reading of the same particles must give."""
    out = tmp_path_factory.mktemp("bp") / "map.mrc"
    assert run("backproject", real_project.star, "-o", out, "--reference", real_project.gt) == 0
    return out


def test_relion31_two_optics_groups_reconstruct_the_truth(real_project, reference_map, tmp_path):
    table = load_particles(real_project.star)
    assert len(table) == real_project.n and len(set(table.image_paths)) == 200
    np.testing.assert_allclose(table.ctf.voltage_kV, real_project.voltage_kV)  # per optics group
    np.testing.assert_allclose(table.rotations, real_project.rotations, atol=1e-9)
    curve = fsc_vs_truth(reference_map, real_project)
    assert curve.resolution_A(0.5) < 9.0 and curve.auc() > 0.68, (curve.resolution_A(0.5), curve.auc())
    # the per-group voltage matters: the 200 kV group read at 300 kV gives a worse map
    assert run("backproject", real_project.star30, "-o", tmp_path / "kv.mrc", "-w", "0.1", "--kv", "300") == 0
    wrong = fsc_vs_truth(tmp_path / "kv.mrc", real_project)
    assert wrong.auc() < curve.auc() - 0.08, (wrong.auc(), curve.auc())


def test_relion30_without_amplitude_contrast(real_project, reference_map, tmp_path, capsys, caplog):
    assert run("backproject", real_project.star30, "-o", tmp_path / "m.mrc") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no _rlnAmplitudeContrast: give the amplitude contrast with -w" in err[0], err
    with caplog.at_level(logging.INFO, logger="cryoscape"):
        assert run("backproject", real_project.star30, "-o", tmp_path / "m.mrc", "-w", "0.1") == 0
    assert "amplitude contrast 0.1 (-w) fills the missing _rlnAmplitudeContrast" in caplog.text
    # origins in pixels, detector pixel / magnification: the same map as the 3.1 file
    np.testing.assert_allclose(mrcfile.read(tmp_path / "m.mrc"), mrcfile.read(reference_map), atol=1e-4, rtol=0)


def test_export_cryodrgn_of_relion30_with_w(real_project, tmp_path):
    poses, ctf = tmp_path / "poses.pkl", tmp_path / "ctf.pkl"
    assert run("export-cryodrgn", real_project.star30, "-D", BOX, "-w", "0.1", "--poses", poses, "--ctf", ctf) == 0
    with open(poses, "rb") as f:
        rot, trans = pickle.load(f)
    with open(ctf, "rb") as f, open(real_project.ctf, "rb") as g:
        ours, truth = pickle.load(f), pickle.load(g)
    np.testing.assert_allclose(rot, real_project.rotations, atol=1e-9)
    np.testing.assert_allclose(trans, real_project.shifts_A / APIX / BOX, atol=1e-12)
    np.testing.assert_allclose(ours, truth, rtol=1e-6)
    assert np.all(ours[:, 7] == np.float32(0.1))


def test_downsampled_cryosparc_job(real_project, tmp_path):
    table = load_particles(real_project.cs)
    assert table.box_size == BOX // 2
    np.testing.assert_allclose(table.apix, 2 * APIX)  # blob/psize_A
    # shifts in pixels of alignments3D/psize_A (the original 3 Å pixels), not of blob/psize_A
    np.testing.assert_allclose(table.shifts_A, real_project.shifts_A, atol=1e-5)
    np.testing.assert_allclose(table.rotations, real_project.rotations, atol=1e-6)
    assert run("backproject", real_project.cs, "-o", tmp_path / "cs.mrc") == 0
    curve = fsc_vs_truth(tmp_path / "cs.mrc", real_project, BOX // 2)
    assert curve.auc() > 0.95, curve.auc()


def test_cryodrgn_pickles_at_the_original_box(real_project, reference_map, tmp_path):
    # with the stacks they were made for: as good as the 3.1 file's map (other random halves)
    args = ["--poses", real_project.poses, "--ctf", real_project.ctf]
    assert run("backproject", real_project.stack_list, *args, "-o", tmp_path / "full.mrc") == 0
    auc = fsc_vs_truth(tmp_path / "full.mrc", real_project).auc()
    assert auc == pytest.approx(fsc_vs_truth(reference_map, real_project).auc(), abs=0.01)
    # with the images downsampled to D/2: the box is D x Apix Å, so the pixel size is 6 Å
    assert run("backproject", real_project.stack_small, *args, "-o", tmp_path / "small.mrc") == 0
    with mrcfile.open(tmp_path / "small.mrc") as m:
        assert float(m.voxel_size.x) == pytest.approx(2 * APIX)
    assert fsc_vs_truth(tmp_path / "small.mrc", real_project, BOX // 2).auc() > 0.95


def test_downsample_and_preprocess_write_every_particle(real_project, tmp_path):
    out = tmp_path / "ds" / "particles.16.mrcs"
    out.parent.mkdir()
    assert run("downsample", real_project.star30, "-D", "16", "-o", out, "-w", "0.1") == 0
    written = load_particles(out.with_suffix(".star"))
    assert len(written) == real_project.n and written.box_size == 16
    np.testing.assert_allclose(written.apix, 2 * APIX)
    np.testing.assert_allclose(written.shifts_A, real_project.shifts_A, atol=1e-9)  # Å, from 3.0 pixel origins
    np.testing.assert_allclose(written.ctf.amplitude_contrast, 0.1)  # the filled column is written
    keep = np.arange(0, real_project.n, 3)
    np.save(tmp_path / "keep.npy", keep)
    pre = tmp_path / "pre" / "clean.mrcs"
    pre.parent.mkdir()
    assert run("preprocess", real_project.star, "--select", tmp_path / "keep.npy", "--normalize", "-o", pre) == 0
    subset = load_particles(pre.with_suffix(".star"))
    assert len(subset) == len(keep)
    np.testing.assert_allclose(subset.rotations, real_project.rotations[keep], atol=1e-9)
    np.testing.assert_allclose(subset.ctf.voltage_kV, real_project.voltage_kV[keep])


def test_select_by_optics_group_labels(real_project, tmp_path):
    np.save(tmp_path / "labels.npy", real_project.optics_group)
    out = tmp_path / "group2.star"
    assert run("select", real_project.star, "--labels", tmp_path / "labels.npy", "--keep", "2", "-o", out) == 0
    subset = load_particles(out)
    assert len(subset) == int(np.sum(real_project.optics_group == 2))
    np.testing.assert_allclose(subset.ctf.voltage_kV, 200.0)
    assert set(starfile.read(out)["optics"]["rlnOpticsGroupName"]) == {"opticsGroup1", "opticsGroup2"}


def test_training_and_encoding(real_project, tmp_path):
    tiny = ["-n", "1", "--dec-dim", "16", "--dec-layers", "1", "-b", "64"]
    assert run("train-nn", real_project.cs, "-o", tmp_path / "nn", *tiny) == 0
    data = json.loads((tmp_path / "nn" / "config.json").read_text())["data"]
    assert (data["D"], data["apix"], data["n_particles"]) == (16, 6.0, real_project.n)
    vae, ind = tmp_path / "vae", np.arange(0, real_project.n, 4)
    np.save(tmp_path / "ind.npy", ind)
    args = ["--zdim", "1", "--enc-dim", "16", "--enc-layers", "1", "-w", "0.1", "--ind", tmp_path / "ind.npy"]
    assert run("train-vae", real_project.star30, "-o", vae, *tiny, *args) == 0
    z = np.load(vae / "z.npy")
    assert z.shape == (len(ind), 1) and np.isfinite(z).all()
    assert run("eval-images", vae, real_project.star, "-o", tmp_path / "z_eval.npy") == 0
    z_eval = np.load(tmp_path / "z_eval.npy")
    assert z_eval.shape == (real_project.n, 1) and np.isfinite(z_eval).all()


def test_cryosparc_and_relion_poses_agree_with_scipy(real_project):
    """The .cs pose convention (A = expm([v]x)^T) pinned independently of cryoscape."""
    rec = np.load(real_project.cs)
    A = np.swapaxes(Rotation.from_rotvec(rec["alignments3D/pose"].astype(float)).as_matrix(), -1, -2)
    np.testing.assert_allclose(load_particles(real_project.cs).rotations, A, atol=1e-9)
    # flipping the convention (no transpose) would not match the star file's poses
    assert np.abs(np.swapaxes(A, -1, -2) - load_particles(real_project.star).rotations).max() > 0.5
