"""Superpose one map on another (rotation, translation and hand), and flip a map's hand.

The hand of an ab initio map is undetermined and its orientation arbitrary: before comparing it
with a reference it must be turned, shifted and perhaps mirrored.

Conventions. Maps are (D, D, D) arrays indexed [z, y, x], D even, voxel size ``apix`` Å; a point
p = (x, y, z) is in Å from the box centre, voxel (D//2, D//2, D//2). A map V is read at p by
trilinear interpolation (zero beyond the box, after the background level, the mean of the box's
outer shell, has been subtracted).

- The mirror through z, J = diag(1, 1, −1) as in :mod:`cryoscape.analysis.pose_accuracy`:
  ``flip_hand(V)`` read at p equals V read at J·p (voxel [z] takes [(2·(D//2) − z) mod D]: exact,
  no interpolation; flipping twice gives V back).
- An alignment (R, t, flipped) of a moving map M onto a reference F is the map
  A(p) = M'(R·p + t), M' = flip_hand(M) if ``flipped`` else M, with R a rotation matrix
  (left-multiplying column vectors (x, y, z)) and t in Å; A ≈ F. In words: the feature of M' at
  R·p + t lands at p. If M' is a reconstruction whose particle poses are R_i' and F the reference
  with poses R_i, then R_i' ≈ R_i·Rᵀ (as ``project(M', P) = project(F, P·R)`` for t = 0).

Method (:func:`align_maps`): both maps, background-subtracted, are low-passed by Fourier cropping.
Every rotation of the SO(3) Hopf grid at level 2 (4,608 rotations, ~15° apart) is scored, for each
hand, by the maximum over translations (up to a quarter box on each axis, circular) of the normalised
FFT cross-correlation on a 20³ box, the peak interpolated by a parabola on each axis. The 8 best
rotations are refined through the grid's children at level 3 (32³ box) and 4 (~4°, 48³); the hand
with the higher correlation there is kept and refined to level 5 (~2°, 64³), then off the grid by
hill-climbing small turns about x, y and z down to ~0.06°. The translation comes from the
interpolated correlation peak on the full box (or the box that ``max_resolution_A`` allows).
Boxes never exceed the map's (or that resolution-limited) box. Measured on two 64³ maps of
adenylate kinase (1.5 Å voxels, random rotation, shift up to 4 voxels, either hand), both hands
tried, 2 CPU cores: ~3 s on a quiet machine (10-20 s at a load of 4-5); rotation errors 0.05-0.4°
and shift errors ≤ 0.03 voxel without noise, 0.4-0.7° and ≤ 0.05 voxel with white noise of the
map's standard deviation added to both maps; the hand was right in every case.

Limitations: a map with (pseudo)symmetry has several equally good rotations and one is returned; a
map that is itself nearly its own mirror image gives no meaningful hand; shifts beyond a quarter of
the box are not searched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cryoscape.errors import InputError
from cryoscape.imaging.fft import downsample_volume
from cryoscape.imaging.rotations import axis_angle_to_matrix
from cryoscape.imaging.so3_grid import so3_grid_children, so3_grid_rotations, so3_grid_size

_COARSE_LEVEL = 2
_HAND_LEVEL = 4  # both hands are refined up to here, the better one on to _FINAL_LEVEL
_FINAL_LEVEL = 5
_BOX = {2: 20, 3: 32, 4: 48, 5: 64}  # working box (at most) at each grid level
_BEAM = 8  # rotations kept per level and hand
_CHUNK = 192  # rotations resampled at once


@dataclass(frozen=True)
class MapAlignment:
    """``aligned`` (D, D, D) float32 = A(p) = M'(R·p + t) (module docstring); ``rotation`` R (3, 3);
    ``shift_A`` t (3,) (x, y, z) in Å; ``flipped``: M' is the mirror image of M; ``correlation``:
    Pearson correlation of ``aligned`` with the reference over the box; ``other_hand_correlation``:
    the same for the other hand at its best grid rotation of level 4 (~4°, not refined further; None
    when it was not tried)."""

    rotation: np.ndarray
    shift_A: np.ndarray
    flipped: bool
    correlation: float
    aligned: np.ndarray
    other_hand_correlation: float | None


def flip_hand(volume: np.ndarray) -> np.ndarray:
    """The mirror image of a map through z about the centre voxel: out[z] = in[(2·(D//2) − z) mod D],
    so that ``flip_hand(V)`` read at p = (x, y, z) equals V read at J·p = (x, y, −z)."""
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise InputError(f"a map must be 3D, got shape {volume.shape}")
    D = volume.shape[0]
    return np.take(volume, (2 * (D // 2) - np.arange(D)) % D, axis=0)


def _background(volume: torch.Tensor) -> float:
    """Mean of the outer two-voxel shell of the box."""
    inner = torch.zeros_like(volume, dtype=torch.bool)
    inner[2:-2, 2:-2, 2:-2] = True
    return float(volume[~inner].mean())


def _rotate(volume: torch.Tensor, R: torch.Tensor, t_vox: torch.Tensor | None = None) -> torch.Tensor:
    """(B, d, d, d): ``volume`` (d, d, d) read at R_b·p + t_b (p, t in voxels of this box, from d//2)."""
    d = volume.shape[-1]
    # grid_sample's normalised coordinate u = i/k - 1, k = (d-1)/2, for index i = p + d/2; hence
    # u' = R·u + ((I - R)·(1, 1, 1)/2 + t)/k.
    k = (d - 1) / 2
    R = R.to(torch.float32)
    offset = (torch.eye(3) - R).sum(-1) / 2
    if t_vox is not None:
        offset = offset + t_vox.to(torch.float32)
    theta = torch.cat([R, offset[..., None] / k], -1)
    grid = F.affine_grid(theta, [R.shape[0], 1, d, d, d], align_corners=True)
    src = volume[None, None].expand(R.shape[0], 1, d, d, d)
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[:, 0]


def transform_map(volume: np.ndarray, rotation: np.ndarray, shift_A: np.ndarray, apix: float) -> np.ndarray:
    """A(p) = V(R·p + t) (R (3, 3), t (3,) Å, trilinear; beyond the box: the box's background level)."""
    v = torch.tensor(np.asarray(volume, dtype=np.float32))
    bg = _background(v)
    R = torch.as_tensor(np.asarray(rotation, dtype=np.float64))[None]
    t = torch.as_tensor(np.asarray(shift_A, dtype=np.float64) / apix)[None]
    return (_rotate(v - bg, R, t)[0] + bg).numpy()


def _prepare(volume: torch.Tensor, d: int) -> torch.Tensor:
    """Background-subtracted map Fourier-cropped to d³."""
    v = volume - _background(volume)
    return v if d == v.shape[-1] else downsample_volume(v, d)


def _cross_correlation(rotated: torch.Tensor, ref_ft: torch.Tensor) -> torch.Tensor:
    """Normalised circular cross-correlation (B, d, d, d) of maps (B, d, d, d) with the reference (its
    :func:`_reference_ft`, zero mean): at shift s (index s mod d, [z, y, x]), Σ_p a(p + s)·b(p) over
    the norms of a − mean(a) and b."""
    d = rotated.shape[-1]
    flat = rotated.flatten(1)
    norm = (flat.square().sum(1) - flat.sum(1).square() / flat.shape[1]).clamp_min(1e-30).sqrt()
    cc = torch.fft.irfftn(torch.fft.rfftn(rotated, dim=(1, 2, 3)) * ref_ft, s=(d, d, d), dim=(1, 2, 3))
    return cc / norm[:, None, None, None]


def _peak(cc: torch.Tensor, max_shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Peak (B,) over shifts |s_i| ≤ max_shift voxels of correlations (B, d, d, d) and its shift s
    (B, 3) (x, y, z) in voxels, both refined off the grid by a parabola through the best value and
    its two neighbours on each axis."""
    d = cc.shape[-1]
    s = torch.fft.fftfreq(d, 1 / d).round().long()
    ok = torch.nonzero(s.abs() <= max_shift)[:, 0]
    allowed = ((ok[:, None, None] * d + ok[None, :, None]) * d + ok[None, None, :]).reshape(-1)
    flat = cc.flatten(1)
    c0, where = flat[:, allowed].max(dim=1)
    i = allowed[where]
    index = torch.stack([i // (d * d), (i // d) % d, i % d], -1)  # [z, y, x]
    best, shift = c0.clone(), s[index.flip(-1)].to(cc.dtype)
    for axis in range(3):
        step = torch.zeros(3, dtype=torch.long)
        step[axis] = 1
        cm, cp = ((flat.gather(1, _flat_index((index + sign * step) % d, d)[:, None])[:, 0]) for sign in (-1, 1))
        curv = cm - 2 * c0 + cp
        offset = torch.where(curv < 0, (0.5 * (cm - cp) / curv.clamp_max(-1e-30)).clamp(-0.5, 0.5), 0.0)
        shift[:, 2 - axis] += offset
        best += torch.where(curv < 0, -0.5 * curv * offset**2, 0.0)  # parabola's top above c0
    return best, shift


def _flat_index(index: torch.Tensor, d: int) -> torch.Tensor:
    return (index[..., 0] * d + index[..., 1]) * d + index[..., 2]


def _reference_ft(reference: torch.Tensor) -> torch.Tensor:
    b = reference - reference.mean()
    return torch.conj(torch.fft.rfftn(b / b.norm().clamp_min(1e-30)))


def _score(volume: torch.Tensor, R: torch.Tensor, ref_ft: torch.Tensor) -> torch.Tensor:
    """(B,) best correlation over translations of ``volume`` turned by each rotation R (B, 3, 3)."""
    d = volume.shape[-1]
    chunks = (_cross_correlation(_rotate(volume, R[i : i + _CHUNK]), ref_ft) for i in range(0, len(R), _CHUNK))
    return torch.cat([_peak(cc, d // 4)[0] for cc in chunks])


def _subvoxel_shift(volume: torch.Tensor, R: torch.Tensor, reference: torch.Tensor) -> np.ndarray:
    """Shift s (x, y, z) in voxels of this box with ``volume`` turned by R read at p + s ≈ reference(p)."""
    cc = _cross_correlation(_rotate(volume, R[None]), _reference_ft(reference))
    return _peak(cc.double(), volume.shape[-1] // 4)[1][0].numpy()


class _Hand:
    """One hand of the moving map, cropped to the working boxes, with its current best rotations."""

    def __init__(self, moving: torch.Tensor, refs: dict[int, torch.Tensor], boxes: dict[int, int]):
        self.moving, self.refs, self.boxes = moving, refs, boxes
        self.crops = {d: _prepare(moving, d) for d in set(boxes.values())}
        self.level = _COARSE_LEVEL
        d = boxes[self.level]
        self.idx = torch.arange(so3_grid_size(self.level))
        self._keep(_score(self.crops[d], so3_grid_rotations(self.idx, self.level), refs[d]))

    def _keep(self, scores: torch.Tensor) -> None:
        keep = torch.argsort(scores, descending=True)[:_BEAM]
        self.idx, self.score = self.idx[keep], float(scores[keep[0]])
        self.rotation = so3_grid_rotations(self.idx[:1], self.level)[0]

    def refine(self, until: int) -> None:
        """Score the grid children of the kept rotations, level by level, up to ``until``."""
        while self.level < until:
            self.idx = torch.unique(so3_grid_children(self.idx, self.level))
            self.level += 1
            d = self.boxes[self.level]
            self._keep(_score(self.crops[d], so3_grid_rotations(self.idx, self.level), self.refs[d]))

    def polish(self) -> None:
        """Hill-climb off the grid: turn the best rotation by ±step about x, y and z while that raises
        the correlation, halving the step from half the last grid spacing down to ~0.06°."""
        d = self.boxes[self.level]
        turns = torch.cat([torch.eye(3, dtype=torch.float64), -torch.eye(3, dtype=torch.float64)])
        step = math.radians(60.0 / 2**self.level) / 2
        while step > math.radians(0.06):
            for _ in range(4):
                candidates = axis_angle_to_matrix(step * turns) @ self.rotation
                scores = _score(self.crops[d], candidates, self.refs[d])
                if float(scores.max()) <= self.score:
                    break
                self.rotation, self.score = candidates[int(scores.argmax())], float(scores.max())
            step /= 2


def _working_size(D: int, apix: float, max_resolution_A: float | None) -> int:
    if max_resolution_A is None:
        return D
    if not max_resolution_A > 0:
        raise InputError(f"the maximum resolution must be positive, got {max_resolution_A} Å")
    d = 2 * math.ceil(D * apix / max_resolution_A)  # Nyquist of the cropped box = max_resolution_A
    return int(min(D, max(d, 16)))


def align_maps(
    moving: np.ndarray,
    reference: np.ndarray,
    apix: float,
    flip: bool = True,
    max_resolution_A: float | None = None,
) -> MapAlignment:
    """Find the rotation, translation and (if ``flip``) hand that best superpose ``moving`` onto
    ``reference`` (both (D, D, D), D even, voxel ``apix`` Å; module docstring for the convention and
    the method). ``max_resolution_A`` limits the frequencies used (default: up to Nyquist)."""
    m = torch.tensor(np.asarray(moving, dtype=np.float32))
    f = torch.tensor(np.asarray(reference, dtype=np.float32))
    if m.ndim != 3 or len(set(m.shape)) != 1 or m.shape != f.shape:
        raise InputError(f"alignment needs two cubic maps of the same box, got {tuple(m.shape)} and {tuple(f.shape)}")
    D = m.shape[0]
    if D % 2 or D < 16:
        raise InputError(f"alignment needs an even box of at least 16 voxels, got {D}")
    if not apix > 0:
        raise InputError(f"the voxel size must be positive, got {apix}")
    if float(m.std()) == 0 or float(f.std()) == 0:
        raise InputError("cannot align a constant map")
    n = _working_size(D, apix, max_resolution_A)
    boxes = {level: min(n, box) for level, box in _BOX.items()}
    f_n = _prepare(f, n)
    with torch.no_grad():
        refs = {d: _reference_ft(_prepare(f, d)) for d in set(boxes.values())}
        hands = {False: _Hand(m, refs, boxes)}
        if flip:
            hands[True] = _Hand(torch.as_tensor(flip_hand(m.numpy())), refs, boxes)
        for hand in hands.values():  # the hand is chosen on the correlation at ~4° on a 48³ box
            hand.refine(_HAND_LEVEL)
        flipped = max(hands, key=lambda k: hands[k].score)
        hands[flipped].refine(_FINAL_LEVEL)
        hands[flipped].polish()
        fits = {k: _fit(h, f_n, n, apix) for k, h in hands.items()}
    R, shift_A, aligned = fits[flipped]
    other = _pearson(fits[not flipped][2], f.numpy()) if flip else None
    return MapAlignment(R, shift_A, flipped, _pearson(aligned, f.numpy()), aligned, other)


def _fit(hand: _Hand, reference: torch.Tensor, n: int, apix: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotation, translation (Å) and the aligned full map of one hand's best rotation."""
    D = hand.moving.shape[-1]
    R = hand.rotation
    s_vox = _subvoxel_shift(_prepare(hand.moving, n), R.float(), reference)
    shift_A = R.numpy() @ (s_vox * apix * D / n)  # rotated(p + s) = M'(R p + R s)
    return R.numpy(), shift_A, transform_map(hand.moving.numpy(), R.numpy(), shift_A, apix).astype(np.float32)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-300))
