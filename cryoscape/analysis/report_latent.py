"""The latent section of the report (:mod:`cryoscape.analysis.report`): the particles' latents in
2-D (UMAP of the analysis, else PCA) as an interactive plotly scatter, with a menu of colourings (k-means
cluster, label files, particle-file columns, the ground truth of simulated data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cryoscape.analysis.ground_truth import find_truth, truth_labels
from cryoscape.analysis.latent import first_two_columns, latent_pca
from cryoscape.errors import InputError
from cryoscape.inference.run_config import RunConfig

# Scatter points drawn as SVG up to this many (every point a DOM element, hover exact); WebGL above.
SVG_POINTS = 20000


def color_options(
    n: int, analysis: Path | None, labels: dict[str, Path], columns: list[str], config: RunConfig, particles: str | None
) -> dict[str, tuple[np.ndarray, bool]]:
    """Per-particle colourings: name -> (values (n,), categorical)."""
    options: dict[str, tuple[np.ndarray, bool]] = {}
    if analysis is not None and (analysis / "kmeans_labels.npy").exists():
        options["k-means cluster"] = (np.load(analysis / "kmeans_labels.npy"), True)
    for name, path in labels.items():
        values = np.load(path, allow_pickle=False).ravel()
        if len(values) != n:
            raise InputError(f"label file {path} has {len(values)} entries, the run {n} particles")
        options[name] = (values, values.dtype.kind in "iub")
    if columns:
        table = _particle_columns(config, particles, n)
        for column in columns:
            if column not in table.columns:
                raise InputError(
                    f"the particle file has no column {column!r} (it has {', '.join(map(str, table.columns[:12]))}, ...)"
                )
            values = pd.to_numeric(table[column], errors="coerce").to_numpy()
            if np.isnan(values).all():
                raise InputError(f"column {column!r} holds no numbers")
            options[column] = (values, False)
    truth = find_truth(config, particles)
    if truth is not None and len(truth.component) == n:
        true, kind = truth_labels(truth)
        options[f"true {kind}"] = (true, kind == "component")
    return options


def _particle_columns(config: RunConfig, particles: str | None, n: int) -> pd.DataFrame:
    from cryoscape.io.cs import read_cs  # noqa: PLC0415
    from cryoscape.io.selection import read_selection  # noqa: PLC0415
    from cryoscape.io.star import read_star  # noqa: PLC0415

    path = Path(particles or config.data.particles or "")
    if not particles and not config.data.particles:
        raise InputError("the run does not record its particle file; pass --particles to colour by a column")
    if path.suffix.lower() == ".star":
        table = read_star(path)[0]
    elif path.suffix.lower() == ".cs":
        rec = read_cs(path)
        table = pd.DataFrame({k: rec[k] for k in rec.dtype.names or () if rec[k].ndim == 1})
    else:
        raise InputError(f"columns can be read from a .star or .cs particle file, not {path.name}")
    if config.data.ind and not particles:
        table = table.iloc[read_selection(Path(config.data.ind), len(table))].reset_index(drop=True)
    if len(table) != n:
        raise InputError(f"{path} has {len(table)} particles, the run {n}")
    return table


def embedding_html(
    coords: np.ndarray, axis_names: tuple[str, str], options: dict, shown: np.ndarray, cluster: np.ndarray | None
) -> str:
    """The interactive scatter (plotly) of ``coords`` (N, 2) for the particles ``shown``, with a menu
    that recolours it by each of ``options``; hover gives particle index and cluster."""
    import plotly.graph_objects as go  # noqa: PLC0415

    hover = [f"particle {i}" + (f"<br>cluster {cluster[i]}" if cluster is not None else "") for i in shown]
    trace = go.Scatter if len(shown) <= SVG_POINTS else go.Scattergl
    first = next(iter(options.values()), None)
    marker: dict[str, object] = dict(size=4 if len(shown) < 5000 else 2, opacity=0.7)
    if first is not None:
        marker.update(color=first[0][shown], colorscale=_scale(first[1]), showscale=True)
    fig = go.Figure(
        trace(x=coords[shown, 0], y=coords[shown, 1], mode="markers", marker=marker, text=hover, hoverinfo="text")
    )
    buttons = [
        dict(
            label=name,
            method="restyle",
            args=[{"marker.color": [values[shown]], "marker.colorscale": _scale(categorical)}],
        )
        for name, (values, categorical) in options.items()
    ]
    fig.update_layout(
        height=620,
        margin=dict(l=50, r=20, t=50, b=50),
        xaxis_title=axis_names[0],
        yaxis_title=axis_names[1],
        template="plotly_white",
        updatemenus=[dict(buttons=buttons, direction="down", x=0, y=1.12, xanchor="left")] if buttons else [],
    )
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id="embedding")


def _scale(categorical: bool) -> str:
    return "Turbo" if categorical else "Viridis"


def latent_parts(
    run: Path,
    config: RunConfig,
    analysis: Path | None,
    labels: dict[str, Path],
    columns: list[str],
    particles: str | None,
    max_points: int,
    seed: int,
) -> tuple[list[str], int, np.ndarray]:
    """(the latent-space section, the number of particles, the indices of those shown)."""
    if analysis is not None and (analysis / "z_pca.npy").exists():
        z_pca = np.load(analysis / "z_pca.npy")
    else:
        if not (run / "z.npy").exists():
            raise InputError(f"{run} has no latents (z.npy): has an epoch completed?")
        z_pca = latent_pca(np.load(run / "z.npy")).coords
    n = len(z_pca)
    coords, axes = (
        (np.load(analysis / "umap.npy"), ("UMAP1", "UMAP2"))
        if analysis and (analysis / "umap.npy").exists()
        else (first_two_columns(z_pca), ("PC1", "PC2"))
    )
    options = color_options(n, analysis, labels, columns, config, particles)
    shown = (
        np.arange(n) if n <= max_points else np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
    )
    cluster = options.get("k-means cluster", (None,))[0]
    parts = [
        "<h2>Latent space</h2>",
        f"<p class='note'>{len(shown)} of {n} particles shown; hover a point for its particle index and cluster; "
        "the menu changes the colouring.</p>",
        embedding_html(coords, axes, options, shown, cluster),
    ]
    return parts, n, shown
