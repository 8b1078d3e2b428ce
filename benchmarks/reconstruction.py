"""Benchmark: accuracy and speed of simulation + gold-standard backprojection (the issue's cases).

Run:  .venv/bin/python benchmarks/reconstruction.py            (writes benchmarks/reconstruction.md)
      .venv/bin/python benchmarks/reconstruction.py --quick    (smaller, for a smoke test)

Cases:
  A. adk_open, D=64, 1.5 Å/px, CTF, no noise, 10k particles: FSC vs ground truth.
  B. adk_open, D=64, SNR 0.1, 20k particles: half-map FSC and FSC vs truth, and the consistency
     check FSC_truth ≈ sqrt(2·FSC_half / (1 + FSC_half)) (Rosenthal & Henderson 2003).
  C. speed: backprojection of 10k images at D=128 (seconds and images/s), cryoscape vs
     cryoDRGN's backproject_voxel in the same run when ~/cryodrgn-venv exists.
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


def case_noise_free(work: Path, n: int) -> list[str]:
    comp = load_component("adk_open", 64, 1.5)
    cfg = SimulationConfig(n_particles=n, D=64, apix=1.5, seed=1, snr=None, max_shift_px=4, astigmatism_A=500, batch_size=1000)
    t0 = time.perf_counter()
    simulate_dataset([comp], cfg, work / "A", progress=False)
    t_sim = time.perf_counter() - t0
    table = load_particles(work / "A" / "particles.star")
    t0 = time.perf_counter()
    res = backproject(ImageSource.from_table(table, lazy=False), table, progress=False)
    t_bp = time.perf_counter() - t0
    vs = fsc(res.volume, comp.volumes[0], apix=1.5)
    return [
        f"| A: no noise, {n} particles, D=64 | FSC vs truth ≥ 0.5 up to {fraction_of_nyquist(vs):.3f} × Nyquist "
        f"({vs.resolution_A(0.5):.2f} Å; Nyquist 3.00 Å); min FSC over 0..0.9 Nyquist = {vs.fsc[:int(0.9 * 32) + 1].min():.3f} "
        f"| simulate {t_sim:.1f} s, backproject {t_bp:.1f} s |"
    ]


def case_noisy(work: Path, n: int) -> list[str]:
    comp = load_component("adk_open", 64, 1.5)
    cfg = SimulationConfig(n_particles=n, D=64, apix=1.5, seed=2, snr=0.1, max_shift_px=4, astigmatism_A=500, batch_size=1000)
    simulate_dataset([comp], cfg, work / "B", progress=False)
    table = load_particles(work / "B" / "particles.star")
    res = backproject(ImageSource.from_table(table, lazy=False), table, progress=False)
    half = res.half_map_fsc
    vs = fsc(res.volume, comp.volumes[0], apix=1.5)
    predicted = np.sqrt(np.clip(2 * half.fsc / (1 + half.fsc), 0, 1))
    shells = np.arange(1, 33)
    gap = np.abs(predicted[shells] - vs.fsc[shells])
    rows = [
        f"| B: SNR 0.1, {n} particles, D=64 | half-map FSC=0.143: {half.resolution_A(0.143):.2f} Å; "
        f"FSC vs truth=0.5: {vs.resolution_A(0.5):.2f} Å; "
        f"max |FSC_truth − sqrt(2F/(1+F))| over shells 1..32: {gap.max():.3f} (mean {gap.mean():.3f}) | |",
    ]
    return rows


def case_speed(work: Path, n: int) -> list[str]:
    comp = load_component("adk_open", 128, 1.0)
    cfg = SimulationConfig(n_particles=n, D=128, apix=1.0, seed=3, snr=1.0, max_shift_px=4, batch_size=500)
    simulate_dataset([comp], cfg, work / "C", progress=False)
    table = load_particles(work / "C" / "particles.star")
    source = ImageSource.from_table(table, lazy=False)
    source.get(np.arange(min(n, 10)))
    t0 = time.perf_counter()
    backproject(source, table, progress=False)
    t_ours = time.perf_counter() - t0
    rows = [f"| C: backprojection speed, {n} images, D=128 (in memory, both halves + Wiener) | cryoscape: {t_ours:.1f} s = "
            f"{n / t_ours:.0f} images/s; peak RSS {peak_rss_mb():.0f} MiB |"]
    if CRYODRGN.exists():
        export_cryodrgn(table, 128, 1.0, work / "C" / "poses.pkl", work / "C" / "ctf.pkl", force=True)
        cmd = [str(CRYODRGN), "backproject_voxel", str(work / "C" / "particles.mrcs"), "--poses", str(work / "C" / "poses.pkl"),
               "--ctf", str(work / "C" / "ctf.pkl"), "-o", str(work / "C" / "cryodrgn.mrc"), "--uninvert-data"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        t_drgn = time.perf_counter() - t0
        if proc.returncode == 0:
            rows.append(f"| C': cryoDRGN 4.3.1 backproject_voxel, same data | {t_drgn:.1f} s = {n / t_drgn:.0f} images/s "
                        f"(wall time of the command, incl. start-up); cryoscape is {t_drgn / t_ours:.2f}× as fast |")
        else:
            rows.append(f"| C': cryoDRGN backproject_voxel failed | {proc.stderr.strip().splitlines()[-1] if proc.stderr else ''} |")
    else:
        rows.append("| C': cryoDRGN not installed beside the project (see ../shared/tools/README.md) | not compared |")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer particles (smoke test; does not write the report)")
    parser.add_argument("--output", default=str(Path(__file__).with_suffix(".md")))
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    work = Path(tempfile.mkdtemp(prefix="cryoscape_bench_"))
    try:
        rows = case_noise_free(work, int(10_000 * scale)) + case_noisy(work, int(20_000 * scale)) + case_speed(work, int(10_000 * scale))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = "\n".join([
        "# Simulation + backprojection benchmark",
        "",
        f"Command: `.venv/bin/python benchmarks/reconstruction.py` (git {git_revision()}, {time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {machine_description()}",
        "",
        "| case | result | time |",
        "|---|---|---|",
        *rows,
        "",
    ])
    print(report)
    if not args.quick:
        Path(args.output).write_text(report)


if __name__ == "__main__":
    main()
