"""Benchmark: the one training engine against the code before it (issue 10: structure changed, not
results). train-vae runs back to back with the old and the new package on the same particles, seed
and device, alternating, and the report compares seconds per epoch and the per-epoch losses.

Run:  .venv/bin/python benchmarks/engine_timing.py --old OLD_TREE [--device cuda] [-n 20000 --epochs 3 --rounds 2]
      .venv/bin/python benchmarks/engine_timing.py --quick   (smoke: 400 particles, the new code twice, one thread;
                                                              no report)

OLD_TREE is a folder holding the old ``cryoscape`` package, e.g. from
``mkdir old && git archive f33ec7b cryoscape | tar -x -C old``. Data: the README's adenylate-kinase
trajectory (adk_dims_closed_to_open), D=64, 1.4 Å/px, SNR 0.1, shifts up to 2 px; train-vae --zdim 8
with the default networks (3×256), batch 8, bf16 where native. Seconds per epoch are the median over
rounds of each run's epochs after the first (the first includes start-up).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import adk_trajectory_args, git_revision, machine_description  # noqa: E402

NEW = Path(__file__).resolve().parents[1]


def cryoscape(code: Path, *args: str) -> None:
    """Run the cryoscape command line of the package in ``code`` (its folder is put first on the path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "cryoscape.cli.main", *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"failed: cryoscape {' '.join(args)}\n{out.stderr[-3000:]}")


def read_log(run: Path) -> list[dict]:
    with open(run / "log.csv") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", type=Path, default=None, help="folder holding the old cryoscape package")
    parser.add_argument("-n", type=int, default=20_000, help="particles (default 20000)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="old/new pairs (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 400 particles, 2 epochs, new code twice")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_suffix(".md"))
    args = parser.parse_args()
    if args.quick:
        args.old, args.n, args.epochs, args.rounds = NEW, 400, 2, 1
    if args.old is None or not (args.old / "cryoscape").is_dir():
        raise SystemExit("--old must be a folder holding the old cryoscape package")
    work = Path(tempfile.mkdtemp(prefix="cryoscape_engine_"))
    try:
        star = work / "sim/particles.star"
        box, apix = (32, 3.0) if args.quick else (64, 1.4)
        quick = ["--threads", "1"] if args.quick else []  # one thread: a smoke test robust to a busy machine
        cryoscape(NEW, *adk_trajectory_args(work / "sim", args.n, box, apix), *quick, "-q")
        train = ["--zdim", "8", "-n", str(args.epochs), "--device", args.device, "--seed", "0", "-q"]
        if args.quick:
            train += ["--enc-dim", "32", "--dec-dim", "32", *quick]
        runs: dict[str, list[list[dict]]] = {"old": [], "new": []}
        latents: dict[str, np.ndarray] = {}
        for r in range(args.rounds):
            for name, code in (("old", args.old), ("new", NEW)):
                run = work / f"{name}_{r}"
                cryoscape(code, "train-vae", str(star), "-o", str(run), *train)
                runs[name].append(read_log(run))
                latents[name] = np.load(run / "z.npy")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(args, runs, latents)
    print(text)
    if not args.quick:
        args.output.write_text(text)


def report(args, runs: dict[str, list[list[dict]]], latents: dict[str, np.ndarray]) -> str:
    def per_epoch(name: str) -> float:
        return float(np.median([row["seconds"] for log in runs[name] for row in log[1:]] or [np.nan]))

    old_s, new_s = per_epoch("old"), per_epoch("new")
    rows = []
    for e, (a, b) in enumerate(zip(runs["old"][0], runs["new"][0]), start=1):
        rows.append(f"| {e} | {a['loss']:.6g} | {b['loss']:.6g} | {abs(b['loss'] - a['loss']) / a['loss']:.2e} |")
    z_old, z_new = latents["old"], latents["new"]
    corr = min(abs(np.corrcoef(z_old[:, k], z_new[:, k])[0, 1]) for k in range(z_old.shape[1]))
    return "\n".join(
        [
            "# One engine vs the code before it: train-vae back to back",
            "",
            f"Command: `.venv/bin/python benchmarks/engine_timing.py --old OLD --device {args.device} -n {args.n} "
            f"--epochs {args.epochs} --rounds {args.rounds}` (new: git {git_revision()}, {time.strftime('%Y-%m-%d')}).",
            f"Machine: {machine_description()}",
            "",
            f"adk closed→open, {args.n} particles, train-vae --zdim 8, 3×256 networks, batch 8, seed 0, "
            f"{args.device}, bf16 where native; {args.rounds} round(s) of old then new.",
            "",
            "| code | seconds per epoch (median, epochs 2+) |",
            "|---|---|",
            f"| before (old) | {old_s:.2f} |",
            f"| one engine (new) | {new_s:.2f} |",
            "",
            f"Ratio new / old: {new_s / old_s:.3f}.",
            "",
            "Loss per epoch, first round (same seed, same batches):",
            "",
            "| epoch | old | new | relative difference |",
            "|---|---|---|---|",
            *rows,
            "",
            f"Latents of the last round: smallest |correlation| of a latent coordinate, old vs new: {corr:.4f} "
            "(the new code writes them in float32, the old in the training precision).",
            "",
        ]
    )


if __name__ == "__main__":
    main()
