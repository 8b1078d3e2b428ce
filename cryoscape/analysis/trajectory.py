"""Paths through the latent space that stay on the data: the shortest path between two particles on
a k-nearest-neighbour graph of the particles' latents (edges weighted by Euclidean distance), and
points evenly spaced along it by arc length, each a real particle (cryoDRGN's graph traversal)."""

from __future__ import annotations

import logging

import numpy as np
from scipy.sparse.csgraph import dijkstra
from sklearn.neighbors import kneighbors_graph

from cryoscape.analysis.latent import check_latents
from cryoscape.errors import InputError

log = logging.getLogger("cryoscape")


def latent_path(z: np.ndarray, start: int, end: int, neighbors: int = 10, max_neighbors: int = 200) -> np.ndarray:
    """Particle indices along the shortest path from particle ``start`` to ``end`` on the symmetric
    ``neighbors``-nearest-neighbour graph of ``z`` (N, zdim). Particles with equal latents are joined
    (an edge of length ~0). Where the two are not connected, the number of neighbours is doubled, up
    to ``max_neighbors``, with a warning that says so; InputError if they are not connected even then."""
    z = check_latents(z)
    n = len(z)
    for name, i in (("start", start), ("end", end)):
        if not 0 <= i < n:
            raise InputError(f"{name} particle {i} is out of range for {n} particles")
    if neighbors < 1 or neighbors >= n:
        raise InputError(f"--neighbors must be between 1 and {n - 1}, got {neighbors}")
    k = neighbors
    while True:
        distance, previous = _shortest_paths(z, start, k)
        if np.isfinite(distance[end]):
            break
        if k >= min(n - 1, max_neighbors):
            raise InputError(
                f"particles {start} and {end} are not connected on the {k}-nearest-neighbour graph of the "
                "latents: they lie in separate groups of particles; choose particles of one group"
            )
        k = min(2 * k, n - 1, max_neighbors)
    if k != neighbors:
        log.warning(
            "particles %d and %d are not connected on the %d-nearest-neighbour graph of the latents; "
            "used %d neighbours instead",
            start,
            end,
            neighbors,
            k,
        )
    path = [end]
    while path[-1] != start:
        path.append(int(previous[path[-1]]))
    return np.asarray(path[::-1], dtype=np.int64)


def _shortest_paths(z: np.ndarray, start: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Dijkstra distances and predecessors from ``start`` on the symmetric k-NN graph of ``z``."""
    graph = kneighbors_graph(z, k, mode="distance")
    # equal latents are at distance 0, which a sparse graph would read as no edge
    graph.data = graph.data + 1e-9 * max(float(graph.data.mean()) if graph.nnz else 0.0, 1e-12)
    graph = graph.maximum(graph.T)
    return dijkstra(graph, directed=False, indices=start, return_predecessors=True)


def evenly_spaced(z: np.ndarray, path: np.ndarray, n: int) -> np.ndarray:
    """``n`` particles of ``path`` (first and last included) spaced as evenly as possible by the
    path's arc length in latent space."""
    if n < 2:
        raise InputError(f"a trajectory needs at least 2 maps, got {n}")
    z = check_latents(z)
    steps = np.linalg.norm(np.diff(z[path], axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    targets = np.linspace(0.0, arc[-1], n)
    return path[np.abs(arc[None, :] - targets[:, None]).argmin(axis=1)]


def chimerax_movie_script(n_maps: int, level: float | None = None) -> str:
    """ChimeraX commands (a .cxc next to the maps) that open vol_000.mrc ... as one volume series and
    play it back and forth; commented lines record it as a movie."""
    lines = [
        "# cryoscape trajectory: open the maps as a volume series and play it back and forth.",
        "# Run in ChimeraX from this folder:  open movie.cxc",
        "open vol_*.mrc vseries true",
    ]
    if level is not None:
        lines.append(f"volume #1 level {level:.4g} style surface")
    lines += [
        "view",
        f"vseries play #1 loop true direction oscillate maxFrameRate {min(10, max(2, n_maps // 2))}",
        "# to record a movie instead, replace the line above with:",
        "# movie record; vseries play #1 direction forward; wait 100; movie encode trajectory.mp4",
    ]
    return "\n".join(lines) + "\n"
