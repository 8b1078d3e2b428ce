"""The analysis building blocks on synthetic data with known answers."""

import numpy as np
import pytest
import torch

from cryoscape.analysis import adjusted_rand_index
from cryoscape.analysis.latent import kmeans_clusters, latent_pca, pc_traversal, umap_embedding
from cryoscape.analysis.selection import combine, in_polygon
from cryoscape.analysis.trajectory import evenly_spaced, latent_path
from cryoscape.analysis.volume_space import (
    cluster_maps,
    landscape_mask,
    masked,
    state_maps,
    train_volume_mapping,
    volume_pca,
)
from cryoscape.errors import InputError, OverwriteError
from cryoscape.io.staging import staged_folder
from cryoscape.models.neural_field import NeuralField


def _line_of_blobs(n_per=300, seed=0):
    """Five Gaussian blobs along the first axis of an 8-D latent space."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((5, 8))
    centres[:, 0] = np.arange(5) * 4.0
    z = np.concatenate([c + rng.normal(scale=0.5, size=(n_per, 8)) for c in centres])
    return z, np.repeat(np.arange(5), n_per)


def test_kmeans_numbers_clusters_along_pc1_and_centres_are_particles():
    z, truth = _line_of_blobs()
    clusters = kmeans_clusters(z, 5, seed=0)
    assert adjusted_rand_index(truth, clusters.labels) > 0.99
    pc1 = latent_pca(z).coords[:, 0]
    assert np.all(np.diff([pc1[clusters.labels == k].mean() for k in range(5)]) > 0)  # ordered along PC1
    assert np.all(clusters.labels[clusters.on_data] == np.arange(5))
    np.testing.assert_array_equal(clusters.counts, np.bincount(clusters.labels))
    with pytest.raises(InputError):
        kmeans_clusters(z, 0)


def test_pca_orients_components_and_traversal_spans_percentiles():
    z, _ = _line_of_blobs()
    pca = latent_pca(z)
    assert pca.explained[0] > 0.8 and abs(pca.components[0, 0]) > 0.99
    np.testing.assert_allclose(pca.to_latent(pca.coords), z, atol=1e-8)
    flipped = latent_pca(-z)  # the sign rule is about the data's skew, so PC1 follows the data
    np.testing.assert_allclose(
        flipped.coords[:, 0], pca.coords[:, 0] * np.sign(flipped.coords[:, 0] @ pca.coords[:, 0])
    )
    path = pc_traversal(pca, 0, n=10)
    coords = (path - pca.mean) @ pca.components.T
    np.testing.assert_allclose(coords[[0, -1], 0], np.percentile(pca.coords[:, 0], [5, 95]))
    np.testing.assert_allclose(coords[:, 1:], 0, atol=1e-9)


def test_umap_separates_blobs():
    z, truth = _line_of_blobs(n_per=100)
    embedding = umap_embedding(z, seed=0)
    assert embedding.shape == (500, 2)
    labels = kmeans_clusters(embedding, 5).labels
    assert adjusted_rand_index(truth, labels) > 0.95


def test_graph_path_goes_around_a_gap_through_the_data():
    # Particles on a half circle: the shortest path on the data follows the arc, not the chord.
    angle = np.linspace(0, np.pi, 400)
    z = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    path = latent_path(z, 0, 399, neighbors=5)
    assert path[0] == 0 and path[-1] == 399 and np.all(np.diff(path) > 0)  # along the arc, in order
    assert np.linalg.norm(np.diff(z[path], axis=0), axis=1).sum() == pytest.approx(np.pi, rel=1e-3)
    chosen = evenly_spaced(z, path, 5)
    np.testing.assert_allclose(angle[chosen], np.linspace(0, np.pi, 5), atol=0.03)  # within a step of the path
    gapped = np.concatenate([z[:100], z[300:]])  # two pieces far apart for 2 neighbours
    with pytest.raises(InputError, match="not connected"):
        latent_path(gapped, 0, 199, neighbors=2, max_neighbors=50)


def test_graph_path_raises_the_neighbours_and_joins_equal_latents(caplog):
    """Near-disconnected graphs get more neighbours (with a warning), as do tied latents (as a
    low-precision encoder gives), which used to split the graph into pieces."""
    angle = np.linspace(0, np.pi, 400)
    z = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    gapped = np.concatenate([z[:100], z[300:]])
    caplog.set_level("WARNING", logger="cryoscape")
    path = latent_path(gapped, 0, 199, neighbors=2)
    assert path[0] == 0 and path[-1] == 199
    assert "used 128 neighbours instead" in caplog.text
    rng = np.random.default_rng(0)
    tied = np.round(np.sort(rng.normal(size=(3000, 1)), axis=0), 2)  # ~400 distinct values, up to ~25 ties
    assert len(np.unique(tied)) < 600
    path = latent_path(tied, 0, 2999, neighbors=10)  # groups of more than 10 equal latents need more
    assert path[0] == 0 and path[-1] == 2999
    assert np.all(np.diff(tied[path, 0]) >= 0)  # along the line, in order


def test_polygon_selection_and_empty_selection():
    coords = np.array([[0.5, 0.5], [2.0, 2.0], [0.1, 0.9]])
    inside = in_polygon(coords, np.array([[0, 0], [1, 0], [1, 1], [0, 1]]))
    np.testing.assert_array_equal(inside, [True, False, True])
    np.testing.assert_array_equal(combine([inside], 3, invert=True), [1])
    with pytest.raises(InputError, match="empty"):
        combine([np.zeros(3, bool)], 3)


def _blob(D, centre, sigma):
    k = np.arange(D) - D // 2
    z, y, x = np.meshgrid(k, k, k, indexing="ij")
    r2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2
    return np.exp(-r2 / (2 * sigma**2)).astype(np.float32)


def test_volume_space_recovers_a_moving_domain_and_two_states():
    # A fixed body plus a domain that slides along x: PC1 is the slide, two states are its two halves.
    D, rng = 24, np.random.default_rng(0)
    shifts = np.linspace(-4, 4, 40)
    maps = np.stack([_blob(D, (0, 0, 0), 3) + _blob(D, (s, 6, 0), 2.5) for s in shifts])
    maps += rng.normal(scale=0.02, size=maps.shape).astype(np.float32)
    mask = landscape_mask(maps, dilate_px=1)
    assert mask[D // 2, D // 2, D // 2] and not mask[0, 0, 0]
    vectors = masked(maps, mask)
    pca = volume_pca(vectors, 5)
    assert pca.explained[0] == max(pca.explained) and pca.explained[0] > 0.5
    assert abs(np.corrcoef(pca.coords[:, 0], shifts)[0, 1]) > 0.95
    # Add 10 maps without the domain (another composition): two states, the larger numbered 0.
    alone = np.stack([_blob(D, (0, 0, 0), 3)] * 10) + rng.normal(scale=0.02, size=(10, D, D, D)).astype(np.float32)
    every = np.concatenate([maps, alone])
    states = cluster_maps(masked(every, mask), 2, "average")
    np.testing.assert_array_equal(states, [0] * 40 + [1] * 10)
    weights = np.r_[np.ones(40), np.arange(1, 11)]
    means, stds = state_maps(every, states, weights, 2)
    np.testing.assert_allclose(means[1], np.average(alone, axis=0, weights=np.arange(1, 11)), atol=1e-5)
    assert stds.shape == means.shape and stds[1].max() < 0.1


def test_volume_mapping_learns_a_smooth_function():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 3))
    v = np.stack([np.sin(z[:, 0]) + z[:, 1], z[:, 2] ** 2], axis=1)
    mapping = train_volume_mapping(z, v, epochs=60, width=64, depth=2)
    assert np.all(mapping.validation_r2 > 0.9)
    assert mapping(z[:5]).shape == (5, 2)


def test_batched_maps_equal_maps_one_at_a_time():
    field = NeuralField(16, zdim=2, width=32, depth=1, seed=0)
    z = torch.randn(3, 2)
    together = field.volumes(z, chunk=1000)
    for i in range(3):
        torch.testing.assert_close(together[i], field.volume(z[i]), atol=1e-6, rtol=1e-5)


def test_staged_folder_replaces_only_on_success(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with staged_folder(target) as out:
            (out / "partial.txt").write_text("x")
            raise RuntimeError("stop")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with staged_folder(target) as out:
        (out / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(OverwriteError):
        with staged_folder(target):
            pass
    with staged_folder(target, force=True) as out:
        (out / "b.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
