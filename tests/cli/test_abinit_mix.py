"""abinit-mix on a tiny two-species mixture with junk, poses ignored: the classes and junk found,
each class's poses right in its own frame, _rlnClassNumber written; bad input in one line."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from cryoscape.analysis.pose_accuracy import pose_accuracy
from cryoscape.cli.main import main
from cryoscape.data.particle_io import load_particles

MIXTURE = ["-k", "3", "-n", "12", "--anneal-epochs", "8", "-b", "8", "--lr", "2e-3", "--dec-dim", "64"]
MIXTURE += ["--dec-layers", "2", "--pe", "geom_lowf", "--device", "cpu", "--no-amp", "--threads", "2"]
SEARCH = ["--restarts", "1", "--iterations", "40", "--max-shift", "2", "--refine-rounds", "2", "--rounds", "1"]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """adk closed and HIV protease (1hvr) + 10% pure-noise junk, D=24, 3 Å/px, SNR 1, 600 particles."""
    sim = tmp_path_factory.mktemp("abinit_mix") / "sim"
    args = ["simulate", "adk_closed", "1hvr", "-o", str(sim), "-n", "600", "--box", "24", "--apix", "3.0"]
    assert main([*args, "--max-shift", "1", "--snr", "1", "--junk-fraction", "0.1", "--seed", "2", "-q"]) == 0
    return sim


def test_classes_junk_and_poses_in_each_class_frame(simulated, tmp_path):
    run = tmp_path / "run"
    assert main(["abinit-mix", str(simulated / "particles.star"), "-o", str(run), *MIXTURE, *SEARCH, "-q"]) == 0
    truth = np.load(simulated / "labels.npz")["component"]  # -1 for junk
    found = np.load(run / "class.npy")
    assert adjusted_rand_score(truth, found) >= 0.9, adjusted_rand_score(truth, found)  # junk as its own class
    true_poses = load_particles(simulated / "particles.star").rotations
    table = load_particles(run / "particles.star")
    assert np.array_equal(table.metadata["rlnClassNumber"].to_numpy(), found + 1)  # 0 for junk
    for species in (0, 1):  # each species' poses, in the frame of the class that holds most of it
        members = truth == species
        k = np.bincount(found[members][found[members] >= 0]).argmax()
        mine = members & (found == k)
        median = pose_accuracy(table.rotations[mine], true_poses[mine]).median_deg
        assert median < 10.0, (species, median)  # random poses: ~100°
        assert (run / f"round_1/class_{k}/map.mrc").is_file()
    assert (run / "consensus/map.mrc").is_file() and (run / "round_1/searched_particles.star").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--init-poses"], "--init-poses does not apply"), (["--symmetry", "C2"], "searches without symmetry")],
)
def test_bad_options_are_one_line(simulated, tmp_path, capsys, extra, message):
    run = tmp_path / "run"
    assert main(["abinit-mix", str(simulated / "particles.star"), "-o", str(run), "-k", "2", *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert not run.exists()
