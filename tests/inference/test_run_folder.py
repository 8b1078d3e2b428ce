"""A run folder belongs to one training at a time, and a run that fails before its first epoch leaves
nothing in the way of the same command run again (issue 11, items 12 and 14)."""

import json

import pytest

from cryoscape.cli.main import main
from cryoscape.inference.run_lock import run_lock

NET = ["--dec-dim", "16", "--dec-layers", "1", "--no-amp", "-b", "8", "-n", "1"]


@pytest.fixture(scope="module")
def star(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", "adk_open", "-o", str(out), "-n", "32", "--box", "32", "--apix", "3", "-q"]) == 0
    return str(out / "particles.star")


def test_a_failed_start_leaves_nothing_and_a_rerun_works(star, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train-nn", star, "-o", str(run), *NET, "--max-freq", "2", "-q"]) == 1
    assert "max" in capsys.readouterr().err
    assert not run.exists()  # no run.log or config.json to refuse the rerun
    assert main(["train-nn", star, "-o", str(run), *NET, "-q"]) == 0
    assert (run / "weights.1.pt").exists()


def test_a_run_folder_in_use_is_refused_and_left_alone(star, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train-nn", star, "-o", str(run), *NET, "-q"]) == 0
    before = (run / "config.json").read_text()
    with run_lock(run):  # another training holds the folder
        assert main(["train-nn", star, "-o", str(run), *NET, "--seed", "7", "--force", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "in use by another training" in err[0]
    assert (run / "config.json").read_text() == before and (run / "weights.1.pt").exists()
    assert main(["train-nn", star, "-o", str(run), *NET, "--seed", "7", "--force", "-q"]) == 0  # once it is free
    assert json.loads((run / "config.json").read_text())["training"]["seed"] == 7
