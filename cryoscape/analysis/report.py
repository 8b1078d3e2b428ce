"""``report``: one self-contained HTML page of a run (works offline, no server): the interactive latent
embedding (hover a point for its particle index and cluster; colour by cluster, by a label file, by a
particle-file column, or by the ground truth of simulated data), the loss curves, the cluster maps as
projections, the landscape plots and the analysis summaries. plotly.js is embedded in the page.
"""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cryoscape.analysis.ground_truth import find_truth, truth_labels
from cryoscape.analysis.latent import first_two_columns, latent_pca
from cryoscape.errors import InputError
from cryoscape.inference.run_config import RunConfig, read_run_config
from cryoscape.io.paths import check_output
from cryoscape.io.staging import staged_file

log = logging.getLogger("cryoscape")

# Scatter points drawn as SVG up to this many (every point a DOM element, hover exact); WebGL above.
SVG_POINTS = 20000
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
img { max-width: 100%; border: 1px solid #eee; } pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: .85em; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 1em; }
.note { color: #666; font-size: .9em; }
"""


def find_latest(run: Path, prefix: str) -> Path | None:
    """The folder RUN/<prefix>.<epoch> of the highest epoch, if any."""
    found = [
        (int(p.name.split(".")[-1]), p)
        for p in run.glob(f"{prefix}.*")
        if p.is_dir() and p.name.split(".")[-1].isdigit()
    ]
    return max(found)[1] if found else None


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


def loss_html(run: Path) -> str:
    """Loss curves from RUN/log.csv (each column against the epoch), or a note."""
    import plotly.graph_objects as go  # noqa: PLC0415

    path = run / "log.csv"
    if not path.exists():
        return "<p class='note'>no log.csv in the run</p>"
    log_table = pd.read_csv(path)
    fig = go.Figure()
    for column in log_table.columns:
        if column != "epoch" and any(k in column for k in ("loss", "mse", "kl")):
            fig.add_trace(
                go.Scatter(
                    x=log_table["epoch"],
                    y=log_table[column],
                    mode="lines+markers",
                    name=column,
                    yaxis="y2" if "kl" in column else "y",
                )
            )
    fig.update_layout(
        height=360,
        xaxis_title="epoch",
        yaxis_title="loss, MSE (per pixel)",
        template="plotly_white",
        yaxis2=dict(title="KL (per image)", overlaying="y", side="right"),
        margin=dict(l=60, r=60, t=30, b=50),
        legend=dict(x=1.08),
    )
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id="losses")


def image_html(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(caption)}'><figcaption>{html.escape(caption)}</figcaption></figure>"


def build_report(
    run: str | Path,
    output: str | Path,
    *,
    analysis: str | Path | None = None,
    landscape: str | Path | None = None,
    labels: dict[str, Path] | None = None,
    columns: list[str] | None = None,
    particles: str | None = None,
    max_points: int = 100000,
    seed: int = 0,
    force: bool = False,
) -> Path:
    """Write the HTML report of a VAE run (module docstring); returns its path."""
    from plotly.offline import get_plotlyjs  # noqa: PLC0415

    run = Path(run)
    config = read_run_config(run)
    if not config.zdim:
        raise InputError(f"{run} is a {config.kind} run without a latent; report needs a run with one (train-vae)")
    output = check_output(output, force)
    analysis = Path(analysis) if analysis else find_latest(run, "analyze")
    landscape = Path(landscape) if landscape else find_latest(run, "landscape")
    for folder, name in ((analysis, "analysis"), (landscape, "landscape")):
        if folder is not None and not folder.is_dir():
            raise InputError(f"{name} folder {folder} does not exist")
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
    options = color_options(n, analysis, labels or {}, columns or [], config, particles)
    shown = (
        np.arange(n) if n <= max_points else np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
    )
    cluster = options.get("k-means cluster", (None,))[0]
    parts = [
        f"<h1>cryoscape report: {html.escape(str(run.resolve()))}</h1>",
        f"<p>{n} particles, {config.kind} run, latent dimension {config.zdim}, box {config.data.D} px at "
        f"{config.data.apix:.3f} Å/px; trained {config.training.epochs} epochs. Generated by cryoscape.</p>",
        "<h2>Latent space</h2>",
        f"<p class='note'>{len(shown)} of {n} particles shown; hover a point for its particle index and cluster; "
        "the menu changes the colouring.</p>",
        embedding_html(coords, axes, options, shown, cluster),
        "<h2>Training</h2>",
        loss_html(run),
    ]
    if analysis is not None:
        parts.append(f"<h2>Clusters and traversals ({html.escape(str(analysis))})</h2>")
        parts += _images(
            analysis,
            [
                ("kmeans/projections.png", "map of each k-means cluster (projections along z, y, x)"),
                ("pca.png", "latent PCA"),
                ("umap.png", "latent UMAP"),
                ("cluster_sizes.png", "particles per cluster"),
                ("explained_variance.png", "variance explained by the latent PCs"),
                ("pc1/projections.png", "maps along PC1"),
                ("pc2/projections.png", "maps along PC2"),
                ("truth_umap.png", "UMAP coloured by the ground truth"),
                ("truth_pca.png", "PCA coloured by the ground truth"),
            ],
        )
        parts += _text(analysis / "summary.txt")
    else:
        parts.append(
            "<p class='note'>no analysis folder: run <code>cryoscape analyze RUN</code> for clusters and maps.</p>"
        )
    if landscape is not None:
        parts.append(f"<h2>Landscape ({html.escape(str(landscape))})</h2>")
        parts += _images(
            landscape,
            [
                ("vol_pca.png", "sketch maps in volume-PC space, coloured by state"),
                ("explained_variance.png", "variance explained by the volume PCs"),
                ("landscape_density.png", "all particles in volume-PC space"),
                ("states/projections.png", "mean map of each state"),
                ("states/counts.png", "particles per state"),
                ("mask_slices.png", "mask"),
                ("vol_pcs/pc1/projections.png", "maps along volume PC1"),
            ],
        )
        parts += _text(landscape / "summary.txt")
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>cryoscape report</title>"
        f"<style>{_STYLE}</style><script>{get_plotlyjs()}</script></head><body>"
        + "\n".join(parts)
        + "<script>window.addEventListener('load', function () { var plot = document.getElementById('embedding');"
        "document.body.setAttribute('data-rendered', plot && plot.querySelector('.main-svg') ? 'yes' : 'no'); });"
        "</script></body></html>"
    )
    with staged_file(output, force) as staged:
        staged.write_text(page, encoding="utf-8")
    log.info(
        "read %s%s%s; wrote %s (%.1f MB, %d particles shown)",
        run,
        f", {analysis}" if analysis else "",
        f", {landscape}" if landscape else "",
        output,
        len(page.encode()) / 1e6,
        len(shown),
    )
    return output


def _images(folder: Path, items: list[tuple[str, str]]) -> list[str]:
    shown = [image_html(folder / name, caption) for name, caption in items if (folder / name).exists()]
    return ["<div class='grid'>", *shown, "</div>"]


def _text(path: Path) -> list[str]:
    return [f"<pre>{html.escape(path.read_text())}</pre>"] if path.exists() else []
