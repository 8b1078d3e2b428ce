"""A trained VAE on a two-component mixture (adenylate kinase + HIV protease), shared by the tests of
the analysis commands."""

import pytest

from cryoscape.cli.main import main

SMALL = [
    "-b",
    "16",
    "--lr",
    "1e-3",
    "--dec-dim",
    "128",
    "--dec-layers",
    "2",
    "--enc-dim",
    "128",
    "--enc-layers",
    "2",
    "--pe",
    "geom_lowf",
    "--device",
    "cpu",
    "--no-amp",
    "-q",
]


@pytest.fixture(scope="session")
def mixture(tmp_path_factory):
    """adk_open + 1hvr, D=32, 3 Å/px, SNR 1, 1500 particles; a zdim-2 VAE trained 6 epochs (RUN)."""
    out = tmp_path_factory.mktemp("mixture")
    assert (
        main(
            [
                "simulate",
                "adk_open",
                "1hvr",
                "-o",
                str(out / "sim"),
                "-n",
                "1500",
                "--box",
                "32",
                "--apix",
                "3.0",
                "--max-shift",
                "1",
                "--snr",
                "1",
                "--seed",
                "2",
                "-q",
            ]
        )
        == 0
    )
    assert (
        main(["train-vae", str(out / "sim/particles.star"), "-o", str(out / "run"), "--zdim", "2", "-n", "6", *SMALL])
        == 0
    )
    return out


@pytest.fixture(scope="session")
def analysed(mixture):
    """`analyze RUN -o DIR --ksample 2` of the mixture run (with UMAP)."""
    assert (
        main(
            [
                "analyze",
                str(mixture / "run"),
                "-o",
                str(mixture / "analysis"),
                "--ksample",
                "2",
                "--n-per-pc",
                "4",
                "--device",
                "cpu",
                "-q",
            ]
        )
        == 0
    )
    return mixture / "analysis"
