"""The engine's run format and guards, whatever the model kind: config.json written once and read
back (also from cryoscape 0.1.0), --load with changed settings refused, --force starting clean, a
non-finite loss stopping the run before a checkpoint, learning-rate decay resuming exactly, and
float32 per-particle outputs from bfloat16 training."""

import json

import numpy as np
import pytest
import torch

from cryoscape.cli.main import main
from cryoscape.errors import InputError
from cryoscape.inference.run_config import RunConfig, read_run_config
from cryoscape.models.registry import families_of, settings_class

FAST = ["-b", "32", "--device", "cpu", "-q"]
SMALL_NET = ["--dec-dim", "32", "--dec-layers", "1", "--no-amp"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("engine")
    assert (
        main(
            [
                "simulate",
                "adk_open",
                "-o",
                str(out / "sim"),
                "-n",
                "600",
                "--box",
                "24",
                "--apix",
                "4.0",
                "--snr",
                "1",
                "--seed",
                "4",
                "-q",
            ]
        )
        == 0
    )
    return out


def _one_line_error(capsys, argv, message):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    return err[0]


def test_registry_names_the_families():
    assert set(families_of("train-nn")) >= {"neural", "voxel"}
    assert set(families_of("train-vae")) == {"vae"}
    assert settings_class("vae").kind == "vae"
    with pytest.raises(InputError, match="unknown model kind 'nope'.*homogeneous"):
        settings_class("nope")


def test_config_records_the_run_and_old_runs_still_load(small, capsys):
    star, run = str(small / "sim/particles.star"), small / "nn"
    assert main(["train-nn", star, "-o", str(run), "-n", "1", *FAST, *SMALL_NET]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["format"] == 2 and saved["kind"] == "homogeneous" and saved["version"]
    assert saved["command"].startswith("cryoscape train-nn ") and saved["created"]
    assert saved["model"] == {"width": 32, "depth": 1, "encoding": "gaussian", "max_freq": 1.0}
    assert saved["data"]["D"] == 24 and saved["data"]["n_particles"] == 600 and saved["data"]["scale"] > 0
    assert saved["training"]["lr"] == 1e-4 and saved["training"]["batch_size"] == 32
    config = read_run_config(run)
    assert config.zdim == 0 and config.model.width == 32
    # the flat config.json of cryoscape 0.1.0 is converted on reading: eval-vol and --load work
    flat = {"kind": "homogeneous", **saved["model"], **saved["training"], **saved["data"], "zdim": 0}
    (run / "config.json").write_text(json.dumps(flat))
    assert RunConfig.from_json(flat).data == config.data
    assert main(["eval-vol", str(run), "-o", str(small / "old_maps"), "-q"]) == 0
    assert main(["train-nn", star, "-o", str(run), "-n", "2", "--load", "latest", *FAST, *SMALL_NET]) == 0
    assert (run / "weights.2.pt").exists()
    # a newer format is refused by name
    (run / "config.json").write_text(json.dumps({**saved, "format": 99, "version": "9.0"}))
    _one_line_error(capsys, ["eval-vol", str(run), "-o", str(small / "x")], "cryoscape 9.0")


def test_load_refuses_changed_settings_and_force_starts_clean(small, capsys):
    star, run = str(small / "sim/particles.star"), small / "vae"
    vae = ["train-vae", star, "-o", str(run), "--zdim", "2", "--enc-dim", "32", "--enc-layers", "1", *FAST, *SMALL_NET]
    assert main([*vae, "-n", "2"]) == 0
    assert {p.name for p in run.glob("*.npy")} == {
        "z.1.npy",
        "z.2.npy",
        "z.npy",
        "z_var.1.npy",
        "z_var.2.npy",
        "z_var.npy",
    }
    line = _one_line_error(capsys, [*vae, "-n", "3", "--load", "latest", "--lr", "0.01"], "lr 0.0001 (asked: 0.01)")
    assert "config.json" in line
    _one_line_error(capsys, [*vae, "-n", "3", "--load", "latest", "--zdim", "3"], "zdim 2 (asked: 3)")
    # --force: the old run's checkpoints and latents go, so nothing stale is read afterwards
    assert main([*vae, "-n", "1", "--force"]) == 0
    assert sorted(p.name for p in run.glob("weights.*.pt")) == ["weights.1.pt"]
    assert not (run / "z.2.npy").exists() and (run / "z.1.npy").exists()
    assert len((run / "log.csv").read_text().splitlines()) == 2
    # a run of another kind in the same folder leaves no latents behind; run.log starts afresh
    assert main(["train-nn", star, "-o", str(run), "-n", "1", "--force", *FAST, *SMALL_NET]) == 0
    assert not list(run.glob("z*.npy")) and "vae training" not in (run / "run.log").read_text()
    # a folder that holds no run keeps its files, whatever their names
    folder = small / "not_a_run"
    folder.mkdir()
    (folder / "log.csv").write_text("mine\n")
    (folder / "z.npy").write_bytes(b"mine")
    assert main(["train-nn", star, "-o", str(folder), "-n", "1", "--force", *FAST, *SMALL_NET]) == 0
    assert (folder / "z.npy").read_bytes() == b"mine"
    _one_line_error(
        capsys,
        ["train-nn", star, "-o", str(small / "v"), "--model", "voxel", "--dec-dim", "64", *FAST],
        "--dec-dim does not apply to --model voxel",
    )


def test_non_finite_loss_stops_before_a_checkpoint(small, capsys, tmp_path):
    run = tmp_path / "run"
    line = _one_line_error(
        capsys,
        ["train-nn", str(small / "sim/particles.star"), "-o", str(run), "-n", "1", "--lr", "1e30", *FAST, *SMALL_NET],
        "the loss became",
    )
    assert "in epoch 1" in line and "lower --lr" in line
    assert not list(run.glob("weights.*.pt"))


def test_lr_decay_resumes_exactly(small):
    star = str(small / "sim/particles.star")
    common = ["--model", "voxel", "--lr-decay", "0.3", *FAST]
    assert main(["train-nn", star, "-o", str(small / "straight"), "-n", "2", *common]) == 0
    assert main(["train-nn", star, "-o", str(small / "resumed"), "-n", "1", *common]) == 0
    assert main(["train-nn", star, "-o", str(small / "resumed"), "-n", "2", "--load", "latest", *common]) == 0
    a, b = (
        torch.load(small / f"{r}/weights.2.pt", weights_only=True)["model"]["hartley"] for r in ("straight", "resumed")
    )
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    constant = small / "constant"
    assert main(["train-nn", star, "-o", str(constant), "-n", "2", "--model", "voxel", "--lr-decay", "1", *FAST]) == 0
    assert not torch.equal(a, torch.load(constant / "weights.2.pt", weights_only=True)["model"]["hartley"])


def test_bfloat16_training_writes_float32_latents(small):
    run = small / "bf16"
    assert (
        main(
            [
                "train-vae",
                str(small / "sim/particles.star"),
                "-o",
                str(run),
                "--zdim",
                "1",
                "-n",
                "1",
                "--amp",
                "--enc-dim",
                "32",
                "--enc-layers",
                "1",
                "--dec-dim",
                "32",
                "--dec-layers",
                "1",
                *FAST,
            ]
        )
        == 0
    )
    z = np.load(run / "z.npy")
    assert z.dtype == np.float32 and z.shape == (600, 1)
    assert len(np.unique(z)) > 0.95 * len(z)  # bfloat16 would leave a few hundred distinct values


def test_progress_lines_without_a_terminal_and_a_finished_run(small, monkeypatch, caplog):
    """Under nohup or SLURM (stderr not a terminal) an epoch logs progress lines with the rate and the
    time left; resuming a finished run says that it is complete and how to continue it."""
    monkeypatch.setenv("CRYOSCAPE_PROGRESS_SECONDS", "0")
    star, run = str(small / "sim/particles.star"), small / "progress"
    caplog.set_level("INFO", logger="cryoscape")
    assert main(["train-nn", star, "-o", str(run), "-n", "1", "-b", "64", "--device", "cpu", *SMALL_NET]) == 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 1/1: 6")]
    assert lines and all(" images/s, " in line and " left" in line and "loss " in line for line in lines), lines
    assert "images (" in (run / "run.log").read_text()
    caplog.clear()
    assert (
        main(
            ["train-nn", star, "-o", str(run), "-n", "1", "--load", "latest", "-b", "64", "--device", "cpu", *SMALL_NET]
        )
        == 0
    )
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "is complete: it trained 1 epochs" in said and "-n larger than 1" in said and "resuming" not in said


def test_threads_follow_the_usable_cpus(small, tmp_path):
    from cryoscape.threads import cgroup_cpu_quota, configure_threads

    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_quota(v1) == 3.0
    before = torch.get_num_threads()
    try:
        assert "using 1 CPU thread(s): as asked" in configure_threads(1)
        assert torch.get_num_threads() == 1
        note = configure_threads()
        assert "usable CPUs (affinity" in note and torch.get_num_threads() >= 1
        with pytest.raises(InputError):
            configure_threads(0)
    finally:
        torch.set_num_threads(before)
