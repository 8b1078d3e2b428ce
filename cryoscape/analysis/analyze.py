"""``analyze``: the latent space of a VAE run, in pictures and maps (cryoDRGN's analyze, extended).

Writes into one folder: PCA of the latent means (``z_pca.npy``, ``pca.png``, ``explained_variance.png``),
a 2-D UMAP (``umap.npy``, ``umap.png``), k-means (``kmeans_labels.npy``: one label per particle, input
order, clusters numbered along PC1; ``kmeans_centers.txt``: the latent of the particle nearest each
centre; ``kmeans_centers_ind.txt``: that particle's index; ``cluster_sizes.png``), a map per cluster
at its on-data centre (``kmeans/vol_000.mrc`` ...), maps along the first principal components
(``pc1/vol_000.mrc`` ...), projections of all maps (``*/projections.png``), ``summary.txt`` and
``analysis.json``. When the particles were simulated by cryoscape, also the ground truth: latents
coloured by the true conformation or component, per-cluster purity, the ARI of the clusters, the
FSC of every cluster map against its best-matching true map, and the per-image FSC of the maps of
randomly drawn particles against their own true maps.

For a mixture run (train-mix), one class at a time: its particles (RUN/class.EPOCH.npy) and its map,
scored against the component most of them come from.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryoscape.analysis import plots
from cryoscape.analysis.ground_truth import (
    SimulationTruth,
    cluster_purity,
    clustering_scores,
    find_truth,
    match_maps,
    per_image_summary,
    truth_labels,
)
from cryoscape.analysis.latent import kmeans_clusters, latent_pca, pc_traversal, umap_embedding
from cryoscape.analysis.maps import class_of_run, decoded_maps, load_run_latents, load_vae, write_maps
from cryoscape.errors import InputError
from cryoscape.io.staging import staged_folder

log = logging.getLogger("cryoscape")


@dataclass
class AnalyzeOptions:
    """``ksample`` clusters; maps along the first ``n_pcs`` PCs, ``n_per_pc`` each (5th to 95th
    percentile); ``umap`` on or off; ``map_batch`` maps decoded per network pass; ``truth_images``
    particles whose maps are compared with their true maps (simulated data only); ``class_id``: the
    class of a mixture run."""

    ksample: int = 20
    n_pcs: int = 2
    n_per_pc: int = 10
    umap: bool = True
    seed: int = 0
    map_batch: int = 4
    truth_images: int = 50
    class_id: int | None = None


def analyze_run(
    run: str | Path,
    outdir: str | Path | None = None,
    epoch: int | str = "latest",
    options: AnalyzeOptions | None = None,
    *,
    z_file=None,
    particles=None,
    force: bool = False,
    device=None,
    progress: bool = True,
) -> Path:
    """Analyse a VAE run (see the module docstring); returns the analysis folder."""
    options = options or AnalyzeOptions()
    run = Path(run)
    if options.n_pcs < 0 or options.n_per_pc < 1:
        raise InputError("--pc must be >= 0 and --n-per-pc >= 1")
    model, config, epoch = load_vae(run, epoch, device, "analyze")
    z = load_run_latents(run, config, epoch, z_file)
    truth = None if z_file and not particles else find_truth(config, particles)
    if truth is not None and len(truth.component) != len(z):
        log.warning(
            "ground truth of %s has %d particles, the latents %d: not used", truth.folder, len(truth.component), len(z)
        )
        truth = None
    purity, rows = None, np.arange(len(z))  # rows: the input row of each analysed particle
    if model.n_classes or options.class_id is not None:
        model, members = class_of_run(run, model, config, epoch, options.class_id)
        z, rows = z[members], np.nonzero(members)[0]
        if truth is not None:
            truth, purity = truth.of_class(members)
        log.info("class %d: %d of %d particles (RUN/class.%d.npy)", options.class_id, len(z), len(members), epoch)
    suffix = "" if options.class_id is None else f".class{options.class_id}"
    outdir = Path(outdir) if outdir else run / f"analyze.{epoch}{suffix}"
    started = time.perf_counter()
    summary: dict = {
        "run": str(run.resolve()),
        "epoch": epoch,
        "n_particles": len(z),
        "zdim": int(z.shape[1]),
        **({"class": options.class_id} if options.class_id is not None else {}),
        "latents": str(Path(z_file).resolve()) if z_file else str((run / f"z.{epoch}.npy").resolve()),
    }
    with staged_folder(outdir, force) as out:
        pca = latent_pca(z)
        np.save(out / "z_pca.npy", pca.coords.astype(np.float32))
        summary["explained_variance"] = pca.explained.tolist()
        clusters = kmeans_clusters(z, options.ksample, options.seed, pca)
        np.save(out / "kmeans_labels.npy", clusters.labels)
        np.savetxt(out / "kmeans_centers.txt", z[clusters.on_data], fmt="%.6g")
        np.savetxt(out / "kmeans_centers_ind.txt", rows[clusters.on_data], fmt="%d")
        pc2 = pca.coords[:, :2]  # (N, 1) for a 1-D latent: its plots are histograms along z
        plots.embedding_figure(pc2, out / "pca.png", ("PC1", "PC2"), "PCA", clusters.labels, pc2[clusters.on_data])
        if len(pca.explained) > 1:
            plots.bar_chart(
                100 * pca.explained,
                out / "explained_variance.png",
                "principal component",
                "variance explained (%)",
                "PCA of the latent means",
                [str(i + 1) for i in range(len(pca.explained))],
            )
        plots.bar_chart(
            clusters.counts,
            out / "cluster_sizes.png",
            "cluster (ordered along PC1)",
            "particles",
            f"k-means, k={options.ksample}",
        )
        embedding = None
        if options.umap and z.shape[1] > 1:  # a UMAP of a 1-D latent would be the latent itself
            t0 = time.perf_counter()
            embedding = umap_embedding(z, options.seed)
            if z.shape[1] > 2:  # zdim 1 or 2: the "embedding" is the latents themselves
                summary["umap_seconds"] = round(time.perf_counter() - t0, 1)
            np.save(out / "umap.npy", embedding.astype(np.float32))
            plots.embedding_figure(
                embedding, out / "umap.png", ("UMAP1", "UMAP2"), "UMAP", clusters.labels, embedding[clusters.on_data]
            )
        cluster_maps = write_maps(
            model, config, z[clusters.on_data], out / "kmeans", "cluster", options.map_batch, progress
        )
        for d in range(min(options.n_pcs, z.shape[1])):
            write_maps(
                model,
                config,
                pc_traversal(pca, d, options.n_per_pc),
                out / f"pc{d + 1}",
                f"PC{d + 1}",
                options.map_batch,
                progress,
            )
        summary["clusters"] = [
            {"cluster": k, "size": int(n), "center_particle": int(rows[i]), "pc1": float(pca.coords[i, 0])}
            for k, (n, i) in enumerate(zip(clusters.counts, clusters.on_data))
        ]
        if truth is not None:
            summary["truth"] = _truth_view(truth, clusters.labels, cluster_maps, config.data.apix, pc2, embedding, out)
            if purity is not None:
                summary["truth"]["class_purity"] = {"component": truth.names[0], "fraction": purity}
            if options.truth_images > 0:
                summary["truth"]["per_image"] = per_image_summary(
                    truth,
                    z,
                    lambda zs: decoded_maps(model, config, zs, options.map_batch, "truth", progress),
                    options.truth_images,
                    config.data.apix,
                    options.seed,
                )
        summary["seconds"] = round(time.perf_counter() - started, 1)
        (out / "analysis.json").write_text(json.dumps(summary, indent=2))
        (out / "summary.txt").write_text(summary_text(summary))
    log.info(
        "read %s (epoch %d, %d particles, zdim %d); wrote %s (%d clusters, %d traversals) in %.0f s",
        summary["latents"],
        epoch,
        len(z),
        z.shape[1],
        outdir,
        options.ksample,
        min(options.n_pcs, z.shape[1]),
        summary["seconds"],
    )
    return outdir


def _truth_view(
    truth: SimulationTruth,
    labels: np.ndarray,
    cluster_maps: list[np.ndarray],
    apix: float,
    pc2: np.ndarray,
    embedding: np.ndarray | None,
    out: Path,
) -> dict:
    """Ground-truth plots and scores (see the module docstring)."""
    true, kind = truth_labels(truth)
    k = len(cluster_maps)
    for coords, name, axes in ((pc2, "pca", ("PC1", "PC2")), (embedding, "umap", ("UMAP1", "UMAP2"))):
        if coords is not None:
            plots.colored_embedding(
                coords,
                true,
                out / f"truth_{name}.png",
                axes,
                f"{name.upper()} coloured by true {kind}",
                f"true {kind}",
                categorical=kind == "component",
            )
    purity = cluster_purity(true, labels, k)
    view = {"folder": str(truth.folder), "purity": purity, **clustering_scores(truth, labels, pc2[:, 0])}
    view["cluster_maps"] = []
    groups: dict[int, list[int]] = {}
    for row in purity:
        if row["majority"] >= 0:
            groups.setdefault(0 if kind == "conformation" else row["majority"], []).append(row["cluster"])
    for c, members in groups.items():
        matches = match_maps([cluster_maps[i] for i in members], truth.read_maps(c), apix)
        for i, match in zip(members, matches):
            view["cluster_maps"].append(
                {
                    "cluster": i,
                    "component": truth.names[c],
                    "best_conformation": match["reference"],
                    "auc": match["auc"],
                    "resolution_A": match["resolution_A"],
                }
            )
    view["cluster_maps"].sort(key=lambda row: row["cluster"])
    return view


def summary_text(summary: dict) -> str:
    """The human-readable summary.txt of an analysis."""
    lines = [
        f"cryoscape analyze: {summary['run']} (epoch {summary['epoch']})",
        f"latents: {summary['latents']}  ({summary['n_particles']} particles, zdim {summary['zdim']})",
        "variance explained by PC1..: " + ", ".join(f"{100 * v:.1f}%" for v in summary["explained_variance"]),
        "",
        "cluster  particles  share   PC1 of centre  centre particle",
    ]
    n = summary["n_particles"]
    for row in summary["clusters"]:
        lines.append(
            f"{row['cluster']:7d}  {row['size']:9d}  {100 * row['size'] / n:5.1f}%  {row['pc1']:13.3f}  "
            f"{row['center_particle']:15d}"
        )
    truth = summary.get("truth")
    if truth:
        lines += ["", f"ground truth ({truth['folder']}):"]
        if "class_purity" in truth:
            p = truth["class_purity"]
            lines.append(
                f"class {summary['class']}: {100 * p['fraction']:.1f}% of its particles are {p['component']} (the rest "
                "other components or junk; scored against that component alone)"
            )
        if "ari" in truth:
            lines.append(f"clusters against the true components: ARI {truth['ari']:.3f} (1 = the same partition)")
        if "spearman_pc1" in truth:
            lines.append(
                f"|Spearman| between PC1 and the true conformation (frame of the motion): {truth['spearman_pc1']:.3f} "
                "(1 = PC1 orders the particles as the motion does)"
            )
        if "per_image" in truth:
            p = truth["per_image"]
            lines.append(
                f"per-image FSC of {p['n']} random particles' maps against their true maps: mean area "
                f"{p['mean_auc']:.3f}, FSC=0.5 at {p['mean_resolution_A']:.2f} Å (mean), "
                f"{p['median_resolution_A']:.2f} Å (median)"
            )
        maps = {row["cluster"]: row for row in truth["cluster_maps"]}
        lines.append(
            f"cluster  true {truth['against']}: majority  purity  mean ± sd   best true map (FSC area, FSC=0.5)"
        )
        for row in truth["purity"]:
            m = maps.get(row["cluster"])
            best = (
                f"{m['component']} #{m['best_conformation']} ({m['auc']:.3f}, {m['resolution_A']:.1f} Å)" if m else "-"
            )
            lines.append(
                f"{row['cluster']:7d}  {row['majority']:22d}  {row['purity']:6.2f}  "
                f"{row['mean']:5.1f} ± {row['std']:4.1f}  {best}"
            )
    if "umap_seconds" in summary:
        lines.append(f"\nUMAP took {summary['umap_seconds']} s")
    lines.append(f"analysis took {summary['seconds']} s")
    return "\n".join(lines) + "\n"
