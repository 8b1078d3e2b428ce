"""The analysis figures fit what they show, checked on the matplotlib objects (no screenshots): a
1-D latent gets histograms and value-against-z plots, discrete states get a legend, small bars keep
their numbers, and map projections share one grey scale."""

from pathlib import Path

import numpy as np
import pytest

from cryoscape.analysis import plots


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions make, kept open instead of saved."""
    made = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: made.append(fig) or path)
    yield made
    for fig in made:
        plots._pyplot().close(fig)


def _labels(ax):
    return ax.get_xlabel(), ax.get_ylabel()


def test_one_dimensional_latents_get_histograms(figures):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 1))
    labels = (z[:, 0] > 0).astype(int)
    centers = np.array([[-1.0], [1.0]])
    plots.embedding_figure(z, Path("x.png"), ("PC1", "PC2"), "PCA", labels, centers)
    plots.colored_embedding(z, rng.integers(0, 98, 500), Path("x.png"), ("PC1", "PC2"), "t", "true conformation", False)
    plots.density(z, Path("x.png"), ("PC1", "PC2"), "d")
    plots.path_figure(z, z[:10], z[[0, 5, 9]], Path("x.png"), ("PC1", "PC2"), "path")
    pca, truth, density, path = figures
    assert [_labels(ax) for ax in pca.axes] == [("PC1", "particles")] * 2
    assert len(pca.axes[1].containers) == 2  # one stacked histogram per cluster
    assert _labels(truth.axes[0]) == ("PC1", "true conformation")
    assert _labels(density.axes[0]) == ("PC1", "particles")
    assert sum(line.get_xdata()[0] == line.get_xdata()[1] for line in path.axes[0].lines) == 3  # the 3 maps
    for fig in figures:
        assert all("(none)" not in label and "PC2" not in label for ax in fig.axes for label in _labels(ax))


def test_states_get_a_legend_and_small_bars_their_numbers(figures):
    coords = np.random.default_rng(1).normal(size=(40, 3))
    states = np.repeat(np.arange(4), 10)
    plots.pair_scatter(coords, states, Path("x.png"), "PC", np.array([0.5, 0.3, 0.1]), "states")
    plots.bar_chart(np.array([5000, 9, 2400]), Path("x.png"), "state", "particles", "counts")
    scatter, bars = figures
    assert len(scatter.axes) == 2  # two panels, no colour bar
    assert [t.get_text() for t in scatter.axes[1].get_legend().get_texts()] == [f"state {i}" for i in range(4)]
    assert "9" in [t.get_text() for t in bars.axes[0].texts]


def test_map_projections_share_one_grey_scale(figures):
    maps = [np.zeros((8, 8, 8), np.float32), np.ones((8, 8, 8), np.float32)]
    maps[1][3:5, 3:5, 3:5] = 5.0
    plots.map_projections(maps, Path("x.png"), ["a", "b"], columns=2)
    (fig,) = figures
    limits = {image.get_clim() for ax in fig.axes for image in ax.get_images()}
    assert len(limits) == 1
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["along z", "along y", "along x"]
