"""Homogeneous neural reconstruction with known poses (cryoDRGN's train_nn).

A :class:`~cryoscape.models.NeuralField` without latent is fitted to the particles: for each batch,
loss = mean over the slice mask (radius D/2 − 1, origin excluded) of (CTF · H[slice] − H[image])²,
with images centred and normalized by :mod:`cryoscape.inference.batches`. Adam, shuffled batches
whose order depends only on (seed, epoch), a checkpoint after every epoch: a killed run resumed
from its last checkpoint continues exactly as if it had not stopped.

Run folder: ``config.json`` (model, training and data settings), ``weights.N.pt`` (N = 1, 2, ...),
``log.csv`` (epoch, loss, seconds, images/s) and ``loss.png``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from cryoscape.data.images import ImageSource, iterate_batches
from cryoscape.data.particles import ParticleTable
from cryoscape.errors import InputError
from cryoscape.imaging.grids import circular_mask
from cryoscape.inference.batches import hartley_scale, make_batch
from cryoscape.inference.checkpoint import load_checkpoint, save_checkpoint
from cryoscape.models.neural_field import NeuralField

log = logging.getLogger("cryoscape")


@dataclass
class NNConfig:
    """Settings of a homogeneous run (the model part is what :func:`build_model` needs)."""

    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-4
    width: int = 256
    depth: int = 3
    encoding: str = "gaussian"
    invert: bool = False
    use_ctf: bool = True
    seed: int = 0
    D: int = 0
    apix: float = 0.0
    scale: float = 1.0


def build_model(config: dict) -> NeuralField:
    return NeuralField(config["D"], 0, config["width"], config["depth"], config["encoding"], seed=config["seed"])


def loss_mask(D: int, device=None) -> torch.Tensor:
    """(D, D) bool: pixels within radius D/2 − 1 of the origin, the origin excluded."""
    mask = circular_mask(D, D // 2 - 1, device)
    mask[D // 2, D // 2] = False
    return mask


def _check(table: ParticleTable, config: NNConfig) -> None:
    if len(table) == 0:
        raise InputError("no particles to train on")
    if table.rotations is None:
        raise InputError("training with known poses needs poses: the particle file has none (pass --poses)")
    if config.use_ctf and table.ctf is None:
        raise InputError("the particle file has no CTF parameters; pass --ctf, or --no-ctf for CTF-free data")
    if config.epochs < 1 or config.batch_size < 1:
        raise InputError("epochs and batch size must be at least 1")


def _write_log(run: Path, rows: list[dict]) -> None:
    lines = ["epoch,loss,seconds,images_per_s"] + [f"{r['epoch']},{r['loss']:.6g},{r['seconds']:.2f},{r['images_per_s']:.1f}" for r in rows]
    (run / "log.csv").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=110)
    ax.plot([r["epoch"] for r in rows], [r["loss"] for r in rows], marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean squared error, normalized units)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(run / "loss.png")
    plt.close(fig)


def train_nn(source: ImageSource, table: ParticleTable, config: NNConfig, run: str | Path, *, resume: bool = False,
             device: torch.device | str = "cpu", progress: bool = True) -> NeuralField:
    """Fit a homogeneous neural field; write the run folder (see module docstring)."""
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    if resume:
        saved = json.loads((run / "config.json").read_text())
        epoch, state = load_checkpoint(run, "latest")
        saved.pop("kind", None)
        config = NNConfig(**{**saved, "epochs": config.epochs})
        _check(table, config)
        model = build_model(asdict(config)).to(device)
        model.load_state_dict(state["model"])
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        optimizer.load_state_dict(state["optimizer"])
        rows = state["log"]
        start = epoch
        log.info("resuming %s from epoch %d", run, epoch)
    else:
        _check(table, config)
        config.D, config.apix = table.box_size, float(np.median(table.apix))
        config.scale = hartley_scale(source, table, invert=config.invert, seed=config.seed)
        (run / "config.json").write_text(json.dumps({**asdict(config), "kind": "homogeneous"}, indent=2))
        torch.manual_seed(config.seed)
        model = build_model(asdict(config)).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        start = 0
    mask = loss_mask(config.D, device)
    n = len(table)
    for epoch in range(start + 1, config.epochs + 1):
        t0, total, seen = time.perf_counter(), 0.0, 0
        batches = list(iterate_batches(n, config.batch_size, shuffle=True, seed=config.seed * 100_003 + epoch))
        bar = tqdm(batches, desc=f"epoch {epoch}/{config.epochs}", unit="batch", disable=None if progress else True)
        for index in bar:
            batch = make_batch(source, table, np.sort(index), config.scale, invert=config.invert,
                               use_ctf=config.use_ctf, device=device)
            model_ht = model.slices(batch.rotations)
            if batch.ctf is not None:
                model_ht = model_ht * batch.ctf
            loss = ((model_ht - batch.images_ht)[:, mask] ** 2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
            seen += len(index)
            bar.set_postfix(loss=f"{total / seen:.4g}", refresh=False)
        seconds = time.perf_counter() - t0
        rows.append({"epoch": epoch, "loss": total / seen, "seconds": seconds, "images_per_s": seen / seconds})
        save_checkpoint(run, epoch, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                     "epoch": epoch, "log": rows})
        _write_log(run, rows)
        log.info("epoch %d/%d: loss %.5g, %.1f s, %.0f images/s; wrote %s", epoch, config.epochs, total / seen,
                 seconds, seen / seconds, run / f"weights.{epoch}.pt")
    return model


def load_model(run: str | Path, epoch: int | str = "latest") -> tuple[NeuralField, dict, int]:
    """(model, config, epoch) of a run folder."""
    run = Path(run)
    if not (run / "config.json").exists():
        raise InputError(f"{run} is not a run folder (no config.json)")
    config = json.loads((run / "config.json").read_text())
    epoch, state = load_checkpoint(run, epoch)
    model = build_model(config)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as err:
        raise InputError(f"checkpoint of epoch {epoch} in {run} does not fit its config.json: {str(err).splitlines()[0]}") from None
    return model.eval(), config, epoch


def generate_volume(model: NeuralField, config: dict, z: torch.Tensor | None = None) -> np.ndarray:
    """(D, D, D) map in the data's units (the training normalization undone)."""
    return (model.volume(z) * config["scale"]).cpu().numpy().astype(np.float32)
