"""abinit-het end to end on small data: the consensus poses, a round of VAE and search by latent
cluster, then the final VAE; a run folder that eval-vol reads, that resumes with --load latest, and
whose poses are near the truth. One epoch of a small VAE does not learn its maps beyond the
consensus, so the round keeps the consensus poses and says so (the rounds' gain on real-sized data
is measured in benchmarks/abinit.md; tests/inference/test_cluster_search.py checks the search)."""

import json
import logging
import os
import subprocess
import sys

import numpy as np

from cryoscape.analysis.pose_accuracy import pose_accuracy
from cryoscape.cli.main import main
from cryoscape.data.particle_io import load_particles


def _vae(epochs):
    return ["--zdim", "1", "-n", str(epochs), "--enc-dim", "32", "--dec-dim", "32", "-b", "32", "--threads", "1"]


SMALL = [
    *("--restarts", "2", "--iterations", "60", "--minibatch", "100", "--max-shift", "3", "--refine-rounds", "2"),
    *("--rounds", "1", "--clusters", "4"),
]


def test_abinit_het_end_to_end(tmp_path, caplog):
    """One test (its run takes a minute): poses near the truth and a latent, then eval-vol reads the
    run and --load latest resumes it."""
    args = ["simulate", "adk_dims_closed_to_open", "-o", str(tmp_path / "sim"), "-n", "1000", "--box", "32"]
    assert main([*args, "--apix", "3", "--snr", "1", "--max-shift", "2", "--seed", "13", "-q"]) == 0
    run, star = tmp_path / "run", str(tmp_path / "sim/particles.star")
    with caplog.at_level(logging.WARNING, logger="cryoscape"):
        assert main(["abinit-het", star, "-o", str(run), *_vae(1), *SMALL, "-q"]) == 0
    assert "the VAE has not learned them, so the poses stay as they were" in caplog.text

    truth = load_particles(tmp_path / "sim/particles.star").rotations
    consensus = pose_accuracy(load_particles(run / "consensus/particles.star").rotations, truth).median_deg
    median = pose_accuracy(load_particles(run / "particles.star").rotations, truth).median_deg
    assert median < 12.0 and abs(median - consensus) < 1e-6, (median, consensus)  # 8.7° measured; random: ~100°
    assert np.load(run / "z.npy").shape == (1000, 1)
    assert (run / "consensus/map.mrc").is_file() and (run / "round_1/searched_particles.star").is_file()

    assert main(["eval-vol", str(run), "-z", "0", "-o", str(tmp_path / "maps"), "-q"]) == 0
    assert (tmp_path / "maps/vol_000.mrc").is_file()
    resume = ["abinit-het", star, "-o", str(run), *_vae(2), *SMALL, "--load", "latest", "-q"]
    assert main(resume) == 0  # one more epoch of the final VAE, from the round already there
    assert (run / "weights.2.pt").is_file() and not (run / "round_1/weights.2.pt").exists()

    more = ["abinit-het", star, "-o", str(run), *_vae(1), *SMALL, "--rounds", "2", "--load", "latest", "-q"]
    assert main(more) == 0  # a round more: the final VAE starts afresh on round 2's poses
    assert json.loads((run / "config.json").read_text())["data"]["particles"].endswith(
        "round_2/searched_particles.star"
    )
    assert (run / "weights.1.pt").is_file() and not (run / "weights.2.pt").exists()


def test_abinit_het_under_torchrun_searches_once(tmp_path):
    """Two gloo processes: the VAEs train in both, the consensus and the search run in the main
    process only (each stage's log line appears once), and the run is complete."""
    args = ["simulate", "adk_dims_closed_to_open", "-o", str(tmp_path / "sim"), "-n", "400", "--box", "32"]
    assert main([*args, "--apix", "3", "--snr", "1", "--max-shift", "2", "--seed", "13", "-q"]) == 0
    run = tmp_path / "run"
    quick = [*("--restarts", "1", "--iterations", "20", "--refine-rounds", "1", "--rounds", "1", "--clusters", "2")]
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "cryoscape.cli.main", "abinit-het", str(tmp_path / "sim/particles.star"), "-o", str(run),
         *_vae(1), *quick],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert output.count("stage stochastic 1") == 1, output[-3000:]  # the consensus ran once
    searches = output.count("cluster maps agree with the consensus") + output.count("searched 400 particles")
    assert searches == 1, output[-3000:]  # the round's search ran once
    assert np.load(run / "z.npy").shape == (400, 1)
    assert load_particles(run / "particles.star").rotations.shape == (400, 3, 3)
