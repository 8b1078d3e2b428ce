"""Benchmark: accuracy and speed of simulation + gold-standard backprojection (the issue's cases).

Run:  .venv/bin/python benchmarks/reconstruction.py            (writes benchmarks/reconstruction.md)
      .venv/bin/python benchmarks/reconstruction.py --quick    (smaller, for a smoke test)

Cases:
  A. adk_open, D=64, 1.5 Å/px, CTF, no noise, 10k particles: FSC vs ground truth.
  B. adk_open, D=64, SNR 0.1, 20k particles: half-map FSC and FSC vs truth, and the consistency
     check FSC_truth ≈ sqrt(2·FSC_half / (1 + FSC_half)) (Rosenthal & Henderson 2003).
  C. speed: backprojection of 10k images at D=128 (seconds and images/s).
  Every case also runs cryoDRGN's backproject_voxel on the same files when ~/cryodrgn-venv exists.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import git_revision, machine_description, peak_rss_mb  # noqa: E402

from cryoscape.data.images import ImageSource  # noqa: E402
from cryoscape.data.particle_io import export_cryodrgn, load_particles  # noqa: E402
from cryoscape.imaging.fsc import fsc  # noqa: E402
from cryoscape.inference.backprojection import backproject  # noqa: E402
from cryoscape.io.mrc import read_map  # noqa: E402
from cryoscape.simulate.conformations import load_component  # noqa: E402
from cryoscape.simulate.particles import SimulationConfig, simulate_dataset  # noqa: E402

CRYODRGN = Path.home() / "cryodrgn-venv" / "bin" / "cryodrgn"


def fraction_of_nyquist(curve, threshold=0.5):
    return curve.frequency_at(threshold) / 0.5


def run_ours(folder: Path, truth: np.ndarray, apix: float):
    """Backproject folder/particles.star in memory; (seconds, full map FSC vs truth, result)."""
    table = load_particles(folder / "particles.star")
    source = ImageSource.from_table(table, lazy=False)
    t0 = time.perf_counter()
    res = backproject(source, table, progress=False)
    seconds = time.perf_counter() - t0
    return seconds, fsc(res.volume, truth, apix=apix), res


def run_cryodrgn(folder: Path, truth: np.ndarray, apix: float):
    """cryoDRGN's backproject_voxel on the same particles (its default data inversion suits our white
    particles); (wall seconds incl. start-up, FSC vs truth) or None when cryoDRGN is not installed."""
    if not CRYODRGN.exists():
        return None
    table = load_particles(folder / "particles.star")
    export_cryodrgn(table, table.box_size, apix, folder / "poses.pkl", folder / "ctf.pkl", force=True)
    cmd = [
        str(CRYODRGN),
        "backproject_voxel",
        str(folder / "particles.mrcs"),
        "--poses",
        str(folder / "poses.pkl"),
        "--ctf",
        str(folder / "ctf.pkl"),
        "-o",
        str(folder / "cryodrgn"),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"cryoDRGN failed: {proc.stderr.strip().splitlines()[-1:]}")
    volume, _, _ = read_map(folder / "cryodrgn" / "backproject.mrc")
    return seconds, fsc(volume, truth, apix=apix)


def comparison_rows(label: str, n: int, ours, theirs) -> list[str]:
    t_ours, fsc_ours, _ = ours
    rows = [
        f"| {label} | cryoscape | {t_ours:.1f} s ({n / t_ours:.0f} images/s) | {fsc_ours.resolution_A(0.5):.2f} Å "
        f"({fraction_of_nyquist(fsc_ours):.3f} × Nyquist) | {fsc_ours.fsc[1:].mean():.3f} |"
    ]
    if theirs is None:
        rows.append(f"| {label} | cryoDRGN 4.3.1 backproject_voxel | not installed beside the project | | |")
    else:
        t, f = theirs
        rows.append(
            f"| {label} | cryoDRGN 4.3.1 backproject_voxel | {t:.1f} s ({n / t:.0f} images/s; cryoscape "
            f"{t / t_ours:.2f}× as fast) | {f.resolution_A(0.5):.2f} Å ({fraction_of_nyquist(f):.3f} × Nyquist) "
            f"| {f.fsc[1:].mean():.3f} |"
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
    parser.add_argument("--quick", action="store_true", help="fewer particles (smoke test; does not write the report)")
    parser.add_argument("--output", default=str(Path(__file__).with_suffix(".md")))
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    work = Path(tempfile.mkdtemp(prefix="cryoscape_bench_"))
    rows, notes = [], []
    try:
        n = int(10_000 * scale)
        truth, t_sim = simulate(work, "A", 64, 1.5, n_particles=n, seed=1, snr=None)
        notes.append(f"A: simulating {n} noise-free particles at D=64 took {t_sim:.1f} s ({n / t_sim:.0f} images/s).")
        ours = run_ours(work / "A", truth, 1.5)
        f = ours[1]
        notes.append(
            f"A: cryoscape FSC vs truth ≥ 0.5 up to {fraction_of_nyquist(f):.3f} × Nyquist; "
            f"minimum FSC over shells 0..0.9·Nyquist = {f.fsc[: int(0.9 * 32) + 1].min():.3f} (issue: > 0.5)."
        )
        rows += comparison_rows(
            f"A: no noise, {n} particles, D=64, 1.5 Å/px", n, ours, run_cryodrgn(work / "A", truth, 1.5)
        )

        n = int(20_000 * scale)
        truth, _ = simulate(work, "B", 64, 1.5, n_particles=n, seed=2, snr=0.1)
        ours = run_ours(work / "B", truth, 1.5)
        half = ours[2].half_map_fsc
        predicted = np.sqrt(np.clip(2 * half.fsc / (1 + half.fsc), 0, 1))
        gap = np.abs(predicted[1:] - ours[1].fsc[1:])
        notes.append(
            f"B: half-map FSC=0.143 at {half.resolution_A(0.143):.2f} Å, FSC vs truth=0.5 at "
            f"{ours[1].resolution_A(0.5):.2f} Å; FSC vs truth against sqrt(2F/(1+F)) of the half-map FSC F: "
            f"max difference {gap.max():.3f}, mean {gap.mean():.3f} over shells 1..32."
        )
        rows += comparison_rows(f"B: SNR 0.1, {n} particles, D=64", n, ours, run_cryodrgn(work / "B", truth, 1.5))

        n = int(10_000 * scale)
        truth, t_sim = simulate(work, "C", 128, 1.0, n_particles=n, seed=3, snr=1.0)
        notes.append(f"C: simulating {n} particles at D=128 took {t_sim:.1f} s ({n / t_sim:.0f} images/s).")
        rows += comparison_rows(
            f"C: SNR 1, {n} particles, D=128, 1 Å/px",
            n,
            run_ours(work / "C", truth, 1.0),
            run_cryodrgn(work / "C", truth, 1.0),
        )
        notes.append(f"peak RSS of the benchmark process (cryoscape side): {peak_rss_mb():.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = "\n".join(
        [
            "# Simulation + backprojection benchmark",
            "",
            f"Command: `.venv/bin/python benchmarks/reconstruction.py` (git {git_revision()}, {time.strftime('%Y-%m-%d')}).",
            "cryoDRGN runs beside the project from `~/cryodrgn-venv` (see ../shared/tools/README.md) on the same files, in the",
            "same run; its time is the wall time of the command (start-up included), ours the library call (images in memory).",
            "Both reconstruct with half maps. FSC is the full map against the ground-truth map (no mask).",
            "",
            f"Machine: {machine_description()}",
            "",
            "| case | tool | backprojection time | FSC vs truth = 0.5 | mean FSC (shells 1..Nyquist) |",
            "|---|---|---|---|---|",
            *rows,
            "",
            *[f"- {note}" for note in notes],
            "",
        ]
    )
    print(report)
    if not args.quick:
        Path(args.output).write_text(report)


if __name__ == "__main__":
    main()
