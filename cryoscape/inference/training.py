"""Neural-field training with known poses: homogeneous (cryoDRGN's train_nn) and the heterogeneous
VAE (train_vae), in one or several processes.

Loss per batch, on centred, normalized Hartley images (:mod:`cryoscape.inference.batches`) over the
pixels of :func:`~cryoscape.imaging.grids.fourier_disk_mask` within the decoder's band limit (N_mask):
  mse = mean over images and pixels of (CTF · H[slice] − H[image])²;
  VAE: loss = mse + β · KL / N_mask (KL summed over z, averaged over images; β = 1/zdim by default,
  as cryoDRGN), the encoder reading the phase-flipped image (sign(CTF) · H[image]).
Adam; batches in an order fixed by (seed, epoch); reparameterization noise drawn from a generator
seeded by (seed, epoch, rank): a killed run resumed from its last checkpoint continues exactly as if
it had not stopped. Under torchrun every process takes its share of each batch (DDP averages the
gradients), so N processes follow the one-process run within noise.

Run folder: ``config.json``, ``run.log`` (the log messages), ``weights.N.pt`` (N = 1, 2, ... written atomically), ``log.csv`` and
``loss.png``; VAE runs also ``z.N.npy`` / ``z_var.N.npy`` (latent means and variances (n, zdim) of
every particle, input order, from the encoder after epoch N) and ``z.npy`` / ``z_var.npy`` of the
latest epoch; with pose refinement ``refined_particles.star`` (the input particles with their
corrected poses, RELION 3.1).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from cryoscape.data.images import ImageSource, ParticleBatchSampler, ParticleImageDataset
from cryoscape.data.particle_io import save_star
from cryoscape.data.particles import ParticleTable
from cryoscape.errors import InputError
from cryoscape.imaging.grids import fourier_disk_mask
from cryoscape.imaging.shifts import translate_ht
from cryoscape.inference.batches import ParticleBatch, hartley_scale, make_batch
from cryoscape.inference.checkpoint import available_epochs, load_checkpoint, save_checkpoint
from cryoscape.inference.device import bfloat16_is_fast
from cryoscape.inference.distributed import ProcessGroup, all_reduce_sum, barrier
from cryoscape.models.neural_field import NeuralField
from cryoscape.models.pose_corrections import PoseCorrections
from cryoscape.models.vae import HeterogeneousVAE, kl_divergence

log = logging.getLogger("cryoscape")

KINDS = ("homogeneous", "vae")


@dataclass
class TrainConfig:
    """Settings of a run; written to ``config.json``. ``zdim`` 0 with kind homogeneous.
    ``window``: inner radius (fraction of D/2) of the real-space window applied to the images, 0 for
    none (see :mod:`cryoscape.inference.batches`). ``max_freq``: band limit of the decoder and the loss, a fraction of Nyquist (the field is zero
    beyond it; 1 = radius D/2 − 1, cryoDRGN's). ``refine_poses``: learn per-particle pose corrections from epoch 2 on (the first epoch forms the
    map with the given poses), SparseAdam with step ``pose_lr`` radians for rotations and
    ``pose_lr`` · D/3 pixels for shifts (a rotation by θ moves the particle's edge by about θ·D/3 px).
    ``D``, ``apix`` (Å), ``scale`` (Hartley normalization) and ``n_particles`` are set from the data;
    ``particles`` and ``ind`` are the absolute paths of the particle file and index file (if any) that
    the run was trained on, for the analysis commands."""

    kind: str = "homogeneous"
    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-4
    width: int = 256
    depth: int = 3
    encoding: str = "gaussian"
    zdim: int = 0
    enc_width: int = 256
    enc_depth: int = 3
    beta: float | None = None
    invert: bool = False
    use_ctf: bool = True
    window: float = 0.0
    max_freq: float = 1.0
    refine_poses: bool = False
    pose_lr: float = 3e-3
    amp: bool = False
    num_workers: int = 0
    seed: int = 0
    D: int = 0
    apix: float = 0.0
    scale: float = 1.0
    n_particles: int = 0
    particles: str = ""
    ind: str = ""

    @classmethod
    def from_dict(cls, saved: dict) -> "TrainConfig":
        """The settings of a ``config.json`` (keys this version does not know are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in names})

    @property
    def kl_weight(self) -> float:
        return (1.0 / self.zdim if self.beta is None else self.beta) if self.kind == "vae" else 0.0


def build_model(config: dict) -> torch.nn.Module:
    """The untrained model a config describes."""
    if config["kind"] == "vae":
        return HeterogeneousVAE(config["D"], config["zdim"], config["enc_width"], config["enc_depth"], config["width"],
                                config["depth"], config["encoding"], seed=config["seed"],
                                max_freq=config.get("max_freq", 1.0))
    return NeuralField(config["D"], 0, config["width"], config["depth"], config["encoding"], seed=config["seed"],
                       max_freq=config.get("max_freq", 1.0))


def decoder_of(model: torch.nn.Module) -> NeuralField:
    return model.decoder if isinstance(model, HeterogeneousVAE) else model


def _check(table: ParticleTable, config: TrainConfig) -> None:
    if config.kind not in KINDS:
        raise InputError(f"unknown model kind {config.kind!r}")
    if len(table) == 0:
        raise InputError("no particles to train on")
    if table.rotations is None:
        raise InputError("training with known poses needs poses: the particle file has none (pass --poses)")
    if config.use_ctf and table.ctf is None:
        raise InputError("the particle file has no CTF parameters; pass --ctf, or --no-ctf for CTF-free data")
    if config.epochs < 1 or config.batch_size < 1:
        raise InputError("epochs and batch size must be at least 1")
    if config.kind == "vae" and config.zdim < 1:
        raise InputError(f"the latent dimension (--zdim) must be at least 1, got {config.zdim}")
    if config.num_workers < 0:
        raise InputError(f"number of data-loading workers must be >= 0, got {config.num_workers}")
    if config.window and not 0 < config.window < 0.99:
        raise InputError(f"the window's inner radius (--window-r) must be in (0, 0.99) of the box radius, got {config.window}")
    if config.refine_poses and not config.pose_lr > 0:
        raise InputError(f"the pose learning rate must be positive, got {config.pose_lr}")


def _write_log(run: Path, rows: list[dict]) -> None:
    keys = ["epoch", "loss", "mse", "kl", "seconds", "images_per_s"]
    lines = [",".join(keys)] + [",".join(f"{r[k]:.6g}" if isinstance(r[k], float) else str(r[k]) for k in keys)
                                for r in rows]
    (run / "log.csv").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    vae = any(r["kl"] > 0 for r in rows)
    fig, axes = plt.subplots(1, 2 if vae else 1, figsize=(9 if vae else 5, 3.5), dpi=110, squeeze=False)
    ax = axes[0, 0]
    ax.plot(epochs, [r["mse"] for r in rows], marker="o", label="reconstruction (MSE)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean squared error, normalized units")
    ax.grid(alpha=0.3)
    if vae:
        axes[0, 1].plot(epochs, [r["kl"] for r in rows], marker="o", color="C1")
        axes[0, 1].set_xlabel("epoch")
        axes[0, 1].set_ylabel("KL divergence per image (nats)")
        axes[0, 1].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(run / "loss.png")
    plt.close(fig)


def _autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast (no loss scaling needed) on CUDA or CPU when ``enabled``."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def _step_losses(model, batch: ParticleBatch, mask: torch.Tensor, config: TrainConfig,
                 generator: torch.Generator | None, device: torch.device,
                 poses: PoseCorrections | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, mse, kl) of one batch; ``model`` may be DDP-wrapped; ``poses`` corrects the batch's poses."""
    rotations, images_ht = batch.rotations, batch.images_ht
    if poses is not None:
        delta_rotation, delta_shift = poses(batch.index.to(device))
        rotations, images_ht = delta_rotation @ rotations, translate_ht(images_ht, delta_shift)
    with _autocast(device, config.amp):
        if config.kind == "vae":
            encoder_input = images_ht if batch.ctf is None else images_ht * torch.sign(batch.ctf)
            noise = torch.randn(len(batch.index), config.zdim, generator=generator, device=device)
            slices, mu, logvar = model(encoder_input, rotations, noise)
            kl = kl_divergence(mu.float(), logvar.float())
        else:
            slices = model(rotations)
            kl = torch.zeros((), device=device)
    slices = slices.float()
    if batch.ctf is not None:
        slices = slices * batch.ctf
    mse = ((slices - images_ht)[:, mask] ** 2).mean()
    return mse + config.kl_weight * kl / int(mask.sum()), mse, kl


@torch.no_grad()
def encode_all(model: HeterogeneousVAE, loader: DataLoader, table: ParticleTable, config: TrainConfig,
               device: torch.device, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Latent means and variances (n, zdim) of every particle (encoder in eval mode), input order."""
    was_training = model.training
    model.eval()
    mu_all = np.zeros((len(table), config.zdim), dtype=np.float32)
    var_all = np.zeros_like(mu_all)
    for images, index in tqdm(loader, desc="encoding", unit="batch", disable=None if progress else True, leave=False):
        index = index.numpy()
        batch = make_batch(images, table, index, config.scale, invert=config.invert, use_ctf=config.use_ctf,
                           window=config.window, device=device)
        encoder_input = batch.images_ht if batch.ctf is None else batch.images_ht * torch.sign(batch.ctf)
        with _autocast(device, config.amp):
            mu, logvar = model.encoder(encoder_input)
        mu_all[index] = mu.float().cpu().numpy()
        var_all[index] = logvar.float().exp().cpu().numpy()
    model.train(was_training)
    return mu_all, var_all


def _loader(source: ImageSource, sampler: ParticleBatchSampler, config: TrainConfig) -> DataLoader:
    return DataLoader(ParticleImageDataset(source), sampler=sampler, batch_size=None, num_workers=config.num_workers,
                      persistent_workers=config.num_workers > 0)


@dataclass
class _RunState:
    config: TrainConfig
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    poses: PoseCorrections | None
    pose_optimizer: torch.optim.Optimizer | None
    epoch: int
    rows: list


def _optimizers(model: torch.nn.Module, config: TrainConfig, n: int, device: torch.device):
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    if not config.refine_poses:
        return optimizer, None, None
    poses = PoseCorrections(n).to(device)
    pose_optimizer = torch.optim.SparseAdam([{"params": poses.rotation.parameters(), "lr": config.pose_lr},
                                             {"params": poses.shift.parameters(), "lr": config.pose_lr * config.D / 3}])
    return optimizer, poses, pose_optimizer


def _start(table: ParticleTable, source: ImageSource, config: TrainConfig, run: Path, resume: bool,
           device: torch.device, group: ProcessGroup) -> _RunState:
    """The state of a new or resumed run."""
    if resume:
        saved = json.loads((run / "config.json").read_text())
        config = replace(TrainConfig.from_dict(saved), epochs=config.epochs, num_workers=config.num_workers,
                         amp=config.amp)
    if resume and not available_epochs(run):
        log.info("%s holds no complete epoch yet: starting it afresh", run)
        resume = False
    _check(table, config)
    if config.refine_poses and group.world_size > 1:
        raise InputError("pose refinement runs in one process; drop --refine-poses or run without torchrun")
    if resume:
        if config.n_particles and config.n_particles != len(table):
            raise InputError(f"{run} was trained on {config.n_particles} particles, the input has {len(table)}")
        epoch, state = load_checkpoint(run, "latest")
        model = build_model(asdict(config)).to(device)
        optimizer, poses, pose_optimizer = _optimizers(model, config, len(table), device)
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if poses is not None:
                poses.load_state_dict(state["poses"])
                pose_optimizer.load_state_dict(state["pose_optimizer"])
        except (RuntimeError, KeyError, ValueError) as err:
            raise InputError(f"checkpoint of epoch {epoch} in {run} does not fit its config.json: {str(err).splitlines()[0]}") from None
        if group.is_main:
            log.info("resuming %s from epoch %d", run, epoch)
        return _RunState(config, model, optimizer, poses, pose_optimizer, epoch, list(state["log"]))
    config.D, config.apix, config.n_particles = table.box_size, float(np.median(table.apix)), len(table)
    config.scale = hartley_scale(source, table, invert=config.invert, seed=config.seed, window=config.window)
    if group.is_main:
        (run / "config.json").write_text(json.dumps(asdict(config), indent=2))
    torch.manual_seed(config.seed)
    model = build_model(asdict(config)).to(device)
    return _RunState(config, model, *_optimizers(model, config, len(table), device), 0, [])


def refined_table(table: ParticleTable, poses: PoseCorrections) -> ParticleTable:
    """``table`` with the learned pose corrections applied (rotations, shifts in Å)."""
    shifts_px = torch.from_numpy(table.shifts_px if table.shifts_A is not None else np.zeros((len(table), 2)))
    rotations, shifts_px = poses.apply(torch.from_numpy(table.rotations).double(), shifts_px.double())
    apix = np.asarray(table.apix, dtype=np.float64)[:, None]
    return replace(table, rotations=rotations.cpu().numpy(), shifts_A=shifts_px.cpu().numpy() * apix)


def train(source: ImageSource, table: ParticleTable, config: TrainConfig, run: str | Path, *, resume: bool = False,
          device: torch.device | str = "cpu", group: ProcessGroup = ProcessGroup(), progress: bool = True) -> torch.nn.Module:
    """Train the model ``config`` describes; write the run folder (see module docstring). Returns the
    trained model (unwrapped)."""
    run, device = Path(run), torch.device(device)
    if group.is_main:
        run.mkdir(parents=True, exist_ok=True)
    barrier(group)
    with _run_log(run if group.is_main else None):
        return _train(source, table, config, run, resume, device, group, progress)


@contextlib.contextmanager
def _run_log(run: Path | None):
    """Copy the log messages of a training run into RUN/run.log (appended on resume)."""
    if run is None:
        yield
        return
    handler = logging.FileHandler(run / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()


def _train(source: ImageSource, table: ParticleTable, config: TrainConfig, run: Path, resume: bool,
           device: torch.device, group: ProcessGroup, progress: bool) -> torch.nn.Module:
    state = _start(table, source, config, run, resume, device, group)
    config, model = state.config, state.model
    if group.world_size > 1:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    mask = fourier_disk_mask(config.D, device, decoder_of(state.model).radius)
    sampler = ParticleBatchSampler(len(table), config.batch_size, shuffle=True, seed=config.seed * 100_003,
                                   rank=group.rank, world_size=group.world_size)
    loader = _loader(source, sampler, config)
    encode_loader = _loader(source, ParticleBatchSampler(len(table), 256, shuffle=False), config) \
        if config.kind == "vae" and group.is_main else None
    source_note = (f" of {config.particles}" + (f" (rows in {config.ind})" if config.ind else "")) if config.particles else ""
    log.info("%s training of %d particles%s (D=%d, %.3f Å/px) for %d epochs on %s%s", config.kind, len(table),
             source_note, config.D, config.apix, config.epochs, device,
             f" × {group.world_size} processes" if group.world_size > 1 else "")
    for epoch in range(state.epoch + 1, config.epochs + 1):
        sampler.set_epoch(epoch)
        generator = torch.Generator(device=device).manual_seed(config.seed * 1_000_003 + epoch * 101 + group.rank)
        refining = state.poses is not None and epoch > 1
        t0, sums = time.perf_counter(), [0.0, 0.0, 0.0, 0.0]  # loss, mse, kl (image-weighted), images
        bar = tqdm(total=len(table), desc=f"epoch {epoch}/{config.epochs}", unit="img", unit_scale=True,
                   disable=(None if progress else True) if group.is_main else True)
        for images, index in loader:
            batch = make_batch(images, table, index.numpy(), config.scale, invert=config.invert,
                               use_ctf=config.use_ctf, window=config.window, device=device)
            loss, mse, kl = _step_losses(model, batch, mask, config, generator, device,
                                         state.poses if refining else None)
            state.optimizer.zero_grad(set_to_none=True)
            if refining:
                state.pose_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            state.optimizer.step()
            if refining:
                state.pose_optimizer.step()
            b = len(index)
            sums = [sums[0] + loss.item() * b, sums[1] + mse.item() * b, sums[2] + kl.item() * b, sums[3] + b]
            bar.update(b * group.world_size)
            bar.set_postfix(loss=f"{sums[0] / sums[3]:.4g}", refresh=False)
        bar.close()
        loss_sum, mse_sum, kl_sum, seen = all_reduce_sum(sums, device, group)
        seconds = time.perf_counter() - t0
        state.rows.append({"epoch": epoch, "loss": loss_sum / seen, "mse": mse_sum / seen, "kl": kl_sum / seen,
                           "seconds": seconds, "images_per_s": seen / seconds})
        if group.is_main:
            wrote = _end_epoch(run, epoch, state, encode_loader, table, device)
            log.info("epoch %d/%d: loss %.5g (mse %.5g, KL %.3g), %.1f s, %.0f images/s; wrote %s", epoch,
                     config.epochs, state.rows[-1]["loss"], state.rows[-1]["mse"], state.rows[-1]["kl"], seconds,
                     seen / seconds, wrote)
        barrier(group)
    return state.model


def _save_npy(path: Path, values: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, values)
    tmp.replace(path)


def _end_epoch(run: Path, epoch: int, state: _RunState, encode_loader: DataLoader | None, table: ParticleTable,
               device: torch.device) -> str:
    """Write the epoch's latents, refined poses, log and (last, so that it marks the epoch complete)
    checkpoint."""
    written = []
    if state.poses is not None:
        table = refined_table(table, state.poses)
        tmp = run / "refined_particles.tmp.star"
        save_star(tmp, table, force=True)
        tmp.replace(run / "refined_particles.star")
        written.append("refined_particles.star")
    if encode_loader is not None:
        mu, var = encode_all(state.model, encode_loader, table, state.config, device)
        for name, values in ((f"z.{epoch}.npy", mu), (f"z_var.{epoch}.npy", var)):
            _save_npy(run / name, values)
            shutil.copyfile(run / name, run / name.replace(f".{epoch}", ""))
        written.append(f"z.{epoch}.npy")
    _write_log(run, state.rows)
    checkpoint = {"model": state.model.state_dict(), "optimizer": state.optimizer.state_dict(), "epoch": epoch,
                  "log": state.rows}
    if state.poses is not None:
        checkpoint.update(poses=state.poses.state_dict(), pose_optimizer=state.pose_optimizer.state_dict())
    save_checkpoint(run, epoch, checkpoint)
    return ", ".join([f"weights.{epoch}.pt", *written])


def read_run_config(run: Path) -> dict:
    """The settings in ``run/config.json``; InputError if it is not a run folder of a known kind."""
    if not (run / "config.json").exists():
        raise InputError(f"{run} is not a run folder (no config.json)")
    config = json.loads((run / "config.json").read_text())
    if config.get("kind") not in KINDS:
        raise InputError(f"{run}/config.json names no known model kind (got {config.get('kind')!r})")
    return config


def load_model(run: str | Path, epoch: int | str = "latest") -> tuple[torch.nn.Module, dict, int]:
    """(model in eval mode, config, epoch) of a run folder."""
    run = Path(run)
    config = read_run_config(run)
    epoch, state = load_checkpoint(run, epoch)
    try:
        model = build_model(config)
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as err:
        raise InputError(f"checkpoint of epoch {epoch} in {run} does not fit its config.json: {str(err).splitlines()[0]}") from None
    return model.eval(), config, epoch


def generate_volume(model: torch.nn.Module, config: dict, z: torch.Tensor | None = None) -> np.ndarray:
    """(D, D, D) map of latent ``z`` (zdim,) (None for a homogeneous model) in the data's units (the
    training normalization undone), decoded in float32 also for runs trained in bfloat16 (the maps
    that eval-vol writes: on the VAE benchmark, float32 decoding of a bf16-trained run gives 0.0005
    more held-out FSC area than bf16 decoding)."""
    if config["kind"] == "vae" and z is None:
        raise InputError("this run is a VAE: give latent values")
    volume = decoder_of(model).volume(z)
    return (volume * config["scale"]).cpu().numpy().astype(np.float32)


def generate_volumes(model: torch.nn.Module, config: dict, z: np.ndarray, batch: int = 4):
    """Maps (D, D, D) float32 of the latents ``z`` (n, zdim), yielded in order; ``batch`` maps are
    decoded per network pass (faster than one by one; memory grows with it). For the many maps of
    the analysis commands, runs trained with --amp are decoded in bfloat16 where it is native (2.5x
    faster than float32 on such CPUs, for 0.0005 less FSC area than :func:`generate_volume`)."""
    if config["kind"] != "vae":
        raise InputError("only a VAE run (train-vae) generates maps from latent values")
    z = np.asarray(z, dtype=np.float32).reshape(len(z), -1)
    if z.shape[1] != config["zdim"]:
        raise InputError(f"the run's latent dimension is {config['zdim']}, the latents have {z.shape[1]} numbers")
    device = next(model.parameters()).device
    for s in range(0, len(z), batch):
        with _autocast(device, _decode_in_bf16(config, device)):
            maps = decoder_of(model).volumes(torch.from_numpy(z[s:s + batch]).to(device))
        yield from (maps * config["scale"]).cpu().numpy().astype(np.float32)


def _decode_in_bf16(config: dict, device: torch.device) -> bool:
    """Whether :func:`generate_volumes` decodes in bfloat16: for runs trained in bfloat16, where it is native."""
    return bool(config.get("amp", False)) and bfloat16_is_fast(device)
