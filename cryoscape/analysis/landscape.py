"""``landscape``: the volume space of a VAE run (thesis ch. 6; cryoDRGN's analyze_landscape and
analyze_landscape_full in one command).

1. Sketch: k-means of the latents with ``sketch_size`` clusters; a map at the particle nearest each
   centre (``kmeans/vol_###.mrc``, ``kmeans/labels.npy`` per particle, ``kmeans/vol_mean.mrc``).
2. Mask (``mask.mrc``, ``mask_slices.png``): a user mask, or the voxels above half the robust maximum
   in any sketch map, dilated (:func:`~cryoscape.analysis.volume_space.landscape_mask`).
3. PCA of the masked maps: ``vol_pca.npy`` (sketch coordinates), ``explained_variance.png``,
   ``vol_pca.png`` (PC1-2, PC2-3, coloured by state) and maps along the first eigen-volumes, from the
   sketch's minimum to maximum coordinate (``vol_pcs/pc1/vol_###.mrc`` ...).
4. States: agglomerative clustering of the masked maps; ``states/state_##_mean.mrc`` and ``_std.mrc``
   (weighted by particles), ``states/sketch_states.npy``, ``states/particle_states.npy`` (one state
   per particle: that of its sketch cluster), ``states/counts.png``, ``states/projections.png``.
5. Volume mapping: φ (an MLP) learns z -> volume-PC coordinates from the sketch maps plus
   ``n_train`` maps of randomly drawn particles; ``vol_pca_all.npy`` (every particle),
   ``landscape_density.png``, ``mapping.pt``.
Plus ``summary.txt`` and ``landscape.json``; for simulated data the two ends of PC1 and every state
mean are matched against the true maps.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from cryoscape.analysis import plots
from cryoscape.analysis.ground_truth import cluster_purity, find_truth, match_maps, truth_labels
from cryoscape.analysis.latent import first_two_columns, kmeans_clusters
from cryoscape.analysis.maps import decoded_maps, load_run_latents, load_vae, write_maps
from cryoscape.analysis.volume_space import (
    cluster_maps,
    landscape_mask,
    masked,
    state_maps,
    train_volume_mapping,
    volume_pca,
)
from cryoscape.errors import InputError
from cryoscape.imaging.fsc import fsc
from cryoscape.io.mrc import read_map, write_map
from cryoscape.io.staging import staged_folder

log = logging.getLogger("cryoscape")


@dataclass
class LandscapeOptions:
    """See the module docstring; ``downsample``: Fourier-crop maps to this box before the analysis."""

    sketch_size: int = 500
    downsample: int | None = None
    mask: str | None = None
    threshold_fraction: float = 0.5
    dilate: int = 5
    pc_dim: int = 20
    plot_dim: int = 3
    n_states: int = 10
    linkage: str = "average"
    n_train: int = 1000
    mapping_epochs: int = 50
    seed: int = 0
    map_batch: int = 4


def landscape_run(
    run: str | Path,
    outdir: str | Path | None = None,
    epoch: int | str = "latest",
    options: LandscapeOptions | None = None,
    *,
    particles=None,
    force: bool = False,
    device=None,
    progress: bool = True,
) -> Path:
    """Run the landscape analysis of a VAE run (module docstring); returns the output folder."""
    o = options or LandscapeOptions()
    run = Path(run)
    model, config, epoch = load_vae(run, epoch, device, "landscape")
    z = load_run_latents(run, config, epoch)
    if not 2 <= o.sketch_size <= len(z):
        raise InputError(
            f"the sketch size must be between 2 and the number of particles ({len(z)}), got {o.sketch_size}"
        )
    if not 1 <= o.n_states <= o.sketch_size:
        raise InputError(f"the number of states must be between 1 and the sketch size, got {o.n_states}")
    box = o.downsample or config.data.D
    apix = config.data.apix * config.data.D / box
    user_mask = _read_mask(o.mask, box) if o.mask else None
    outdir = Path(outdir) if outdir else run / f"landscape.{epoch}"
    started = time.perf_counter()
    summary: dict = {
        "run": str(run.resolve()),
        "epoch": epoch,
        "n_particles": len(z),
        "box": box,
        "apix": apix,
        "options": asdict(o),
    }
    with staged_folder(outdir, force) as out:
        # 1. sketch
        clusters = kmeans_clusters(z, o.sketch_size, o.seed)
        sketch = np.stack(
            write_maps(
                model,
                config,
                z[clusters.on_data],
                out / "kmeans",
                "sketch",
                o.map_batch,
                progress,
                o.downsample,
                picture=False,
            )
        )
        np.save(out / "kmeans" / "labels.npy", clusters.labels)
        np.savetxt(out / "kmeans" / "centers_ind.txt", clusters.on_data, fmt="%d")
        write_map(out / "kmeans" / "vol_mean.mrc", sketch.mean(0), apix)
        # 2. mask
        mask = user_mask if user_mask is not None else landscape_mask(sketch, o.threshold_fraction, dilate_px=o.dilate)
        write_map(out / "mask.mrc", mask.astype(np.float32), apix)
        plots.mask_slices(
            sketch.mean(0),
            mask,
            out / "mask_slices.png",
            f"mask: {int(mask.sum())} of {mask.size} voxels ({'user' if o.mask else 'automatic'})",
        )
        summary["mask_voxels"] = int(mask.sum())
        # 3. PCA
        vectors = masked(sketch, mask)
        pca = volume_pca(vectors, o.pc_dim)
        np.save(out / "vol_pca.npy", pca.coords.astype(np.float32))
        summary["explained_variance"] = pca.explained.tolist()
        plots.bar_chart(
            100 * pca.explained,
            out / "explained_variance.png",
            "volume principal component",
            "variance explained (%)",
            f"PCA of {len(sketch)} sketch maps",
            [str(i + 1) for i in range(len(pca.explained))],
        )
        ends = []
        for d in range(min(o.plot_dim, pca.coords.shape[1])):
            folder = out / "vol_pcs" / f"pc{d + 1}"
            folder.mkdir(parents=True)
            values = np.linspace(pca.coords[:, d].min(), pca.coords[:, d].max(), 10)
            series = []
            for i, value in enumerate(values):
                coords = np.zeros(pca.coords.shape[1])
                coords[d] = value
                series.append(pca.volume_at(coords, mask))
                write_map(folder / f"vol_{i:03d}.mrc", series[-1], apix)
            plots.map_projections(series, folder / "projections.png", [f"PC{d + 1} {i}" for i in range(10)])
            if d == 0:
                ends = [series[0], series[-1]]
        # 4. states
        states = cluster_maps(vectors, o.n_states, o.linkage)
        particle_states = states[clusters.labels]
        (out / "states").mkdir()
        np.save(out / "states" / "sketch_states.npy", states)
        np.save(out / "states" / "particle_states.npy", particle_states)
        means, stds = state_maps(sketch, states, clusters.counts, o.n_states)
        for s in range(o.n_states):
            write_map(out / "states" / f"state_{s:02d}_mean.mrc", means[s], apix)
            write_map(out / "states" / f"state_{s:02d}_std.mrc", stds[s], apix)
        plots.map_projections(
            list(means), out / "states" / "projections.png", [f"state {s}" for s in range(o.n_states)]
        )
        plots.bar_chart(
            np.bincount(particle_states, minlength=o.n_states),
            out / "states" / "counts.png",
            "state",
            "particles",
            f"particles per state ({o.linkage} linkage)",
        )
        plots.pair_scatter(
            pca.coords,
            states,
            out / "vol_pca.png",
            "volume PC",
            pca.explained,
            "sketch maps in volume-PC space",
            sizes=clusters.counts,
        )
        summary["states"] = [
            {"state": s, "maps": int(np.sum(states == s)), "particles": int(np.sum(particle_states == s))}
            for s in range(o.n_states)
        ]
        # 5. volume mapping
        rng = np.random.default_rng(o.seed)
        drawn = (
            np.sort(rng.choice(len(z), size=min(o.n_train, len(z)), replace=False))
            if o.n_train > 0
            else np.zeros(0, int)
        )
        extra = (
            [
                pca.transform(masked(m[None], mask))[0]
                for m in decoded_maps(model, config, z[drawn], o.map_batch, "mapping set", progress, o.downsample)
            ]
            if len(drawn)
            else []
        )
        pairs_z = np.concatenate([z[clusters.on_data], z[drawn]])
        pairs_v = np.concatenate([pca.coords, np.asarray(extra).reshape(-1, pca.coords.shape[1])])
        mapping = train_volume_mapping(pairs_z, pairs_v, epochs=o.mapping_epochs, seed=o.seed)
        landscape = mapping(z)
        np.save(out / "vol_pca_all.npy", landscape.astype(np.float32))
        torch.save(mapping.network.state_dict(), out / "mapping.pt")
        summary["mapping_validation_r2"] = mapping.validation_r2.tolist()
        axes = ("volume PC1", "volume PC2" if landscape.shape[1] > 1 else "(none)")
        plots.density(
            first_two_columns(landscape),
            out / "landscape_density.png",
            axes,
            f"all {len(z)} particles in volume-PC space",
        )
        truth = find_truth(config, particles)
        if truth is not None and len(truth.component) == len(z):
            summary["truth"] = _truth_view(truth, particle_states, ends, list(means), apix, box, config.data.D)
        summary["seconds"] = round(time.perf_counter() - started, 1)
        (out / "landscape.json").write_text(json.dumps(summary, indent=2))
        (out / "summary.txt").write_text(_summary_text(summary))
    log.info(
        "read %s (epoch %d, %d particles); wrote %s: %d sketch maps, %d states, volume PC1 %.1f%% of the "
        "variance, mapping R² %.2f on PC1, in %.0f s",
        run,
        epoch,
        len(z),
        outdir,
        o.sketch_size,
        o.n_states,
        100 * pca.explained[0],
        mapping.validation_r2[0],
        summary["seconds"],
    )
    return outdir


def _read_mask(path: str, box: int) -> np.ndarray:
    volume, _, _ = read_map(path)
    if volume.shape != (box,) * 3:
        raise InputError(f"the mask {path} is {volume.shape[0]}³, the maps are {box}³")
    mask = volume > 0.5
    if not mask.any():
        raise InputError(f"the mask {path} has no voxel above 0.5")
    return mask


def _truth_view(truth, particle_states, ends, means, apix, box, D) -> dict:
    """The true maps that the ends of PC1 and the state means match best (simulated data)."""
    if box != D:
        return {"note": "maps were downsampled; not compared with the ground truth"}
    true, kind = truth_labels(truth)
    component = 0 if kind == "conformation" else int(np.bincount(true[true >= 0]).argmax())
    references = truth.read_maps(component)
    view = {
        "component": truth.names[component],
        "pc1_ends": match_maps(ends, references, apix) if ends else [],
        "state_purity": cluster_purity(true, particle_states, len(means)),
    }
    for end, row in zip(ends, view["pc1_ends"]):
        row["auc_first"] = fsc(end, references[0], apix).auc()
        row["auc_last"] = fsc(end, references[-1], apix).auc()
    if kind == "component":
        view["state_maps"] = []
        for row, mean in zip(view["state_purity"], means):
            if row["majority"] >= 0:
                match = match_maps([mean], truth.read_maps(row["majority"]), apix)[0]
                view["state_maps"].append({"state": row["cluster"], "component": truth.names[row["majority"]], **match})
    return view


def _summary_text(summary: dict) -> str:
    lines = [
        f"cryoscape landscape: {summary['run']} (epoch {summary['epoch']}), {summary['n_particles']} particles",
        f"sketch: {summary['options']['sketch_size']} maps of {summary['box']}³ at {summary['apix']:.3f} Å/px; "
        f"mask: {summary['mask_voxels']} voxels",
        "volume PCA, variance explained: " + ", ".join(f"{100 * v:.1f}%" for v in summary["explained_variance"][:8]),
        "volume mapping, validation R² per PC: " + ", ".join(f"{v:.2f}" for v in summary["mapping_validation_r2"][:8]),
        "",
        "state  maps  particles",
    ]
    lines += [f"{s['state']:5d}  {s['maps']:4d}  {s['particles']:9d}" for s in summary["states"]]
    truth = summary.get("truth")
    if truth and "pc1_ends" in truth:
        for name, match in zip(("low", "high"), truth["pc1_ends"]):
            lines.append(
                f"PC1 {name} end matches true {truth['component']} #{match['reference']} best "
                f"(FSC area {match['auc']:.3f}, FSC=0.5 at {match['resolution_A']:.1f} Å); FSC area against "
                f"the first true map {match['auc_first']:.3f}, against the last {match['auc_last']:.3f}"
            )
    lines.append(f"landscape took {summary['seconds']} s")
    return "\n".join(lines) + "\n"
