"""Volume-space analysis of a set of maps (the thesis's landscape analysis, ch. 6): a mask of the
voxels that carry density, PCA of the masked maps (eigen-volumes), agglomerative clustering of maps
into states, and a small network that maps latents to volume-PC coordinates.

Maps are (K, D, D, D) float32 arrays in the data's units; masked maps are (K, n_voxels) with
negative values clipped to 0 (as cryoDRGN does, so that noise below the solvent level adds no variance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from sklearn.cluster import AgglomerativeClustering
from sklearn.decomposition import PCA

from cryoscape.errors import InputError
from cryoscape.models.mlp import ResidualMLP


def landscape_mask(
    maps: np.ndarray, fraction: float = 0.5, percentile: float = 99.99, dilate_px: int = 5
) -> np.ndarray:
    """Boolean (D, D, D) mask: the voxels above ``fraction`` × (mean over the maps of each map's
    ``percentile``-th percentile, a robust maximum) in ANY map, each map's region dilated by
    ``dilate_px`` voxels (the union of the regions that carry density; thesis §6.2.4, cryoDRGN's rule)."""
    if not 0 < fraction < 1:
        raise InputError(f"the mask threshold fraction must be in (0, 1), got {fraction}")
    threshold = fraction * float(np.mean([np.percentile(m, percentile) for m in maps]))
    mask = np.zeros(maps.shape[1:], dtype=bool)
    for m in maps:
        region = m > threshold
        mask |= ndimage.binary_dilation(region, iterations=dilate_px) if dilate_px > 0 else region
    if not mask.any():
        raise InputError("the landscape mask is empty: no map has density above the threshold")
    return mask


def masked(maps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(K, n_voxels) float32 of the masked maps, negative values set to 0."""
    return np.clip(np.asarray(maps)[:, mask], 0, None).astype(np.float32)


@dataclass
class VolumePCA:
    """PCA of masked maps: ``mean`` (n_voxels,), ``components`` (L, n_voxels), ``explained`` (L,)
    fractions of variance, ``coords`` (K, L) of the fitted maps."""

    mean: np.ndarray
    components: np.ndarray
    explained: np.ndarray
    coords: np.ndarray

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        return (np.asarray(vectors, dtype=np.float64) - self.mean) @ self.components.T

    def volume_at(self, coords: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The (D, D, D) map at volume-PC coordinates ``coords`` (L,) (zero outside the mask)."""
        out = np.zeros(mask.shape, dtype=np.float32)
        out[mask] = self.mean + np.asarray(coords) @ self.components
        return out


def volume_pca(vectors: np.ndarray, n: int = 20) -> VolumePCA:
    """PCA of masked maps (K, n_voxels) with min(n, K − 1) components; each component's sign makes
    the maps' coordinates skewed positive, so that repeated runs agree."""
    n = min(n, len(vectors) - 1)
    if n < 1:
        raise InputError("volume PCA needs at least 2 maps")
    fit = PCA(
        n_components=n, svd_solver="randomized" if vectors.shape[1] > 4 * len(vectors) else "full", random_state=0
    ).fit(vectors)
    coords = fit.transform(vectors)
    sign = np.where(np.mean(coords**3, axis=0) < 0, -1.0, 1.0)
    return VolumePCA(fit.mean_, fit.components_ * sign[:, None], fit.explained_variance_ratio_, coords * sign)


def cluster_maps(vectors: np.ndarray, n_states: int, linkage: str = "average") -> np.ndarray:
    """Agglomerative clustering of masked maps (K, n_voxels), Euclidean distance, into ``n_states``
    states (thesis §6.2.6: average linkage, M = 10); returns (K,) state labels numbered by size, 0
    the largest."""
    if not 1 <= n_states <= len(vectors):
        raise InputError(
            f"the number of states must be between 1 and the number of maps ({len(vectors)}), got {n_states}"
        )
    if linkage not in ("average", "complete", "single", "ward"):
        raise InputError(f"unknown linkage {linkage!r}: average, complete, single or ward")
    labels = AgglomerativeClustering(n_clusters=n_states, linkage=linkage).fit_predict(vectors)
    order = np.argsort(-np.bincount(labels, minlength=n_states), kind="stable")
    rank = np.empty(n_states, dtype=np.int64)
    rank[order] = np.arange(n_states)
    return rank[labels]


def state_maps(
    maps: np.ndarray, states: np.ndarray, weights: np.ndarray, n_states: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (n_states, D, D, D) of the maps of each state, each map weighted by
    its number of particles (``weights``)."""
    means, stds = [], []
    for s in range(n_states):
        members = states == s
        w = np.asarray(weights[members], dtype=np.float64)
        w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1 / len(w))
        mean = np.tensordot(w, maps[members], axes=1)
        var = np.tensordot(w, (maps[members] - mean) ** 2, axes=1)
        means.append(mean.astype(np.float32))
        stds.append(np.sqrt(var).astype(np.float32))
    return np.stack(means), np.stack(stds)


@dataclass
class VolumeMapping:
    """φ: z -> volume-PC coordinates (a residual MLP), with its validation score."""

    network: ResidualMLP
    z_mean: np.ndarray
    z_scale: np.ndarray
    v_scale: np.ndarray
    validation_r2: np.ndarray

    @torch.no_grad()
    def __call__(self, z: np.ndarray, batch: int = 65536) -> np.ndarray:
        x = torch.from_numpy(((np.asarray(z) - self.z_mean) / self.z_scale).astype(np.float32))
        out = [self.network(x[s : s + batch]) for s in range(0, len(x), batch)]
        return torch.cat(out).numpy() * self.v_scale


def train_volume_mapping(
    z: np.ndarray,
    v: np.ndarray,
    epochs: int = 50,
    batch: int = 64,
    lr: float = 1e-3,
    width: int = 256,
    depth: int = 3,
    seed: int = 0,
) -> VolumeMapping:
    """Fit φ on pairs (z (M, zdim), v (M, L)) with a 3:1 train/validation split, Adam and MSE on
    standardized inputs and outputs (thesis §6.2.5: 50 epochs, batch 64, lr 1e-3); the weights of the
    epoch with the lowest validation loss are kept. ``validation_r2`` (L,): the fraction of each
    coordinate's variance explained on the held-out quarter."""
    if len(z) < 8:
        raise InputError(f"the volume mapping needs at least 8 (latent, map) pairs, got {len(z)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(z))
    n_val = max(2, len(z) // 4)
    val, train = order[:n_val], order[n_val:]
    z_mean, z_scale = z[train].mean(0), z[train].std(0) + 1e-8
    v_scale = v[train].std(0) + 1e-8
    x = torch.from_numpy(((z - z_mean) / z_scale).astype(np.float32))
    y = torch.from_numpy((v / v_scale).astype(np.float32))
    torch.manual_seed(seed)
    network = ResidualMLP(z.shape[1], width, depth, v.shape[1])
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    best, best_state = float("inf"), None
    for _ in range(epochs):
        network.train()
        perm = torch.from_numpy(train)[torch.randperm(len(train), generator=generator)]
        for s in range(0, len(perm), batch):
            idx = perm[s : s + batch]
            loss = torch.mean((network(x[idx]) - y[idx]) ** 2)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        network.eval()
        with torch.no_grad():
            val_loss = float(torch.mean((network(x[val]) - y[val]) ** 2))
        if val_loss < best:
            best, best_state = val_loss, {k: t.clone() for k, t in network.state_dict().items()}
    if best_state is None:
        raise InputError("the latent-to-volume mapping gave no finite validation loss; check the maps for NaN")
    network.load_state_dict(best_state)
    mapping = VolumeMapping(network.eval(), z_mean, z_scale, v_scale, np.zeros(v.shape[1]))
    predicted, truth = mapping(z[val]), v[val]
    mapping.validation_r2 = 1 - ((predicted - truth) ** 2).sum(0) / (((truth - truth.mean(0)) ** 2).sum(0) + 1e-12)
    return mapping
