"""Benchmark: the voxel-grid volume model (train-nn --model voxel) against gold-standard
backprojection, same particles and poses, same run.

Run:  .venv/bin/python benchmarks/voxel.py            (writes benchmarks/voxel.md; about 5 min on 2 cores)
      .venv/bin/python benchmarks/voxel.py --quick    (2,000 particles, 2 epochs, one thread: smoke test, no report)

Data: adk_open, D=64, 1.5 Å/px, SNR 0.1, 20,000 particles, CTF with 500 Å astigmatism, shifts up to
4 px (case B of benchmarks/reconstruction.py). Both maps are scored by FSC against the true map (no
mask); the voxel grid trains with its defaults (2x-oversampled grid, Adam lr 0.05 falling by 0.5 per
epoch, batch 8) for the epochs given, in this process on the CPU (or --device), in float32.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import git_revision, machine_description  # noqa: E402

from cryoscape.data.images import ImageSource  # noqa: E402
from cryoscape.data.particle_io import load_particles  # noqa: E402
from cryoscape.imaging.fsc import fsc  # noqa: E402
from cryoscape.inference.backprojection import backproject  # noqa: E402
from cryoscape.inference.engine import train  # noqa: E402
from cryoscape.inference.run_config import TrainingSettings, read_run_config  # noqa: E402
from cryoscape.inference.run_models import generate_volume  # noqa: E402
from cryoscape.models.voxel_grid import VoxelGridSettings  # noqa: E402
from cryoscape.simulate.conformations import load_component  # noqa: E402
from cryoscape.simulate.particles import SimulationConfig, simulate_dataset  # noqa: E402

D, APIX = 64, 1.5


def run(n: int, epochs: int, device: str, work: Path) -> dict:
    """Simulate, backproject and train the voxel grid; the numbers of the report."""
    component = load_component("adk_open", D, APIX)
    config = SimulationConfig(
        n_particles=n, D=D, apix=APIX, seed=2, snr=0.1, max_shift_px=4, astigmatism_A=500, batch_size=1000
    )
    simulate_dataset([component], config, work / "sim", progress=False)
    truth = component.volumes[0]
    table = load_particles(work / "sim/particles.star")
    source = ImageSource.from_table(table, lazy=False)
    t0 = time.perf_counter()
    reference = backproject(source, table, progress=False, device=device)
    bp_seconds = time.perf_counter() - t0
    settings = VoxelGridSettings()
    training = TrainingSettings(epochs=epochs, lr=settings.default_lr, lr_decay=settings.default_lr_decay)
    t0 = time.perf_counter()
    model = train(source, table, settings, training, work / "voxel", device=device, progress=False)
    voxel_seconds = time.perf_counter() - t0
    volume = generate_volume(model.eval(), read_run_config(work / "voxel"))
    curves = {"backprojection": fsc(reference.volume, truth, apix=APIX), "voxel": fsc(volume, truth, apix=APIX)}
    return {
        "n": n,
        "epochs": epochs,
        "device": device,
        "bp_seconds": bp_seconds,
        "voxel_seconds": voxel_seconds,
        **{f"{k}_res": c.resolution_A(0.5) for k, c in curves.items()},
        **{f"{k}_auc": c.auc() for k, c in curves.items()},
    }


def report(r: dict) -> str:
    ratio = r["voxel_res"] / r["backprojection_res"]
    return "\n".join(
        [
            "# Voxel-grid model vs backprojection",
            "",
            f"Command: `.venv/bin/python benchmarks/voxel.py` (git {git_revision()}, {time.strftime('%Y-%m-%d')}), "
            f"device {r['device']}, float32.",
            f"Machine: {machine_description()}",
            "",
            f"adk_open, {r['n']} particles, D={D}, {APIX} Å/px, SNR 0.1, true poses and CTF; FSC against the true map.",
            "",
            "| method | FSC=0.5 vs truth | FSC area | seconds |",
            "|---|---|---|---|",
            f"| backproject (gold standard, Wiener) | {r['backprojection_res']:.2f} Å | {r['backprojection_auc']:.3f} | "
            f"{r['bp_seconds']:.0f} |",
            f"| train-nn --model voxel, {r['epochs']} epochs | {r['voxel_res']:.2f} Å | {r['voxel_auc']:.3f} | "
            f"{r['voxel_seconds']:.0f} |",
            "",
            f"Resolution ratio voxel / backprojection: {ratio:.3f} (issue 10 asks for at most 1.2).",
            "A voxel grid on the images' own D³ lattice (no oversampling) stopped at 5.05 Å on these data however long",
            "it trained (lr 0.02-0.1, decay 0.1-0.7 per epoch, 5-10 epochs, batch 8 or 32): trilinear interpolation",
            "on that lattice cannot represent the slices of a particle that fills much of the box; hence the 2x grid.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="2,000 particles, 2 epochs, one thread; print, write no report"
    )
    parser.add_argument("--epochs", type=int, default=5, help="voxel-grid epochs (default 5)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--output", default=str(Path(__file__).with_suffix(".md")))
    args = parser.parse_args()
    if args.quick:  # one thread: a smoke test robust to a busy machine
        import torch

        torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="cryoscape_voxel_"))
    try:
        result = run(2000 if args.quick else 20_000, 2 if args.quick else args.epochs, args.device, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(result)
    print(text)
    if not args.quick:
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
