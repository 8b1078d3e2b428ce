"""train-vae learns a latent that separates two states, maps that match each state, resumes exactly
(also after kill -9), trains the same with data-loading workers, and refuses bad input clearly."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from cryoscape.cli.main import main
from cryoscape.imaging.fsc import fsc
from cryoscape.io.legacy_pickle import write_cryodrgn_poses
from cryoscape.io.mrc import read_map

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
CRYOSCAPE = [sys.executable, "-m", "cryoscape.cli.main"]


@pytest.fixture(scope="module")
def trained(two_states):
    run = two_states / "run"
    assert (
        main(["train-vae", str(two_states / "sim/particles.star"), "-o", str(run), "--zdim", "1", "-n", "4", *SMALL])
        == 0
    )
    return run


def test_latent_separates_the_states_and_maps_match_each_truth(two_states, trained):
    labels = np.load(two_states / "sim/labels.npz")["component"]
    z = np.load(trained / "z.npy")
    assert z.shape == (2000, 1) and (np.load(trained / "z_var.npy") > 0).all()
    assert np.array_equal(z, np.load(trained / "z.4.npy"))
    found = KMeans(2, n_init=10, random_state=0).fit_predict(z)
    assert adjusted_rand_score(labels, found) > 0.9
    # a map at each state's mean latent matches that state's truth, and not the other's
    means = np.stack([z[labels == k].mean(axis=0) for k in (0, 1)])
    np.savetxt(two_states / "means.txt", means)
    assert (
        main(["eval-vol", str(trained), "--zfile", str(two_states / "means.txt"), "-o", str(two_states / "maps"), "-q"])
        == 0
    )
    truths = [read_map(p)[0] for p in sorted((two_states / "sim/gt").glob("*.mrc"))]
    for k in (0, 1):
        volume, apix, _ = read_map(two_states / f"maps/vol_{k:03d}.mrc")
        assert apix == pytest.approx(3.0)
        own, other = (fsc(volume, truths[j], apix=3.0).resolution_A(0.5) for j in (k, 1 - k))
        assert own < 14.0 and other > own + 2.0, (k, own, other)
    config = json.loads((trained / "config.json").read_text())
    assert config["kind"] == "vae" and config["model"]["zdim"] == 1 and config["data"]["n_particles"] == 2000
    header = (trained / "log.csv").read_text().splitlines()[0]
    assert header == "epoch,loss,mse,kl,seconds,images_per_s" and (trained / "loss.png").exists()


def test_eval_vol_latent_forms_and_eval_images(two_states, trained):
    out = two_states / "line"
    assert main(["eval-vol", str(trained), "--z-start", "-1", "--z-end", "1", "-n", "3", "-o", str(out), "-q"]) == 0
    assert sorted(p.name for p in out.glob("vol_*.mrc")) == ["vol_000.mrc", "vol_001.mrc", "vol_002.mrc"]
    np.testing.assert_allclose(np.loadtxt(out / "z_values.txt"), [-1, 0, 1])
    assert (
        main(
            [
                "eval-vol",
                str(trained),
                "-z",
                "0.5",
                "-o",
                str(two_states / "one"),
                "--downsample",
                "16",
                "--lowpass",
                "12",
                "-q",
            ]
        )
        == 0
    )
    small, apix, _ = read_map(two_states / "one/vol_000.mrc")
    assert small.shape == (16, 16, 16) and apix == pytest.approx(6.0)
    z = two_states / "z_again.npy"
    assert main(["eval-images", str(trained), str(two_states / "sim/particles.star"), "-o", str(z), "-q"]) == 0
    np.testing.assert_allclose(np.load(z), np.load(trained / "z.npy"), atol=1e-5)


def test_resume_continues_exactly_and_workers_change_nothing(two_states):
    star = str(two_states / "sim/particles.star")
    straight, resumed, workers = (two_states / name for name in ("straight", "resumed", "workers"))
    args = ["--zdim", "2", *SMALL]
    assert main(["train-vae", star, "-o", str(straight), "-n", "2", *args]) == 0
    assert main(["train-vae", star, "-o", str(resumed), "-n", "1", *args]) == 0
    assert main(["train-vae", star, "-o", str(resumed), "-n", "2", "--load", "latest", *args]) == 0
    assert main(["train-vae", star, "-o", str(workers), "-n", "1", "--workers", "2", *args]) == 0
    a, b = (torch.load(run / "weights.2.pt", weights_only=True)["model"] for run in (straight, resumed))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    np.testing.assert_allclose(np.load(straight / "z.npy"), np.load(resumed / "z.npy"), atol=1e-5)
    c, d = (torch.load(run / "weights.1.pt", weights_only=True)["model"] for run in (resumed, workers))
    assert all(torch.equal(c[k], d[k]) for k in c)


def test_bf16_autocast_trains_like_float32(two_states, trained):
    run = two_states / "amp"
    assert (
        main(
            [
                "train-vae",
                str(two_states / "sim/particles.star"),
                "-o",
                str(run),
                "--zdim",
                "1",
                "-n",
                "4",
                "--amp",
                *SMALL,
            ]
        )
        == 0
    )
    loss32, loss16 = (float((r / "log.csv").read_text().splitlines()[-1].split(",")[2]) for r in (trained, run))
    assert loss16 == pytest.approx(loss32, rel=0.03)
    labels = np.load(two_states / "sim/labels.npz")["component"]
    assert adjusted_rand_score(labels, KMeans(2, n_init=10, random_state=0).fit_predict(np.load(run / "z.npy"))) > 0.9


def test_kill_9_then_load_latest_continues_from_the_last_complete_epoch(two_states):
    run = two_states / "killed"
    cmd = [*CRYOSCAPE, "train-vae", str(two_states / "sim/particles.star"), "-o", str(run), "--zdim", "1", *SMALL]
    process = subprocess.Popen([*cmd, "-n", "50"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not (run / "weights.1.pt").exists() and time.time() < deadline and process.poll() is None:
            time.sleep(0.2)
        time.sleep(1.0)  # into the next epoch
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    done = sorted(int(p.name.split(".")[1]) for p in run.glob("weights.*.pt"))
    assert done and done[-1] < 50 and not list(run.glob("*.tmp"))
    last = done[-1]
    assert subprocess.run([*cmd, "-n", str(last + 1), "--load", "latest"]).returncode == 0
    rows = [line.split(",") for line in (run / "log.csv").read_text().splitlines()[1:]]
    assert [int(r[0]) for r in rows] == list(range(1, last + 2))
    assert np.load(run / "z.npy").shape == (2000, 1)


def test_two_gloo_processes_match_one_process(two_states, trained):
    """torchrun with 2 CPU processes (gloo): the ranks share each batch of 16; the result follows the
    one-process run within noise (the reparameterization noise differs)."""
    run = two_states / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
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
            "--zdim",
            "1",
            "-n",
            "4",
            *SMALL,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    one, two = ([float(r.split(",")[2]) for r in (p / "log.csv").read_text().splitlines()[1:]] for p in (trained, run))
    assert two[-1] == pytest.approx(one[-1], rel=0.03), (one, two)
    labels = np.load(two_states / "sim/labels.npz")["component"]
    z = np.load(run / "z.npy")
    assert z.shape == (2000, 1)
    assert adjusted_rand_score(labels, KMeans(2, n_init=10, random_state=0).fit_predict(z)) > 0.9


def test_bad_input_gives_one_line_errors(two_states, trained, capsys):
    star = str(two_states / "sim/particles.star")
    empty = two_states / "empty.txt"
    empty.write_text("")
    few_poses = two_states / "few_poses.pkl"
    write_cryodrgn_poses(few_poses, np.tile(np.eye(3), (10, 1, 1)), np.zeros((10, 2)))
    cases = [
        (["train-vae", star, "-o", str(two_states / "z0"), "--zdim", "0", *SMALL], "at least 1"),
        (["train-vae", star, "-o", str(trained), "--zdim", "1", *SMALL], "--load latest"),
        (["train-vae", star, "-o", str(two_states / "e"), "--zdim", "1", "--ind", str(empty), *SMALL], "is empty"),
        (["train-vae", star, "-o", str(two_states / "p"), "--zdim", "1", "--poses", str(few_poses), *SMALL], "10"),
        (["eval-vol", str(trained), "-o", str(two_states / "x")], "needs exactly one of"),
        (["eval-vol", str(trained), "-z", "1", "2", "-o", str(two_states / "x")], "latent dimension is 1"),
        (["eval-images", str(trained), star, "-o", str(trained / "z.npy")], "exists"),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)
    # a checkpoint of another model shape
    copy = two_states / "reshaped"
    copy.mkdir()
    for name in ("weights.4.pt", "z.npy"):
        (copy / name).write_bytes((trained / name).read_bytes())
    config = json.loads((trained / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "model": {**config["model"], "zdim": 3}}))
    assert main(["eval-vol", str(copy), "-z", "0", "0", "0", "-o", str(two_states / "x")]) == 1
    assert "does not fit" in capsys.readouterr().err
    assert main(["train-vae", star, "-o", str(copy), "--zdim", "3", "-n", "5", "--load", "latest", *SMALL]) == 1
    assert "does not fit" in capsys.readouterr().err
    assert not Path(two_states / "x").exists()
