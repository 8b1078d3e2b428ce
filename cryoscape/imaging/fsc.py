"""Fourier shell correlation between maps and the resolution and signal-to-noise it implies.

Shells: a voxel at centred Fourier index (kx, ky, kz) (origin at D//2) belongs to shell
``round(|k|)``; shells 0 .. D//2 are reported, shell s at spatial frequency s/D cycles/pixel, i.e.
a resolution of D·apix/s Å. Nyquist is shell D//2 (resolution 2·apix).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cryoscape.errors import InputError
from cryoscape.imaging.fft import fft3_center
from cryoscape.imaging.grids import radial_index_3d


def centred_transform(volume: np.ndarray) -> np.ndarray:
    """(D, D, D) complex128 centred 3D transform of a real map (:func:`cryoscape.imaging.fft.fft3_center`),
    as FSC takes it."""
    return fft3_center(torch.as_tensor(np.asarray(volume), dtype=torch.float64)).numpy()


@dataclass
class FSCCurve:
    """An FSC curve: ``frequency`` in cycles/pixel (shells 0..D//2) and ``fsc`` values."""

    frequency: np.ndarray
    fsc: np.ndarray
    apix: float

    def resolution_A(self, threshold: float) -> float:
        """Resolution (Å) where the curve first falls below ``threshold``, interpolated linearly
        between shells; the Nyquist resolution (2·apix) if it never does; infinity if it starts
        below it."""
        below = np.nonzero(self.fsc[1:] < threshold)[0]
        if len(below) == 0:
            return 2.0 * self.apix
        i = below[0] + 1
        f0, f1, c0, c1 = self.frequency[i - 1], self.frequency[i], self.fsc[i - 1], self.fsc[i]
        if c0 < threshold:  # below already at the origin (e.g. opposite contrast): no resolution
            return float("inf")
        f = f0 + (c0 - threshold) / (c0 - c1) * (f1 - f0)
        return float(self.apix / f) if f > 0 else float("inf")

    def frequency_at(self, threshold: float) -> float:
        """Spatial frequency (cycles/pixel) where the curve first falls below ``threshold``."""
        return float(self.apix / self.resolution_A(threshold))

    def auc(self) -> float:
        """Area under the FSC curve over 0..Nyquist, normalized so that a perfect curve gives 1."""
        return float(np.trapezoid(self.fsc, self.frequency) / (self.frequency[-1] - self.frequency[0]))


def fsc(volume_a: np.ndarray, volume_b: np.ndarray, apix: float = 1.0, mask: np.ndarray | None = None) -> FSCCurve:
    """FSC between two cubic maps of the same size, optionally after multiplying both by ``mask``."""
    a, b = np.asarray(volume_a, dtype=np.float64), np.asarray(volume_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3 or len(set(a.shape)) != 1:
        raise InputError(f"FSC needs two cubic maps of the same size, got {a.shape} and {b.shape}")
    if mask is not None:
        if mask.shape != a.shape:
            raise InputError(f"mask shape {mask.shape} differs from the maps' {a.shape}")
        a, b = a * mask, b * mask
    return fsc_of_transforms(centred_transform(a), centred_transform(b), apix)


def fsc_of_transforms(fa: np.ndarray, fb: np.ndarray, apix: float = 1.0) -> FSCCurve:
    """FSC of two maps given by their centred 3D transforms (:func:`centred_transform`), so that a map
    compared with many others is transformed once."""
    D = fa.shape[0]
    shells = radial_index_3d(D).numpy().ravel()
    n = D // 2 + 1
    keep = shells < n
    s = shells[keep]
    a, b = fa.ravel()[keep], fb.ravel()[keep]
    cross = np.bincount(s, weights=np.real(a * np.conj(b)), minlength=n)
    pa = np.bincount(s, weights=np.abs(a) ** 2, minlength=n)
    pb = np.bincount(s, weights=np.abs(b) ** 2, minlength=n)
    denom = np.sqrt(pa * pb)
    curve = np.divide(cross, denom, out=np.zeros(n), where=denom > 0)
    return FSCCurve(frequency=np.arange(n) / D, fsc=curve, apix=float(apix))


def ssnr_from_half_map_fsc(half_fsc: np.ndarray, n_maps_combined: int = 1) -> np.ndarray:
    """Spectral SNR per shell implied by a half-map FSC (SSNR_half = FSC / (1 − FSC)), for a map
    combining ``n_maps_combined`` half sets (2 for the full map). Clipped to [1e-3, 1e6]."""
    f = np.clip(np.asarray(half_fsc, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.clip(n_maps_combined * f / (1 - f), 1e-3, 1e6)
