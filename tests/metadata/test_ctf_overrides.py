"""cryoDRGN's CTF options --kv, --cs, -w, --ps (issue 11, item 5): each fills a column the particle
file lacks or replaces the one it has, says which in one INFO line, and a missing column without its
option is one error line naming both. RELION 3.0 stars converted from cryoSPARC often lack
_rlnAmplitudeContrast (and sometimes voltage and Cs)."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
import starfile

from cryoscape.cli.main import command_parser
from cryoscape.cli.main import main as cli
from cryoscape.data.particle_io import CTFOverrides, export_cryodrgn, load_particles
from cryoscape.errors import InputError

READERS = ("backproject", "downsample", "preprocess", "export-cryodrgn", "train-nn", "train-vae", "eval-images")


def strip_star30(work, *columns):
    """relion30.star without ``columns`` (RELION labels without '_'), as work/stripped.star."""
    df = starfile.read(work / "relion30.star")
    starfile.write(df.drop(columns=list(columns)), work / "stripped.star")
    return work / "stripped.star", df


@pytest.mark.parametrize("command", READERS)
def test_every_particle_reader_has_the_options(command, capsys):
    with pytest.raises(SystemExit):
        command_parser(command).parse_args(["--help"])
    text = capsys.readouterr().out
    for option in ("--kv KV", "--cs MM", "-w W", "--ps DEG"):
        assert option in text, (command, option)


def test_export_fills_every_missing_column(work, tmp_path, caplog, capsys):
    star, df = strip_star30(work, "rlnAmplitudeContrast", "rlnVoltage", "rlnSphericalAberration", "rlnPhaseShift")
    ctf = tmp_path / "ctf.pkl"
    # before: refused although -w was given
    assert cli(["export-cryodrgn", str(star), "-D", "16", "-w", "0.1", "--ctf", str(ctf)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no _rlnVoltage or _rlnSphericalAberration: give the voltage with --kv" in err[0]
    args = ["--kv", "200", "--cs", "2.7", "-w", "0.07", "--ps", "30"]
    with caplog.at_level(logging.INFO, logger="cryoscape"):
        assert cli(["export-cryodrgn", str(star), "-D", "16", *args, "--ctf", str(ctf)]) == 0
    for line in (
        "voltage 200 kV (--kv) fills the missing _rlnVoltage",
        "spherical aberration 2.7 mm (--cs) fills the missing _rlnSphericalAberration",
        "amplitude contrast 0.07 (-w) fills the missing _rlnAmplitudeContrast",
        "phase shift 30° (--ps) fills the missing _rlnPhaseShift",
    ):
        assert sum(line in r.getMessage() for r in caplog.records) == 1, line
    with open(ctf, "rb") as f:
        arr = pickle.load(f)
    np.testing.assert_allclose(arr[:, 5:9], np.tile([200.0, 2.7, 0.07, 30.0], (len(df), 1)), rtol=1e-6)
    np.testing.assert_allclose(arr[:, 2], df["rlnDefocusU"], rtol=1e-6)  # the file's own columns kept


def test_an_override_replaces_a_column_and_says_so(data_dir, caplog):
    with caplog.at_level(logging.INFO, logger="cryoscape"):
        table = load_particles(data_dir / "relion31.star", ctf_overrides=CTFOverrides(voltage_kV=120.0))
    np.testing.assert_allclose(table.ctf.voltage_kV, 120.0)
    plain = load_particles(data_dir / "relion31.star")
    np.testing.assert_allclose(table.ctf.cs_mm, plain.ctf.cs_mm)  # only the one given is replaced
    assert "voltage 120 kV (--kv) replaces _rlnVoltage (200-300 kV in the file)" in caplog.text


def test_overrides_apply_to_cs_files_and_ctf_pickles(data_dir, tmp_path, caplog):
    table = load_particles(data_dir / "particles.cs", ctf_overrides=CTFOverrides(amplitude_contrast=0.2))
    np.testing.assert_allclose(table.ctf.amplitude_contrast, 0.2)
    export_cryodrgn(load_particles(data_dir / "relion31.star"), ctf_path=tmp_path / "c.pkl")
    with caplog.at_level(logging.INFO, logger="cryoscape"):
        t = load_particles(data_dir / "relion31.star", ctf=tmp_path / "c.pkl", ctf_overrides=CTFOverrides(cs_mm=0.0))
    np.testing.assert_allclose(t.ctf.cs_mm, 0.0)
    assert "spherical aberration 0 mm (--cs) replaces column 7 (cs_mm)" in caplog.text


def test_missing_column_is_fatal_only_where_the_ctf_is_used(work, caplog):
    star, _ = strip_star30(work, "rlnAmplitudeContrast")
    with pytest.raises(InputError, match=r"has no _rlnAmplitudeContrast: give the amplitude contrast with -w"):
        load_particles(star, require_ctf=True)
    with caplog.at_level(logging.INFO, logger="cryoscape"):
        assert load_particles(star).ctf is None  # e.g. downsample: the CTF is not used
    assert "its CTF is not read" in caplog.text
    t = load_particles(star, require_ctf=True, ctf_overrides=CTFOverrides(amplitude_contrast=0.1))
    np.testing.assert_allclose(t.ctf.amplitude_contrast, 0.1)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("-w", "1.5", "-w must be an amplitude contrast fraction in [0, 1)"), ("--kv", "-300", "--kv must be a positive")],
)
def test_bad_values_are_one_line(data_dir, tmp_path, capsys, option, value, message):
    args = ["export-cryodrgn", str(data_dir / "relion31.star"), option, value, "--ctf", str(tmp_path / "c.pkl")]
    assert cli(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "c.pkl").exists()
