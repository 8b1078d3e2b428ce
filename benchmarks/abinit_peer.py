"""Benchmark: pose-search throughput and accuracy, cryoscape against cryoDRGN 4.3.1's `cryodrgn abinit`
(cryoDRGN-AI), homogeneous (zdim 0), side by side on the same images, CPU and run.

Run:  nice -n 19 .venv/bin/python benchmarks/abinit_peer.py          (writes benchmarks/abinit_peer.md;
                                                                      about 40 min on 2 CPU cores)
      .venv/bin/python benchmarks/abinit_peer.py --from-results WORKDIR/results.json   (rewrite the report only)
      .venv/bin/python benchmarks/abinit_peer.py --quick  (smoke test: 500 particles, a 16-image subset, a
                                                           shortened abinit-homo, no cryoDRGN; prints only)

Data: `cryoscape simulate adk_open -n N --box 64 --apix 1.5 --snr 0.1 --max-shift 3 --seed 7` (N = 8,000).
The peer searches only the first --subset images (40 by default: its hierarchical pose search runs at
about 0.1-0.2 images/s on 2 busy cores, and its default schedule searches every image 3 times).

Measured, with torch limited to the same number of threads in both tools (--threads, 2):
  cryoDRGN  `cryodrgn abinit particles.mrcs --ctf ctf.pkl --ind first_K.pkl --zdim 0 --num-epochs 3 -o DIR`:
            its defaults otherwise, i.e. pretraining epoch 0 and its default 3 pose-search (HPS) epochs; --num-epochs
            3 only drops the SGD epochs after them. Images/s = 3·K / the sum of the three "HPS Epoch: n finished
            in" times of its log; the rotation error is that of pose.3.pkl (its poses after the last HPS epoch).
  cryoscape `search_poses` on the same K images against the true map (HartleySlicer of gt/00_adk_open.mrc),
            SearchSettings(base_level=2, levels=3 or 4, keep=8, max_shift_px=8), batches of 128 made by
            make_batch from the table without poses; the search call alone is timed. And the whole
            `cryoscape abinit-homo SUBSET -o RUN` command (its defaults), timed as a process, scored from
            RUN/particles.star; it needs more particles than the peer's subset, see the report.
Rotation errors: cryoscape.analysis.pose_accuracy (up to one global rotation and the hand).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import git_revision, machine_description, sh  # noqa: E402

from cryoscape.analysis.pose_accuracy import pose_accuracy  # noqa: E402
from cryoscape.data.images import ImageSource  # noqa: E402
from cryoscape.data.particle_io import export_cryodrgn, load_particles  # noqa: E402
from cryoscape.imaging.hartley_slicer import HartleySlicer  # noqa: E402
from cryoscape.imaging.rotations import random_rotations  # noqa: E402
from cryoscape.inference.batches import make_batch  # noqa: E402
from cryoscape.inference.pose_search import SearchSettings, search_poses  # noqa: E402
from cryoscape.io.legacy_pickle import safe_load_pickle  # noqa: E402
from cryoscape.io.mrc import read_map  # noqa: E402

CRYOSCAPE = Path(sys.executable).parent / "cryoscape"
CRYODRGN = Path.home() / "cryodrgn-venv" / "bin" / "cryodrgn"
SIZES = {
    # n: particles simulated; subset: the peer's images (the first ones); abinit: particles given to
    # abinit-homo when it refuses the subset (it needs >= 200, and >= its 500 probe images at git fa19251)
    "full": {"n": 8000, "subset": 40, "abinit": 500, "box": 64, "apix": 1.5},
    "quick": {"n": 500, "subset": 16, "abinit": 500, "box": 64, "apix": 1.5},
}
# the shortened schedule of abinit-homo in --quick (a smoke test of the command, not its accuracy)
QUICK_ABINIT = ["--restarts", "1", "--iterations", "1", "--search-rounds", "0", "--refine-rounds", "0"]
BATCH = 128
HPS_EPOCHS = 3  # cryoDRGN abinit's default number of pose-search epochs


def load_sample(loads: list) -> None:
    loads.append(os.getloadavg()[0])


def cpu_children() -> float:
    t = os.times()
    return t.children_user + t.children_system


def run_timed(cmd: list, log: Path, env: dict | None = None) -> dict:
    """A command timed by common.sh (wall, peak RSS) and its CPU seconds (children's rusage);
    ``error`` holds the end of its output if it failed."""
    cpu0 = cpu_children()
    try:
        seconds, peak = sh(cmd, log=log, env=env)
        error = None
    except SystemExit as failure:
        lines = [x for x in str(failure).strip().splitlines() if not x.startswith(("PEAK_KB", "Command exited"))]
        seconds, peak, error = float("nan"), float("nan"), lines[-1][-300:]
    return {"seconds": seconds, "peak_mb": peak, "cpu_s": cpu_children() - cpu0, "error": error}


def accuracy(found: np.ndarray, truth: np.ndarray) -> dict:
    a = pose_accuracy(found, truth)
    return {"median_deg": a.median_deg, "within10": a.fraction_within(10.0), "mirrored": a.mirrored}


def run_cryodrgn(data: Path, k: int, threads: int, truth: np.ndarray) -> dict:
    """`cryodrgn abinit` on the first k images, defaults but for --num-epochs 3 (pretraining + its 3 HPS
    epochs, no SGD epochs after them)."""
    with open(data / "first_k.pkl", "wb") as f:
        pickle.dump(np.arange(k), f)
    out = data / "cryodrgn"
    cmd = [CRYODRGN, "abinit", data / "particles.mrcs", "--ctf", data / "ctf.pkl", "--ind", data / "first_k.pkl"]
    cmd += ["--zdim", "0", "--num-epochs", str(HPS_EPOCHS), "--seed", "7", "-o", out]
    # torch takes its CPU threads from OMP_NUM_THREADS (cryoDRGN never calls set_num_threads)
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    result = run_timed(cmd, data / "cryodrgn.log", env)
    result["command"] = " ".join(str(c).replace(str(data) + "/", "") for c in cmd)
    text = (out / "run.log").read_text() if (out / "run.log").exists() else ""
    epochs = {
        int(e): int(h) * 3600 + int(m) * 60 + float(s)
        for e, h, m, s in re.findall(r"HPS Epoch: (\d+) finished in (\d+):(\d+):([\d.]+)", text)
    }
    pretrain = re.search(r"Pretrain Epoch: 0 finished in (\d+):(\d+):([\d.]+)", text)
    result["pretrain_s"] = int(pretrain[1]) * 3600 + int(pretrain[2]) * 60 + float(pretrain[3]) if pretrain else None
    result["epochs_s"] = epochs
    result["hps_s"] = sum(epochs.values())
    result["searched"] = k * len(epochs)
    result["per_epoch"] = {}
    for epoch in sorted(epochs):
        path = out / f"pose.{epoch}.pkl"
        if path.exists():
            poses = safe_load_pickle(path, "pose file")  # (rotations (k,3,3), translations (k,2) in px)
            rot = np.asarray(poses[0] if isinstance(poses, tuple | list) else poses, np.float64)
            # cryoscape's export writes our rotations unchanged (cryoscape.data.cryodrgn_files.cryodrgn_arrays),
            # so cryoDRGN's pose pickles are in our convention: no inverse to apply. The transpose is scored
            # as a check of that.
            result["per_epoch"][epoch] = {
                **accuracy(rot, truth),
                "transposed_median_deg": pose_accuracy(rot.transpose(0, 2, 1), truth).median_deg,
            }
    return result


def run_search(images: torch.Tensor, table, index: np.ndarray, volume: np.ndarray, levels: int) -> dict:
    """search_poses of the images against the true map, batches of BATCH; the search call alone timed."""
    unposed = dataclasses.replace(table, shifts_A=None, rotations=None)
    render = HartleySlicer(torch.from_numpy(volume.copy()))
    settings = SearchSettings(base_level=2, levels=levels, keep=8, max_shift_px=8)
    batches = [
        make_batch(images[s : s + BATCH], unposed, index[s : s + BATCH], scale=1.0) for s in range(0, len(index), BATCH)
    ]
    found, seconds, cpu = [], 0.0, 0.0
    for batch in batches:
        t0, c0 = time.perf_counter(), time.process_time()
        result = search_poses(render, batch.images_ht, batch.ctf, settings)
        seconds += time.perf_counter() - t0
        cpu += time.process_time() - c0
        found.append(result.rotations[:, 0].double().numpy())
    D = table.box_size
    band = f"{settings.band_limit(0, D)}→{settings.band_limit(levels, D)}"
    found = np.concatenate(found)
    return {
        "seconds": seconds,
        "cpu_s": cpu,
        "searched": len(index),
        "band": band,
        **accuracy(found, table.rotations[index]),
    }


def run_abinit(data: Path, n: int, threads: int, truth: np.ndarray, k: int, quick: bool, name: str) -> dict:
    """`cryoscape abinit-homo` on the first n particles (a .star written by `cryoscape select`)."""
    np.save(data / f"first_{n}.npy", np.arange(n))
    subset = data / f"first_{n}.star"
    sh([CRYOSCAPE, "select", data / "particles.star", "--ind", data / f"first_{n}.npy", "-o", subset, "-q"])
    out = data / name
    cmd = [CRYOSCAPE, "abinit-homo", subset, "-o", out, "--threads", str(threads), "-q"]
    cmd += QUICK_ABINIT if quick else []
    result = run_timed(cmd, data / f"{name}.log")
    result["n"] = n
    result["command"] = " ".join(str(c).replace(str(data) + "/", "") for c in cmd)
    if result["error"] is None:
        found = load_particles(out / "particles.star").rotations
        result["all"] = accuracy(found, truth[:n])
        result["subset"] = accuracy(found[:k], truth[:k])
    return result


def fmt_error(r: dict) -> str:
    return f"{r['median_deg']:.2f}° | {r['within10']:.1%}{' (mirror)' if r['mirrored'] else ''}"


def report(raw: dict, peer_note: str, notes: list) -> str:
    sizes, threads, ours, theirs = raw["sizes"], raw["threads"], raw["ours"], raw["theirs"]
    k = sizes["subset"]
    rows = []
    peer_rate = None
    if theirs is not None and theirs["hps_s"] > 0 and theirs["error"] is None:
        peer_rate = theirs["searched"] / theirs["hps_s"]
        last = theirs["per_epoch"].get(max(theirs["epochs_s"]), None)
        err = fmt_error(last) if last else "no pose file | "
        rows.append(
            f"| cryoDRGN 4.3.1 `abinit`: its {len(theirs['epochs_s'])} HPS epochs (log times) | float32 | "
            f"{theirs['searched']} ({k} × {len(theirs['epochs_s'])}) | {theirs['hps_s']:.1f} | {peer_rate:.3f} | 1 | "
            f"{err} |"
        )
        rows.append(
            f"| cryoDRGN 4.3.1 `abinit`: whole command | float32 | {theirs['searched']} | {theirs['seconds']:.1f} | "
            f"{theirs['searched'] / theirs['seconds']:.3f} | - | (as above) | |"
        )
    else:
        note = peer_note if theirs is None else f"failed: {theirs['error']}"
        rows.append(f"| cryoDRGN 4.3.1 `abinit` (HPS epochs) | float32 | {note} | | | | | |")
    for levels in (3, 4):
        r = ours[f"levels{levels}"]
        rate = r["searched"] / r["seconds"]
        ratio = f"{rate / peer_rate:.0f}" if peer_rate else "-"
        rows.append(
            f"| cryoscape `search_poses`, levels={levels} (to {60 / 2 ** (2 + levels):.2f}°), true map | float32 | "
            f"{r['searched']} | {r['seconds']:.2f} | {rate:.1f} | {ratio} | {fmt_error(r)} |"
        )
    for key in ("abinit_subset", "abinit"):
        r = ours.get(key)
        if r is None:
            continue
        if r["error"] is not None:
            rows.append(f"| cryoscape `abinit-homo` on {r['n']} particles: whole command | float32 | failed: "
                        f"{r['error']} | | | | | |")  # fmt: skip
            continue
        rows.append(
            f"| cryoscape `abinit-homo` on {r['n']} particles: whole command{' (--quick schedule)' if raw['quick'] else ''}"
            f" | float32 | {r['n']} | {r['seconds']:.1f} | {r['n'] / r['seconds']:.2f} | - | {fmt_error(r['all'])} |"
        )
    return "\n".join(
        [
            "# Pose search: cryoscape against cryoDRGN 4.3.1 `abinit` (cryoDRGN-AI), homogeneous",
            "",
            f"Command: `{raw['command']}` (git {raw['git']}, {raw['date']}"
            f"{'; ' + raw['dirty'] if raw.get('dirty') else ''}).{raw.get('rewritten', '')}",
            "",
            f"Machine: {raw['machine']}",
            "",
            f"Data: `cryoscape simulate adk_open -n {sizes['n']} --box {sizes['box']} --apix {sizes['apix']} --snr 0.1 "
            f"--max-shift 3 --seed 7`; the peer and cryoscape's `search_poses` get its first {k} images. torch threads "
            f"in both tools: {threads} (cryoDRGN: OMP_NUM_THREADS={threads}; cryoscape: torch.set_num_threads({threads}) "
            f"and `--threads {threads}`); every process ran under `nice -n 19`. Both compute in float32 (cryoDRGN's "
            "default AMP is CUDA-only and a no-op on the CPU).",
            "",
            "| tool: what is timed | precision | images searched | seconds | images/s | ratio cryoscape/cryoDRGN | "
            "median rotation error | within 10° |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            *[f"- {note}" for note in notes],
            "",
        ]
    )


def make_notes(raw: dict, chance: list[float]) -> list[str]:
    """What each number covers, from the raw results."""
    k, ours, theirs, notes = raw["sizes"]["subset"], raw["ours"], raw["theirs"], []
    if theirs is not None:
        if theirs["error"] is not None:
            notes.append(f"cryoDRGN failed: {theirs['error']}")
        notes.append(
            f"cryoDRGN command: `cryodrgn {theirs['command'].split('cryodrgn ', 1)[-1]}` (ctf.pkl from "
            "cryoscape.data.particle_io.export_cryodrgn; no poses given; first_k.pkl = the indices 0..k-1). Its "
            "defaults for the search: base grid level 2 (the same 4,608-rotation Hopf grid as cryoscape's level 2), 4 "
            "refinements (niter 4), 8 poses kept, translations on a 7×7 grid over ±20 px, band 12→32 px, batches of "
            "16; before it, the pretraining epoch 0 on the same images. --num-epochs 3 only removes the SGD epochs "
            "that follow its 3 default HPS epochs."
        )
        epochs = ", ".join(f"epoch {e}: {s:.1f} s" for e, s in sorted(theirs["epochs_s"].items()))
        notes.append(
            f"cryoDRGN images/s = {k} images × {len(theirs['epochs_s'])} HPS epochs / the sum of the epoch times "
            f"its run.log gives ({epochs}; pretraining epoch 0: {theirs['pretrain_s'] or float('nan'):.1f} s, "
            "not counted). Each HPS step also evaluates its neural volume on every slice and takes a gradient "
            "step on it: that is its pose search as it runs, not a search against a fixed map. The whole command "
            f"(start-up, data loading, pretraining, summaries) took {theirs['seconds']:.1f} s wall, "
            f"{theirs['cpu_s']:.0f} CPU-s ({theirs['cpu_s'] / theirs['seconds']:.2f} cores busy on average), "
            f"peak {theirs['peak_mb']:.0f} MiB."
        )
        per = "; ".join(
            f"after epoch {e}: median {a['median_deg']:.1f}°, {a['within10']:.0%} within 10°"
            f"{' (mirror)' if a['mirrored'] else ''} (transposed rotations: median {a['transposed_median_deg']:.1f}°)"
            for e, a in sorted(theirs["per_epoch"].items())
        )
        notes.append(
            f"cryoDRGN's rotation errors against the truth, pose.<epoch>.pkl of its {k} images: {per}. Its pose "
            "pickles are read as cryoscape's rotations unchanged (export_cryodrgn writes ours as they are; the "
            f"transposed reading is given as a check). {k} images are far too few for an ab initio model: the error "
            "says how far its pose search gets on this budget, not its accuracy on a full data set."
        )
    notes.append(
        f"Chance level: uniformly random rotations scored the same way against the first {k} true poses have "
        f"median errors {min(chance):.0f}–{max(chance):.0f}° (5 draws)."
    )
    for levels in (3, 4):
        r = ours[f"levels{levels}"]
        notes.append(
            f"cryoscape search_poses levels={levels}: the search call alone on images already prepared "
            f"(make_batch, batches of ≤ {BATCH}), against the TRUE map: {r['seconds']:.2f} s wall, "
            f"{r['cpu_s']:.2f} CPU-s ({r['cpu_s'] / r['seconds']:.2f} cores busy on average); 7×7 "
            f"translations over ±8 px, band {r['band']} px. Its rotation error is that of a search against the "
            "correct map, a bound for ab initio, not comparable with cryoDRGN's error against its learned map."
        )
    for key in ("abinit_subset", "abinit"):
        r = ours.get(key)
        if r is None:
            continue
        if r["error"] is not None:
            notes.append(f"`cryoscape {r['command'].split('cryoscape ', 1)[-1]}` failed: {r['error']}")
            continue
        notes.append(
            f"`cryoscape {r['command'].split('cryoscape ', 1)[-1]}` ({r['n']} particles, first_{r['n']}.star "
            f"written by `cryoscape select`): whole command as a process, {r['seconds']:.1f} s wall, "
            f"{r['cpu_s']:.0f} CPU-s, peak {r['peak_mb']:.0f} MiB; images/s there = particles / wall time of "
            "the whole ab initio run (stochastic starts, global search, local refinement, reconstructions), not "
            f"of a search. Rotation error over its {r['n']} particles: {fmt_error(r['all']).replace(' | ', ', ')} "
            f"within 10°; over the first {k} (cryoDRGN's): {fmt_error(r['subset']).replace(' | ', ', ')} within 10°."
        )
    notes.append(
        "1-minute load average: "
        + ", ".join(f"{v:.2f}" for v in raw["loads"])
        + " (at the start, before and after the cryoDRGN run, after cryoscape's searches, after abinit-homo; "
        f"{raw['cores']} cores). Above {raw['cores']}, other work shared the CPUs and every time is slower; both tools "
        "ran under the same conditions, one after the other."
    )
    return notes


def uncommitted() -> str:
    """The package's files that differ from the commit (the code measured is the working tree)."""
    out = subprocess.run(["git", "status", "--porcelain", "--", "cryoscape"], capture_output=True, text=True,
                         cwd=Path(__file__).parent).stdout  # fmt: skip
    files = [line[3:] for line in out.splitlines()]
    return f"uncommitted changes to {', '.join(files)} were in the working tree" if files else ""


def chance_errors(truth: np.ndarray) -> list[float]:
    """Median errors of uniformly random rotations against ``truth`` (5 draws)."""
    gen = [torch.Generator().manual_seed(seed) for seed in range(1, 6)]
    return [pose_accuracy(random_rotations(len(truth), generator=g, dtype=torch.float64).numpy(), truth).median_deg
            for g in gen]  # fmt: skip


def from_results(path: Path, output: Path | None) -> None:
    """Rewrite the report from a run's results.json (its --workdir kept the data)."""
    raw = json.loads(path.read_text())
    theirs = raw["theirs"]
    if theirs is not None:  # JSON keys are strings
        theirs["epochs_s"] = {int(e): s for e, s in theirs["epochs_s"].items()}
        theirs["per_epoch"] = {int(e): a for e, a in theirs["per_epoch"].items()}
    raw.setdefault("quick", False)
    raw.setdefault("cores", os.cpu_count())
    if "command" not in raw:  # results.json of the first full run (2026-12-01) lacked these
        raw.update(
            command=f"nice -n 19 .venv/bin/python benchmarks/abinit_peer.py --workdir {path.parent}",
            git=git_revision(),
            date=time.strftime("%Y-%m-%d", time.localtime(path.stat().st_mtime)),
            machine=machine_description(),
            dirty="others' uncommitted edits to the ab initio code (cryoscape/cli/abinit_homo.py, "
            "cli/abinit_options.py, inference/abinit_homo.py, backprojection.py, local_search.py) were in the working "
            "tree while it ran, so the abinit-homo row measures that working tree, not the commit alone",
        )
    raw["rewritten"] = f" Report rewritten from its results.json by `--from-results` (git {git_revision()})."
    truth = load_particles(path.parent / "data" / "particles.star").rotations[: raw["sizes"]["subset"]]
    text = report(raw, "not run", make_notes(raw, chance_errors(truth)))
    print(text)
    (output or Path(__file__).with_suffix(".md")).write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller data, no cryoDRGN; print, write no report")
    parser.add_argument(
        "--output", type=Path, default=None, help="report (default benchmarks/abinit_peer.md; none with --quick)"
    )
    parser.add_argument(
        "--subset", type=int, default=None, help="images given to cryoDRGN (default 40; 16 with --quick)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch's CPU threads in both tools (default 2)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the data, runs and results.json here (default: a temporary folder, removed)",
    )
    parser.add_argument(
        "--from-results",
        type=Path,
        default=None,
        metavar="JSON",
        help="only rewrite the report from a run's WORKDIR/results.json",
    )
    args = parser.parse_args()
    if args.from_results:
        from_results(args.from_results, args.output)
        return
    sizes = dict(SIZES["quick" if args.quick else "full"])
    if args.subset:
        sizes["subset"] = args.subset
    k, threads = sizes["subset"], args.threads
    torch.set_num_threads(threads)
    output = args.output or (None if args.quick else Path(__file__).with_suffix(".md"))
    peer = CRYODRGN.exists() and not args.quick
    peer_note = "not run (--quick)" if args.quick else "not run (not installed at ~/cryodrgn-venv)"
    work = args.workdir or Path(tempfile.mkdtemp(prefix="cryoscape_abinit_peer_"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    loads: list[float] = []
    try:
        load_sample(loads)
        if not (data / "particles.star").exists():
            sh([CRYOSCAPE, "simulate", "adk_open", "-o", data, "-n", sizes["n"], "--box", sizes["box"],
                "--apix", sizes["apix"], "--snr", "0.1", "--max-shift", "3", "--seed", "7", "-q"])  # fmt: skip
        table = load_particles(data / "particles.star")
        truth = table.rotations
        export_cryodrgn(table, table.box_size, None, data / "poses.pkl", data / "ctf.pkl", force=True)  # poses unused
        volume, _, _ = read_map(data / "gt" / "00_adk_open.mrc")

        theirs = None
        if peer:
            load_sample(loads)
            theirs = run_cryodrgn(data, k, threads, truth[:k])
            load_sample(loads)

        ours: dict = {}
        index = np.arange(k)
        unposed = dataclasses.replace(table, shifts_A=None, rotations=None)
        images = torch.from_numpy(ImageSource.from_table(unposed).get(index))
        for levels in (3, 4):
            ours[f"levels{levels}"] = run_search(images, table, index, volume, levels)
        load_sample(loads)
        ours["abinit_subset"] = run_abinit(data, k, threads, truth, k, args.quick, "abinit_subset")
        if ours["abinit_subset"]["error"] is not None:
            n = max(k, sizes["abinit"])
            ours["abinit"] = run_abinit(data, n, threads, truth, k, args.quick, "abinit")
        load_sample(loads)
        chance = chance_errors(truth[:k])
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    raw = {
        "command": "nice -n 19 .venv/bin/python benchmarks/abinit_peer.py" + "".join(f" {a}" for a in sys.argv[1:]),
        "git": git_revision(),
        "dirty": uncommitted(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine_description(),
        "cores": os.cpu_count(),
        "quick": args.quick,
        "sizes": sizes,
        "threads": threads,
        "ours": ours,
        "theirs": theirs,
        "loads": loads,
    }
    if args.workdir is not None:  # the raw numbers, beside the runs (--from-results rewrites the report from them)
        (args.workdir / "results.json").write_text(json.dumps(raw, indent=1, default=str))
    text = report(raw, peer_note, make_notes(raw, chance))
    print(text)
    if output is not None:
        output.write_text(text)


if __name__ == "__main__":
    main()
