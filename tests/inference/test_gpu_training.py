"""Training on CUDA (run with -m gpu on a GPU machine): the VAE learns the two states with bf16
autocast on the GPU as it does on the CPU, and two NCCL processes (when two GPUs are visible) agree."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from cryoscape.cli.main import main

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
ARGS = [
    "--zdim",
    "1",
    "-n",
    "4",
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
    "-q",
]


def _ari(two_states, run) -> float:
    labels = np.load(two_states / "sim/labels.npz")["component"]
    return adjusted_rand_score(labels, KMeans(2, n_init=10, random_state=0).fit_predict(np.load(run / "z.npy")))


def test_vae_on_cuda_with_bf16_matches_the_cpu(two_states):
    star = str(two_states / "sim/particles.star")
    for device, amp in (("cuda", "--amp"), ("cpu", "--no-amp")):
        assert main(["train-vae", star, "-o", str(two_states / device), "--device", device, amp, *ARGS]) == 0
    gpu, cpu = (float((two_states / d / "log.csv").read_text().splitlines()[-1].split(",")[2]) for d in ("cuda", "cpu"))
    assert gpu == pytest.approx(cpu, rel=0.05)
    assert _ari(two_states, two_states / "cuda") > 0.9


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_two_nccl_processes(two_states):
    run = two_states / "nccl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "cryoscape.cli.main",
            "train-vae",
            str(two_states / "sim/particles.star"),
            "-o",
            str(run),
            "--device",
            "cuda",
            *ARGS,
        ],
        env=dict(os.environ),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert _ari(two_states, run) > 0.9
