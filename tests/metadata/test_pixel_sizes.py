"""Pixel sizes (issue 11, item 7): a user's --apix is the stored images' pixel size, taken as is;
RELION 3.0 pixel origins use the pixel size of the images they refer to; cryoSPARC shifts are pixels
of alignments3D/psize_A; particles of one file with different pixel sizes are refused, never
averaged."""

from __future__ import annotations

import numpy as np
import pytest
import starfile

from cryoscape.cli.main import main as cli
from cryoscape.data.particle_io import load_particles, save_cs
from cryoscape.errors import InputError
from cryoscape.io.cs import read_cs


def test_user_apix_is_taken_as_is_for_downsampled_stacks(work):
    """_rlnImageSize 32 at 1.25 Å/px, the stacks hold 16-px images: --apix 2.5 is theirs."""
    text = (work / "relion31.star").read_text().replace("2.500000  16  2", "1.250000  32  2")
    (work / "relion31.star").write_text(text)
    assert load_particles(work / "relion31.star").apix == pytest.approx(2.5)  # the file's, scaled 32/16
    np.testing.assert_allclose(load_particles(work / "relion31.star", apix=2.5).apix, 2.5)  # was 5.0
    np.testing.assert_allclose(load_particles(work / "relion31.star", apix=2.6).apix, 2.6)


def test_relion30_pixel_origins_use_the_pixel_size_of_their_images(work):
    """A 3.0 file for 32-px images at 1.25 Å/px (5 µm / 40000) whose stacks were downsampled to 16 px:
    the origins are pixels of 1.25 Å, with or without --apix."""
    df = starfile.read(work / "relion30.star")
    df["rlnMagnification"] = 40000.0
    df["rlnImageSize"] = 32
    starfile.write(df, work / "down.star")
    origins = df[["rlnOriginX", "rlnOriginY"]].to_numpy(float)
    t = load_particles(work / "down.star")
    np.testing.assert_allclose(t.apix, 2.5)
    np.testing.assert_allclose(t.shifts_A, origins * 1.25)
    t = load_particles(work / "down.star", apix=2.5)
    np.testing.assert_allclose(t.apix, 2.5)
    np.testing.assert_allclose(t.shifts_A, origins * 1.25)  # was × 2.5 (the stacks' pixel)


def test_cryosparc_shifts_are_pixels_of_alignments3d_psize(work):
    """After cryoSPARC's "Downsample particles": blob/psize_A = 2 × alignments3D/psize_A."""
    rec = read_cs(work / "particles.cs")
    shift_px = rec["alignments3D/shift"].astype(float)
    rec["blob/psize_A"] = 5.0  # the stored 16-px images
    rec["alignments3D/psize_A"] = 2.5  # the 32-px images the poses were found on
    with open(work / "down.cs", "wb") as f:
        np.save(f, rec)
    t = load_particles(work / "down.cs")
    np.testing.assert_allclose(t.apix, 5.0)
    np.testing.assert_allclose(t.shifts_A, shift_px * 2.5, rtol=1e-6)  # was × 5.0
    # no alignments3D/psize_A: blob/psize_A
    from numpy.lib import recfunctions

    with open(work / "bare.cs", "wb") as f:
        np.save(f, recfunctions.drop_fields(rec, ["alignments3D/psize_A"], usemask=False))
    np.testing.assert_allclose(load_particles(work / "bare.cs").shifts_A, shift_px * 5.0, rtol=1e-6)
    # written back: shifts in pixels of the stored images, with that pixel size
    save_cs(work / "again.cs", t)
    again = read_cs(work / "again.cs")
    np.testing.assert_allclose(again["alignments3D/shift"] * again["alignments3D/psize_A"][:, None], shift_px * 2.5)
    np.testing.assert_allclose(load_particles(work / "again.cs").shifts_A, t.shifts_A, rtol=1e-6)


def test_optics_groups_with_different_pixel_sizes_are_refused(work, tmp_path, capsys):
    text = (work / "relion31.star").read_text()
    (work / "relion31.star").write_text(text.replace("200.000000  2.500000  16", "200.000000  2.600000  16"))
    with pytest.raises(InputError) as err:
        load_particles(work / "relion31.star")
    msg = str(err.value)
    assert "group 1 (opticsGroup1): 2.5 Å/px, group 2 (opticsGroup2): 2.6 Å/px" in msg
    assert "select the particles of one optics group" in msg
    assert cli(["backproject", str(work / "relion31.star"), "-o", str(tmp_path / "m.mrc")]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    # --apix: the user says what the stored images are
    np.testing.assert_allclose(load_particles(work / "relion31.star", apix=2.5).apix, 2.5)
    # 0.04% apart: rounding in a file, accepted (each particle keeps its own)
    (work / "relion31.star").write_text(text.replace("200.000000  2.500000  16", "200.000000  2.501000  16"))
    assert sorted(set(load_particles(work / "relion31.star").apix)) == [2.5, 2.501]


def test_cs_with_different_pixel_sizes_is_refused(work):
    rec = read_cs(work / "particles.cs")
    rec["blob/psize_A"][:5] = 1.1
    with open(work / "mixed.cs", "wb") as f:
        np.save(f, rec)
    with pytest.raises(InputError, match=r"blob/psize_A: 5 particles at 1.1 Å/px, 10 particles at 2.5 Å/px"):
        load_particles(work / "mixed.cs")
