"""Benchmark: the image loss of `cryoscape train-gmm` (gaussian, frc, correlation), side by side.

Run:  .venv/bin/python benchmarks/gmm_losses.py            (writes benchmarks/gmm_losses.md; about 20 minutes on 2 cores)
      .venv/bin/python benchmarks/gmm_losses.py --quick    (600 particles at D=32, 2 epochs, one thread; prints only)

Data and scoring are benchmarks/gmm.py's (adenylate kinase closed→open, 20,000 particles, D=64,
SNR 0.1, true poses; the start adk_closed.pdb fitted by --fit; --deform segments, zdim 4, 6 epochs,
train-gmm's default batch, learning rate and precision): one run per `--loss`, all else equal.
Scored on every particle: the mean Cα RMSD of its decoded model against its true frame, at the open
end (frames ≥ 88, where the start is far), and |Spearman| of PC1 of z with the frame; the images/s
of each run's median epoch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryoscape.cli.train_gmm import add_arguments

sys.path.insert(0, str(Path(__file__).parent))
from common import adk_trajectory_args, git_revision, machine_description, resumable_main, save_results, sh  # noqa: E402
from gmm import CASES, CRYOSCAPE, arch, score_atomic, threads, training_of  # noqa: E402

LOSSES = ("gaussian", "frc", "correlation")


def run_case(work: Path, case: dict, results: dict) -> dict:
    sim = work / "sim"
    if not (sim / "particles.star").exists():
        sh([CRYOSCAPE, *adk_trajectory_args(sim, case["n"], case["box"], case["apix"]), "-q"])
    adk_closed = Path(__file__).parents[1] / "cryoscape/simulate/structures/adk_closed.pdb"
    for loss in LOSSES:
        if loss not in results:
            run = work / loss
            seconds, _ = sh([CRYOSCAPE, "train-gmm", sim / "particles.star", "-o", run, "--init-model", adk_closed,
                             "--fit", "--deform", "segments", "--loss", loss, *arch(case), "-n", str(case["epochs"]),
                             *threads(case), "--force", "-q"])  # fmt: skip
            score = score_atomic(run, sim, case)
            results[loss] = {k: v for k, v in score.items() if k != "segments"} | training_of(run) | {"wall_s": seconds}
            save_results(work, results)
    return results


def report(results: dict, case: dict, command: str) -> str:
    best = min(LOSSES, key=lambda loss: results[loss]["rmsd_A"])
    lines = [
        "# train-gmm: which image loss (segments from the atomic model)",
        "",
        f"Command: `{command}` (git {git_revision()}).  ",
        f"Machine: {machine_description()}.  ",
        f"Data: {case['n']} particles of adenylate kinase closed→open, D={case['box']}, {case['apix']} Å/px, "
        f"SNR 0.1, CTF, true poses; adk_closed.pdb fitted by --fit; --deform segments, {case['epochs']} epochs, "
        f"batch {results[best]['batch']} at lr {results[best]['lr']:g} in {results[best]['precision']} (train-gmm's "
        f"defaults), zdim 4, encoder and decoder 3×{case['arch']}; only --loss differs.",
        "",
        "| --loss | mean Cα RMSD to the true frame | closed end (frames < 10): decoded / start | open end (frames "
        "≥ 88): decoded / start | abs Spearman PC1 vs frame | longest Cα–Cα | images/s | wall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for loss in LOSSES:
        r = results[loss]
        lines.append(
            f"| {loss} | {r['rmsd_A']:.2f} Å | {r['rmsd_closed_end_A']:.2f} / {r['start_rmsd_closed_end_A']:.2f} Å | "
            f"{r['rmsd_open_end_A']:.2f} / {r['start_rmsd_open_end_A']:.2f} Å | "
            f"{r['spearman_pc1']:.3f} | {r['max_bond_A']:.2f} Å | {r['images_per_s']:.0f} | {r['wall_s'] / 60:.1f} min |"
        )
    winners = {
        "mean Cα RMSD": best,
        "closed end": min(LOSSES, key=lambda loss: results[loss]["rmsd_closed_end_A"]),
        "open end (where the motion is)": min(LOSSES, key=lambda loss: results[loss]["rmsd_open_end_A"]),
        "ordering of the motion (Spearman)": max(LOSSES, key=lambda loss: results[loss]["spearman_pc1"]),
        "images/s": max(LOSSES, key=lambda loss: results[loss]["images_per_s"]),
    }
    default = default_loss()
    lines += [
        "",
        f"Best by each measure: {'; '.join(f'{what}: `{loss}`' for what, loss in winners.items())} "
        f"(undeformed start: {results[best]['start_rmsd_A']:.2f} Å mean).",
        "",
        f"train-gmm's default is `--loss {default}`, best on {sum(w == default for w in winners.values())} of these "
        f"{len(winners)} measures ({', '.join(what for what, w in winners.items() if w == default) or 'none'}).",
    ]
    return "\n".join(lines) + "\n"


def default_loss() -> str:
    """The --loss default of `cryoscape train-gmm`, read from its parser."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.get_default("loss")


def main() -> None:
    resumable_main(__file__, __doc__, CASES, run_case, report)


if __name__ == "__main__":
    main()
