"""``report``: one self-contained HTML page of a run (works offline, no server): the interactive latent
embedding (hover a point for its particle index and cluster; colour by cluster, by a label file, by a
particle-file column, or by the ground truth of simulated data), the loss curves, the cluster maps as
projections, the landscape plots and the analysis summaries. plotly.js is embedded in the page.
For a mixture run (train-mix), also its classes (:mod:`cryoscape.analysis.report_classes`), and the
latent section only when the classes have a latent.
"""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cryoscape.analysis.report_classes import classes_html
from cryoscape.analysis.report_latent import latent_parts
from cryoscape.errors import InputError
from cryoscape.inference.run_config import read_run_config
from cryoscape.io.paths import check_output
from cryoscape.io.staging import staged_file

log = logging.getLogger("cryoscape")

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
    """Write the HTML report of a run with a latent or classes (module docstring); returns its path."""
    from plotly.offline import get_plotlyjs  # noqa: PLC0415

    run = Path(run)
    config = read_run_config(run)
    classes = (run / "class.npy").exists()
    if not config.zdim and not classes:
        raise InputError(f"{run} is a {config.kind} run without a latent; report needs a run with one (train-vae)")
    output = check_output(output, force)
    analysis = Path(analysis) if analysis else find_latest(run, "analyze")
    landscape = Path(landscape) if landscape else find_latest(run, "landscape")
    for folder, name in ((analysis, "analysis"), (landscape, "landscape")):
        if folder is not None and not folder.is_dir():
            raise InputError(f"{name} folder {folder} does not exist")
    if config.zdim:
        labels = {**({"class": run / "class.npy"} if classes else {}), **(labels or {})}
        latent, n, shown = latent_parts(run, config, analysis, labels, columns or [], particles, max_points, seed)
    else:
        latent, n = [], len(np.load(run / "class.npy"))
        shown = np.arange(0)
    parts = [
        f"<h1>cryoscape report: {html.escape(str(run.resolve()))}</h1>",
        f"<p>{n} particles, {config.kind} run, latent dimension {config.zdim}, box {config.data.D} px at "
        f"{config.data.apix:.3f} Å/px; trained {config.training.epochs} epochs. Generated by cryoscape.</p>",
        *(classes_html(run, config, particles, image_html) if classes else []),
        *latent,
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
    elif config.zdim:
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
