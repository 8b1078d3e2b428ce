"""Agreement with the real cryoDRGN 4.3.1 (its outputs are the fixtures data/cryodrgn_*.pkl)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from metadata_reference import relion_matrix

from cryoscape.cli.main import main as cli
from cryoscape.data.particle_io import load_particles
from cryoscape.io.legacy_pickle import read_cryodrgn_ctf, read_cryodrgn_poses

# (input, cryoDRGN output prefix, our CLI arguments): see data/README.md for cryoDRGN's commands.
CASES = [
    ("relion31.star", "cryodrgn_r31", []),
    ("relion31.star", "cryodrgn_r31_D8", ["-D", "8", "--apix", "5.0"]),
    ("relion31.star", "cryodrgn_r31_D8", ["-D", "8"]),  # pixel size follows from D by default
    ("relion30.star", "cryodrgn_r30", ["-D", "16"]),
    ("particles.cs", "cryodrgn_cs", []),
]


def _load_raw(path):
    with open(path, "rb") as f:
        return pickle.load(f)  # cryoDRGN's own fixture, checked in


@pytest.mark.parametrize("source,prefix,args", CASES)
def test_export_cli_reproduces_cryodrgn(tmp_path, data_dir, source, prefix, args):
    poses, ctf = tmp_path / "poses.pkl", tmp_path / "ctf.pkl"
    rc = cli(["export-cryodrgn", str(data_dir / source), *args, "--poses", str(poses), "--ctf", str(ctf)])
    assert rc == 0
    ref_rot, ref_trans = _load_raw(data_dir / f"{prefix}_poses.pkl")
    rot, trans = _load_raw(poses)
    np.testing.assert_allclose(rot, ref_rot, rtol=0, atol=1e-6)
    np.testing.assert_allclose(trans, ref_trans, rtol=1e-6, atol=1e-7)
    ref_ctf = _load_raw(data_dir / f"{prefix}_ctf.pkl") if (data_dir / f"{prefix}_ctf.pkl").exists() else None
    out_ctf = _load_raw(ctf)
    assert out_ctf.dtype == np.float32 and out_ctf.shape[1] == 9
    if ref_ctf is not None:
        assert ref_ctf.dtype == out_ctf.dtype
        np.testing.assert_allclose(out_ctf, ref_ctf, rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    "source,prefix",
    [("relion31.star", "cryodrgn_r31"), ("relion30.star", "cryodrgn_r30"), ("particles.cs", "cryodrgn_cs")],
)
def test_load_particles_matches_cryodrgn_poses(data_dir, source, prefix):
    table = load_particles(data_dir / source)
    rot, trans = read_cryodrgn_poses(data_dir / f"{prefix}_poses.pkl")
    np.testing.assert_allclose(table.rotations, rot, atol=1e-6, rtol=0)
    np.testing.assert_allclose(table.shifts_px / table.box_size, trans, rtol=1e-6, atol=1e-7)
    ctf = read_cryodrgn_ctf(data_dir / f"{prefix}_ctf.pkl")
    np.testing.assert_allclose(table.ctf.defocus_u_A, ctf[:, 2], rtol=1e-6)
    np.testing.assert_allclose(table.ctf.defocus_v_A, ctf[:, 3], rtol=1e-6)
    np.testing.assert_allclose(table.ctf.astig_angle_deg, ctf[:, 4], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(table.ctf.voltage_kV, ctf[:, 5], rtol=1e-6)
    np.testing.assert_allclose(table.ctf.cs_mm, ctf[:, 6], rtol=1e-6)
    np.testing.assert_allclose(table.ctf.amplitude_contrast, ctf[:, 7], rtol=1e-6)
    np.testing.assert_allclose(table.ctf.phase_shift_deg, ctf[:, 8], rtol=1e-6, atol=1e-5)


def test_star_rotations_are_relion_matrices(data_dir):
    """Independent check of the Euler convention (scipy) incl. gimbal-lock and ±180° rows."""
    table = load_particles(data_dir / "relion31.star")
    eul = table.metadata[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy(dtype=float)
    np.testing.assert_allclose(table.rotations, relion_matrix(eul), atol=1e-12)


def test_cs_rotation_is_transposed_expmap(data_dir):
    """A = expm([v]x)^T: the rotation by -|v| about v (scipy as the independent reference)."""
    from scipy.spatial.transform import Rotation

    table = load_particles(data_dir / "particles.cs")
    pose = np.stack(table.metadata["alignments3D/pose"].to_numpy()).astype(np.float64)
    expected = np.swapaxes(Rotation.from_rotvec(pose).as_matrix(), -1, -2)
    np.testing.assert_allclose(table.rotations, expected, atol=1e-12)
    shift = np.stack(table.metadata["alignments3D/shift"].to_numpy()).astype(np.float64)
    np.testing.assert_allclose(table.shifts_A, shift * 2.5, rtol=1e-12)  # same sign as RELION's origin


@pytest.mark.parametrize(
    "source,prefix,args",
    [
        ("relion31.star", "cryodrgn_r31_D8_noapix", ["-D", "8"]),
        ("relion30.star", "cryodrgn_r30_D8", ["-D", "8", "--apix", "5.0"]),
    ],
)
def test_deliberate_deviation_when_cryodrgn_mixes_boxes(tmp_path, data_dir, source, prefix, args):
    """cryoDRGN divides origins in *stored* pixels by a different -D in these two cases, which doubles
    the translations for a 2× Fourier-cropped stack. cryoscape keeps the fraction of the box (the
    same as for -D = stored box, which is what cryoDRGN gives there)."""
    poses = tmp_path / "poses.pkl"
    assert cli(["export-cryodrgn", str(data_dir / source), *args, "--poses", str(poses)]) == 0
    _, ref_trans = _load_raw(data_dir / f"{prefix}_poses.pkl")
    _, trans = _load_raw(poses)
    np.testing.assert_allclose(ref_trans, 2 * trans, rtol=1e-6, atol=1e-7)
    base = "cryodrgn_r31" if source == "relion31.star" else "cryodrgn_r30"
    _, full_box_trans = _load_raw(data_dir / f"{base}_poses.pkl")
    np.testing.assert_allclose(trans, full_box_trans, rtol=1e-6, atol=1e-7)
