"""Benchmark: homogeneous ab initio (`cryoscape abinit-homo`) against the truth, and pose-search scaling.

Run:  .venv/bin/python benchmarks/abinit.py            (writes benchmarks/abinit.md; about 70 min on 2 cores;
                                                       --parts AB: A and B only, about 20 min)
      .venv/bin/python benchmarks/abinit.py --quick    (tiny data, prints only; a smoke test)

A. Accuracy and wall time. adenylate kinase (open), D=64, 1.5 Å/px, CTF, shifts up to 3 px, SNR 0.1,
   8,000 particles (--quick: D=32, 3 Å/px, SNR 1, 400). `cryoscape abinit-homo` runs as a user runs
   it, timed as a whole process. Its poses are compared with the simulator's after the global
   rotation and the hand (both tried: cryoscape.analysis.pose_accuracy), its shifts after the map's
   origin (as undetermined as its orientation) is moved onto the truth's (global_translation). Its map
   is compared with the truth through the poses: the found poses brought back into the truth's frame
   (hand and origin) are backprojected, which gives the map in the truth's frame without resampling
   it; its FSC against the truth map is set beside the FSC of `backproject` with the true poses on
   the same particles.
C. (--het) Heterogeneous: adenylate kinase closed→open (98 frames), D=64, 1.4 Å/px, SNR 0.1, shifts up
   to 2 px (the VAE benchmark's data), --het-n particles. `cryoscape abinit-het` (no poses; its
   default 3 rounds of VAE and search by latent cluster) and `cryoscape train-vae` (true poses),
   same VAE options and epochs. Scored: the median rotation error of abinit-het's poses after each
   step (consensus, rounds) and of the poses its final VAE used; |Spearman| between PC1 of z and
   the true frame; the mean per-image FSC area of 50 random particles' maps against their true frame's map. abinit-het's maps
   are in its own frame and hand: they are brought into the truth's by the alignment of its consensus
   map onto the middle frame's true map (cryoscape.analysis.map_alignment), the same for all.
B. Pose-search throughput: images/s of search_poses against the true map at D=64 and D=128 for
   several kept-candidate counts and refinement levels (batch 128), and the peak memory of one
   search at D=128, batch 16 (resident memory of a fresh process; CUDA's peak allocation on a GPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import git_revision, machine_description, sh  # noqa: E402

from cryoscape.analysis.pose_accuracy import global_translation, pose_accuracy  # noqa: E402
from cryoscape.data.images import ImageSource  # noqa: E402
from cryoscape.data.particle_io import load_particles  # noqa: E402
from cryoscape.imaging.fsc import fsc  # noqa: E402
from cryoscape.imaging.hartley_slicer import HartleySlicer  # noqa: E402
from cryoscape.inference.backprojection import backproject  # noqa: E402
from cryoscape.inference.batches import make_batch  # noqa: E402
from cryoscape.inference.pose_search import SearchSettings, search_poses  # noqa: E402
from cryoscape.io.mrc import read_map  # noqa: E402

CRYOSCAPE = Path(sys.executable).parent / "cryoscape"
CASES = {
    "full": {"n": 8000, "box": 64, "apix": 1.5, "snr": 0.1, "threads": 2},
    "quick": {"n": 400, "box": 32, "apix": 3.0, "snr": 1.0, "threads": 1},
}
_J = np.diag([1.0, 1.0, -1.0])
QUICK_SEARCH = [
    "--restarts",
    "2",
    "--iterations",
    "60",
    "--minibatch",
    "100",
    "--max-shift",
    "3",
    "--refine-rounds",
    "2",
]
# case C in --quick only has to run (its accuracy is case A's and the tests')
QUICK_HET_SEARCH = [
    *("--restarts", "1", "--iterations", "20", "--search-rounds", "0", "--refine-rounds", "1"),
    *("--rounds", "1", "--clusters", "4"),
]


def simulate(folder: Path, case: dict) -> list[str]:
    args = ["simulate", "adk_open", "-o", folder, "-n", case["n"], "--box", case["box"], "--apix", case["apix"]]
    return [*map(str, args), "--snr", str(case["snr"]), "--max-shift", "3", "--seed", "7", "-q"]


def in_truth_frame(found: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, object]:
    """The found poses (N, 3, 3) brought into the truth's frame and hand (see pose_accuracy: found ≈
    truth·Q, or J·truth·J·Q when mirrored), and the accuracy."""
    accuracy = pose_accuracy(found, truth)
    back = found @ accuracy.rotation.T
    return (_J @ back @ _J if accuracy.mirrored else back), accuracy


def accuracy_case(work: Path, case: dict, extra: list[str]) -> dict:
    sh([CRYOSCAPE, *simulate(work / "sim", case)])
    truth_map, apix, _ = read_map(work / "sim/gt/00_adk_open.mrc")
    seconds, peak = sh([CRYOSCAPE, "abinit-homo", work / "sim/particles.star", "-o", work / "run",
                        "--threads", str(case["threads"]), "-q", *extra])  # fmt: skip
    truth = load_particles(work / "sim/particles.star")
    found = load_particles(work / "run/particles.star")
    rotations, accuracy = in_truth_frame(found.rotations, truth.rotations)
    source = ImageSource.from_table(truth, lazy=False)
    move = global_translation(found.shifts_A, truth.shifts_A, truth.rotations)
    shifts = found.shifts_A - (truth.rotations @ move)[:, :2]  # the map's origin put on the truth's
    aligned = dataclasses.replace(found, rotations=rotations, shifts_A=shifts)
    ours = backproject(source, aligned, progress=False)
    reference = backproject(source, truth, progress=False)
    return {
        "seconds": seconds,
        "peak_mb": peak,
        "median_deg": accuracy.median_deg,
        "within_10": accuracy.fraction_within(10),
        "within_5": accuracy.fraction_within(5),
        "mirrored": accuracy.mirrored,
        "origin_px": float(np.linalg.norm(move)) / apix,
        "shift_px": float(np.median(np.linalg.norm(shifts - truth.shifts_A, axis=1))) / apix,
        "fsc05_ours": fsc(ours.volume, truth_map, apix=apix).resolution_A(0.5),
        "fsc05_true": fsc(reference.volume, truth_map, apix=apix).resolution_A(0.5),
        "half_ours": ours.half_map_fsc.resolution_A(0.143),
    }


REFINED = "train-vae --refine-poses on abinit-het's poses"


def het_case(work: Path, n: int, epochs: int, quick: bool) -> dict:
    from common import adk_trajectory_args
    from scipy.stats import spearmanr

    from cryoscape.analysis.ground_truth import find_truth, per_image_summary
    from cryoscape.analysis.latent import latent_pca
    from cryoscape.analysis.map_alignment import align_maps, flip_hand, transform_map
    from cryoscape.analysis.maps import decoded_maps, load_vae

    sim = work / "het_sim"
    sh([CRYOSCAPE, *adk_trajectory_args(sim, n, box=32 if quick else 64, apix=2.8 if quick else 1.4, seed=7), "-q"])
    vae = ["--zdim", "8", "-n", str(epochs), "--threads", "1" if quick else "2", "-q"]
    small = ["--enc-dim", "32", "--dec-dim", "32", "-b", "32"] if quick else []
    results: dict = {}
    runs = (  # name, command, run folder, particles, extra options
        ("abinit-het", "abinit-het", work / "abinit-het", sim / "particles.star",
         QUICK_HET_SEARCH if quick else []),
        ("train-vae, true poses", "train-vae", work / "train-vae", sim / "particles.star", []),
        (REFINED, "train-vae", work / "refined", work / "abinit-het/particles.star", ["--refine-poses"]),
    )  # fmt: skip
    het_transform = None  # abinit-het's map frame onto the truth's
    true_rotations = load_particles(sim / "particles.star").rotations
    for name, command, run, star, extra in runs:
        seconds, peak = sh([CRYOSCAPE, command, star, "-o", run, *vae, *small, *extra])
        model, config, _ = load_vae(run, "latest", None, "benchmark")
        truth = find_truth(config, sim / "particles.star")
        z = np.load(run / "z.npy")
        spearman = abs(spearmanr(latent_pca(z).coords[:, 0], truth.conformation).statistic)
        row = {"seconds": seconds, "peak_mb": peak, "spearman": spearman}
        transform = None
        if name == REFINED:  # the refined run stays in abinit-het's frame
            transform = het_transform
            refined = load_particles(run / "refined_particles.star").rotations
            row["median_deg"] = pose_accuracy(refined, true_rotations).median_deg
        if command == "abinit-het":
            steps = {"consensus": run / "consensus/particles.star"}
            rounds = sorted(run.glob("round_*/searched_particles.star"), key=lambda p: int(p.parent.name[6:]))
            steps |= {f"round {star.parent.name[6:]}": star for star in rounds}
            row["median_by_step"] = {
                step: pose_accuracy(load_particles(star).rotations, true_rotations).median_deg
                for step, star in steps.items()
                if star.is_file()
            }
            row["median_deg"] = pose_accuracy(
                load_particles(run / "particles.star").rotations, true_rotations
            ).median_deg
            middle = truth.all_maps[len(truth.all_maps) // 2]
            consensus, apix, _ = read_map(run / "consensus/map.mrc")
            transform = het_transform = align_maps(consensus, read_map(middle)[0], apix)

        def maps_of(zs, model=model, config=config, transform=transform):
            for volume in decoded_maps(model, config, zs, 8, "maps", False):
                if transform is None:
                    yield volume
                else:
                    moved = flip_hand(volume) if transform.flipped else volume
                    yield transform_map(moved, transform.rotation, transform.shift_A, config.data.apix)

        row["per_image_auc"] = per_image_summary(truth, z, maps_of, 50, config.data.apix)["mean_auc"]
        results[name] = row
    return results


def throughput(volume: np.ndarray, table, settings: SearchSettings, n: int, batch: int, device: str) -> float:
    """Images/s of search_poses for the first n particles (images already in memory)."""
    unposed = dataclasses.replace(table, rotations=None, shifts_A=None)
    index = np.arange(n)
    images = torch.from_numpy(ImageSource.from_table(unposed, lazy=False).get(index))
    slicer = HartleySlicer(torch.from_numpy(volume.copy()).to(device), oversample=1)
    start = time.perf_counter()
    for s in range(0, n, batch):
        part = index[s : s + batch]
        b = make_batch(images[s : s + batch], unposed, part, 1.0, device=device)
        search_poses(slicer, b.images_ht, b.ctf, settings)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def memory_probe(star: str, box: int, device: str) -> float:
    """Run in a fresh process: peak memory (MiB) of one search of 16 images at the default settings."""
    table = load_particles(star)
    volume = read_map(Path(star).parent / "gt/00_adk_open.mrc")[0]
    settings = SearchSettings(base_level=2, levels=3, keep=8, max_shift_px=box / 8)
    throughput(volume, table, settings, 16, 16, device)
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return (
        float(next(line for line in Path("/proc/self/status").read_text().splitlines() if "VmHWM" in line).split()[1])
        / 1024
    )


def scaling(work: Path, quick: bool, device: str) -> list[dict]:
    rows = []
    boxes = [32] if quick else [64, 128]
    for box in boxes:
        case = {"n": 64 if quick else 512, "box": box, "apix": 1.5 * 64 / box, "snr": 0.1}
        folder = work / f"scaling{box}"
        sh([CRYOSCAPE, *simulate(folder, case)])
        table = load_particles(folder / "particles.star")
        volume = read_map(folder / "gt/00_adk_open.mrc")[0]
        grid = [(8, 3)] if quick else [(4, 3), (8, 3), (16, 3), (8, 4)]
        for keep, levels in grid:
            settings = SearchSettings(base_level=2, levels=levels, keep=keep, max_shift_px=box / 8)
            n = 64 if quick else (512 if box == 64 else 128)
            rate = throughput(volume, table, settings, n, 128, device)
            rows.append({"box": box, "keep": keep, "levels": levels, "images": n, "rate": rate})
        probe = [sys.executable, __file__, "--memory-probe", str(folder / "particles.star"), str(box), device]
        out = subprocess.run(probe, capture_output=True, text=True, check=True)
        rows[-1]["peak_mb"] = float(out.stdout.split()[-1])
    return rows


def report(case: dict, acc: dict | None, rows: list[dict], command: str, device: str) -> str:
    lines = [
        "# Ab initio: accuracy, wall time, pose-search scaling",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine_description()}; search device: {device}  ",
        f"cryoscape revision {git_revision()}; float32 throughout.",
        "",
    ]
    if acc is not None:
        lines += accuracy_report(case, acc)
    if rows:
        lines += scaling_report(rows)
    return "\n".join(lines)


def accuracy_report(case: dict, acc: dict) -> list[str]:
    ratio = acc["fsc05_ours"] / acc["fsc05_true"]
    return [
        f"## A. `cryoscape abinit-homo` on adenylate kinase (open), D={case['box']}, {case['apix']} Å/px, "
        f"SNR {case['snr']}, shifts ≤ 3 px, {case['n']:,} particles, {case['threads']} torch threads",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| wall time of the whole command | {acc['seconds'] / 60:.1f} min |",
        f"| peak resident memory | {acc['peak_mb']:.0f} MiB |",
        f"| median rotation error (after global rotation and hand) | {acc['median_deg']:.2f}° |",
        f"| fraction within 5° / 10° | {acc['within_5']:.3f} / {acc['within_10']:.3f} |",
        f"| hand found | {'mirror image' if acc['mirrored'] else 'as the truth'} (undetermined by the data) |",
        f"| the map's origin against the truth's (undetermined by the data) | {acc['origin_px']:.2f} px |",
        f"| median shift error, after moving the origin onto the truth's | {acc['shift_px']:.2f} px |",
        f"| FSC=0.5 vs truth, found poses | {acc['fsc05_ours']:.2f} Å |",
        f"| FSC=0.5 vs truth, `backproject` with the true poses | {acc['fsc05_true']:.2f} Å |",
        f"| ratio found / true poses (goal ≤ 1.3) | {ratio:.2f} |",
        f"| half-map FSC=0.143, found poses | {acc['half_ours']:.2f} Å |",
        "",
    ]


def scaling_report(rows: list[dict]) -> list[str]:
    lines = [
        "## B. Pose-search throughput (search_poses against the true map, batch 128, images in memory)",
        "",
        "| D | kept candidates | levels after the 15° base | final spacing | images | images/s | peak memory, batch 16 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        memory = f"{r['peak_mb']:.0f} MiB" if "peak_mb" in r else ""
        spacing = 15 / 2 ** r["levels"]
        lines.append(
            f"| {r['box']} | {r['keep']} | {r['levels']} | {spacing:.2f}° | {r['images']} | {r['rate']:.1f} | {memory} |"
        )
    return lines + ["", f"Load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}.", "", ""]


def het_report(het: dict, args) -> str:
    n = 300 if args.quick else args.het_n
    lines = [
        f"## C. Heterogeneous: adenylate kinase closed→open, {n:,} particles, SNR 0.1, VAE zdim 8, "
        f"{1 if args.quick else args.het_epochs} epochs",
        "",
        "| run | poses | wall time | peak memory | median rotation error | abs Spearman(PC1 of z, frame) | per-image FSC area (50 particles) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in het.items():
        poses = {"abinit-het": "found (no poses given)", REFINED: "abinit-het's, refined while training"}.get(
            name, "true"
        )
        error = f"{r['median_deg']:.2f}°" if "median_deg" in r else "-"
        lines.append(f"| {name} | {poses} | {r['seconds'] / 60:.1f} min | {r['peak_mb']:.0f} MiB | {error} | "
                     f"{r['spearman']:.3f} | {r['per_image_auc']:.3f} |")  # fmt: skip
    known = het["train-vae, true poses"]["per_image_auc"]
    ratio, refined = (het[name]["per_image_auc"] / known for name in ("abinit-het", REFINED))
    steps = ", ".join(f"{step} {deg:.2f}°" for step, deg in het["abinit-het"]["median_by_step"].items())
    lines += [
        "",
        f"Per-image FSC area, abinit-het / known poses: {ratio:.3f} (goal ≥ 0.9); with its final VAE's poses "
        f"refined by gradient descent (--refine-poses): {refined:.3f}.",
        "",
        f"abinit-het's median rotation error after each step (the final VAE trains on the last): {steps}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny data; print the report, write nothing")
    parser.add_argument("--output", default=str(Path(__file__).with_suffix(".md")), help="report path")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--parts", default="ABC", help="which of A, B, C to run (default ABC; the report has those)")
    parser.add_argument("--het-n", type=int, default=8000, help="particles of case C (default 8000)")
    parser.add_argument("--het-epochs", type=int, default=5, help="VAE epochs of case C (default 5)")
    parser.add_argument("--memory-probe", nargs=3, metavar=("STAR", "BOX", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        star, box, device = args.memory_probe
        print(memory_probe(star, int(box), device))
        return
    case = CASES["quick" if args.quick else "full"]
    torch.set_num_threads(case["threads"])
    extra = QUICK_SEARCH if args.quick else []
    with tempfile.TemporaryDirectory() as tmp:
        acc = accuracy_case(Path(tmp), case, extra) if "A" in args.parts else None
        rows = scaling(Path(tmp), args.quick, args.device) if "B" in args.parts else []
        n, epochs = (300, 1) if args.quick else (args.het_n, args.het_epochs)
        het = het_case(Path(tmp), n, epochs, args.quick) if "C" in args.parts else None
    command = " ".join(["python benchmarks/abinit.py", *sys.argv[1:]])
    text = report(case, acc, rows, command, args.device) + (het_report(het, args) if het else "")
    print(text)
    if not args.quick:
        Path(args.output).write_text(text)


if __name__ == "__main__":
    main()
