"""Inputs that used to give silent garbage with exit 0 (issue 11, items 6 and 16): each is now one
clear line and a non-zero exit, or a warning where the result is still what the user asked for."""

from __future__ import annotations

import logging
import pickle

import mrcfile
import numpy as np
import pytest
import starfile

from cryoscape.cli.main import main as cli
from cryoscape.data.particle_io import export_cryodrgn, load_particles
from cryoscape.errors import InputError
from cryoscape.io.cs import read_cs


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def edit_star31(work, optics=None, particles=None):
    """relion31.star with its optics / particle tables changed by the given functions."""
    blocks = starfile.read(work / "relion31.star", always_dict=True)
    for name, change in (("optics", optics), ("particles", particles)):
        if change is not None:
            blocks[name] = change(blocks[name].copy())
    starfile.write(blocks, work / "edited.star")
    return work / "edited.star"


# --- CTF -------------------------------------------------------------------------------------------


def test_defocus_in_micrometres(work, tmp_path, capsys, caplog):
    def in_um(p):
        p["rlnDefocusU"], p["rlnDefocusV"] = p["rlnDefocusU"] / 1e4, p["rlnDefocusV"] / 1e4
        return p

    star = edit_star31(work, particles=in_um)
    assert cli(["backproject", str(star), "-o", str(tmp_path / "m.mrc")]) == 1
    line = one_line_error(capsys)
    assert "every defocus is below 100 Å (0.749143-2.49948): these look like µm" in line, line
    with caplog.at_level(logging.WARNING, logger="cryoscape"):
        load_particles(star)  # not using the CTF: a warning
    assert "look like µm" in caplog.text

    def some_in_um(p):
        p.loc[:2, "rlnDefocusU"] = p.loc[:2, "rlnDefocusV"] = 1.5
        return p

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cryoscape"):
        load_particles(edit_star31(work, particles=some_in_um), require_ctf=True)
    assert "3 of 20 particles have a defocus below 100 Å (1.5): µm instead of Å?" in caplog.text


def test_premultiplied_ctf_is_refused_where_the_ctf_is_used(work, tmp_path, capsys, caplog):
    def premultiplied(o):
        o["rlnCtfDataAreCtfPremultiplied"] = [0, 1]
        return o

    star = edit_star31(work, optics=premultiplied)
    assert cli(["backproject", str(star), "-o", str(tmp_path / "m.mrc")]) == 1
    line = one_line_error(capsys)
    assert "_rlnCtfDataAreCtfPremultiplied is 1 in optics group 2 (opticsGroup2)" in line
    assert "apply a second time" in line
    assert cli(["export-cryodrgn", str(star), "--ctf", str(tmp_path / "c.pkl")]) == 1
    with caplog.at_level(logging.WARNING, logger="cryoscape"):  # images only: a warning
        assert cli(["downsample", str(star), "-D", "8", "-o", str(tmp_path / "d.mrcs"), "-q"]) == 0
    assert "CtfPremultiplied" in caplog.text
    not_premultiplied = edit_star31(work, optics=lambda o: o.assign(rlnCtfDataAreCtfPremultiplied=0))
    assert load_particles(not_premultiplied, require_ctf=True).ctf is not None


def test_aberrations_that_are_not_modelled_are_named(work, caplog):
    def aberrations(o):
        o["rlnBeamTiltX"], o["rlnBeamTiltY"] = [0.0, 0.3], [0.0, -0.1]
        o["rlnMagMat00"], o["rlnMagMat01"], o["rlnMagMat10"], o["rlnMagMat11"] = 1.0, 0.0, 0.0, 1.0
        o["rlnOddZernike"] = ["[0.1,0.2]", "[0.1,0.2]"]
        o["rlnEvenZernike"] = ["[0,0,0]", "[0.0,0.0,0.0]"]
        return o

    with caplog.at_level(logging.WARNING, logger="cryoscape"):
        load_particles(edit_star31(work, optics=aberrations))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("beam tilt (_rlnBeamTiltX, _rlnBeamTiltY) present and not modelled" in w for w in warnings)
    assert any("odd Zernike aberrations (_rlnOddZernike)" in w for w in warnings)
    assert not any("magnification" in w or "even Zernike" in w for w in warnings)  # identity and zeros
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cryoscape"):
        load_particles(edit_star31(work, optics=lambda o: o.assign(rlnMagMat00=1.02, rlnBeamTiltX=0.0)))
    assert "anisotropic magnification (_rlnMagMat00) present and not modelled" in caplog.text
    assert "beam tilt" not in caplog.text


# --- non-finite values ---------------------------------------------------------------------------


def test_nan_in_a_star_file(work, tmp_path, capsys):
    def nan_origin(p):
        p.loc[6, "rlnOriginYAngst"] = np.nan
        return p

    star = edit_star31(work, particles=nan_origin)
    star.write_text(star.read_text().replace("<NA>", "nan"))  # as RELION would write it
    assert cli(["backproject", str(star), "-o", str(tmp_path / "m.mrc")]) == 1
    assert "_rlnOriginYAngst of particle 7 is nan, not a finite number" in one_line_error(capsys)
    star = edit_star31(work, particles=lambda p: p.assign(rlnDefocusV=np.where(p.index == 3, np.inf, p.rlnDefocusV)))
    with pytest.raises(InputError, match="_rlnDefocusV of particle 4 is inf"):
        load_particles(star)


def test_nan_in_a_cs_file(work):
    rec = read_cs(work / "particles.cs")
    rec["alignments3D/shift"][9, 1] = np.nan
    with open(work / "nan.cs", "wb") as f:
        np.save(f, rec)
    with pytest.raises(InputError, match=r"nan.cs: alignments3D/shift of particle 10 is \[.* nan\], not a finite"):
        load_particles(work / "nan.cs")


def test_nan_in_cryodrgn_pickles(work, tmp_path):
    table = load_particles(work / "relion31.star")
    export_cryodrgn(table, poses_path=tmp_path / "p.pkl", ctf_path=tmp_path / "c.pkl")
    with open(tmp_path / "p.pkl", "rb") as f:
        rot, trans = pickle.load(f)
    trans[4, 0] = np.nan
    with open(tmp_path / "nan_p.pkl", "wb") as f:
        pickle.dump((rot, trans), f)
    with pytest.raises(InputError, match="nan_p.pkl: the translation of particle 5"):
        load_particles(work / "relion31.star", poses=tmp_path / "nan_p.pkl")
    with open(tmp_path / "c.pkl", "rb") as f:
        ctf = pickle.load(f)
    ctf[11, 2] = np.inf
    with open(tmp_path / "nan_c.pkl", "wb") as f:
        pickle.dump(ctf, f)
    with pytest.raises(InputError, match="nan_c.pkl: defocus_u_A of particle 12 is inf"):
        load_particles(work / "relion31.star", ctf=tmp_path / "nan_c.pkl")


# --- pose matrices -------------------------------------------------------------------------------


def test_non_orthogonal_pose_pickle(work, tmp_path, capsys):
    table = load_particles(work / "relion31.star")
    export_cryodrgn(table, poses_path=tmp_path / "p.pkl")
    with open(tmp_path / "p.pkl", "rb") as f:
        rot, trans = pickle.load(f)
    bad = rot.copy()
    bad[13] *= 1.5  # scaled: R R^T = 2.25 I
    bad[2] *= 1.1
    with open(tmp_path / "bad.pkl", "wb") as f:
        pickle.dump((bad, trans), f)
    out = str(tmp_path / "m.mrc")
    assert cli(["backproject", str(work / "relion31.star"), "--poses", str(tmp_path / "bad.pkl"), "-o", out]) == 1
    line = one_line_error(capsys)
    assert "bad.pkl: rotations are not orthogonal: |R Rᵀ − I| reaches 1.25 (particle 14)" in line
    flipped = rot.copy()
    flipped[7] = -flipped[7]  # a reflection: orthogonal, det -1
    with open(tmp_path / "flip.pkl", "wb") as f:
        pickle.dump((flipped, trans), f)
    with pytest.raises(InputError, match=r"flip.pkl: the matrix of particle 8 is a reflection"):
        load_particles(work / "relion31.star", poses=tmp_path / "flip.pkl")
    # float32 rounding (cryoDRGN's parse_pose_csparc) is accepted
    with open(tmp_path / "f32.pkl", "wb") as f:
        pickle.dump((rot.astype(np.float32), trans.astype(np.float32)), f)
    assert len(load_particles(work / "relion31.star", poses=tmp_path / "f32.pkl")) == 20


# --- all-zero images -----------------------------------------------------------------------------


@pytest.fixture
def zero_images(work):
    """relion30.star on a stack of zeros."""
    stack = work / "stacks" / "r30_particles.mrcs"
    with mrcfile.open(stack, "r+") as m:
        m.data[:] = 0
    return work / "relion30.star", stack


def test_all_zero_images_backproject(zero_images, tmp_path, capsys):
    star, stack = zero_images
    assert cli(["backproject", str(star), "-o", str(tmp_path / "m.mrc")]) == 1
    assert f"images 0..11 of {stack} are all zero: nothing to reconstruct" in one_line_error(capsys)
    assert not (tmp_path / "m.mrc").exists()


def test_all_zero_images_train(zero_images, tmp_path, capsys):
    star, stack = zero_images
    args = ["train-vae", str(star), "-o", str(tmp_path / "vae"), "-n", "1", "--zdim", "1", "--dec-dim", "8"]
    assert cli([*args, "--enc-dim", "8", "-q"]) == 1
    assert f"images 0..11 of {stack} are all zero: nothing to learn from" in one_line_error(capsys)
    assert not (tmp_path / "vae" / "z.npy").exists()
