"""The classes of a mixture run (train-mix) in the report: each class's share of the particles over
the epochs (the mean posterior of RUN/class_prob.E.npy, junk last), each kept class's map as
projections (at the median latent of its particles when the classes have a latent), and, for
simulated particles, the confusion matrix of the classes against the true components with its ARI.
"""

from __future__ import annotations

import html
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd

from cryoscape.analysis import plots
from cryoscape.analysis.clustering_metrics import adjusted_rand_index
from cryoscape.analysis.ground_truth import find_truth
from cryoscape.inference.run_config import RunConfig
from cryoscape.inference.run_models import load_model
from cryoscape.models import mixture_classes

if TYPE_CHECKING:
    from cryoscape.models.mixture import MixtureOfFields


def class_shares(run: Path) -> pd.DataFrame:
    """(epochs × columns) the mean posterior of each component after each epoch: columns "class K"
    for the classes that ever held a share, then "junk"."""
    epochs = sorted(int(p.name.split(".")[1]) for p in run.glob("class_prob.*.npy") if p.name.split(".")[1].isdigit())
    shares = np.stack([np.load(run / f"class_prob.{e}.npy").mean(0) for e in epochs])
    table = pd.DataFrame(shares, index=pd.Index(epochs, name="epoch"))
    table.columns = [f"class {k}" for k in range(shares.shape[1] - 1)] + ["junk"]
    return table.loc[:, (table > 0).any(axis=0)]


def shares_html(table: pd.DataFrame) -> str:
    """An interactive line chart of :func:`class_shares`."""
    import plotly.graph_objects as go  # noqa: PLC0415

    fig = go.Figure()
    for column in table.columns:
        fig.add_trace(go.Scatter(x=table.index, y=table[column], mode="lines+markers", name=column))
    fig.update_layout(
        height=340,
        xaxis_title="epoch",
        yaxis_title="share of the particles (mean posterior)",
        template="plotly_white",
        margin=dict(l=60, r=30, t=30, b=50),
    )
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id="class_shares")


def class_maps(run: Path, config: RunConfig, labels: np.ndarray) -> tuple[list[int], list[np.ndarray]]:
    """(the kept classes, their maps (D, D, D) in the data's units): each at the median latent of
    its particles (RUN/z.npy) when the classes have a latent (:func:`mixture_classes.class_maps`)."""
    model, _, _ = load_model(run)
    kept = [k for k in range(model.n_classes) if (labels == k).any()]
    z = np.load(run / "z.npy") if config.zdim else None
    maps = mixture_classes.class_maps(cast("MixtureOfFields", model), kept, np.load(run / "class_prob.npy"), z)
    return kept, [m * config.data.scale for m in maps]


def confusion_html(run: Path, config: RunConfig, labels: np.ndarray, particles: str | None) -> list[str]:
    """The confusion matrix against the simulated components (none for real data)."""
    truth = find_truth(config, particles)
    if truth is None or len(truth.component) != len(labels):
        return []
    names = {-1: "junk", **dict(enumerate(truth.names))}
    table = pd.crosstab(
        pd.Series([names[c] for c in truth.component], name="true component"),
        pd.Series(np.where(labels < 0, "junk", [f"class {k}" for k in labels]), name="class found"),
    )
    ari = adjusted_rand_index(truth.component, labels)
    return [
        f"<p>Against the simulated components ({html.escape(str(truth.folder))}): ARI {ari:.3f} with junk "
        "counted as a class (1 = the same partition).</p>",
        table.to_html(),
    ]


def classes_html(run: Path, config: RunConfig, particles: str | None, image_html) -> list[str]:
    """The report's classes section (module docstring); ``image_html(path, caption)`` embeds a PNG."""
    labels = np.load(run / "class.npy")
    table = class_shares(run)
    counts = ", ".join(
        f"class {k}: {int((labels == k).sum())}" if k >= 0 else f"junk: {int((labels == k).sum())}"
        for k in sorted(set(labels.tolist()))
    )
    parts = ["<h2>Classes</h2>", f"<p>{len(labels)} particles: {counts}.</p>", shares_html(table)]
    kept, maps = class_maps(run, config, labels)
    if maps:
        with tempfile.TemporaryDirectory() as tmp:
            picture = plots.map_projections(maps, Path(tmp) / "classes.png", [f"class {k}" for k in kept])
            parts.append(image_html(picture, "map of each class (projections along z, y, x)"))
    return parts + confusion_html(run, config, labels, particles)
