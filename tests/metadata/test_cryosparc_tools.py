"""cryoSPARC .cs files checked against cryosparc-tools (cryoSPARC's own Python library, a test
dependency): a .cs that cryoscape writes loads there with the same fields and values, and a .cs that
its Dataset writes is read by cryoscape with the right poses, shifts and CTF (issue 11, item 7).
Rotations are compared with scipy: cryoscape's A = expm([v]x)^T for v = alignments3D/pose."""

from __future__ import annotations

import numpy as np
from cryosparc.dataset import Dataset
from scipy.spatial.transform import Rotation

from cryoscape.data.particle_io import load_particles, save_cs


def cs_rotations(pose: np.ndarray) -> np.ndarray:
    return np.swapaxes(Rotation.from_rotvec(np.asarray(pose, dtype=float)).as_matrix(), -1, -2)


def test_a_cs_written_by_cryoscape_loads_in_cryosparc_tools(data_dir, tmp_path):
    table = load_particles(data_dir / "relion31.star")
    save_cs(tmp_path / "ours.cs", table)
    ds = Dataset.load(tmp_path / "ours.cs")
    assert len(ds) == 20
    assert {"uid", "blob/path", "blob/idx", "blob/shape", "blob/psize_A", "alignments3D/pose"} <= set(ds.fields())
    paths = [str((tmp_path / p).resolve()) for p in ds["blob/path"]]
    assert paths == [str((tmp_path / table.image_paths[i]).resolve()) for i in range(20)]
    np.testing.assert_array_equal(ds["blob/idx"], table.image_indices)
    np.testing.assert_array_equal(ds["blob/shape"], np.full((20, 2), 16))
    np.testing.assert_allclose(ds["blob/psize_A"], 2.5)
    np.testing.assert_allclose(cs_rotations(ds["alignments3D/pose"]), table.rotations, atol=1e-6)
    shifts_A = ds["alignments3D/shift"] * ds["alignments3D/psize_A"][:, None]
    np.testing.assert_allclose(shifts_A, table.shifts_A, atol=1e-5)
    np.testing.assert_allclose(ds["ctf/df1_A"], table.ctf.defocus_u_A, rtol=1e-6)
    np.testing.assert_allclose(ds["ctf/df2_A"], table.ctf.defocus_v_A, rtol=1e-6)
    np.testing.assert_allclose(np.rad2deg(ds["ctf/df_angle_rad"]), table.ctf.astig_angle_deg, atol=1e-4)
    np.testing.assert_allclose(ds["ctf/accel_kv"], [300.0] * 12 + [200.0] * 8)
    np.testing.assert_allclose(ds["ctf/amp_contrast"], table.ctf.amplitude_contrast, rtol=1e-6)
    np.testing.assert_allclose(np.rad2deg(ds["ctf/phase_shift_rad"]), table.ctf.phase_shift_deg, atol=1e-4)


def test_a_cs_subset_keeps_every_field_for_cryosparc_tools(data_dir, tmp_path):
    original = Dataset.load(data_dir / "particles.cs")
    table = load_particles(data_dir / "particles.cs").subset(np.array([4, 0, 9]))
    save_cs(tmp_path / "subset.cs", table)
    ds = Dataset.load(tmp_path / "subset.cs")
    assert ds.fields() == original.fields()
    for field in ("uid", "blob/path", "ctf/type", "alignments3D/error", "alignments3D/class"):
        np.testing.assert_array_equal(ds[field], original[field][[4, 0, 9]], err_msg=field)
    np.testing.assert_allclose(ds["alignments3D/pose"], original["alignments3D/pose"][[4, 0, 9]], atol=1e-6)


def test_a_cs_made_by_cryosparc_tools_is_read_right(work):
    """A downsampled job made with cryosparc-tools' Dataset: blob/psize_A 5 Å (the stored 16-px
    images), alignments3D/psize_A 2.5 Å (the 32-px images the poses were found on)."""
    n, rng = 15, np.random.default_rng(3)
    ds = Dataset.allocate(
        n,
        fields=[
            ("blob/path", "O"),
            ("blob/idx", "u4"),
            ("blob/shape", "u4", (2,)),
            ("blob/psize_A", "f4"),
            ("ctf/accel_kv", "f4"),
            ("ctf/cs_mm", "f4"),
            ("ctf/amp_contrast", "f4"),
            ("ctf/df1_A", "f4"),
            ("ctf/df2_A", "f4"),
            ("ctf/df_angle_rad", "f4"),
            ("ctf/phase_shift_rad", "f4"),
            ("alignments3D/pose", "f4", (3,)),
            ("alignments3D/shift", "f4", (2,)),
            ("alignments3D/psize_A", "f4"),
        ],
    )
    pose = Rotation.random(n, random_state=4).as_rotvec().astype(np.float32)
    shift = rng.uniform(-3, 3, (n, 2)).astype(np.float32)
    df1 = rng.uniform(8000, 25000, n).astype(np.float32)
    ds["blob/path"] = ["J3/imported/cs_stack.mrcs"] * n
    ds["blob/idx"] = rng.permutation(n)
    ds["blob/shape"] = 16
    ds["blob/psize_A"] = 5.0
    ds["ctf/accel_kv"], ds["ctf/cs_mm"], ds["ctf/amp_contrast"] = 300.0, 2.7, 0.07
    ds["ctf/df1_A"], ds["ctf/df2_A"], ds["ctf/df_angle_rad"] = df1, df1 - 300.0, 0.5
    ds["ctf/phase_shift_rad"] = np.pi / 2
    ds["alignments3D/pose"], ds["alignments3D/shift"], ds["alignments3D/psize_A"] = pose, shift, 2.5
    (work / "J7").mkdir()
    ds.save(work / "J7" / "J7_particles.cs")

    table = load_particles(work / "J7" / "J7_particles.cs")  # paths from the project folder above J7
    assert set(table.image_paths) == {str(work / "J3/imported/cs_stack.mrcs")}
    np.testing.assert_array_equal(table.image_indices, ds["blob/idx"])
    assert table.box_size == 16
    np.testing.assert_allclose(table.apix, 5.0)
    np.testing.assert_allclose(table.rotations, cs_rotations(pose), atol=1e-6)
    np.testing.assert_allclose(table.shifts_A, shift * 2.5, rtol=1e-6)
    np.testing.assert_allclose(table.ctf.defocus_u_A, df1)
    np.testing.assert_allclose(table.ctf.defocus_v_A, df1 - 300.0)
    np.testing.assert_allclose(table.ctf.astig_angle_deg, np.rad2deg(np.float32(0.5)), rtol=1e-6)
    np.testing.assert_allclose(table.ctf.phase_shift_deg, 90.0, rtol=1e-6)
    np.testing.assert_allclose(table.ctf.amplitude_contrast, 0.07, rtol=1e-6)
