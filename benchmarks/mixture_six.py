"""Benchmark: six species and junk with known poses, started at -k 10 (`cryoscape train-mix`).

Run:  .venv/bin/python benchmarks/mixture_six.py          (writes benchmarks/mixture_six.md; about 45 minutes on 2 cores)
      .venv/bin/python benchmarks/mixture_six.py --quick  (600 particles at D=24, SNR 1, one thread; prints only)

Data: every distinct structure shipped in ../shared/data/structures, equal shares, plus 10% junk
(pure noise at the data's noise level): adenylate kinase moving closed→open (98 frames), 1hvr, 4E43
superposed on 1hvr by its protease Cα (HIV protease without and with a peptide: the near-identical
pair of mixture.md's part D), 1a28, 19hc (nine-haem cytochrome c dimer) and 5a7u (a 28-residue zinc
finger: a particle of 455 atoms); 10,000 particles, D=64, 2 Å/px, CTF, shifts up to 2 px, SNR 0.1
(of the whole data set: the small species get less signal per image), true poses.

The run is train-mix -k 10 --zdim 2 with every other option at its default, scored as mixture.md's
part A: ARI with junk as its own class, the ARI with the pair 1hvr/4E43 counted as one species, the
K found, junk recall and precision, the confusion matrix, each class map's FSC against its truth and
|Spearman| of PC1 of the adenylate-kinase class's latent against the frame.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import git_revision, machine_description, resumable_main, save_results, sh  # noqa: E402
from mixture import (  # noqa: E402
    CRYOSCAPE,
    QUICK_ARCH,
    calibration_table,
    classes_table,
    confusion_table,
    epoch_rates,
    score_mixture,
    superposed_4e43,
    threads,
)

NAMES = ["adk (closed→open)", "1hvr", "4E43 (on 1hvr)", "1a28", "19hc", "5a7u"]
PAIR = (1, 2)  # 1hvr, 4E43
CASES = {
    "full": dict(n=10000, box=64, apix=2.0, snr=0.1, epochs=5, k=10, warmup=2, threads=2, arch=[]),
    "quick": dict(n=600, box=24, apix=4.0, snr=1.0, epochs=6, k=8, warmup=4, threads=1, arch=QUICK_ARCH),
}


def run_case(work: Path, case: dict, results: dict) -> dict:
    from sklearn.metrics import adjusted_rand_score

    sim = work / "sim"
    if not (sim / "particles.star").exists():
        moved, _, _ = superposed_4e43(work)
        sh([CRYOSCAPE, "simulate", "adk_dims_closed_to_open", "1hvr", moved, "1a28", "19hc", "5a7u", "-o", sim,
            "-n", str(case["n"]), "--box", str(case["box"]), "--apix", str(case["apix"]), "--snr", str(case["snr"]),
            "--max-shift", "2", "--junk-fraction", "0.1", "--seed", "0", *threads(case)])  # fmt: skip
    if "mix" not in results:
        run = work / "mix"
        seconds, peak = sh([CRYOSCAPE, "train-mix", sim / "particles.star", "-o", run, "-k", str(case["k"]),
                            "--zdim", "2", "--anneal-epochs", str(case["warmup"]), *case["arch"],
                            "-n", str(case["epochs"]), *threads(case)])  # fmt: skip
        truth, found = np.load(sim / "labels.npz")["component"], np.load(run / "class.npy")
        paired = np.where(truth == PAIR[1], PAIR[0], truth)
        results["mix"] = {**score_mixture(run, sim, case), "ari_pair_as_one": float(adjusted_rand_score(paired, found)),
                          "rates": epoch_rates(run, case["warmup"]), "wall_s": seconds, "peak_mb": peak}  # fmt: skip
        save_results(work, results)
    return results


def name(label: int) -> str:
    return "junk" if label == -1 else NAMES[label]


def report(results: dict, case: dict, command: str) -> str:
    mix = results["mix"]
    lines = [
        "# Mixtures with known poses: six species and junk from -k 10",
        "",
        f"Command: `{command}` (git {git_revision()}).  ",
        f"Machine: {machine_description()}.  ",
        f"Data: {case['n']} particles of {', '.join(NAMES)} in equal shares plus 10% noise-only junk, "
        f"D={case['box']}, {case['apix']} Å/px, SNR {case['snr']}, CTF, shifts up to 2 px, true poses. Run: "
        f"`train-mix -k {case['k']} --zdim 2 -n {case['epochs']} --anneal-epochs {case['warmup']} "
        f"{' '.join(case['arch'])}` (defaults otherwise).",
        "",
        "| ARI (junk a class) | ARI (1hvr/4E43 as one) | ARI (species only) | junk recall | junk precision | "
        "K found | wall | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
        f"| {mix['ari']:.4f} | {mix['ari_pair_as_one']:.4f} | {mix['ari_species_only']:.4f} | "
        f"{mix['junk_recall']:.3f} | {mix['junk_precision']:.3f} | {mix['k_found']} (of -k {case['k']}) | "
        f"{mix['wall_s'] / 60:.1f} min | {mix['peak_mb'] / 1024:.1f} GiB |",
        "",
        *classes_table(mix, name),
        "",
        *calibration_table(mix["calibration"]),
        "",
        *confusion_table(mix, name, len(NAMES)),
        "",
        f"Training images/s: {mix['rates'][0]:.1f} in the warm-up epochs, {mix['rates'][1]:.1f} after them; whole "
        f"epochs (with the posterior pass) {mix['rates'][2]:.0f} s and {mix['rates'][3]:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    resumable_main(__file__, __doc__, CASES, run_case, report)


if __name__ == "__main__":
    main()
