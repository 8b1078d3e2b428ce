"""abinit-homo's and abinit-het's bad input: one clear line, exit 1, and no RUN folder left behind."""

import numpy as np
import pytest

from cryoscape.cli.main import main
from cryoscape.data.particle_io import save_star
from cryoscape.data.particles import CTFParams, ParticleTable
from cryoscape.io.mrc_writer import write_stack


def _dataset(folder, n, D, ctf=True):
    stack = folder / "p.mrcs"
    write_stack(stack, np.random.default_rng(0).normal(size=(n, D, D)).astype(np.float32), apix=2.0)
    table = ParticleTable(
        image_paths=np.array([str(stack)] * n),
        image_indices=np.arange(n),
        box_size=D,
        apix=np.full(n, 2.0),
        ctf=CTFParams.constant(n) if ctf else None,
    )
    save_star(folder / "p.star", table)
    return folder / "p.star"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("too few", "at least 200 particles"),
        ("odd box", "even box"),
        ("no CTF", "CTF"),
        ("init poses without poses", "has no poses"),
        ("bad symmetry", "symmetry"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_run(tmp_path, capsys, case, message):
    n, D = (50, 16) if case == "too few" else (300, 15 if case == "odd box" else 16)
    star = _dataset(tmp_path, n, D, ctf=case != "no CTF")
    extra = {"init poses without poses": ["--init-poses"], "bad symmetry": ["--symmetry", "C0"]}.get(case, [])
    assert main(["abinit-homo", str(star), "-o", str(tmp_path / "run"), *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.mrcs", "p.star"]


def test_no_ctf_data_are_accepted_with_no_ctf(tmp_path, capsys):
    """--no-ctf passes the CTF check (the run then fails later on purpose: too few particles)."""
    star = _dataset(tmp_path, 50, 16, ctf=False)
    assert main(["abinit-homo", str(star), "-o", str(tmp_path / "run"), "--no-ctf"]) == 1
    assert "at least 200 particles" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"), [(["--rounds", "-1"], "--rounds must be ≥ 0"), (["--clusters", "0"], "--clusters ≥ 1")]
)
def test_abinit_het_rounds_and_clusters_are_checked(tmp_path, capsys, extra, message):
    star = _dataset(tmp_path, 300, 16)
    assert main(["abinit-het", str(star), "-o", str(tmp_path / "run"), "--zdim", "1", *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
