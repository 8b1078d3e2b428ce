"""Map comparison for analysis: auto-masks, FSC plots and per-image FSC against ground truth.

The FSC itself lives in :mod:`cryoscape.imaging.fsc` (training loops and reconstruction use it too).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cryoscape.errors import InputError
from cryoscape.imaging.fsc import FSCCurve, fsc


def auto_mask(
    volume: np.ndarray, threshold: float | None = None, dilate_px: int = 3, soft_edge_px: int = 3
) -> np.ndarray:
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
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for label, curve in curves.items():
        ax.plot(curve.frequency / curve.apix, curve.fsc, label=label)
    for t in thresholds:
        ax.axhline(t, color="gray", lw=0.8, ls="--")
        ax.text(0.0, t, f" {t}", va="bottom", fontsize=8, color="gray")
    first = next(iter(curves.values()))
    ax.set_xlim(0, first.frequency[-1] / first.apix)
    ax.set_ylim(-0.1, 1.05)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda f, _: f"1/{1 / f:.1f}" if f > 0 else "0"))
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def per_image_fsc(
    volume_for,
    gt_volumes: np.ndarray,
    labels: np.ndarray,
    apix: float = 1.0,
    threshold: float = 0.5,
    mask: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
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
