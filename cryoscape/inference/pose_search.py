"""Hierarchical pose search over SO(3) × R² (cryoDRGN2's Algorithm 2, the code's way: the base grid
plus ``levels`` refinements), batched, with bounded memory.

For images ``y`` (B, D, D) (centred Hartley, as :func:`cryoscape.inference.batches.make_batch` makes
them), CTFs ``c`` and model slices ``m_R`` the error of pose (R, t), over the pixels of radius < L, is

    err = −⟨translate(y, t), c·m_R⟩ + ½‖c·m_R‖²      (‖y‖² is the same for every pose: dropped)

so that a block of errors for T translations × R rotations is two matrix products. Translations are
applied to the images (in Hartley space, :func:`~cryoscape.imaging.shifts.translate_ht`; ``t`` is
in pixels with the particle table's convention: translating the image by +t centres it), never to
the slices. Level 0 scores every rotation of the Hopf grid at ``base_level`` (4,608 at level 2,
15°) against a T×T translation grid over ±``max_shift_px``; each refinement keeps the ``keep``
best distinct rotations, each with its best translation, and scores their 8 children against a
translation grid of half the spacing and extent around it. The band limit L marches from
``l_start`` to ``l_end`` over the levels.

``render(rotations (N, 3, 3), mask (D, D) bool) -> (N, P)`` gives the model's Hartley slices at the
P pixels of ``mask`` (a homogeneous model, shared by all images; for a map,
:class:`~cryoscape.imaging.hartley_slicer.HartleySlicer`); it is called on blocks of at most
``block`` rotations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from cryoscape.errors import InputError
from cryoscape.imaging.grids import fourier_disk_mask, frequency_grid_2d
from cryoscape.imaging.shifts import flip_frequencies
from cryoscape.imaging.so3_grid import shift_grid, so3_grid_children, so3_grid_rotations, so3_grid_size

Render = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SearchSettings:
    """Grid and band-limit settings (cryoDRGN2's defaults, the translation extent for D = 128)."""

    base_level: int = 2  # Hopf grid level of the exhaustive step: 2 = 4,608 rotations, 15°
    levels: int = 4  # refinement levels after it: 15° / 2⁴ = 0.94°
    keep: int = 8  # rotations kept per image between levels
    n_shifts: int = 7  # translations per axis
    max_shift_px: float = 10.0  # the translation grid covers ±max_shift_px
    l_start: int = 12  # band limit (Fourier pixels) at the base level
    l_end: int = 32  # band limit at the last level
    block: int = 1024  # rotations rendered and scored at a time

    def check(self, D: int) -> None:
        if self.base_level < 0 or self.levels < 0 or self.keep < 1 or self.n_shifts < 1 or self.block < 1:
            raise InputError("pose search needs base level ≥ 0, levels ≥ 0, keep ≥ 1, shifts ≥ 1")
        if not 0 <= self.max_shift_px < D / 2:
            raise InputError(f"the translation search extent must be in [0, {D // 2}) px, got {self.max_shift_px}")
        if not 1 <= self.l_start <= self.l_end:
            raise InputError(f"band limits must satisfy 1 ≤ start ≤ end, got {self.l_start} and {self.l_end}")

    def grid_spacing_deg(self) -> float:
        """Angular spacing of the last level's grid: 60° / 2^(base level + levels)."""
        return 60.0 / 2 ** (self.base_level + self.levels)

    def band_limit(self, level: int, D: int) -> int:
        """L at refinement ``level`` (0 = base): l_start + ⌊level/levels·(l_end − l_start)⌋, at most D/2 − 1."""
        steps = max(self.levels, 1)
        return min(D // 2 - 1, self.l_start + (level * (self.l_end - self.l_start)) // steps)


@dataclass
class SearchResult:
    """The ``final`` best poses per image, best first: ``rotations`` (B, final, 3, 3), ``shifts_px``
    (B, final, 2) (x, y), ``error`` (B, final) at the last level's band limit, ``grid_index``
    (B, final) at level base_level + levels; ``pixels``: the number of pixels the errors sum over."""

    rotations: torch.Tensor
    shifts_px: torch.Tensor
    error: torch.Tensor
    grid_index: torch.Tensor
    pixels: int


def _masked(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return images[..., mask]


class _Pixels:
    """The images' Hartley coefficients at the pixels of ``mask``, and their translations there.

    Translating by t turns H(k) into cos(2πk·t) H(k) + sin(2πk·t) H(−k)
    (:func:`~cryoscape.imaging.shifts.translate_ht`). For t = c + o (a centre plus a grid offset
    shared by all images) the angle sum gives cos(2πk·o) u + sin(2πk·o) v, with u the image
    translated by c and v = cos(2πk·c) H(−k) − sin(2πk·c) H(k): per-offset work is then one matrix
    product, and no (images × offsets × pixels) tensor is formed.
    """

    def __init__(self, y: torch.Tensor, mask: torch.Tensor):
        self.y, self.y_flipped = _masked(y, mask), _masked(flip_frequencies(y), mask)  # (B, P)
        self.k = 2 * math.pi * frequency_grid_2d(y.shape[-1], y.device, torch.float64)[mask]  # (P, 2)

    def phases(self, shifts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin of 2πk·t for shifts (..., 2) pixels: (..., P) each."""
        phase = (shifts.to(torch.float64) @ self.k.T).to(self.y.dtype)
        return torch.cos(phase), torch.sin(phase)

    def centred(self, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(u, v) (B, K, P) for centres (B, K, 2)."""
        cos, sin = self.phases(centres)
        y, yf = self.y[:, None], self.y_flipped[:, None]
        return cos * y + sin * yf, cos * yf - sin * y


def _base_level(render: Render, y: torch.Tensor, c2: torch.Tensor, ctf, mask, s: SearchSettings, dtype, base):
    """Errors of every (base rotation in ``base`` (R,) grid indices, base translation): the ``keep``
    best rotations per image with their best translations: (grid indices (B, keep), shifts (B, keep,
    2), errors (B, keep))."""
    B, device = len(y), y.device
    shifts = shift_grid(s.max_shift_px, s.n_shifts).to(device=device, dtype=dtype)  # (T, 2)
    pixels = _Pixels(y, mask)
    cos, sin = pixels.phases(shifts)  # (T, P)
    c = _masked(ctf, mask) if ctf is not None else 1.0
    cy = cos * (pixels.y * c)[:, None] + sin * (pixels.y_flipped * c)[:, None]  # (B, T, P): c · translated y
    n_rot = len(base)
    best_err = torch.full((B, n_rot), float("inf"), device=device, dtype=dtype)
    best_t = torch.zeros((B, n_rot), dtype=torch.long, device=device)
    for start in range(0, n_rot, s.block):
        index = base[start : start + s.block]
        rotations = so3_grid_rotations(index, s.base_level).to(device=device, dtype=dtype)
        m = render(rotations, mask).to(dtype)  # (R, P)
        err = -torch.einsum("btp,rp->btr", cy, m) + 0.5 * (c2 @ (m * m).T)[:, None, :]  # (B, T, R)
        best_err[:, start : start + len(index)], best_t[:, start : start + len(index)] = err.min(dim=1)
    err, pos = torch.topk(best_err, min(s.keep, n_rot), dim=1, largest=False)
    return base.to(device)[pos], shifts[torch.gather(best_t, 1, pos)], err


def _distinct_best(index: torch.Tensor, err: torch.Tensor, keep: int) -> torch.Tensor:
    """Positions (B, keep) of the lowest errors among candidates (B, C) with distinct grid indices
    (children of neighbouring parents coincide)."""
    order = torch.argsort(err, dim=1, stable=True)
    idx = torch.gather(index, 1, order)
    C = idx.shape[1]
    earlier = torch.ones(C, C, dtype=torch.bool, device=idx.device).tril(diagonal=-1)
    repeat = ((idx[:, :, None] == idx[:, None, :]) & earlier).any(dim=2)  # a better one has this index
    ranked = torch.gather(err, 1, order).masked_fill(repeat, float("inf"))
    _, pos = torch.topk(ranked, min(keep, C), dim=1, largest=False)
    return torch.gather(order, 1, pos)


def _refine(render, y, c2, ctf, mask, rot, centre, level: int, step: float, s: SearchSettings, dtype):
    """Score the 8 children (at ``level`` + 1) of each kept rotation ``rot`` (B, K) against a
    translation grid of spacing ``step`` around each one's translation ``centre`` (B, K, 2)."""
    B, K = rot.shape
    device = y.device
    children = so3_grid_children(rot.reshape(-1).cpu(), level).reshape(B, K, 8).to(device)
    offsets = shift_grid(step * s.n_shifts / 2, s.n_shifts).to(device=device, dtype=dtype)  # (T, 2)
    shifts = centre[:, :, None] + offsets  # (B, K, T, 2)
    pixels = _Pixels(y, mask)
    u, v = pixels.centred(centre)  # (B, K, P)
    cos, sin = pixels.phases(offsets)  # (T, P)
    c = _masked(ctf, mask)[:, None, None] if ctf is not None else 1.0
    slices = []
    flat = so3_grid_rotations(children.reshape(-1).cpu(), level + 1).to(device=device, dtype=dtype)
    for start in range(0, len(flat), s.block):
        slices.append(render(flat[start : start + s.block], mask).to(dtype))
    m = torch.cat(slices).reshape(B, K, 8, -1)  # (B, K, 8, P)
    cm = c * m  # (B, K, 8, P)
    overlap = torch.einsum("tp,bkcp->bktc", cos, u[:, :, None] * cm) + torch.einsum(
        "tp,bkcp->bktc", sin, v[:, :, None] * cm
    )
    err = -overlap + 0.5 * torch.einsum("bp,bkcp->bkc", c2, m * m)[:, :, None]
    err, t = err.min(dim=2)  # (B, K, 8): best translation of each child
    shifts = torch.gather(shifts, 2, t[..., None].expand(B, K, 8, 2))  # (B, K, 8, 2)
    return children.reshape(B, -1), shifts.reshape(B, K * 8, 2), err.reshape(B, -1)


@torch.no_grad()
def search_poses(
    render: Render,
    images_ht: torch.Tensor,
    ctf: torch.Tensor | None,
    settings: SearchSettings = SearchSettings(),
    dtype: torch.dtype = torch.float32,
    final: int = 1,
    base: torch.Tensor | None = None,
) -> SearchResult:
    """The ``final`` best poses (distinct rotations) of each image ``images_ht`` (B, D, D) with CTFs
    ``ctf`` (B, D, D) or None. ``base``: the base-level grid indices to score (default all; a
    symmetric model needs only its asymmetric unit's)."""
    D = images_ht.shape[-1]
    settings.check(D)
    y = images_ht.to(dtype)
    ctf = None if ctf is None else ctf.to(dtype)
    step = 2 * settings.max_shift_px / settings.n_shifts
    level_mask = fourier_disk_mask(D, y.device, settings.band_limit(0, D))

    def power(mask):
        return _masked(ctf * ctf, mask) if ctf is not None else torch.ones(len(y), int(mask.sum()), device=y.device)

    if base is None:
        base = torch.arange(so3_grid_size(settings.base_level))
    rot, centre, err = _base_level(render, y, power(level_mask), ctf, level_mask, settings, dtype, base)
    level = settings.base_level
    for i in range(1, settings.levels + 1):
        step /= 2
        level_mask = fourier_disk_mask(D, y.device, settings.band_limit(i, D))
        index, shifts, err = _refine(
            render, y, power(level_mask), ctf, level_mask, rot, centre, level, step, settings, dtype
        )
        level += 1
        chosen = _distinct_best(index, err, settings.keep if i < settings.levels else final)
        rot = torch.gather(index, 1, chosen)
        centre = torch.gather(shifts, 1, chosen[..., None].expand(*chosen.shape, 2))
        err = torch.gather(err, 1, chosen)
    order = torch.argsort(err, dim=1)[:, :final]
    grid_index = torch.gather(rot, 1, order)
    return SearchResult(
        rotations=so3_grid_rotations(grid_index.cpu(), level).to(device=y.device, dtype=dtype),
        shifts_px=torch.gather(centre, 1, order[..., None].expand(*order.shape, 2)),
        error=torch.gather(err, 1, order),
        grid_index=grid_index,
        pixels=int(level_mask.sum()),
    )
