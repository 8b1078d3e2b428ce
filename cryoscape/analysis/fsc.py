"""Fourier shell correlation between maps, resolution estimates, masks and plots.

Shells: a voxel at centred Fourier index (kx, ky, kz) (origin at D//2) belongs to shell
``round(|k|)``; shells 0 .. D//2 are reported, shell s at spatial frequency s/D cycles/pixel, i.e.
a resolution of D·apix/s Å. Nyquist is shell D//2 (resolution 2·apix).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cryoscape.errors import InputError


def _centered_fft3(volume: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(volume)))


def shell_index_3d(D: int) -> np.ndarray:
    """(D, D, D) integer shell of every voxel of a centred 3D transform."""
    k = np.arange(D) - D // 2
    r = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    return np.round(r).astype(np.int64)


@dataclass
class FSCCurve:
    """An FSC curve: ``frequency`` in cycles/pixel (shells 0..D//2) and ``fsc`` values."""

    frequency: np.ndarray
    fsc: np.ndarray
    apix: float

    def resolution_A(self, threshold: float) -> float:
        """Resolution (Å) where the curve first falls below ``threshold``, interpolated linearly
        between shells; the Nyquist resolution (2·apix) if it never does."""
        below = np.nonzero(self.fsc[1:] < threshold)[0]
        if len(below) == 0:
            return 2.0 * self.apix
        i = below[0] + 1
        f0, f1, c0, c1 = self.frequency[i - 1], self.frequency[i], self.fsc[i - 1], self.fsc[i]
        f = f0 + (c0 - threshold) / (c0 - c1) * (f1 - f0) if c0 != c1 else f1
        return float(self.apix / f)

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
    D = a.shape[0]
    fa, fb = _centered_fft3(a), _centered_fft3(b)
    shells = shell_index_3d(D).ravel()
    n = D // 2 + 1
    keep = shells < n
    s = shells[keep]
    cross = np.bincount(s, weights=np.real(fa.ravel()[keep] * np.conj(fb.ravel()[keep])), minlength=n)
    pa = np.bincount(s, weights=np.abs(fa.ravel()[keep]) ** 2, minlength=n)
    pb = np.bincount(s, weights=np.abs(fb.ravel()[keep]) ** 2, minlength=n)
    denom = np.sqrt(pa * pb)
    curve = np.divide(cross, denom, out=np.zeros(n), where=denom > 0)
    return FSCCurve(frequency=np.arange(n) / D, fsc=curve, apix=float(apix))


def auto_mask(volume: np.ndarray, threshold: float | None = None, dilate_px: int = 3, soft_edge_px: int = 3) -> np.ndarray:
    """A soft mask around the molecule, for masked FSC.

    The map is low-pass filtered (Gaussian, σ = 1 px) and thresholded at ``threshold`` (default: 0.2 ×
    the filtered map's maximum); connected pieces smaller than 1% of the largest are dropped (specks
    of noise); the rest is dilated by ``dilate_px`` voxels and given a cosine edge ``soft_edge_px``
    wide. Values in [0, 1].
    """
    smooth = ndimage.gaussian_filter(np.asarray(volume, dtype=np.float64), 1.0)
    if threshold is None:
        threshold = 0.2 * smooth.max()
    binary = smooth > threshold
    labels, count = ndimage.label(binary)
    if count == 0:
        raise InputError("auto-mask found no density above the threshold; pass a mask or a lower threshold")
    sizes = np.bincount(labels.ravel())[1:]
    binary = np.isin(labels, 1 + np.nonzero(sizes >= 0.01 * sizes.max())[0])
    if dilate_px > 0:
        binary = ndimage.binary_dilation(binary, iterations=dilate_px)
    if soft_edge_px <= 0:
        return binary.astype(np.float32)
    distance = ndimage.distance_transform_edt(~binary)
    edge = 0.5 * (1 + np.cos(np.pi * np.clip(distance / soft_edge_px, 0, 1)))
    return np.where(binary, 1.0, edge).astype(np.float32)


def plot_fsc(curves: dict[str, FSCCurve], path, thresholds=(0.5, 0.143), title: str | None = None) -> None:
    """Write a PNG of one or more FSC curves against resolution (1/Å)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for label, curve in curves.items():
        ax.plot(curve.frequency / curve.apix, curve.fsc, label=label)
    for t in thresholds:
        ax.axhline(t, color="gray", lw=0.8, ls="--")
        ax.text(0.0, t, f" {t}", va="bottom", fontsize=8, color="gray")
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC")
    ax.set_ylim(-0.1, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    first = next(iter(curves.values()))
    secondary = ax.secondary_xaxis("top", functions=(lambda f: np.divide(1.0, f, out=np.full_like(f, np.inf), where=f > 0),
                                                     lambda r: np.divide(1.0, r, out=np.full_like(r, np.inf), where=r > 0)))
    secondary.set_xlabel("resolution (Å)")
    ax.set_xlim(0, first.frequency[-1] / first.apix)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def per_image_fsc(volume_for, gt_volumes: np.ndarray, labels: np.ndarray, apix: float = 1.0,
                  threshold: float = 0.5, mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """FSC of each image's volume against the ground-truth map of that image's conformation.

    ``volume_for(i)`` returns the (D, D, D) map a model gives for image i; ``gt_volumes`` is (K, D, D, D)
    and ``labels`` (N,) picks each image's ground truth. Returns per-image ``resolution_A`` at
    ``threshold`` and ``auc`` (area under the FSC curve, 1 = perfect).
    """
    labels = np.asarray(labels)
    resolution, area = np.zeros(len(labels)), np.zeros(len(labels))
    for i, k in enumerate(labels):
        curve = fsc(volume_for(i), gt_volumes[int(k)], apix=apix, mask=mask)
        resolution[i], area[i] = curve.resolution_A(threshold), curve.auc()
    return {"resolution_A": resolution, "auc": area}
