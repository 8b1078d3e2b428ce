"""Simulated particle datasets with ground truth.

Per particle: pick a component (by ``component_weights``) and one of its conformations (by
``conformation_weights``, uniform by default), draw a uniformly random rotation, an in-plane shift
uniform in [−max_shift, max_shift]² px, a defocus uniform in [defocus_min, defocus_max] with
astigmatism dfU − dfV uniform in [0, 2·astigmatism] around it at a uniform angle; render
image = CTF · shift · projection (see :mod:`cryoscape.imaging.forward`; RELION contrast, white
particles), then add white Gaussian noise.

SNR definition: SNR = (variance of the noise-free images) / (noise variance), where the signal
variance is taken over all pixels of the whole D×D images (CTF applied, junk excluded) of the
first batch of particles (up to ``batch_size``), so that σ_noise is fixed before images are written.
This is the whole-image definition used by cryoDRGN's simulations; the SNR within the particle's
own footprint is higher by roughly the ratio of box area to particle area.

Junk particles (``junk_fraction``): ``noise`` (no signal, only noise) or ``blobs`` (a projection of
random Gaussian blobs with the same signal variance, CTF applied). They get component −1.
Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from cryoscape.data.particle_io import save_star
from cryoscape.data.particles import CTFParams, ParticleTable
from cryoscape.errors import InputError
from cryoscape.imaging.forward import apply_ctf_and_shift, prepare_volume, project
from cryoscape.imaging.rotations import random_rotations
from cryoscape.io.mrc import write_map
from cryoscape.io.mrc_writer import StackWriter
from cryoscape.io.paths import check_output
from cryoscape.io.staging import staged_file
from cryoscape.progress import Progress
from cryoscape.simulate.conformations import Component

log = logging.getLogger("cryoscape")


@dataclass
class SimulationConfig:
    """Parameters of a simulation (units in the names)."""

    n_particles: int = 1000
    D: int = 64
    apix: float = 1.5
    seed: int = 0
    snr: float | None = 0.1
    max_shift_px: float = 0.0
    defocus_min_A: float = 10000.0
    defocus_max_A: float = 25000.0
    astigmatism_A: float = 0.0
    voltage_kV: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.1
    ctf_bfactor_A2: float = 0.0
    use_ctf: bool = True
    junk_fraction: float = 0.0
    junk_kind: str = "noise"
    oversample: int = 2
    batch_size: int = 500

    def validate(self) -> None:
        if self.D < 8 or self.D % 2:
            raise InputError(f"box size must be even and at least 8, got {self.D}")
        if self.n_particles < 1:
            raise InputError("the number of particles must be at least 1")
        if self.batch_size < 1:
            raise InputError(f"the batch size must be at least 1, got {self.batch_size}")
        if self.apix <= 0:
            raise InputError("pixel size must be positive")
        if self.snr is not None and self.snr <= 0:
            raise InputError("SNR must be positive (omit it for noise-free images)")
        if not 0 <= self.junk_fraction < 1:
            raise InputError("junk fraction must be in [0, 1)")
        if self.junk_kind not in ("noise", "blobs"):
            raise InputError(f"junk kind must be 'noise' or 'blobs', got {self.junk_kind!r}")
        if self.defocus_min_A > self.defocus_max_A or self.defocus_min_A <= 0:
            raise InputError("defocus range must be positive with min ≤ max")


@dataclass
class Assignments:
    """Ground-truth labels per particle: component (−1 for junk) and conformation index (−1 for junk)."""

    component: np.ndarray
    conformation: np.ndarray

    @property
    def is_junk(self) -> np.ndarray:
        return self.component < 0


def draw_assignments(
    components: list[Component],
    n: int,
    rng: np.random.Generator,
    junk_fraction: float = 0.0,
    component_weights=None,
    conformation_weights=None,
) -> Assignments:
    """Random component and conformation of each particle (see module docstring)."""
    k = len(components)
    cw = np.ones(k) if component_weights is None else np.asarray(component_weights, dtype=np.float64)
    if len(cw) != k or np.any(cw < 0) or cw.sum() <= 0:
        raise InputError(f"need {k} non-negative component weights, got {list(cw)}")
    component = rng.choice(k, size=n, p=cw / cw.sum())
    conformation = np.zeros(n, dtype=np.int64)
    for c, comp in enumerate(components):
        m = len(comp.volumes)
        w = np.ones(m) if conformation_weights is None or k > 1 else np.asarray(conformation_weights, dtype=np.float64)
        if len(w) != m or np.any(w < 0) or w.sum() <= 0:
            raise InputError(f"need {m} non-negative conformation weights for {comp.name}, got {len(w)}")
        sel = component == c
        conformation[sel] = rng.choice(m, size=int(sel.sum()), p=w / w.sum())
    junk = rng.random(n) < junk_fraction
    component[junk], conformation[junk] = -1, -1
    return Assignments(component.astype(np.int64), conformation)


def draw_ctf(config: SimulationConfig, n: int, rng: np.random.Generator) -> CTFParams:
    defocus = rng.uniform(config.defocus_min_A, config.defocus_max_A, n)
    astig = rng.uniform(0, config.astigmatism_A, n)
    return CTFParams(
        defocus_u_A=defocus + astig,
        defocus_v_A=defocus - astig,
        astig_angle_deg=rng.uniform(0, 180, n),
        voltage_kV=np.full(n, config.voltage_kV),
        cs_mm=np.full(n, config.cs_mm),
        amplitude_contrast=np.full(n, config.amplitude_contrast),
        phase_shift_deg=np.zeros(n),
        bfactor_A2=np.full(n, config.ctf_bfactor_A2),
    )


def _blob_projections(n: int, D: int, rng: np.random.Generator) -> torch.Tensor:
    """Projections of random clusters of 3–8 Gaussian blobs (junk), (n, D, D)."""
    y, x = np.mgrid[:D, :D] - D // 2
    out = np.zeros((n, D, D), dtype=np.float32)
    for i in range(n):
        for _ in range(rng.integers(3, 9)):
            cx, cy = rng.uniform(-D / 5, D / 5, 2)
            sigma = rng.uniform(D / 40, D / 12)
            out[i] += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)).astype(np.float32)
    return torch.from_numpy(out)


class _Renderer:
    """Noise-free images for a batch of particles of known assignment."""

    def __init__(self, components: list[Component], config: SimulationConfig):
        self.config = config
        self.prepared = [
            [prepare_volume(torch.from_numpy(v), config.oversample) for v in comp.volumes] for comp in components
        ]

    def clean(
        self,
        index: np.ndarray,
        labels: Assignments,
        rotations: np.ndarray,
        shifts_px: np.ndarray,
        ctf: CTFParams,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        cfg, D = self.config, self.config.D
        proj = torch.zeros((len(index), D, D))
        for c, per_conf in enumerate(self.prepared):
            for j, prep in enumerate(per_conf):
                sel = np.nonzero((labels.component[index] == c) & (labels.conformation[index] == j))[0]
                if len(sel):
                    proj[sel] = project(prep, torch.from_numpy(rotations[index[sel]]).float())
        junk = np.nonzero(labels.component[index] < 0)[0]
        if len(junk) and cfg.junk_kind == "blobs":
            blobs = _blob_projections(len(junk), D, rng)
            real = proj[labels.component[index] >= 0]
            scale = real.std() / blobs.std() if len(real) else 1.0
            proj[junk] = blobs * scale
        ctf_images = ctf.select(index).images(D, cfg.apix) if cfg.use_ctf else None
        return apply_ctf_and_shift(proj, torch.from_numpy(shifts_px[index]).float(), ctf_images)


def simulate_dataset(
    components: list[Component],
    config: SimulationConfig,
    out_dir: str | Path,
    force: bool = False,
    component_weights=None,
    conformation_weights=None,
    progress: bool = True,
) -> ParticleTable:
    """Write ``particles.mrcs``, ``particles.star``, ``labels.npz``, ``gt/<component>_<k>.mrc`` and
    ``simulation.json`` into ``out_dir``; return the particle table (true poses and CTF)."""
    config.validate()
    if not components:
        raise InputError("nothing to simulate: give at least one map or atomic model")
    out_dir = Path(out_dir)
    stack_path, star_path = out_dir / "particles.mrcs", out_dir / "particles.star"
    gt_names = [
        f"{c:02d}_{comp.name}.mrc" if len(comp.volumes) == 1 else f"{c:02d}_{comp.name}_{j:03d}.mrc"
        for c, comp in enumerate(components)
        for j in range(len(comp.volumes))
    ]
    gt_dir = out_dir / "gt"
    for p in (
        stack_path,
        star_path,
        out_dir / "labels.npz",
        out_dir / "simulation.json",
        *(gt_dir / g for g in gt_names),
    ):
        check_output(p, force)  # before anything is computed or written
    n, D = config.n_particles, config.D
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    labels = draw_assignments(components, n, rng, config.junk_fraction, component_weights, conformation_weights)
    rotations = random_rotations(n, generator=generator, dtype=torch.float64).numpy()
    shifts_px = rng.uniform(-config.max_shift_px, config.max_shift_px, (n, 2))
    ctf = draw_ctf(config, n, rng)
    renderer = _Renderer(components, config)
    noise_sigma = None
    with (
        StackWriter(stack_path, n, D, config.apix, force=force) as writer,
        Progress(n, "simulate", "images", progress) as bar,
    ):
        for start in range(0, n, config.batch_size):
            index = np.arange(start, min(start + config.batch_size, n))
            images = renderer.clean(index, labels, rotations, shifts_px, ctf, rng)
            if config.snr is not None:
                if noise_sigma is None:
                    real = images[torch.from_numpy(labels.component[index] >= 0)]
                    if len(real) == 0:
                        raise InputError("the first batch holds only junk: lower the junk fraction")
                    noise_sigma = float(real.var() / config.snr) ** 0.5
                noise = torch.randn(images.shape, generator=generator, dtype=torch.float64).float()
                images = images + noise_sigma * noise
            writer.write(start, images.numpy())
            bar.update(len(index))
    log.info("wrote %s (%d images of %d×%d px, %.3f Å/px)", stack_path, n, D, D, config.apix)

    table = ParticleTable(
        image_paths=np.array([str(stack_path.resolve())] * n),
        image_indices=np.arange(n),
        box_size=D,
        apix=np.full(n, config.apix),
        rotations=rotations,
        shifts_A=shifts_px * config.apix,
        ctf=ctf,
    )
    save_star(star_path, table, force=force)
    log.info("wrote %s (true poses and CTF)", star_path)
    volumes = [vol for comp in components for vol in comp.volumes]
    for name, vol in zip(gt_names, volumes):
        write_map(gt_dir / name, vol, config.apix, force=force)
    gt_paths = [f"gt/{name}" for name in gt_names]
    log.info("wrote %d ground-truth map(s) in %s", len(gt_paths), gt_dir)
    with staged_file(out_dir / "labels.npz", force) as staged:
        np.savez(
            staged,
            component=labels.component,
            conformation=labels.conformation,
            is_junk=labels.is_junk,
            rotations=rotations,
            shifts_px=shifts_px,
        )
    summary = {
        "config": asdict(config),
        "noise_sigma": noise_sigma,
        "components": [{"name": c.name, "source": c.source, "n_conformations": len(c.volumes)} for c in components],
        "ground_truth_maps": gt_paths,
        "counts": {str(c): int(np.sum(labels.component == c)) for c in range(-1, len(components))},
    }
    with staged_file(out_dir / "simulation.json", force) as staged:
        staged.write_text(json.dumps(summary, indent=2))
    log.info("wrote %s and %s", out_dir / "labels.npz", out_dir / "simulation.json")
    return table
