"""Benchmark: accuracy and speed of simulation + gold-standard backprojection (the issue's cases).

Run:  .venv/bin/python benchmarks/reconstruction.py            (writes benchmarks/reconstruction.md)
      .venv/bin/python benchmarks/reconstruction.py --quick    (smaller, no cryoDRGN, prints; a smoke test)

Cases:
  A. adk_open, D=64, 1.5 Å/px, CTF, no noise, 10k particles: FSC vs ground truth.
  B. adk_open, D=64, SNR 0.1, 20k particles: half-map FSC and FSC vs truth, and the consistency
     check FSC_truth ≈ sqrt(2·FSC_half / (1 + FSC_half)) (Rosenthal & Henderson 2003).
  C. speed: backprojection of 10k images at D=128 (seconds and images/s).
Both tools are timed the same way: the whole command as a user runs it (`cryoscape backproject` and,
when ~/cryodrgn-venv exists, cryoDRGN's `backproject_voxel`, each with its defaults), start-up and
image reading included, on the same files. cryoscape's library call alone (images already in
memory) is timed too, and reported apart.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import git_revision, machine_description, sh  # noqa: E402

from cryoscape.data.images import ImageSource  # noqa: E402
from cryoscape.data.particle_io import export_cryodrgn, load_particles  # noqa: E402
from cryoscape.imaging.fsc import fsc  # noqa: E402
from cryoscape.inference.backprojection import backproject  # noqa: E402
from cryoscape.io.mrc import read_map  # noqa: E402
from cryoscape.simulate.conformations import load_component  # noqa: E402
from cryoscape.simulate.particles import SimulationConfig, simulate_dataset  # noqa: E402

CRYOSCAPE = Path(sys.executable).parent / "cryoscape"
CRYODRGN = Path.home() / "cryodrgn-venv" / "bin" / "cryodrgn"
THREADS: int | None = None  # --threads: torch's CPU threads in both tools (None: each tool's default)
DEFAULT_THREADS = "each tool's default (the usable CPUs)"
SIZES = {"full": {"A": 10_000, "B": 20_000, "C": 10_000}, "quick": {"A": 1_000, "B": 2_000, "C": 100}}


def fraction_of_nyquist(curve, threshold=0.5):
    return curve.frequency_at(threshold) / 0.5


def run_ours(folder: Path, truth: np.ndarray, apix: float) -> dict:
    """cryoscape on folder/particles.star: `cryoscape backproject` as a whole process (its maps are
    scored), and the library call alone on images already in memory (timed only)."""
    table = load_particles(folder / "particles.star")
    source = ImageSource.from_table(table, lazy=False)
    t0 = time.perf_counter()
    backproject(source, table, progress=False)
    call_s = time.perf_counter() - t0
    out = folder / "cryoscape" / "backproject.mrc"
    out.parent.mkdir()
    threads = ["--threads", THREADS] if THREADS else []
    seconds, peak = sh([CRYOSCAPE, "backproject", folder / "particles.star", "-o", out, *threads, "-q"])
    halves = [read_map(out.with_name(f"backproject_half{k}.mrc"))[0] for k in (1, 2)]
    return {
        "seconds": seconds,
        "peak_mb": peak,
        "call_s": call_s,
        "fsc": fsc(read_map(out)[0], truth, apix=apix),
        "half_fsc": fsc(*halves, apix=apix),
    }


def run_cryodrgn(folder: Path, truth: np.ndarray, apix: float) -> dict:
    """cryoDRGN's backproject_voxel on the same particles (its default data inversion suits our white
    particles), timed as a whole process."""
    table = load_particles(folder / "particles.star")
    export_cryodrgn(table, table.box_size, apix, folder / "poses.pkl", folder / "ctf.pkl", force=True)
    seconds, peak = sh(
        [
            CRYODRGN,
            "backproject_voxel",
            folder / "particles.mrcs",
            "--poses",
            folder / "poses.pkl",
            "--ctf",
            folder / "ctf.pkl",
            "-o",
            folder / "cryodrgn",
        ],
        env={"OMP_NUM_THREADS": str(THREADS)} if THREADS else None,  # torch takes its thread count from it
    )
    volume, _, _ = read_map(folder / "cryodrgn" / "backproject.mrc")
    return {"seconds": seconds, "peak_mb": peak, "fsc": fsc(volume, truth, apix=apix)}


def comparison_rows(label: str, n: int, ours: dict, theirs: dict | None, peer_note: str) -> list[str]:
    def cells(r: dict) -> str:
        f = r["fsc"]
        return (
            f"{r['seconds']:.1f} s ({n / r['seconds']:.0f} images/s) | {r['peak_mb']:.0f} MiB | "
            f"{f.resolution_A(0.5):.2f} Å ({fraction_of_nyquist(f):.3f} × Nyquist) | {f.fsc[1:].mean():.3f} |"
        )

    rows = [f"| {label} | cryoscape (library call alone: {ours['call_s']:.1f} s) | {cells(ours)}"]
    if theirs is None:
        rows.append(f"| {label} | cryoDRGN 4.3.1 backproject_voxel | {peer_note} | | | |")
    else:
        rows.append(
            f"| {label} | cryoDRGN 4.3.1 backproject_voxel (cryoscape {theirs['seconds'] / ours['seconds']:.2f}× as "
            f"fast) | {cells(theirs)}"
        )
    return rows


def simulate(work: Path, name: str, D: int, apix: float, **kwargs):
    comp = load_component("adk_open", D, apix)
    cfg = SimulationConfig(D=D, apix=apix, max_shift_px=4, astigmatism_A=500, batch_size=1000, **kwargs)
    t0 = time.perf_counter()
    simulate_dataset([comp], cfg, work / name, progress=False)
    return comp.volumes[0], time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="fewer particles, no cryoDRGN, one thread; print, write no report"
    )
    parser.add_argument(
        "--output", default=None, help="report (default benchmarks/reconstruction.md; none with --quick)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch's CPU threads in both tools and the library call (default: each tool's, the usable CPUs)",
    )
    args = parser.parse_args()
    global THREADS
    THREADS = args.threads or (1 if args.quick else None)  # one thread: a smoke test robust to a busy machine
    if THREADS:
        import torch

        torch.set_num_threads(THREADS)
    sizes = SIZES["quick" if args.quick else "full"]
    output = args.output or (None if args.quick else str(Path(__file__).with_suffix(".md")))
    peer = CRYODRGN.exists() and not args.quick
    peer_note = "not run (--quick)" if args.quick else "not installed beside the project"
    work = Path(tempfile.mkdtemp(prefix="cryoscape_bench_"))
    rows, notes = [], []
    load_start = os.getloadavg()[0]
    try:
        n = sizes["A"]
        truth, t_sim = simulate(work, "A", 64, 1.5, n_particles=n, seed=1, snr=None)
        notes.append(f"A: simulating {n} noise-free particles at D=64 took {t_sim:.1f} s ({n / t_sim:.0f} images/s).")
        ours = run_ours(work / "A", truth, 1.5)
        f = ours["fsc"]
        notes.append(
            f"A: cryoscape FSC vs truth ≥ 0.5 up to {fraction_of_nyquist(f):.3f} × Nyquist; "
            f"minimum FSC over shells 0..0.9·Nyquist = {f.fsc[: int(0.9 * 32) + 1].min():.3f} (issue: > 0.5)."
        )
        theirs = run_cryodrgn(work / "A", truth, 1.5) if peer else None
        rows += comparison_rows(f"A: no noise, {n} particles, D=64, 1.5 Å/px", n, ours, theirs, peer_note)

        n = sizes["B"]
        truth, _ = simulate(work, "B", 64, 1.5, n_particles=n, seed=2, snr=0.1)
        ours = run_ours(work / "B", truth, 1.5)
        half = ours["half_fsc"]
        predicted = np.sqrt(np.clip(2 * half.fsc / (1 + half.fsc), 0, 1))
        gap = np.abs(predicted[1:] - ours["fsc"].fsc[1:])
        notes.append(
            f"B: half-map FSC=0.143 at {half.resolution_A(0.143):.2f} Å, FSC vs truth=0.5 at "
            f"{ours['fsc'].resolution_A(0.5):.2f} Å; FSC vs truth against sqrt(2F/(1+F)) of the half-map FSC F: "
            f"max difference {gap.max():.3f}, mean {gap.mean():.3f} over shells 1..32."
        )
        theirs = run_cryodrgn(work / "B", truth, 1.5) if peer else None
        rows += comparison_rows(f"B: SNR 0.1, {n} particles, D=64", n, ours, theirs, peer_note)

        n = sizes["C"]
        truth, t_sim = simulate(work, "C", 128, 1.0, n_particles=n, seed=3, snr=1.0)
        notes.append(f"C: simulating {n} particles at D=128 took {t_sim:.1f} s ({n / t_sim:.0f} images/s).")
        ours = run_ours(work / "C", truth, 1.0)
        theirs = run_cryodrgn(work / "C", truth, 1.0) if peer else None
        rows += comparison_rows(f"C: SNR 1, {n} particles, D=128, 1 Å/px", n, ours, theirs, peer_note)
        notes.append(
            f"1-minute load average at the start {load_start:.2f} and the end {os.getloadavg()[0]:.2f} "
            f"({os.cpu_count()} cores; above that, other work shared the machine and every time above is slower)."
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = "\n".join(
        [
            "# Simulation + backprojection benchmark",
            "",
            "Command: `.venv/bin/python benchmarks/reconstruction.py" + "".join(f" {a}" for a in sys.argv[1:]) + "` "
            f"(git {git_revision()}, {time.strftime('%Y-%m-%d')}).",
            "Both tools are timed the same way: the wall time of the whole command as a user runs it, with its",
            "defaults (`cryoscape backproject PARTICLES.star -o MAP.mrc`, which memory-maps the images, and",
            "`cryodrgn backproject_voxel PARTICLES.mrcs --poses --ctf -o DIR`, which reads them into memory), start-up",
            "and image reading included, with the peak resident memory of that process; on the same files, in the same",
            "run. cryoDRGN runs beside the project from `~/cryodrgn-venv` (see ../shared/tools/README.md). The",
            "first column also gives cryoscape's library call alone (`backproject` on images already in memory).",
            "Both reconstruct with half maps. FSC is the command's full map against the ground-truth map (no mask).",
            f"torch threads in both tools: {THREADS or DEFAULT_THREADS}.",
            "",
            f"Machine: {machine_description()}",
            "",
            "| case | tool | whole command | peak RSS | FSC vs truth = 0.5 | mean FSC (shells 1..Nyquist) |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            *[f"- {note}" for note in notes],
            "",
        ]
    )
    print(report)
    if output is not None:
        Path(output).write_text(report)


if __name__ == "__main__":
    main()
