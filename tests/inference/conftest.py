"""Datasets shared by the training tests."""

import pytest

from cryoscape.cli.main import main


@pytest.fixture(scope="module")
def two_states(tmp_path_factory):
    """adk closed and open (two components), D=32, 3 Å/px, SNR 1, 2000 particles."""
    out = tmp_path_factory.mktemp("vae")
    assert (
        main(
            [
                "simulate",
                "adk_closed",
                "adk_open",
                "-o",
                str(out / "sim"),
                "-n",
                "2000",
                "--box",
                "32",
                "--apix",
                "3.0",
                "--max-shift",
                "2",
                "--snr",
                "1",
                "--seed",
                "1",
                "-q",
            ]
        )
        == 0
    )
    return out
