"""load_particles / save_star / save_cs / export_cryodrgn: conventions, round trips, bad inputs."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cryoscape.data.particle_io import export_cryodrgn, load_particles, save_cs, save_star
from cryoscape.data.particles import CTFParams
from cryoscape.errors import InputError, OverwriteError
from cryoscape.io.cs import read_cs
from cryoscape.io.star import read_star

CTF_FIELDS = (
    "defocus_u_A",
    "defocus_v_A",
    "astig_angle_deg",
    "voltage_kV",
    "cs_mm",
    "amplitude_contrast",
    "phase_shift_deg",
    "bfactor_A2",
)


def assert_same_ctf(a: CTFParams, b: CTFParams, rtol=1e-12, atol=1e-9):
    for f in CTF_FIELDS:
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=rtol, atol=atol, err_msg=f)


def assert_same_particles(a, b, rot_atol=1e-10, shift_atol=1e-9):
    assert len(a) == len(b) and a.box_size == b.box_size
    assert list(a.image_paths) == list(b.image_paths)
    np.testing.assert_array_equal(a.image_indices, b.image_indices)
    np.testing.assert_allclose(a.apix, b.apix, rtol=1e-7)
    np.testing.assert_allclose(a.rotations, b.rotations, atol=rot_atol, rtol=0)
    np.testing.assert_allclose(a.shifts_A, b.shifts_A, atol=shift_atol, rtol=0)


# --- reading ------------------------------------------------------------------------------------


def test_star31_to_internal(data_dir):
    t = load_particles(data_dir / "relion31.star")
    assert len(t) == 20 and t.box_size == 16
    assert t.image_paths[0] == str(data_dir / "stacks" / "mic1_particles.mrcs")
    assert t.image_paths[19] == str(data_dir / "stacks" / "mic2_particles.mrcs")
    np.testing.assert_array_equal(t.image_indices, list(range(12)) + list(range(8)))
    np.testing.assert_allclose(t.apix, 2.5)
    np.testing.assert_allclose(t.shifts_A, t.metadata[["rlnOriginXAngst", "rlnOriginYAngst"]].to_numpy(float))
    np.testing.assert_allclose(t.ctf.voltage_kV, [300.0] * 12 + [200.0] * 8)
    np.testing.assert_allclose(t.ctf.phase_shift_deg, t.metadata["rlnPhaseShift"])
    np.testing.assert_allclose(t.ctf.bfactor_A2, t.metadata["rlnCtfBfactor"])
    assert "rlnLogLikeliContribution" in t.metadata.columns


def test_star30_to_internal(data_dir):
    t = load_particles(data_dir / "relion30.star")
    assert t.box_size == 16  # from the stack header: 3.0 has no _rlnImageSize
    np.testing.assert_allclose(t.apix, 5.0 * 1e4 / 20000.0)  # detector pixel (µm) × 1e4 / magnification
    np.testing.assert_allclose(t.shifts_A, t.metadata[["rlnOriginX", "rlnOriginY"]].to_numpy(float) * 2.5)
    np.testing.assert_allclose(t.ctf.bfactor_A2, 0.0)


def test_cs_to_internal(data_dir):
    t = load_particles(data_dir / "particles.cs")
    rec = read_cs(data_dir / "particles.cs")
    assert set(t.image_paths) == {str(data_dir / "J3" / "imported" / "cs_stack.mrcs")}  # '>' stripped
    np.testing.assert_array_equal(t.image_indices, rec["blob/idx"])
    np.testing.assert_allclose(t.ctf.astig_angle_deg, np.rad2deg(rec["ctf/df_angle_rad"].astype(float)))
    np.testing.assert_allclose(t.ctf.bfactor_A2, rec["ctf/bfactor"])
    assert set(t.metadata.columns) == set(rec.dtype.names)


def test_apix_override(data_dir):
    t = load_particles(data_dir / "relion30.star", apix=1.25)
    np.testing.assert_allclose(t.apix, 1.25)
    np.testing.assert_allclose(t.shifts_A, t.metadata[["rlnOriginX", "rlnOriginY"]].to_numpy(float) * 1.25)


def test_datadir_is_tried_first(work, tmp_path):
    other = tmp_path / "elsewhere"
    (other / "stacks").mkdir(parents=True)
    for name in ("mic1_particles.mrcs", "mic2_particles.mrcs"):
        os.link(work / "stacks" / name, other / "stacks" / name)
    t = load_particles(work / "relion31.star", datadir=other)
    assert t.image_paths[0] == str(other / "stacks" / "mic1_particles.mrcs")


def test_cs_paths_resolve_against_datadir(work, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (work / "J3").rename(project / "J3")
    with pytest.raises(InputError, match="cs_stack.mrcs"):
        load_particles(work / "particles.cs")
    t = load_particles(work / "particles.cs", datadir=project)
    assert t.image_paths[0] == str(project / "J3" / "imported" / "cs_stack.mrcs")


# --- round trips --------------------------------------------------------------------------------


def test_star31_roundtrip(work):
    a = load_particles(work / "relion31.star")
    out = save_star(work / "out.star", a)
    b = load_particles(out)
    assert_same_particles(a, b)
    assert_same_ctf(a.ctf, b.ctf)
    for col in (
        "rlnLogLikeliContribution",
        "rlnClassNumber",
        "rlnRandomSubset",
        "rlnMicrographName",
        "rlnCoordinateX",
        "rlnOpticsGroupName",
    ):
        assert list(b.metadata[col]) == list(a.metadata[col]), col
    _, optics = read_star(out)
    assert len(optics) == 2 and list(optics["rlnVoltage"]) == [300.0, 200.0]
    assert b.metadata["rlnImageName"].iloc[0] == "000001@stacks/mic1_particles.mrcs"  # relative to the star
    assert out.read_text().lstrip().startswith("# version 30001")


def test_star30_in_31_out(work):
    a = load_particles(work / "relion30.star")
    b = load_particles(save_star(work / "r31.star", a))
    assert_same_particles(a, b)
    assert_same_ctf(a.ctf, b.ctf)
    parts, optics = read_star(work / "r31.star")
    assert len(optics) == 1 and optics["rlnImagePixelSize"].iloc[0] == 2.5 and optics["rlnImageSize"].iloc[0] == 16
    for gone in ("rlnOriginX", "rlnOriginY", "rlnMagnification", "rlnDetectorPixelSize"):
        assert gone not in parts.columns
    assert "rlnGroupNumber" in parts.columns


def test_star_save_overwrites_poses_and_subsets(work):
    a = load_particles(work / "relion31.star").subset(np.array([19, 3, 5]))
    a.rotations = a.rotations[[1, 2, 0]]
    a.shifts_A = a.shifts_A + 1.0
    a.ctf.defocus_u_A = a.ctf.defocus_u_A + 10.0
    b = load_particles(save_star(work / "sub.star", a))
    assert_same_particles(a, b)
    assert_same_ctf(a.ctf, b.ctf)
    with pytest.raises(OverwriteError):
        save_star(work / "sub.star", a)


def test_cs_roundtrip_keeps_all_fields(work):
    a = load_particles(work / "particles.cs").subset(np.array([4, 0, 7, 7]))
    out = save_cs(work / "out.cs", a)
    assert out.name == "out.cs"
    b = load_particles(out)
    assert_same_particles(a, b, rot_atol=1e-6, shift_atol=1e-5)
    assert_same_ctf(a.ctf, b.ctf, rtol=1e-6, atol=1e-5)
    src, rec = read_cs(work / "particles.cs")[[4, 0, 7, 7]], read_cs(out)
    assert rec.dtype.names is not None and set(src.dtype.names) <= set(rec.dtype.names)
    for name in ("uid", "blob/path", "blob/idx", "ctf/type", "alignments3D/error", "alignments3D/split"):
        np.testing.assert_array_equal(rec[name], src[name], err_msg=name)
    # lossless on the float32 fields cryoSPARC stores (poses within float32 rounding)
    np.testing.assert_allclose(rec["alignments3D/shift"], src["alignments3D/shift"], atol=1e-6)
    np.testing.assert_allclose(rec["ctf/df1_A"], src["ctf/df1_A"], rtol=0)


def test_star_to_cs_and_back(work):
    a = load_particles(work / "relion31.star")
    b = load_particles(save_cs(work / "from_star.cs", a))
    assert_same_particles(a, b, rot_atol=1e-6, shift_atol=1e-5)
    assert_same_ctf(a.ctf, b.ctf, rtol=1e-6, atol=1e-4)


def test_cs_to_star(work):
    a = load_particles(work / "particles.cs")
    b = load_particles(save_star(work / "from_cs.star", a))
    assert_same_particles(a, b)
    assert_same_ctf(a.ctf, b.ctf)


def test_table_to_cryodrgn_and_back(work, tmp_path):
    a = load_particles(work / "relion31.star")
    p, c = export_cryodrgn(a, poses_path=tmp_path / "poses.pkl", ctf_path=tmp_path / "ctf.pkl")
    stack_list = tmp_path / "stacks.txt"
    stack_list.write_text(f"{work / 'stacks' / 'mic1_particles.mrcs'}\n{work / 'stacks' / 'mic2_particles.mrcs'}\n")
    b = load_particles(stack_list, poses=p, ctf=c)
    assert_same_particles(a, b, rot_atol=1e-12, shift_atol=1e-12)
    for f in CTF_FIELDS[:-1]:  # float32 in the pickle; no B-factor column in cryoDRGN's layout
        np.testing.assert_allclose(getattr(b.ctf, f), getattr(a.ctf, f), rtol=1e-6, atol=1e-5, err_msg=f)
    np.testing.assert_array_equal(b.ctf.bfactor_A2, 0.0)


def test_downsampled_export_keeps_box_fraction(work, tmp_path):
    a = load_particles(work / "relion31.star")
    export_cryodrgn(a, D=8, poses_path=tmp_path / "p.pkl", ctf_path=tmp_path / "c.pkl")
    b = load_particles(work / "relion31.star", poses=tmp_path / "p.pkl", ctf=tmp_path / "c.pkl")
    # the pose file holds box fractions: read back against the 16-px stacks they are the same shifts
    np.testing.assert_allclose(b.shifts_A, a.shifts_A, atol=1e-12)


# --- bad inputs ---------------------------------------------------------------------------------


def test_missing_stack(work):
    (work / "stacks" / "mic2_particles.mrcs").unlink()
    with pytest.raises(InputError, match=r"image stack stacks/mic2_particles.mrcs \(used by 8 particles\) not found"):
        load_particles(work / "relion31.star")
    t = load_particles(work / "relion31.star", check_stacks=False)  # export needs no images
    assert len(t) == 20


def test_index_beyond_stack(work):
    text = (
        (work / "relion31.star")
        .read_text()
        .replace("000008@stacks/mic2_particles.mrcs", "000009@stacks/mic2_particles.mrcs")
    )
    (work / "relion31.star").write_text(text)
    with pytest.raises(InputError, match=r"image 9@stacks/mic2_particles.mrcs is beyond the end .* \(8 images\)"):
        load_particles(work / "relion31.star")


def test_missing_ctf_columns(work):
    parts, optics = read_star(work / "relion31.star")
    parts = parts.drop(columns=["rlnDefocusU", "rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast"])
    from cryoscape.io.star import write_star

    write_star(
        work / "noctf.star",
        parts,
        optics.drop(columns=["rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast"]),
    )
    assert load_particles(work / "noctf.star").ctf is None
    with pytest.raises(InputError, match="noctf.star has no CTF parameters"):
        load_particles(work / "noctf.star", require_ctf=True)


def test_empty_and_particle_less_files(work):
    (work / "empty.star").write_text("")
    with pytest.raises(InputError, match="empty"):
        load_particles(work / "empty.star")
    (work / "none.star").write_text(
        "data_optics\n\nloop_\n_rlnOpticsGroup #1\n1\n\n"
        "data_particles\n\nloop_\n_rlnImageName #1\n_rlnOpticsGroup #2\n\n"
    )
    with pytest.raises(InputError, match="holds no particles"):
        load_particles(work / "none.star")
    (work / "empty.cs").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_particles(work / "empty.cs")
    (work / "garbage.cs").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InputError, match="not a readable .cs"):
        load_particles(work / "garbage.cs")
    with open(work / "none.cs", "wb") as f:
        np.save(f, read_cs(work / "particles.cs")[:0])
    with pytest.raises(InputError, match="holds no particles"):
        load_particles(work / "none.cs")


def test_malicious_pose_pickle(work, tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps((np.eye(3)[None], Evil())))
    with pytest.raises(InputError, match="refuses to load"):
        load_particles(work / "relion31.star", poses=tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned").exists()


def test_bad_image_names_and_unknown_type(work):
    (work / "names.star").write_text("data_\n\nloop_\n_rlnImageName #1\n_rlnImagePixelSize #2\nfoo.mrcs 1.0\n")
    with pytest.raises(InputError, match="not of the form index@stack"):
        load_particles(work / "names.star")
    (work / "x.json").write_text("{}")
    with pytest.raises(InputError, match="unknown type"):
        load_particles(work / "x.json")


def test_pickle_counts_must_match(work, tmp_path):
    a = load_particles(work / "relion31.star")
    export_cryodrgn(a.subset(np.arange(5)), poses_path=tmp_path / "p.pkl")
    with pytest.raises(InputError, match="has 5 poses but there are 20 particles"):
        load_particles(work / "relion31.star", poses=tmp_path / "p.pkl")


def test_single_stack_with_pickles(work, tmp_path):
    a = load_particles(work / "relion30.star")
    p, c = export_cryodrgn(a, poses_path=tmp_path / "p.pkl", ctf_path=tmp_path / "c.pkl")
    b = load_particles(work / "stacks" / "r30_particles.mrcs", poses=p, ctf=c)
    assert_same_particles(a, b, rot_atol=1e-12, shift_atol=1e-12)
    # a CTF file made for another box (cryoDRGN's downsampling workflow) serves the stack: the box is
    # D x Apix Angstrom, so the stack's pixel size follows
    export_cryodrgn(a, D=8, ctf_path=tmp_path / "c8.pkl")
    c = load_particles(work / "stacks" / "r30_particles.mrcs", ctf=tmp_path / "c8.pkl")
    np.testing.assert_allclose(c.apix, a.apix, rtol=1e-12)
    np.testing.assert_allclose(c.ctf.defocus_u_A, a.ctf.defocus_u_A)


def test_export_needs_poses_and_ctf(work, tmp_path):
    a = load_particles(work / "stacks" / "r30_particles.mrcs")
    assert a.rotations is None and a.ctf is None
    with pytest.raises(InputError, match="no CTF parameters"):
        export_cryodrgn(a, ctf_path=tmp_path / "c.pkl")
    with pytest.raises(InputError, match="no poses"):
        export_cryodrgn(a, poses_path=tmp_path / "p.pkl")


def test_downsampled_stacks_rescale_pixel_size(work):
    """_rlnImageSize 32 but the stacks hold 16-px images: Å values kept, apix doubled."""
    a = load_particles(work / "relion31.star")
    text = (work / "relion31.star").read_text().replace("2.500000  16  2", "1.250000  32  2")
    (work / "relion31.star").write_text(text)
    b = load_particles(work / "relion31.star")
    assert b.box_size == 16
    np.testing.assert_allclose(b.apix, 2.5)
    np.testing.assert_allclose(b.shifts_A, a.shifts_A)
