"""RELION .star reading (3.0, 3.1) and writing (3.1), with clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from cryoscape.errors import InputError
from cryoscape.io.star import read_star, write_star


def test_read_31_merges_optics_per_particle(data_dir):
    particles, optics = read_star(data_dir / "relion31.star")
    assert len(particles) == 20 and len(optics) == 2
    assert list(optics["rlnOpticsGroup"]) == [1, 2]
    # group 1 = first 12 particles (300 kV, Cs 2.7, w 0.1), group 2 = last 8 (200 kV, Cs 0.01, w 0.07)
    np.testing.assert_array_equal(particles["rlnVoltage"], [300.0] * 12 + [200.0] * 8)
    np.testing.assert_array_equal(particles["rlnSphericalAberration"], [2.7] * 12 + [0.01] * 8)
    np.testing.assert_array_equal(particles["rlnAmplitudeContrast"], [0.1] * 12 + [0.07] * 8)
    assert (particles["rlnImageSize"] == 16).all() and (particles["rlnImagePixelSize"] == 2.5).all()
    assert particles["rlnImageName"].iloc[13] == "000002@stacks/mic2_particles.mrcs"
    assert particles["rlnOpticsGroupName"].iloc[19] == "opticsGroup2"


def test_read_30_single_block(data_dir):
    particles, optics = read_star(data_dir / "relion30.star")
    assert optics is None and len(particles) == 12
    assert particles["rlnOriginX"].iloc[0] == pytest.approx(1.396857)
    assert particles["rlnDetectorPixelSize"].iloc[0] == 5.0


def _write(tmp_path, text, name="bad.star"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_errors(tmp_path):
    with pytest.raises(InputError, match="empty"):
        read_star(_write(tmp_path, "", "empty.star"))
    with pytest.raises(InputError, match="no data_ blocks"):
        read_star(_write(tmp_path, "# just a comment\nhello world\n", "nodata.star"))
    with pytest.raises(InputError, match="no particle table"):
        read_star(_write(tmp_path, "data_general\n\n_rlnImageSize 64\n", "simple.star"))
    with pytest.raises(InputError, match="no _rlnImageName"):
        read_star(_write(tmp_path, "data_\n\nloop_\n_rlnAngleRot #1\n_rlnAngleTilt #2\n1 2\n3 4\n", "noname.star"))
    with pytest.raises(InputError, match="holds no particles"):
        read_star(_write(tmp_path, "data_particles\n\nloop_\n_rlnImageName #1\n_rlnAngleRot #2\n\n", "none.star"))
    optics = "data_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnImagePixelSize #2\n1 1.5\n\n"
    with pytest.raises(InputError, match=r"optics group\(s\) 3 not defined"):
        read_star(
            _write(
                tmp_path,
                optics + "data_particles\n\nloop_\n_rlnImageName #1\n_rlnOpticsGroup #2\n1@a.mrcs 1\n2@a.mrcs 3\n",
                "undef.star",
            )
        )
    with pytest.raises(InputError, match="could not be parsed"):
        read_star(
            _write(
                tmp_path, "data_\n\nloop_\n_rlnImageName #1\n_rlnAngleRot #2\n1@a.mrcs 1 2 3\n2@a.mrcs\n", "ragged.star"
            )
        )


def test_missing_optics_group_column_with_one_group_is_fine(tmp_path):
    p = _write(
        tmp_path,
        "data_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnImagePixelSize #2\n1 1.5\n\n"
        "data_particles\n\nloop_\n_rlnImageName #1\n1@a.mrcs\n2@a.mrcs\n",
        "one.star",
    )
    particles, _ = read_star(p)
    assert list(particles["rlnImagePixelSize"]) == [1.5, 1.5]


def test_write_then_read_is_lossless(tmp_path, data_dir):
    particles, optics = read_star(data_dir / "relion31.star")
    particles = particles.copy()
    particles["rlnAngleRot"] = particles["rlnAngleRot"] + 1e-9  # needs > 6 decimals
    parts_only = particles.drop(columns=[c for c in optics.columns if c != "rlnOpticsGroup"])
    out = write_star(tmp_path / "out.star", parts_only, optics)
    text = out.read_text()
    assert text.count("# version 30001") == 2 and "data_optics" in text and "data_particles" in text
    back, optics2 = read_star(out)
    for col in particles.columns:
        if particles[col].dtype.kind == "f":
            np.testing.assert_allclose(back[col], particles[col], rtol=1e-14, atol=0)
        else:
            assert list(back[col]) == list(particles[col]), col
    assert list(optics2.columns) == list(optics.columns)


def test_strings_with_spaces_are_quoted(tmp_path):
    import pandas as pd

    parts = pd.DataFrame({"rlnImageName": ["1@a b.mrcs"], "rlnOpticsGroup": [1], "rlnMicrographName": [""]})
    optics = pd.DataFrame({"rlnOpticsGroup": [1], "rlnOpticsGroupName": ["group one"]})
    back, opt = read_star(write_star(tmp_path / "q.star", parts, optics))
    assert back["rlnImageName"].iloc[0] == "1@a b.mrcs"
    assert opt["rlnOpticsGroupName"].iloc[0] == "group one"
