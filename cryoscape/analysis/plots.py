"""PNG figures of the analysis commands (matplotlib, Agg backend; no screen needed).

Embeddings are (N, 2) coordinates, or (N, 1) for a 1-D latent: then densities are histograms along
the one axis, clusters are stacked histograms, and colourings are the value against the coordinate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def embedding_figure(
    coords: np.ndarray,
    path: Path,
    axis_names: tuple[str, str],
    title: str,
    labels: np.ndarray | None = None,
    centers: np.ndarray | None = None,
) -> Path:
    """Two panels of a 2-D embedding (N, 2): particle density (hexbin, log counts) and the particles
    coloured by cluster ``labels`` with the cluster numbers at ``centers`` (k, 2). For (N, 1): a
    histogram and a histogram stacked by cluster."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), dpi=110)
    if coords.shape[1] == 1:
        _histogram(axes[0], coords[:, 0], axis_names[0], f"{title}: density")
        _stacked_by_label(axes[1], coords[:, 0], labels, centers, axis_names[0], f"{title}: clusters")
        return _save(fig, path)
    x, y = coords[:, 0], coords[:, 1]
    _hexbin(fig, axes[0], coords)
    axes[0].set_title(f"{title}: density")
    if labels is None:
        axes[1].scatter(x, y, s=_point_size(len(x)), alpha=0.5, lw=0, color="tab:blue", rasterized=True)
    else:
        axes[1].scatter(
            x, y, c=labels, s=2 * _point_size(len(x)), cmap=_cluster_cmap(labels), alpha=0.9, lw=0, rasterized=True
        )
        if centers is not None:
            for k, (cx, cy) in enumerate(centers):
                axes[1].annotate(
                    str(k),
                    (cx, cy),
                    ha="center",
                    va="center",
                    fontsize=8,
                    weight="bold",
                    bbox=dict(boxstyle="circle,pad=0.2", fc="white", alpha=0.8, lw=0.5),
                )
    axes[1].set_title(f"{title}: {'clusters' if labels is not None else 'particles'}")
    for ax in axes:
        ax.set_xlabel(axis_names[0])
        ax.set_ylabel(axis_names[1])
    return _save(fig, path)


def colored_embedding(
    coords: np.ndarray,
    values: np.ndarray,
    path: Path,
    axis_names: tuple[str, str],
    title: str,
    label: str,
    categorical: bool,
) -> Path:
    """A 2-D embedding (N, 2) coloured by per-particle ``values`` (a label or a continuous quantity);
    for (N, 1), the values against the coordinate."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.8), dpi=110)
    if coords.shape[1] == 1:
        ax.scatter(coords[:, 0], values, s=_point_size(len(values)), alpha=0.5, lw=0, rasterized=True)
        _label(ax, (axis_names[0], label), title)
        return _save(fig, path)
    cmap = _cluster_cmap(values) if categorical else "viridis"
    sc = ax.scatter(
        coords[:, 0], coords[:, 1], c=values, s=_point_size(len(values)), cmap=cmap, alpha=0.7, lw=0, rasterized=True
    )
    fig.colorbar(sc, ax=ax, label=label)
    _label(ax, axis_names, title)
    return _save(fig, path)


def bar_chart(values: np.ndarray, path: Path, xlabel: str, ylabel: str, title: str, ticks=None) -> Path:
    """Bars with their values written above them (a bar too small to see still shows its number)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.3 * len(values) + 2), 3.5), dpi=110)
    positions = np.arange(len(values))
    bars = ax.bar(positions, values, color="tab:blue")
    if len(values) <= 40:
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize=6 if len(values) > 15 else 8, padding=1)
        ax.margins(y=0.12)
    ax.set_xticks(
        positions, ticks if ticks is not None else [str(i) for i in positions], fontsize=8 if len(values) <= 30 else 6
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def map_projections(maps: list[np.ndarray], path: Path, titles: list[str], columns: int = 5) -> Path:
    """A grid of maps, each shown as its projections along z, y and x (sums of the density), side by
    side, on one grey scale shared by all maps (so that their backgrounds and densities compare)."""
    plt = _pyplot()
    rows = -(-len(maps) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 1.35 * rows + 0.4), dpi=100, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    strips = [np.concatenate([volume.sum(axis=a) for a in range(3)], axis=1) for volume in maps]
    low, high = min(float(s.min()) for s in strips), max(float(s.max()) for s in strips)
    for ax, strip, title in zip(axes.ravel(), strips, titles):
        ax.axis("on")
        ax.imshow(strip, cmap="gray", origin="lower", vmin=low, vmax=high)
        ax.set_xticks([(i + 0.5) * strip.shape[0] for i in range(3)], ["along z", "along y", "along x"], fontsize=6)
        ax.set_yticks([])
        ax.set_title(title, fontsize=8)
    return _save(fig, path)


def mask_slices(volume: np.ndarray, mask: np.ndarray, path: Path, title: str) -> Path:
    """Central slices (z, y, x) of a map with a mask's outline drawn over them."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), dpi=110)
    c = volume.shape[0] // 2
    for ax, name, image, outline in zip(
        axes, ("z", "y", "x"), (volume[c], volume[:, c], volume[:, :, c]), (mask[c], mask[:, c], mask[:, :, c])
    ):
        ax.imshow(image, cmap="gray", origin="lower")
        ax.contour(outline.astype(float), levels=[0.5], colors="tab:red", linewidths=1)
        ax.set_title(f"central {name} slice", fontsize=9)
        ax.axis("off")
    fig.suptitle(title)
    return _save(fig, path)


def pair_scatter(
    coords: np.ndarray,
    labels: np.ndarray,
    path: Path,
    axis_prefix: str,
    explained: np.ndarray,
    title: str,
    sizes: np.ndarray | None = None,
) -> Path:
    """Scatter of consecutive coordinate pairs (1-2, 2-3) coloured by the discrete ``labels`` (a
    legend, one colour per label), point area ∝ ``sizes``."""
    plt = _pyplot()
    pairs = [(0, 1), (1, 2)] if coords.shape[1] >= 3 else [(0, 1)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.5 * len(pairs), 4.6), dpi=110, squeeze=False)
    area = 10.0 if sizes is None else 5 + 120 * np.asarray(sizes) / max(np.max(sizes), 1)
    area = np.broadcast_to(area, (len(coords),))
    colors = plt.get_cmap(_cluster_cmap(labels))
    for ax, (i, j) in zip(axes[0], pairs):
        for n, value in enumerate(np.unique(labels)):
            sel = labels == value
            ax.scatter(
                coords[sel, i],
                coords[sel, j],
                s=area[sel],
                color=colors(n % colors.N),
                alpha=0.8,
                edgecolors="k",
                linewidths=0.3,
                label=f"state {value}",
            )
        ax.set_xlabel(f"{axis_prefix}{i + 1} ({100 * explained[i]:.1f}%)")
        ax.set_ylabel(f"{axis_prefix}{j + 1} ({100 * explained[j]:.1f}%)")
    axes[0, -1].legend(fontsize=7, markerscale=0.7)
    fig.suptitle(title)
    return _save(fig, path)


def density(coords: np.ndarray, path: Path, axis_names: tuple[str, str], title: str) -> Path:
    """Hexbin density (log counts) of many points (N, 2); a histogram for (N, 1)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.8), dpi=110)
    if coords.shape[1] == 1:
        _histogram(ax, coords[:, 0], axis_names[0], title)
        return _save(fig, path)
    _hexbin(fig, ax, coords)
    _label(ax, axis_names, title)
    return _save(fig, path)


def path_figure(
    coords: np.ndarray,
    path_coords: np.ndarray,
    map_coords: np.ndarray,
    path: Path,
    axis_names: tuple[str, str],
    title: str,
) -> Path:
    """A path (M, 2) drawn over the density of a 2-D embedding (N, 2), its maps (n, 2) numbered; for
    (N, 1) the histogram with the maps marked along the axis."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.2, 5), dpi=110)
    if coords.shape[1] == 1:
        _histogram(ax, coords[:, 0], axis_names[0], title, color="0.6")
        for i, x in enumerate(map_coords[:, 0]):
            ax.axvline(x, color="tab:red", lw=1, label="maps" if i == 0 else None)
            ax.annotate(
                str(i),
                (x, 1),
                xycoords=("data", "axes fraction"),
                xytext=(2, -10),
                textcoords="offset points",
                fontsize=7,
            )
        ax.legend(fontsize=8)
        return _save(fig, path)
    _hexbin(fig, ax, coords, cmap="Greys", colorbar=False)
    ax.plot(path_coords[:, 0], path_coords[:, 1], "-", color="tab:red", lw=1.2, label="path through the data")
    ax.scatter(map_coords[:, 0], map_coords[:, 1], color="tab:red", s=25, zorder=3, label="maps")
    for i, (x, y) in enumerate(map_coords):
        ax.annotate(str(i), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
    _label(ax, axis_names, title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    _pyplot().close(fig)
    return path


def _label(ax, axis_names: tuple[str, str], title: str) -> None:
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title(title)


def _histogram(ax, x: np.ndarray, xlabel: str, title: str, color: str = "tab:blue") -> None:
    ax.hist(x, bins=min(100, max(10, len(x) // 50)), color=color)
    _label(ax, (xlabel, "particles"), title)


def _stacked_by_label(ax, x: np.ndarray, labels, centers, xlabel: str, title: str) -> None:
    """A histogram of ``x`` stacked by cluster ``labels``, the cluster numbers above their ``centers`` (k, 1)."""
    if labels is None:
        _histogram(ax, x, xlabel, title)
        return
    values = np.unique(labels)
    ax.hist(
        [x[labels == v] for v in values],
        bins=min(100, max(10, len(x) // 50)),
        stacked=True,
        color=[_pyplot().get_cmap(_cluster_cmap(labels))(n % 20) for n in range(len(values))],
    )
    if centers is not None:
        for k, cx in enumerate(np.asarray(centers)[:, 0]):
            ax.annotate(
                str(k),
                (cx, 1),
                xycoords=("data", "axes fraction"),
                xytext=(0, -12),
                textcoords="offset points",
                ha="center",
                fontsize=8,
                weight="bold",
            )
    _label(ax, (xlabel, "particles"), title)


def _point_size(n: int) -> float:
    return float(np.clip(2000.0 / max(n, 1), 0.3, 12.0))


def _cluster_cmap(labels: np.ndarray) -> str:
    return "tab10" if len(np.unique(labels)) <= 10 else "tab20"


def _hexbin(fig, ax, coords: np.ndarray, cmap: str = "viridis", colorbar: bool = True) -> None:
    """Particle density of ``coords`` (N, 2) as log counts in hexagonal bins."""
    hb = ax.hexbin(coords[:, 0], coords[:, 1], gridsize=60, bins="log", cmap=cmap, mincnt=1)
    if colorbar:
        fig.colorbar(hb, ax=ax, label="particles per bin (log)")
