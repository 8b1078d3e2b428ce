"""abinit-het end to end on small data: the consensus poses, then the VAE on them; a run folder that
eval-vol reads, that resumes with --load latest, and whose poses are near the truth."""

import numpy as np
import pytest

from cryoscape.analysis.pose_accuracy import pose_accuracy
from cryoscape.cli.main import main
from cryoscape.data.particle_io import load_particles


def _vae(epochs):
    return ["--zdim", "1", "-n", str(epochs), "--enc-dim", "32", "--dec-dim", "32", "-b", "32", "--threads", "1"]


SMALL = ["--restarts", "2", "--iterations", "60", "--minibatch", "100", "--max-shift", "3", "--refine-rounds", "2"]


@pytest.fixture(scope="module")
def het_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("het")
    args = ["simulate", "adk_dims_closed_to_open", "-o", str(folder / "sim"), "-n", "1000", "--box", "32"]
    assert main([*args, "--apix", "3", "--snr", "1", "--max-shift", "2", "--seed", "13", "-q"]) == 0
    run = folder / "run"
    assert main(["abinit-het", str(folder / "sim/particles.star"), "-o", str(run), *_vae(1), *SMALL, "-q"]) == 0
    return folder, run


def test_the_run_has_poses_near_the_truth_and_a_latent(het_run):
    folder, run = het_run
    truth = load_particles(folder / "sim/particles.star")
    found = load_particles(run / "particles.star")
    median = pose_accuracy(found.rotations, truth.rotations).median_deg
    print(f"abinit-het median rotation error {median:.2f}°")
    assert median < 12.0, median  # (random: ~100°)
    assert np.load(run / "z.npy").shape == (1000, 1)
    assert (run / "consensus/map.mrc").is_file() and (run / "refined_particles.star").is_file()


def test_eval_vol_reads_it_and_it_resumes(het_run, tmp_path):
    folder, run = het_run
    assert main(["eval-vol", str(run), "-z", "0", "-o", str(tmp_path / "maps"), "-q"]) == 0
    assert (tmp_path / "maps/vol_000.mrc").is_file()
    resume = ["abinit-het", str(folder / "sim/particles.star"), "-o", str(run), *_vae(2), *SMALL, "--load", "latest"]
    assert main([*resume, "-q"]) == 0  # one more epoch, from the consensus already there
    assert (run / "weights.2.pt").is_file() and (run / "refined_particles.star").is_file()
