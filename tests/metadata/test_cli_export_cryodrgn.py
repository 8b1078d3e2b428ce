"""The `cryoscape export-cryodrgn` command: help, logging, errors as one line."""

from __future__ import annotations

import logging

import pytest

from cryoscape.cli.main import command_parser
from cryoscape.cli.main import main as cli


def test_help_explains_every_option_with_units(capsys):
    with pytest.raises(SystemExit):
        command_parser("export-cryodrgn").parse_args(["--help"])
    text = capsys.readouterr().out
    for option in ("-D BOX", "--apix A", "-w W", "--datadir DIR", "--poses", "--ctf", "--force"):
        assert option in text, option
    for unit in ("pixels", "Å/pixel", "fraction"):
        assert unit in text, unit


def test_logs_what_was_read_and_written(tmp_path, data_dir, caplog):
    with caplog.at_level(logging.INFO, logger="cryoscape"):
        rc = cli(
            [
                "export-cryodrgn",
                str(data_dir / "particles.cs"),
                "--poses",
                str(tmp_path / "p.pkl"),
                "--ctf",
                str(tmp_path / "c.pkl"),
            ]
        )
    assert rc == 0
    assert "read 15 particles" in caplog.text
    assert "wrote 15 poses" in caplog.text and "wrote 15 CTF rows (D=16, 2.5 Å/px)" in caplog.text


def test_errors_are_one_line(tmp_path, data_dir, capsys):
    out = tmp_path / "p.pkl"
    assert cli(["export-cryodrgn", str(data_dir / "relion31.star"), "--poses", str(out)]) == 0
    assert cli(["export-cryodrgn", str(data_dir / "relion31.star"), "--poses", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"cryoscape export-cryodrgn: error: {out} exists; use --force to overwrite it"]
    assert cli(["export-cryodrgn", str(data_dir / "relion31.star"), "--poses", str(out), "--force"]) == 0

    assert cli(["export-cryodrgn", str(tmp_path / "missing.star"), "--poses", str(tmp_path / "q.pkl")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"cryoscape export-cryodrgn: error: particle file {tmp_path / 'missing.star'} does not exist"
    )
    assert cli(["export-cryodrgn", str(data_dir / "relion31.star")]) == 1
    assert "give --poses and/or --ctf" in capsys.readouterr().err


def test_amplitude_contrast_override(tmp_path, data_dir):
    from cryoscape.io.legacy_pickle import read_cryodrgn_ctf

    c = tmp_path / "c.pkl"
    assert cli(["export-cryodrgn", str(data_dir / "relion31.star"), "-w", "0.07", "--ctf", str(c)]) == 0
    assert read_cryodrgn_ctf(c)[:, 7] == pytest.approx(0.07)


def test_star_without_pixel_size_needs_apix(tmp_path, capsys):
    star = tmp_path / "p.star"
    star.write_text(
        "data_\n\nloop_\n_rlnImageName #1\n_rlnAngleRot #2\n_rlnAngleTilt #3\n_rlnAnglePsi #4\n"
        "_rlnOriginX #5\n_rlnOriginY #6\n1@s.mrcs 10 20 30 1.5 -2\n"
    )
    assert cli(["export-cryodrgn", str(star), "-D", "64", "--poses", str(tmp_path / "p.pkl")]) == 1
    assert "gives no pixel size" in capsys.readouterr().err
    assert cli(["export-cryodrgn", str(star), "-D", "64", "--apix", "1.5", "--poses", str(tmp_path / "p.pkl")]) == 0
    from cryoscape.io.legacy_pickle import read_cryodrgn_poses

    _, trans = read_cryodrgn_poses(tmp_path / "p.pkl")
    assert trans[0] == pytest.approx([1.5 / 64, -2 / 64])
