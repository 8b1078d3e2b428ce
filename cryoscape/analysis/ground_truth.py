"""The ground truth of a run trained on a ``cryoscape simulate`` dataset, and scores against it.

A simulated dataset's folder holds ``labels.npz`` (component and conformation of every particle,
−1 for junk) and ``simulation.json`` (the ground-truth maps ``gt/*.mrc``, component by component,
conformations in order). A run records the particle file and index file it was trained on
(``config.json``: ``particles``, ``ind``), so its particles' truth is found without being asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from cryoscape.analysis.clustering_metrics import adjusted_rand_index
from cryoscape.analysis.fsc import per_image_fsc
from cryoscape.errors import InputError
from cryoscape.imaging.fsc import centred_transform, fsc_of_transforms
from cryoscape.inference.run_config import RunConfig
from cryoscape.io.mrc import read_map
from cryoscape.io.selection import read_selection


@dataclass
class SimulationTruth:
    """Per-particle truth of a run's particles (run order): ``component`` and ``conformation``
    (N,) (−1 for junk); ``names`` of the components; ``maps[c][k]`` the path of the map of component c
    in conformation k."""

    folder: Path
    component: np.ndarray
    conformation: np.ndarray
    names: list[str]
    maps: list[list[Path]]

    @property
    def n_conformations(self) -> list[int]:
        return [len(m) for m in self.maps]

    @property
    def map_index(self) -> np.ndarray:
        """(N,) index of each particle's true map in :attr:`all_maps`, −1 for junk."""
        offsets = np.cumsum([0] + self.n_conformations[:-1])
        return np.where(self.component >= 0, offsets[np.maximum(self.component, 0)] + self.conformation, -1)

    @property
    def all_maps(self) -> list[Path]:
        """Paths of every true map, component by component, conformations in order."""
        return [p for maps in self.maps for p in maps]

    def of_class(self, members: np.ndarray) -> tuple[SimulationTruth, float]:
        """(the truth of the particles ``members`` (N,) bool as one component: the one most of them
        come from, the others junk (−1); the fraction of ``members`` from that component). For the
        particles of one class of a mixture run (analyze --class)."""
        component = self.component[members]
        if not (component >= 0).any():
            raise InputError("no particle of this class is a simulated particle (they are all junk)")
        majority = int(np.bincount(component[component >= 0]).argmax())
        mine = component == majority
        truth = SimulationTruth(
            self.folder,
            np.where(mine, 0, -1),
            np.where(mine, self.conformation[members], -1),
            [self.names[majority]],
            [self.maps[majority]],
        )
        return truth, float(mine.mean())

    def read_maps(self, component: int) -> np.ndarray:
        """(K, D, D, D) ground-truth maps of ``component``, conformation order."""
        return np.stack([read_map(p)[0] for p in self.maps[component]])


def find_truth(config: RunConfig, particles: str | Path | None = None) -> SimulationTruth | None:
    """The truth of a run's particles if they come from ``cryoscape simulate`` (``particles``
    overrides the run's recorded particle file); None otherwise."""
    data = config.data
    source = Path(particles) if particles else Path(data.particles) if data.particles else None
    if source is None:
        return None
    folder = source.parent
    if not (folder / "labels.npz").exists() or not (folder / "simulation.json").exists():
        return None
    with np.load(folder / "labels.npz") as saved:
        component, conformation = saved["component"], saved["conformation"]
    summary = json.loads((folder / "simulation.json").read_text())
    if data.ind:
        index = read_selection(Path(data.ind), len(component))
        component, conformation = component[index], conformation[index]
    if len(component) != data.n_particles:
        raise InputError(f"{folder}/labels.npz has {len(component)} particles, the run {data.n_particles}")
    maps, start = [], 0
    for comp in summary["components"]:
        n = comp["n_conformations"]
        maps.append([folder / p for p in summary["ground_truth_maps"][start : start + n]])
        start += n
    return SimulationTruth(folder, component, conformation, [c["name"] for c in summary["components"]], maps)


def truth_labels(truth: SimulationTruth) -> tuple[np.ndarray, str]:
    """The labels that clusters should recover: components if there are several, else conformations."""
    if len(truth.names) > 1:
        return truth.component, "component"
    return truth.conformation, "conformation"


def cluster_purity(true: np.ndarray, labels: np.ndarray, k: int) -> list[dict]:
    """Per cluster: size, majority true label, the fraction of the cluster that carries it, and the
    mean and standard deviation of the true labels (meaningful for ordered conformations)."""
    rows = []
    for c in range(k):
        members = true[labels == c]
        if len(members) == 0:
            rows.append(
                {
                    "cluster": c,
                    "size": 0,
                    "majority": -1,
                    "purity": float("nan"),
                    "mean": float("nan"),
                    "std": float("nan"),
                }
            )
            continue
        values, counts = np.unique(members, return_counts=True)
        rows.append(
            {
                "cluster": c,
                "size": int(len(members)),
                "majority": int(values[np.argmax(counts)]),
                "purity": float(counts.max() / len(members)),
                "mean": float(members.mean()),
                "std": float(members.std()),
            }
        )
    return rows


def match_maps(maps: list[np.ndarray], references: np.ndarray, apix: float) -> list[dict]:
    """For each map, the reference (K, D, D, D) it agrees with best (largest area under the FSC):
    its index, the FSC area and the FSC=0.5 resolution (Å)."""
    ref_ft = [centred_transform(r) for r in references]
    rows = []
    for volume in maps:
        ft = centred_transform(volume)
        curves = [fsc_of_transforms(ft, r, apix) for r in ref_ft]
        best = int(np.argmax([c.auc() for c in curves]))
        rows.append({"reference": best, "auc": curves[best].auc(), "resolution_A": curves[best].resolution_A(0.5)})
    return rows


def per_image_summary(truth: SimulationTruth, z: np.ndarray, maps_of, n: int, apix: float, seed: int = 0) -> dict:
    """FSC of the map at each of ``n`` randomly drawn (non-junk) particles' latents against that
    particle's true map: mean FSC area and mean and median FSC=0.5 resolution (Å). ``maps_of(z)``
    yields the maps of latents (m, zdim)."""
    real = np.nonzero(truth.map_index >= 0)[0]
    sample = np.sort(np.random.default_rng(seed).choice(real, size=min(n, len(real)), replace=False))
    needed, which = np.unique(truth.map_index[sample], return_inverse=True)
    paths = truth.all_maps
    references = np.stack([read_map(paths[k])[0] for k in needed])
    maps = list(maps_of(z[sample]))
    scores = per_image_fsc(lambda i: maps[i], references, which, apix=apix)
    return {
        "n": int(len(sample)),
        "mean_auc": float(scores["auc"].mean()),
        "mean_resolution_A": float(scores["resolution_A"].mean()),
        "median_resolution_A": float(np.median(scores["resolution_A"])),
    }


def clustering_scores(truth: SimulationTruth, labels: np.ndarray, pc1: np.ndarray) -> dict:
    """Against discrete truth (the components of a mixture): the ARI of the clusters. Against the
    conformations of a single component (frames of a continuous motion, where cutting the motion
    into clusters at other places than the frames is no error, so an ARI means nothing):
    |Spearman| between the particles' PC1 and their true frame (does the latent order the motion?)."""
    true, kind = truth_labels(truth)
    real = true >= 0
    if kind == "conformation":
        if np.ptp(true[real]) == 0:  # one conformation: nothing to order
            return {"against": kind}
        return {"against": kind, "spearman_pc1": float(abs(spearmanr(pc1[real], true[real]).statistic))}
    return {"against": kind, "ari": adjusted_rand_index(true[real], labels[real])}
