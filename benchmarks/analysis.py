"""Benchmark: analysis of trained VAE runs (issue 4), side by side with cryoDRGN 4.3.1 `analyze`.

Run:  .venv/bin/python benchmarks/analysis.py                  (everything; writes benchmarks/analysis.md)
      .venv/bin/python benchmarks/analysis.py --stage adk      (20k particles: analyze both, landscape)
      .venv/bin/python benchmarks/analysis.py --stage scale    (100k particles, zdim 8: analyze both)
      .venv/bin/python benchmarks/analysis.py --quick          (smoke test: the adk stage, cryoscape only, on its
                                                               own 300 particles at D=32 trained 1 epoch, without
                                                               UMAP, one torch thread; prints the report, writes
                                                               none unless --output)

Input: the runs of `benchmarks/vae.py --stage accuracy` (its --workdir, default
/tmp/cryoscape-vae-benchmark): cryoscape and cryoDRGN VAEs, 3x256 nets, zdim 8, 5 epochs, trained on
20,000 particles of adenylate kinase closed (frame 0) -> open (frame 97), D=64, 1.4 Å/px, SNR 0.1.
Run that first; this script refuses to start without it.

adk stage: `cryoscape analyze RUN --ksample 20` and `cryodrgn analyze RUN 5 --ksample 20` (both: PCA,
UMAP, 20 k-means maps, 2x10 PC traversal maps), timed with peak memory. Every k-means map of both
tools is matched to the ground-truth frame it agrees with best (largest FSC area); the table gives the
mean FSC area and |Spearman| between the clusters' position along PC1 and their matched frame (does
the order of the maps follow the motion?). Then `cryoscape landscape` (sketch 200, 500 extra maps for
the volume mapping): share of variance of volume PC1 and the frames its two ends match.

scale stage: the 20,000 training particles plus 80,000 more of the same simulation settings
(vae.py's scaling set) encoded by each tool's trained encoder (eval-images / eval_images), then each
tool's `analyze` of those 100,000 latents (zdim 8), UMAP included, timed with peak memory.
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import adk_trajectory_args, git_revision, machine_description, sh  # noqa: E402

CRYOSCAPE = Path(sys.executable).parent / "cryoscape"
INSTALLED_CRYODRGN = Path.home() / "cryodrgn-venv" / "bin" / "cryodrgn"
CRYODRGN: Path | None = INSTALLED_CRYODRGN if INSTALLED_CRYODRGN.exists() else None  # None: the peer is not run
APIX, EPOCH, K = 1.4, 5, 20


@dataclass(frozen=True)
class Setup:
    """What the adk stage analyses, and how much."""

    run: str = f"cryoscape_e{EPOCH}"  # cryoscape's run in the VAE workdir
    apix: float = APIX
    ksample: int = K
    sketch: int = 200  # landscape's sketch maps
    n_train: int = 500  # landscape's extra maps for the volume mapping
    umap: bool = True
    extra: tuple = ()  # arguments added to every cryoscape command


QUICK = Setup(run="cryoscape_e1", apix=2.8, ksample=4, sketch=20, n_train=40, umap=False, extra=("--threads", 1))


def quick_inputs(vae: Path) -> None:
    """A tiny stand-in for vae.py's runs: 300 particles at D=32, cryoscape's VAE trained 1 epoch."""
    sh([CRYOSCAPE, *adk_trajectory_args(vae / "train", 300, 32, QUICK.apix, seed=1), *QUICK.extra, "-q"])
    star, run = vae / "train/particles.star", vae / QUICK.run
    sh([CRYOSCAPE, "train-vae", star, "-o", run, "--zdim", 8, "-n", 1, "--in-memory", *QUICK.extra, "-q"])


def score_cluster_maps(
    maps: list[Path], centres_z: np.ndarray, z: np.ndarray, gt: np.ndarray, apix: float = APIX
) -> dict:
    """Best-matching true frame of each map; mean FSC area; |Spearman| of centre PC1 vs frame."""
    from scipy.stats import spearmanr

    from cryoscape.analysis.ground_truth import match_maps
    from cryoscape.analysis.latent import latent_pca
    from cryoscape.io.mrc import read_map

    matches = match_maps([read_map(m)[0] for m in maps], gt, apix)
    pca = latent_pca(z, 1)
    pc1 = (centres_z - pca.mean) @ pca.components[0]
    frames = [m["reference"] for m in matches]
    return {
        "frames_along_pc1": [int(frames[i]) for i in np.argsort(pc1)],
        "mean_auc": float(np.mean([m["auc"] for m in matches])),
        "mean_resolution_A": float(np.mean([m["resolution_A"] for m in matches])),
        "spearman": float(abs(spearmanr(pc1, frames).statistic)),
    }


def load_pickle(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        return np.asarray(pickle.load(f))


def stage_adk(vae: Path, work: Path, results: dict, setup: Setup = Setup()) -> None:
    from scipy.stats import spearmanr

    from cryoscape.io.mrc import read_map

    gt = np.stack([read_map(p)[0] for p in sorted((vae / "train/gt").glob("*.mrc"))])
    ours, theirs = vae / setup.run, vae / "cryodrgn_e5"
    out = work / "adk_cryoscape"
    # The same work as cryoDRGN's analyze (no ground-truth view: the run predates recording its particles).
    umap = [] if setup.umap else ["--skip-umap"]
    seconds, peak = sh(
        [CRYOSCAPE, "analyze", ours, "-o", out, "--ksample", setup.ksample, *umap, "--device", "cpu", *setup.extra]
        + ["--force"],
        work / "adk_cryoscape.log",
    )
    summary = json.loads((out / "analysis.json").read_text())
    row = {
        "seconds": seconds,
        "peak_mb": peak,
        "umap_seconds": summary.get("umap_seconds"),
        **score_cluster_maps(
            sorted((out / "kmeans").glob("vol_*.mrc")),
            np.loadtxt(out / "kmeans_centers.txt"),
            np.load(ours / "z.npy"),
            gt,
            setup.apix,
        ),
    }
    frames = np.load(vae / "train/labels.npz")["conformation"]
    row["spearman_pc1_particles"] = float(abs(spearmanr(np.load(out / "z_pca.npy")[:, 0], frames).statistic))
    results["adk"] = {"cryoscape": row, "n": len(frames), "ksample": setup.ksample, "umap": setup.umap}
    if CRYODRGN:
        out = work / "adk_cryodrgn"
        shutil.rmtree(out, ignore_errors=True)
        seconds, peak = sh(
            [CRYODRGN, "analyze", theirs, EPOCH, "--ksample", K, "--Apix", APIX, "-o", out], work / "adk_cryodrgn.log"
        )
        results["adk"]["cryodrgn"] = {
            "seconds": seconds,
            "peak_mb": peak,
            **score_cluster_maps(
                sorted((out / f"kmeans{K}").glob("vol_*.mrc")),
                np.loadtxt(out / f"kmeans{K}/centers.txt"),
                load_pickle(theirs / f"z.{EPOCH}.pkl"),
                gt,
            ),
        }
    out = work / "adk_landscape"
    particles = vae / "train/particles.star"  # for the ground truth: the run predates recording it
    seconds, peak = sh(
        [
            CRYOSCAPE,
            "landscape",
            ours,
            "-o",
            out,
            "--sketch-size",
            setup.sketch,
            "--n-train",
            setup.n_train,
            "--particles",
            particles,
            "--device",
            "cpu",
            *setup.extra,
            "--force",
        ],
        work / "adk_landscape.log",
    )
    summary = json.loads((out / "landscape.json").read_text())
    ends = summary["truth"]["pc1_ends"]
    results["adk"]["landscape"] = {
        "sketch": setup.sketch,
        "n_train": setup.n_train,
        "seconds": seconds,
        "peak_mb": peak,
        "explained": summary["explained_variance"][:5],
        "mapping_r2": summary["mapping_validation_r2"][:3],
        "states": summary["states"],
        "ends": [
            {"frame": e["reference"], "auc": e["auc"], "auc_closed": e["auc_first"], "auc_open": e["auc_last"]}
            for e in ends
        ],
    }


def stage_scale(vae: Path, work: Path, results: dict) -> None:
    ours, theirs = vae / "cryoscape_e5", vae / "cryodrgn_e5"
    sets = [vae / "train", vae / "train80k"]
    for s in sets:
        if not (s / "particles.star").exists():
            raise SystemExit(f"{s} is missing: run benchmarks/vae.py --stage scaling first")
    z_ours = work / "z100k.npy"
    if not z_ours.exists():
        parts = []
        for s in sets:
            sh([CRYOSCAPE, "eval-images", ours, s / "particles.star", "-o", work / f"z_{s.name}.npy", "--force", "-q"])
            parts.append(np.load(work / f"z_{s.name}.npy"))
        np.save(z_ours, np.concatenate(parts))
    out = work / "scale_cryoscape"
    seconds, peak = sh(
        [CRYOSCAPE, "analyze", ours, "--z", z_ours, "-o", out, "--ksample", K, "--device", "cpu", "--force"],
        work / "scale_cryoscape.log",
    )
    summary = json.loads((out / "analysis.json").read_text())
    results["scale"] = {
        "n": int(len(np.load(z_ours))),
        "cryoscape": {"seconds": seconds, "peak_mb": peak, "umap_seconds": summary.get("umap_seconds")},
    }
    if CRYODRGN:
        fake = work / "cryodrgn_100k"  # cryoDRGN's run folder with the latents of all 100k particles
        fake.mkdir(exist_ok=True)
        for name in ("config.yaml", f"weights.{EPOCH}.pkl", "run.log"):  # analyze plots the loss of run.log
            shutil.copyfile(theirs / name, fake / name)
        if not (fake / f"z.{EPOCH}.pkl").exists():
            parts = []
            for s in sets:
                sh(
                    [
                        CRYODRGN,
                        "eval_images",
                        s / "particles.mrcs",
                        theirs / f"weights.{EPOCH}.pkl",
                        "-c",
                        theirs / "config.yaml",
                        "--poses",
                        s / "poses.pkl",
                        "--ctf",
                        s / "ctf.pkl",
                        "-o",
                        work / f"loss_{s.name}.pkl",
                        "--out-z",
                        work / f"z_{s.name}.pkl",
                    ]
                )
                parts.append(load_pickle(work / f"z_{s.name}.pkl")[:, :8])
            with open(fake / f"z.{EPOCH}.pkl", "wb") as f:
                pickle.dump(np.concatenate(parts).astype(np.float32), f)
        out = work / "scale_cryodrgn"
        shutil.rmtree(out, ignore_errors=True)
        seconds, peak = sh(
            [CRYODRGN, "analyze", fake, EPOCH, "--ksample", K, "--Apix", APIX, "-o", out], work / "scale_cryodrgn.log"
        )
        results["scale"]["cryodrgn"] = {"seconds": seconds, "peak_mb": peak}


def report(results: dict) -> str:
    lines = [
        "# Analysis benchmark (issue 4)",
        "",
        f"Machine: {results['machine']}",
        f"cryoscape revision: {results['revision']}",
        "",
        "Command: `.venv/bin/python benchmarks/analysis.py` (after `benchmarks/vae.py --stage accuracy` and "
        "`--stage scaling`, whose runs and data it reads). See the script's docstring for the protocol.",
        "",
    ]
    adk = results.get("adk")
    if adk:
        k, umap = adk.get("ksample", K), "UMAP" if adk.get("umap", True) else "no UMAP"
        lines += [
            f"## adenylate kinase closed -> open, {adk.get('n', 20_000):,} particles, zdim 8 (the VAE benchmark's runs)",
            "",
            f"`analyze --ksample {k}` (PCA, {umap}, {k} cluster maps, 2 x 10 traversal maps). Each cluster map is "
            "matched to the true frame (0 = closed ... 97 = open) it agrees with best.",
            "",
            "| tool | wall time | peak RSS | mean FSC area of the cluster maps vs their best frame | mean FSC=0.5 | "
            "abs Spearman(centre PC1, matched frame) | matched frames, clusters in PC1 order |",
            "|---|---|---|---|---|---|---|",
        ]
        for tool in ("cryoscape", "cryodrgn"):
            if tool in adk:
                r = adk[tool]
                lines.append(
                    f"| {tool} | {r['seconds']:.0f} s | {r['peak_mb']:.0f} MiB | {r['mean_auc']:.3f} | "
                    f"{r['mean_resolution_A']:.2f} Å | {r['spearman']:.3f} | {', '.join(map(str, r['frames_along_pc1']))} |"
                )
        if "cryodrgn" in adk:
            lines += [
                "",
                f"cryoscape takes {adk['cryoscape']['seconds'] / adk['cryodrgn']['seconds']:.2f}x the time of "
                f"cryoDRGN for the same analysis (UMAP alone: {adk['cryoscape']['umap_seconds']} s).",
            ]
        lines += [
            "",
            f"abs Spearman between the particles' latent PC1 and their true frame: "
            f"{adk['cryoscape']['spearman_pc1_particles']:.3f}.",
        ]
        land = adk.get("landscape")
        if land:
            lines += [
                "",
                f"### landscape (sketch {land.get('sketch', 200)} maps, {land.get('n_train', 500)} extra maps for the "
                "volume mapping)",
                "",
                f"Wall time {land['seconds']:.0f} s, peak RSS {land['peak_mb']:.0f} MiB. Variance explained by "
                "volume PCs 1-5: " + ", ".join(f"{100 * v:.1f}%" for v in land["explained"]) + ". Volume mapping, "
                "validation R² of PCs 1-3: " + ", ".join(f"{v:.3f}" for v in land["mapping_r2"]) + ".",
                "",
                "| end of volume PC1 | best-matching true frame | its FSC area | FSC area vs closed (frame 0) | vs open (frame 97) |",
                "|---|---|---|---|---|",
            ]
            for name, e in zip(("low", "high"), land["ends"]):
                lines.append(
                    f"| {name} | {e['frame']} | {e['auc']:.3f} | {e['auc_closed']:.3f} | {e['auc_open']:.3f} |"
                )
            lines += [
                "",
                "States (average linkage): "
                + "; ".join(f"state {s['state']}: {s['maps']} maps, {s['particles']} particles" for s in land["states"])
                + ".",
            ]
    scale = results.get("scale")
    if scale:
        lines += [
            "",
            f"## {scale['n']:,} particles, zdim 8: `analyze --ksample 20` with UMAP",
            "",
            "| tool | wall time | peak RSS | UMAP |",
            "|---|---|---|---|",
        ]
        for tool in ("cryoscape", "cryodrgn"):
            if tool in scale:
                r = scale[tool]
                umap_time = f"{r['umap_seconds']} s" if r.get("umap_seconds") else "included"
                lines.append(
                    f"| {tool} | {r['seconds']:.0f} s ({r['seconds'] / 60:.1f} min) | {r['peak_mb']:.0f} MiB | "
                    f"{umap_time} |"
                )
        if "cryodrgn" in scale:
            lines += [
                "",
                f"Ratio cryoscape / cryoDRGN: {scale['cryoscape']['seconds'] / scale['cryodrgn']['seconds']:.2f}.",
            ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vae-workdir", default="/tmp/cryoscape-vae-benchmark", help="workdir of benchmarks/vae.py")
    parser.add_argument("--workdir", default="/tmp/cryoscape-analysis-benchmark", help="folder for the outputs")
    parser.add_argument("--stage", choices=("all", "adk", "scale"), default="all")
    parser.add_argument("--quick", action="store_true", help="smoke test (see above); prints, writes no report")
    parser.add_argument("--output", type=Path, default=None, help="report (default benchmarks/analysis.md)")
    args = parser.parse_args()
    if args.quick:
        global CRYODRGN
        CRYODRGN = None
        work = Path(tempfile.mkdtemp(prefix="cryoscape_analysis_quick_"))
        try:
            quick_inputs(work / "vae")
            results = {"machine": machine_description(), "revision": git_revision()}
            stage_adk(work / "vae", work, results, QUICK)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        text = report(results)
        print(text + "\ncryoDRGN: not run (--quick); scale stage: not run (--quick).")
        if args.output:
            args.output.write_text(text)
        return
    vae, work = Path(args.vae_workdir), Path(args.workdir)
    if not (vae / "cryoscape_e5" / "z.npy").exists():
        raise SystemExit(f"{vae}/cryoscape_e5 is missing: run benchmarks/vae.py --stage accuracy first")
    work.mkdir(parents=True, exist_ok=True)
    path = work / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results.update(machine=machine_description(), revision=git_revision())
    for stage, run in (("adk", stage_adk), ("scale", stage_scale)):
        if args.stage in ("all", stage):
            run(vae, work, results)
            path.write_text(json.dumps(results, indent=1))
            (args.output or Path(__file__).with_suffix(".md")).write_text(report(results))


if __name__ == "__main__":
    main()
