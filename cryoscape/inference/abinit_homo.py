"""Homogeneous ab initio reconstruction: a map and every particle's pose from images alone.

1. **Stochastic stage** (:mod:`cryoscape.inference.abinit_stochastic`), run ``restarts`` times
   from different random starts. Each run is scored by the mean search error per pixel of the same
   ``probe`` held-out images against its map; the lowest wins (the score ranks runs as their
   rotation errors do).
2. **Sign check.** A map whose most negative voxel outweighs its most positive one came from
   inverted data (dark particles on a light background). The data are then negated for the rest of
   the run and a warning says so (cryoDRGN-AI turns such data into a "hollow shell" map).
3. **Global search** of every particle against the winning map
   (:func:`~cryoscape.inference.pose_search.search_poses`, ``search``: by default the 15° Hopf
   grid refined 3 times, to 1.9°).
4. **Global search against the half maps**, ``search_rounds`` times: the gold-standard
   reconstruction at the poses found gives two half maps; each half's particles are searched again
   against their own half map (the first map came from a few thousand particles in the stochastic
   stage; this one from all of them), over the band the half-map FSC supports.
5. **Local refinement**, ``refine_rounds`` times: the gold-standard reconstruction at the current
   poses gives two half maps and their FSC; every particle is refined against its own half's map
   (:func:`~cryoscape.inference.local_search.refine_poses_locally`) over the band the FSC supports
   (frequency marching across rounds), starting at half the grid spacing and going below it.
6. The final gold-standard reconstruction at the refined poses.

With a point group (``symmetry``, RELION's names: C2, D7, ...), only its asymmetric unit of the
rotation grid is searched and every reconstruction inserts each image at its G equivalent poses.

The hand and the map's orientation are undetermined: the result is the truth or its mirror image,
turned by an arbitrary rotation. Each stage adds one row to the log: its band, the mean error per
pixel, the median change of the poses from the previous stage, the half-map FSC resolution.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from cryoscape.data.images import ImageSource
from cryoscape.data.particles import ParticleTable
from cryoscape.errors import InputError
from cryoscape.imaging.filters import lowpass_volume
from cryoscape.imaging.grids import fourier_disk_mask
from cryoscape.imaging.hartley_slicer import HartleySlicer
from cryoscape.imaging.rotations import geodesic_angle_deg
from cryoscape.imaging.symmetry import symmetry_group
from cryoscape.inference.abinit_stochastic import (
    StochasticSettings,
    StochasticStage,
    asymmetric_unit_indices,
)
from cryoscape.inference.backprojection import (
    Reconstruction,
    backproject,
    split_halves,
)
from cryoscape.inference.batches import make_batch
from cryoscape.inference.local_search import refine_poses_locally
from cryoscape.inference.pose_search import SearchSettings, search_poses
from cryoscape.io.staging import staged_file
from cryoscape.progress import Progress

log = logging.getLogger("cryoscape")

Row = dict[str, float | str]


@dataclass(frozen=True)
class AbinitSettings:
    """The whole schedule (see the module docstring); ``seed`` seeds cryoscape's own streams."""

    stage1: StochasticSettings = StochasticSettings()
    restarts: int = 3
    probe: int = 500
    search: SearchSettings = SearchSettings(base_level=2, levels=3, keep=8)
    search_rounds: int = 1
    refine_rounds: int = 6
    refine_steps: int = 6
    batch_size: int = 128
    seed: int = 1
    symmetry: str = "C1"

    def check(self, n: int, D: int) -> None:
        if D % 2:
            raise InputError(f"ab initio needs an even box size, got {D}")
        minimum = max(2 * self.stage1.minibatch, 200)
        if n < minimum:
            raise InputError(f"ab initio needs at least {minimum} particles to search, got {n}")
        if self.restarts < 1 or self.probe < 1 or min(self.search_rounds, self.refine_rounds, self.refine_steps) < 0:
            raise InputError("ab initio needs restarts and probe images ≥ 1, search and refinement rounds ≥ 0")
        symmetry_group(self.symmetry)  # a bad name is one line
        if self.batch_size < 1:
            raise InputError(f"the batch size must be at least 1, got {self.batch_size}")
        self.stage1.check(D)
        self.search.check(D)

    def grid_spacing_deg(self) -> float:
        """Angular spacing of the global search's last level (:meth:`SearchSettings.grid_spacing_deg`)."""
        return self.search.grid_spacing_deg()


@dataclass
class AbinitResult:
    """``table``: the input with the poses found; ``reconstruction`` at those poses; ``rows``: one
    per stage; ``inverted``: the data were (found to be) dark on light and were negated."""

    table: ParticleTable
    reconstruction: Reconstruction
    rows: list[Row] = field(default_factory=list)
    inverted: bool = False


class _Run:
    def __init__(self, source, table: ParticleTable, settings: AbinitSettings, invert: bool, progress: bool):
        self.source, self.s, self.invert, self.progress = source, settings, invert, progress
        self.table = replace(table, rotations=None, shifts_A=None)
        self.rows: list[Row] = []
        self.rotations = np.zeros((len(table), 3, 3))
        self.shifts_px = np.zeros((len(table), 2))
        self.clock = time.perf_counter()
        group = symmetry_group(settings.symmetry)
        self.group = group if len(group) > 1 else None

    def row(self, stage: str, band: int, error: float, **extra: float) -> None:
        now = time.perf_counter()
        row: Row = {"stage": stage, "band_px": band, "error_per_px": error, **extra, "seconds": now - self.clock}
        self.clock = now
        self.rows.append(row)
        log.info("  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))

    def batches(self, index: np.ndarray, desc: str):
        with Progress(len(index), desc, "images", self.progress) as bar:
            for start in range(0, len(index), self.s.batch_size):
                part = index[start : start + self.s.batch_size]
                images = torch.from_numpy(self.source.get(part))
                yield part, make_batch(images, self.table, part, 1.0, invert=self.invert,
                                       use_ctf=self.table.ctf is not None)  # fmt: skip
                bar.update(len(part))

    def search(self, volume: np.ndarray, index: np.ndarray, settings: SearchSettings, desc: str) -> float:
        """Global search of particles ``index`` against ``volume``; stores their poses; the sum of
        their errors per pixel."""
        render = HartleySlicer(torch.from_numpy(volume), oversample=1)
        base = asymmetric_unit_indices(settings.base_level, self.group)
        total = 0.0
        for part, batch in self.batches(index, desc):
            found = search_poses(render, batch.images_ht, batch.ctf, settings, base=base)
            self.rotations[part] = found.rotations[:, 0].double().numpy()
            self.shifts_px[part] = found.shifts_px[:, 0].double().numpy()
            total += float(found.error[:, 0].sum()) / found.pixels
        return total

    def band(self, reconstruction: Reconstruction) -> int:
        """Fourier px the half maps support: the half-map FSC=0.143 radius, within [12, D/2 − 1]."""
        D, fsc = self.table.box_size, reconstruction.half_map_fsc
        return max(12, min(D // 2 - 1, math.ceil(D * reconstruction.apix / fsc.resolution_A(0.143))))

    def search_halves(self, reconstruction: Reconstruction, halves: np.ndarray) -> None:
        """Global search of each half's particles against its own half map, over the band they support."""
        band = self.band(reconstruction)
        settings = replace(self.s.search, l_end=band)
        before_r, before_t = self.rotations.copy(), self.shifts_px.copy()
        total = sum(
            self.search(reconstruction.half_maps[h], np.flatnonzero(halves == h), settings, f"search half {h + 1}")
            for h in (0, 1)
        )
        self.row("global search, half maps", band, total / len(halves), **self.changes(before_r, before_t))

    def stochastic(self) -> np.ndarray:
        s, best, best_score = self.s, np.zeros(0), math.inf
        probe = np.sort(
            np.random.default_rng([s.seed, 7]).choice(len(self.table), min(s.probe, len(self.table)), replace=False)
        )
        probe_search = replace(s.stage1.search, l_end=min(s.stage1.l_end, self.table.box_size // 2 - 1))
        for r in range(s.restarts):
            stage = StochasticStage(self.source, self.table, s.stage1, [s.seed, r, 1], self.invert, self.group)
            stage.start()
            with Progress(s.stage1.iterations, f"ab initio {r + 1}/{s.restarts}", "steps", self.progress) as bar:
                for i in range(s.stage1.iterations):
                    stage.step(i)
                    bar.update(1)
            volume = stage.volume()
            score = self.search(volume, probe, probe_search, "score") / len(probe)
            self.row(f"stochastic {r + 1}", probe_search.l_end, score)
            if score < best_score:
                best, best_score = volume, score
        return best

    def check_sign(self, volume: np.ndarray) -> np.ndarray:
        smooth = lowpass_volume(torch.from_numpy(volume), 1.0, volume.shape[-1] / self.s.stage1.l_start).numpy()
        if -smooth.min() <= smooth.max():
            return volume
        self.invert = not self.invert
        log.warning(
            "the map came out with negative density: the particles look dark on a light background. "
            "They are inverted for the rest of this run, and the poses it writes are for inverted data: "
            "pass --invert to train-vae, backproject and other commands that read them"
        )
        return -volume

    def posed(self, table: ParticleTable) -> ParticleTable:
        """``table`` with the current poses (copies; shifts converted to Å)."""
        return table.with_poses(self.rotations, self.shifts_px)

    def reconstruct(self) -> Reconstruction:
        return backproject(self.source, self.posed(self.table), invert=self.invert, use_ctf=self.table.ctf is not None,
                           seed=self.s.seed, progress=self.progress, symmetry=self.group)  # fmt: skip

    def refine(self, reconstruction: Reconstruction, step_deg: float, step_px: float, halves: np.ndarray) -> None:
        D, band = self.table.box_size, self.band(reconstruction)
        pixels = int(fourier_disk_mask(D, None, band).sum())
        before_r, before_t = self.rotations.copy(), self.shifts_px.copy()
        total = 0.0
        for h in (0, 1):
            render = HartleySlicer(torch.from_numpy(reconstruction.half_maps[h]))
            for part, batch in self.batches(np.flatnonzero(halves == h), f"refine half {h + 1}"):
                R, t, err = refine_poses_locally(
                    render, batch.images_ht, batch.ctf, torch.from_numpy(self.rotations[part]),
                    torch.from_numpy(self.shifts_px[part]), band, step_deg, step_px, self.s.refine_steps,
                )  # fmt: skip
                self.rotations[part], self.shifts_px[part] = R.numpy(), t.numpy()
                total += float(err.sum()) / pixels
        self.row("refine", band, total / len(halves), **self.changes(before_r, before_t))

    def changes(self, rotations: np.ndarray, shifts_px: np.ndarray) -> dict[str, float]:
        return {
            "median_rotation_change_deg": float(np.median(geodesic_angle_deg(self.rotations, rotations))),
            "median_shift_change_px": float(np.median(np.linalg.norm(self.shifts_px - shifts_px, axis=1))),
        }


def write_rows(path: Path, rows: list[Row]) -> None:
    """The stage rows as CSV (a column per key of any row, empty where a row lacks it)."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    lines = [",".join(keys)]
    for row in rows:
        lines.append(",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in (row.get(k, "") for k in keys)))
    with staged_file(path) as staged:
        staged.write_text("\n".join(lines) + "\n")


def abinit_homo(
    source: ImageSource,
    table: ParticleTable,
    settings: AbinitSettings,
    invert: bool = False,
    progress: bool = True,
    init_poses: bool = False,
) -> AbinitResult:
    """Reconstruct ``table``'s particles without poses (their poses ignored; with ``init_poses``,
    steps 1-4 are skipped and the table's poses refined); uses the CTF when the table has one;
    ``invert`` negates the images (dark particles on a light background)."""
    settings.check(len(table), table.box_size)
    run = _Run(source, table, settings, invert, progress)
    if init_poses:
        shifts = table.shifts_px
        if table.rotations is None or shifts is None:
            raise InputError("refining poses needs a particle file with poses")
        run.rotations, run.shifts_px = table.rotations.copy(), shifts
    else:
        volume = run.check_sign(run.stochastic())
        everyone = np.arange(len(table))
        error = run.search(volume, everyone, settings.search, "search") / len(table)
        run.row("global search", settings.search.band_limit(settings.search.levels, table.box_size), error)
    halves = split_halves(table, settings.seed)
    reconstruction = run.reconstruct()
    for _ in range(0 if init_poses else settings.search_rounds):
        run.search_halves(reconstruction, halves)
        reconstruction = run.reconstruct()
    for _ in range(settings.refine_rounds):
        run.refine(reconstruction, settings.grid_spacing_deg() / 2, 0.5, halves)
        reconstruction = run.reconstruct()
    return AbinitResult(run.posed(table), reconstruction, run.rows, run.invert != invert)
