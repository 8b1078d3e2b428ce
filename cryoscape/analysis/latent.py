"""Latent-space analysis of a VAE run: PCA, UMAP, k-means with on-data centres, PC traversals.

Latents ``z`` are the per-particle posterior means (N, zdim), input order. Everything is
deterministic for a given ``seed``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from cryoscape.errors import InputError


@dataclass
class LatentPCA:
    """Principal components of the latents: ``coords`` (N, n) in the order of decreasing variance,
    ``components`` (n, zdim) unit vectors, ``mean`` (zdim,), ``explained`` (n,) fractions of variance."""

    coords: np.ndarray
    components: np.ndarray
    mean: np.ndarray
    explained: np.ndarray

    def to_latent(self, coords: np.ndarray) -> np.ndarray:
        """Latents (M, zdim) at PC coordinates (M, n)."""
        return self.mean + np.asarray(coords) @ self.components


def check_latents(z: np.ndarray, what: str = "latents") -> np.ndarray:
    """``z`` as float64 (N, zdim), refusing empty or non-finite input."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2 or len(z) == 0:
        raise InputError(f"{what}: expected an (N, zdim) array of latent means, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise InputError(f"{what} hold non-finite values (NaN or inf); the run may have diverged")
    return z


def first_two_columns(coords: np.ndarray) -> np.ndarray:
    """The first two columns of ``coords`` (N, d), a zero column added when d is 1 (for 2-D plots)."""
    coords = np.asarray(coords)
    return coords[:, :2] if coords.shape[1] >= 2 else np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))


def latent_pca(z: np.ndarray, n: int | None = None) -> LatentPCA:
    """PCA of ``z`` (N, zdim) with ``n`` components (default all, at most zdim)."""
    z = check_latents(z)
    n = min(z.shape[1], len(z), n or z.shape[1])
    fit = PCA(n_components=n, svd_solver="full").fit(z)
    components = fit.components_.copy()
    # Sign convention: each component points to where the particles' coordinates are skewed, so
    # repeated runs give the same orientation; components are unit vectors in latent space.
    coords = (z - fit.mean_) @ components.T
    sign = np.where(np.mean(coords**3, axis=0) < 0, -1.0, 1.0)
    return LatentPCA(coords * sign, components * sign[:, None], fit.mean_, fit.explained_variance_ratio_)


def umap_embedding(z: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """2-D UMAP of ``z`` (N, zdim) -> (N, 2) (umap-learn; zdim 1 or 2 is returned as is, padded).

    The neighbour graph is computed exactly by scikit-learn (a k-d tree: fast in a latent space of
    a few dimensions) and handed to umap-learn, which then skips its approximate search; that
    search's just-in-time compilation took most of UMAP's time (36 s -> 11 s on 20k particles)."""
    z = check_latents(z)
    if z.shape[1] <= 2:
        return first_two_columns(z)
    if len(z) <= n_neighbors + 1:
        raise InputError(f"UMAP needs more than {n_neighbors + 1} particles, got {len(z)}")
    import umap  # noqa: PLC0415  (slow to import: only when asked for)
    from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415

    z = z.astype(np.float32)
    distances, indices = NearestNeighbors(n_neighbors=n_neighbors).fit(z).kneighbors(z)
    with warnings.catch_warnings():  # "transform unavailable": we never embed new points with it
        warnings.filterwarnings("ignore", message="precomputed_knn", category=UserWarning)
        return umap.UMAP(
            n_neighbors=n_neighbors, random_state=seed, n_jobs=1, precomputed_knn=(indices, distances, None)
        ).fit_transform(z)


@dataclass
class Clusters:
    """k-means of the latents. ``labels`` (N,) in 0..k-1, numbered along PC1 of the centres (0 at the
    low end); ``centers`` (k, zdim) the k-means means; ``on_data`` (k,) the particle nearest each
    centre, whose latent ``z[on_data]`` a cluster's map is generated at (cryoDRGN's on-data sampling)."""

    labels: np.ndarray
    centers: np.ndarray
    on_data: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.centers))


def kmeans_clusters(z: np.ndarray, k: int, seed: int = 0, pca: LatentPCA | None = None) -> Clusters:
    """k-means with ``k`` clusters (k-means++, 4 restarts), numbered along PC1 (see :class:`Clusters`)."""
    z = check_latents(z)
    if k < 1:
        raise InputError(f"the number of clusters must be at least 1, got {k}")
    if k > len(z):
        raise InputError(f"asked for {k} clusters of {len(z)} particles")
    fit = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(z)
    pca = pca or latent_pca(z, 1)
    order = np.argsort((fit.cluster_centers_ - pca.mean) @ pca.components[0], kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    centers = fit.cluster_centers_[order]
    return Clusters(rank[fit.labels_], centers, nearest_particles(z, centers))


def nearest_particles(z: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Index of the particle whose latent is nearest (Euclidean) each of ``points`` (M, zdim)."""
    return cKDTree(check_latents(z)).query(np.asarray(points, dtype=np.float64).reshape(-1, z.shape[1]))[1]


def pc_traversal(pca: LatentPCA, dim: int, n: int = 10, low: float = 5.0, high: float = 95.0) -> np.ndarray:
    """``n`` latents (n, zdim) along principal component ``dim`` (0-based), evenly spaced from its
    ``low`` to its ``high`` percentile of the particles, the other components at their mean (cryoDRGN's
    PC trajectories)."""
    if not 0 <= dim < pca.coords.shape[1]:
        raise InputError(f"principal component {dim + 1} does not exist (the latents have {pca.coords.shape[1]})")
    lo, hi = np.percentile(pca.coords[:, dim], [low, high])
    coords = np.zeros((n, pca.coords.shape[1]))
    coords[:, dim] = np.linspace(lo, hi, n)
    return pca.to_latent(coords)
