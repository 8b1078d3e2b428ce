"""Benchmark: the heterogeneous VAE against cryoDRGN 4.3.1 train_vae, side by side (issue 3).

Run:  .venv/bin/python benchmarks/vae.py                 (everything; writes benchmarks/vae.md)
      .venv/bin/python benchmarks/vae.py --stage accuracy (only the side-by-side training runs)
      .venv/bin/python benchmarks/vae.py --stage paired   (per-image differences against cryoDRGN, same images)
      .venv/bin/python benchmarks/vae.py --stage seeds --max-freq 0.85 --seeds 1,2
                                                          (both tools again with other seeds: training noise)
      .venv/bin/python benchmarks/vae.py --stage timing   (speed, like for like: writes benchmarks/vae_timing.md)
      .venv/bin/python benchmarks/vae.py --stage profile  (where a cryoscape training step spends its time)
      .venv/bin/python benchmarks/vae.py --stage scaling  (cryoscape: 5k/20k/80k particles, D 64/128, lazy)
      .venv/bin/python benchmarks/vae.py --quick          (smoke test: the accuracy and timing stages on 300
                                                          particles at D=32, cryoscape only, one torch thread;
                                                          prints the reports)
Stages keep their outputs in --workdir and are skipped when already done, so a stopped run resumes.
Results go to --workdir/results.json; the Markdown report (--output) is rewritten from it after every
stage: benchmarks/vae.md, or benchmarks/vae_timing.md for the timing stage.

Dataset: `cryoscape simulate adk_dims_closed_to_open` (98 frames of adenylate kinase closing to open,
drawn uniformly), D=64, 1.4 Å/px (the largest extent, 60 Å, fills 2/3 of the 89.6 Å box), CTF,
shifts up to ±2 px, SNR 0.1; 20,000 training particles and 100 held-out particles simulated apart
(another seed). Both tools: encoder and decoder 3×256, zdim 8, batch 8, the same epochs, in memory.

Accuracy: held-out images are encoded (cryoscape eval-images / cryodrgn eval_images), a map is
generated at each latent (eval-vol / eval_vol), and its FSC against the ground-truth frame of that
image is computed (no mask): mean area under the FSC curve and mean FSC=0.5 resolution. Latent
order: |Spearman| between the first principal component of the training latents and the frame.
The accuracy, seeds and scaling runs of cryoscape use bfloat16 autocast (--amp); cryoDRGN runs in
float32 on a CPU.

Timing (like for like): four trainings on the same particles (4,000 by default), the same networks
and batch size, in interleaved rounds A B C D, A B C D, ... so that load from other work on the
machine falls on all of them alike: cryoscape float32 at the full band, cryoscape bfloat16, cryoscape
bfloat16 with --max-freq 0.85, and cryoDRGN (float32). Seconds per epoch are each tool's own epoch
timer (the training loop; start-up, image loading and the end-of-epoch pass over all latents excluded).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import adk_trajectory_args, git_revision, machine_description, sh  # noqa: E402

CRYOSCAPE = Path(sys.executable).parent / "cryoscape"
INSTALLED_CRYODRGN = Path.home() / "cryodrgn-venv" / "bin" / "cryodrgn"
CRYODRGN: Path | None = INSTALLED_CRYODRGN if INSTALLED_CRYODRGN.exists() else None  # None: the peer is not run
ARCH = ["--enc-dim", "256", "--enc-layers", "3", "--dec-dim", "256", "--dec-layers", "3", "-b", "8"]
D, APIX, ZDIM = 64, 1.4, 8
AMP = ["--amp"]  # bfloat16 autocast, as the accuracy runs were made
DEVICE = "cpu"  # --device: cryoscape's device (cryoDRGN takes the GPU by itself when torch sees one)
THREADS: int | None = None  # --threads: torch's CPU threads in both tools (None: each tool's default)


def threads() -> list:
    """cryoscape's --threads argument, when set."""
    return ["--threads", THREADS] if THREADS else []


@dataclass(frozen=True)
class Scale:
    """Sizes of the accuracy and timing stages (the other stages run at the full size only)."""

    box: int = D
    n_train: int = 20_000
    n_heldout: int = 100
    n_timing: int = 4_000
    timing_epochs: int = 2
    rounds: int = 3

    @property
    def apix(self) -> float:
        return APIX * D / self.box


QUICK = Scale(box=32, n_train=300, n_heldout=20, n_timing=300, timing_epochs=1, rounds=1)

# The timing stage's runs: name -> (tool, precision, band limit, cryoscape's extra arguments).
TIMING_RUNS = {
    "cryoscape_fp32": ("cryoscape", "float32 (`--no-amp`)", "full (Nyquist)", ["--no-amp"]),
    "cryoscape_bf16": ("cryoscape", "bfloat16 autocast (`--amp`)", "full (Nyquist)", ["--amp"]),
    "cryoscape_bf16_maxfreq0.85": (
        "cryoscape",
        "bfloat16 autocast (`--amp`)",
        "0.85 × Nyquist (`--max-freq 0.85`)",
        ["--amp", "--max-freq", "0.85"],
    ),
    "cryodrgn": ("cryoDRGN 4.3.1", "float32 (its `--amp` is CUDA autocast, idle on a CPU)", "full (Nyquist)", []),
}


def simulate(folder: Path, n: int, seed: int, box: int = D) -> Path:
    if not (folder / "particles.star").exists():
        apix = APIX * D / box
        sh([CRYOSCAPE, *adk_trajectory_args(folder, n, box, apix, seed), *threads(), "--force", "-q"])
    if CRYODRGN and not (folder / "ctf.pkl").exists():
        sh(
            [
                CRYOSCAPE,
                "export-cryodrgn",
                folder / "particles.star",
                "--poses",
                folder / "poses.pkl",
                "--ctf",
                folder / "ctf.pkl",
                "--force",
                "-q",
            ]
        )
    return folder


def console_log(run: Path) -> Path:
    """Where a run's console output goes: beside the run folder, named after all of it (with_suffix
    would cut a name like cryoscape_maxfreq0.85_e5 at its dot)."""
    return run.parent / f"{run.name}.log"


def cryoscape_name(max_freq: float = 1.0, window: float = 0.0, beta: float | None = None) -> str:
    """Name of a cryoscape accuracy run in results.json and of its folder (without the _e<epochs>)."""
    return (
        "cryoscape"
        + (f"_w{window:g}" if window else "")
        + (f"_beta{beta:g}" if beta is not None else "")
        + ("" if max_freq == 1.0 else f"_maxfreq{max_freq:g}")
    )


def train_ours(data: Path, run: Path, epochs: int, extra: list = ()) -> dict:
    seconds, peak = sh(
        [
            CRYOSCAPE,
            "train-vae",
            data / "particles.star",
            "-o",
            run,
            "--zdim",
            ZDIM,
            "-n",
            epochs,
            *ARCH,
            "--device",
            DEVICE,
            *threads(),
            "--force",
            *extra,
        ],
        console_log(run),
    )
    with open(run / "log.csv") as f:
        return {"wall_s": seconds, "peak_mb": peak, "epoch_s": [float(row["seconds"]) for row in csv.DictReader(f)]}


def train_cryodrgn(data: Path, run: Path, epochs: int, extra: list = ()) -> dict:
    assert CRYODRGN is not None
    seconds, peak = sh(
        [
            CRYODRGN,
            "train_vae",
            data / "particles.mrcs",
            "--poses",
            data / "poses.pkl",
            "--ctf",
            data / "ctf.pkl",
            "--zdim",
            ZDIM,
            "-n",
            epochs,
            *ARCH,
            "-o",
            run,
            "--no-analysis",
            *extra,
        ],
        console_log(run),
        env={"OMP_NUM_THREADS": str(THREADS)} if THREADS else None,  # torch takes its thread count from it
    )
    text = (run / "run.log" if (run / "run.log").exists() else console_log(run)).read_text()
    times = re.findall(r"=====> Epoch: \d+ .*Finished in (\d+):(\d+):([\d.]+)", text)
    return {
        "wall_s": seconds,
        "peak_mb": peak,
        "epoch_s": [int(h) * 3600 + int(m) * 60 + float(s) for h, m, s in times],
    }


def spearman_pc1(z: np.ndarray, frames: np.ndarray) -> float:
    from scipy.stats import spearmanr

    centred = z - z.mean(axis=0)
    pc1 = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
    return float(abs(spearmanr(pc1, frames).statistic))


def per_image_accuracy(maps: list[Path], heldout: Path, apix: float = APIX) -> dict:
    from cryoscape.imaging.fsc import fsc
    from cryoscape.io.mrc import read_map

    frames = np.load(heldout / "labels.npz")["conformation"]
    gt = {int(k): read_map(p)[0] for k, p in enumerate(sorted((heldout / "gt").glob("*.mrc")))}
    curves = [fsc(read_map(m)[0], gt[int(k)], apix=apix) for m, k in zip(maps, frames)]
    each_auc, each_res = [c.auc() for c in curves], [c.resolution_A(0.5) for c in curves]
    return {
        "auc": float(np.mean(each_auc)),
        "resolution_A": float(np.mean(each_res)),
        "auc_each": each_auc,
        "resolution_each": each_res,
    }


def stage_paired(work: Path, results: dict) -> None:
    """Per-image scores of every accuracy run (recomputed from its held-out maps where a run predates
    them), for the paired comparison with cryoDRGN on the same 100 images."""
    for key, entry in results.items():
        if key.startswith("accuracy/") and "auc_each" not in entry:
            run = work / f"{key.split('/', 1)[1]}_e{entry['epochs']}"
            entry.update(per_image_accuracy(sorted((run / "heldout_maps").glob("vol_*.mrc")), work / "heldout"))
    save(work, results)


def evaluate_ours(run: Path, train: Path, heldout: Path, apix: float = APIX) -> dict:
    z_held = run / "heldout_z.npy"
    sh([CRYOSCAPE, "eval-images", run, heldout / "particles.star", "-o", z_held, *threads(), "--force", "-q"])
    np.savetxt(run / "heldout_z.txt", np.load(z_held))
    maps = run / "heldout_maps"
    sh([CRYOSCAPE, "eval-vol", run, "--zfile", run / "heldout_z.txt", "-o", maps, *threads(), "--force", "-q"])
    frames = np.load(train / "labels.npz")["conformation"]
    epochs = sorted(int(m.group(1)) for p in run.glob("z.*.npy") if (m := re.match(r"z\.(\d+)\.npy", p.name)))
    return {
        **per_image_accuracy(sorted(maps.glob("vol_*.mrc")), heldout, apix),
        "spearman": spearman_pc1(np.load(run / "z.npy"), frames),
        "spearman_by_epoch": [spearman_pc1(np.load(run / f"z.{e}.npy"), frames) for e in epochs],
    }


def evaluate_cryodrgn(run: Path, train: Path, heldout: Path) -> dict:
    assert CRYODRGN is not None
    weights, config = run / "weights.pkl", run / "config.yaml"  # the final epoch
    z_held = run / "heldout_z.pkl"
    sh(
        [
            CRYODRGN,
            "eval_images",
            heldout / "particles.mrcs",
            weights,
            "-c",
            config,
            "--poses",
            heldout / "poses.pkl",
            "--ctf",
            heldout / "ctf.pkl",
            "-o",
            run / "heldout_loss.pkl",
            "--out-z",
            z_held,
        ]
    )
    with open(z_held, "rb") as f:
        z = pickle.load(f)
    np.savetxt(run / "heldout_z.txt", np.asarray(z)[:, :ZDIM] if np.asarray(z).ndim == 2 else z)
    sh(
        [
            CRYODRGN,
            "eval_vol",
            weights,
            "-c",
            config,
            "--zfile",
            run / "heldout_z.txt",
            "-o",
            run / "heldout_maps",
            "--Apix",
            APIX,
        ]
    )
    frames = np.load(train / "labels.npz")["conformation"]

    def load_z(path: Path) -> np.ndarray:
        with open(path, "rb") as f:
            return np.asarray(pickle.load(f))

    zs = sorted(run.glob("z.*.pkl"), key=lambda p: int(p.name.split(".")[1]))
    final = run / "z.pkl" if (run / "z.pkl").exists() else zs[-1]
    return {
        **per_image_accuracy(sorted((run / "heldout_maps").glob("vol_*.mrc")), heldout),
        "spearman": spearman_pc1(load_z(final), frames),
        "spearman_by_epoch": [spearman_pc1(load_z(p), frames) for p in zs],
    }


def stage_accuracy(
    work: Path,
    results: dict,
    epochs: int,
    max_freq: float = 1.0,
    window: float = 0.0,
    beta: float | None = None,
    scale: Scale = Scale(),
) -> None:
    """Both tools for ``epochs`` on the same files; with ``max_freq`` < 1 only cryoscape, band-limited.
    cryoscape runs in bfloat16 (--amp) with the real-space window ``window`` (0: none; runs named
    _w<window>) and the KL weight ``beta`` (None: 1/zdim; runs named _beta<beta>)."""
    train = simulate(work / "train", scale.n_train, 1, scale.box)
    heldout = simulate(work / "heldout", scale.n_heldout, 2, scale.box)
    tools = ["cryoscape"] + (["cryodrgn"] if CRYODRGN and max_freq == 1.0 else [])
    for tool in tools:
        name = cryoscape_name(max_freq, window, beta) if tool == "cryoscape" else tool
        run = work / f"{name}_e{epochs}"
        trained = f"training/{name}/e{epochs}"
        if trained not in results:
            extra = [*AMP, "--in-memory", "--max-freq", max_freq, "--window-r", window] + (
                [] if beta is None else ["--beta", beta]
            )
            results[trained] = (
                train_ours(train, run, epochs, extra) if tool == "cryoscape" else train_cryodrgn(train, run, epochs)
            )
            save(work, results)
        if f"accuracy/{name}" not in results or results[f"accuracy/{name}"]["epochs"] != epochs:
            scores = (
                evaluate_ours(run, train, heldout, scale.apix)
                if tool == "cryoscape"
                else evaluate_cryodrgn(run, train, heldout)
            )
            results[f"accuracy/{name}"] = {**results[trained], **scores, "epochs": epochs}
            save(work, results)


def stage_seeds(work: Path, results: dict, epochs: int, max_freq: float, seeds: list[int]) -> None:
    """Both tools again with other random seeds (initialization, batch order, noise), cryoscape at
    ``max_freq``: the spread between trainings, next to which the accuracy difference is judged.
    The accuracy stage's runs are seed 0 of cryoscape and cryoDRGN's own random seed."""
    train, heldout = simulate(work / "train", 20_000, 1), simulate(work / "heldout", 100, 2)
    ours = cryoscape_name(max_freq)
    for seed in seeds:
        for tool in (ours, "cryodrgn"):
            key = f"seeds/{tool}/{seed}"
            if key in results:
                continue
            run = work / f"{tool}_seed{seed}_e{epochs}"
            if tool == "cryodrgn":
                trained = train_cryodrgn(train, run, epochs, ["--seed", seed, "--shuffle-seed", seed])
                scores = evaluate_cryodrgn(run, train, heldout)
            else:
                trained = train_ours(train, run, epochs, [*AMP, "--in-memory", "--max-freq", max_freq, "--seed", seed])
                scores = evaluate_ours(run, train, heldout)
            results[key] = {**trained, **scores, "epochs": epochs, "seed": seed}
            save(work, results)


def stage_timing(work: Path, results: dict, scale: Scale) -> None:
    """The TIMING_RUNS on the same particles in interleaved rounds (every run once per round, in the
    same order), with the 1-minute load average before and after each run."""
    if scale.n_timing == scale.n_train:  # the accuracy stage's particles
        data = simulate(work / "train", scale.n_train, 1, scale.box)
    else:
        data = simulate(work / f"timing_n{scale.n_timing}", scale.n_timing, 3, scale.box)
    names = [name for name in TIMING_RUNS if name != "cryodrgn" or CRYODRGN]
    for r in range(scale.rounds):
        for name in names:
            key = f"speed/n{scale.n_timing}_e{scale.timing_epochs}/{name}/{r}"
            if key in results:
                continue
            run, extra = work / f"speed_{name}_{r}", TIMING_RUNS[name][3]
            load_before, started = os.getloadavg()[0], time.strftime("%H:%M:%S")
            if name == "cryodrgn":
                trained = train_cryodrgn(data, run, scale.timing_epochs)
            else:
                trained = train_ours(data, run, scale.timing_epochs, ["--in-memory", *extra])
            load = {"load_before": load_before, "load_after": os.getloadavg()[0]}
            results[key] = {**trained, "started": started, **load}
            save(work, results)


def stage_scaling(work: Path, results: dict) -> None:
    """cryoscape only: one epoch at 5k, 20k (the timing stage's run), 80k particles (D=64), lazy vs in
    memory, D=128."""
    cases = [
        ("n5k", simulate(work / "train5k", 5_000, 3), ["--in-memory"]),
        ("n20k", simulate(work / "train", 20_000, 1), ["--in-memory"]),
        ("n20k_lazy", work / "train", []),
        ("n80k", simulate(work / "train80k", 80_000, 4), ["--in-memory"]),
        ("D128_n5k", simulate(work / "train128", 5_000, 5, box=128), ["--in-memory"]),
    ]
    for name, data, extra in cases:
        key = f"scaling/{name}"
        if key not in results:
            results[key] = train_ours(data, work / f"scaling_{name}", 1, [*AMP, *extra])
            save(work, results)


def stage_profile(work: Path, results: dict) -> None:
    """Where a cryoscape training step spends its time: torch profiler over 40 steps (batch 8, D=64,
    3×256 networks, zdim 8, bf16 autocast as in the benchmark), after 10 warm-up steps."""
    if "profile" in results:
        return
    import torch
    from torch.profiler import ProfilerActivity, profile

    from cryoscape.data.images import ImageSource
    from cryoscape.data.particle_io import load_particles
    from cryoscape.imaging.grids import fourier_disk_mask
    from cryoscape.inference.batches import hartley_scale, make_batch
    from cryoscape.models.vae import VAESettings

    table = load_particles(simulate(work / "train", 20_000, 1) / "particles.star")
    source = ImageSource.from_table(table, lazy=False)
    scale = hartley_scale(source, table)
    model = VAESettings(zdim=ZDIM).build(D, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    mask, generator = fourier_disk_mask(D), torch.Generator().manual_seed(0)

    def step(i: int) -> None:
        index = np.arange(8 * i, 8 * i + 8)
        batch = make_batch(torch.from_numpy(source.get(index)), table, index, scale)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(batch, mask, generator)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for i in range(10):
        step(i)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for i in range(10, 50):
            step(i)
        ms = (time.perf_counter() - t0) / 40 * 1000
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    results["profile"] = {"ms_per_step": ms, "top": [[e.key, 100 * e.self_cpu_time_total / total] for e in events[:10]]}
    save(work, results)


def save(work: Path, results: dict) -> None:
    (work / "results.json").write_text(json.dumps(results, indent=1))


def mean_and_error(d: np.ndarray) -> tuple[float, float]:
    """Mean of ``d`` and its standard error."""
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def seeds_report(results: dict) -> list[str]:
    """The seeds stage's section: each training, the spread over seeds, and the tools' difference."""
    tools = sorted({k.split("/")[1] for k in results if k.startswith("seeds/")}, key=lambda t: (t == "cryodrgn", t))
    if not tools:
        return []
    runs = {
        t: [("seed 0" if t != "cryodrgn" else "its own random seed", results[f"accuracy/{t}"])]
        + [(f"seed {k.rsplit('/', 1)[1]}", v) for k, v in results.items() if k.startswith(f"seeds/{t}/")]
        for t in tools
    }
    lines = [
        "## Training noise: the same comparison with other seeds",
        "",
        "Each tool trained again from other random seeds (initialization, batch order, reparameterization noise); "
        "the first row of each tool is its run in the table above. Seconds per epoch of these runs are not a "
        "speed measurement (other work shared the CPU).",
        "",
        "| tool | run | s/epoch (median) | mean FSC AUC | mean FSC=0.5 (Å) | abs Spearman PC1 vs frame |",
        "|---|---|---|---|---|---|",
    ]
    for tool, entries in runs.items():
        lines += [
            f"| {tool} | {name} | {np.median(e['epoch_s']):.0f} | {e['auc']:.4f} | {e['resolution_A']:.2f} | "
            f"{e['spearman']:.3f} |"
            for name, e in entries
        ]
    lines += [
        "",
        "| tool | trainings | FSC AUC, mean ± sd over trainings | FSC=0.5 (Å) | abs Spearman |",
        "|---|---|---|---|---|",
    ]
    stats = {}
    for tool, entries in runs.items():
        values = {m: np.array([e[m] for _, e in entries]) for m in ("auc", "resolution_A", "spearman")}
        stats[tool] = values
        lines.append(
            f"| {tool} | {len(entries)} | "
            + " | ".join(f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0:.4f}" for v in values.values())
            + " |"
        )
    ours = [t for t in tools if t != "cryodrgn"]
    if "cryodrgn" in runs and ours:
        lines += [
            "",
            "Difference of the means, cryoscape minus cryoDRGN, ± its standard error from the spread between "
            "trainings (sqrt(sd₁²/n₁ + sd₂²/n₂)); and per image, each image's score averaged over a tool's "
            "trainings, then paired over the 100 images (mean ± standard error over images):",
            "",
            "| run | FSC AUC: between trainings | per image | FSC=0.5 (Å): between trainings | per image | "
            "abs Spearman: between trainings |",
            "|---|---|---|---|---|---|",
        ]
        theirs = stats["cryodrgn"]
        per_image = {
            t: {m: np.mean([e[m] for _, e in runs[t]], axis=0) for m in ("auc_each", "resolution_each")} for t in runs
        }
        for tool in ours:
            cells = []
            for metric, each in (("auc", "auc_each"), ("resolution_A", "resolution_each"), ("spearman", None)):
                a, b = stats[tool][metric], theirs[metric]
                se = (
                    np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
                    if min(len(a), len(b)) > 1
                    else float("nan")
                )
                cells.append(f"{a.mean() - b.mean():+.4f} ± {se:.4f}")
                if each:
                    cells.append(
                        "{:+.4f} ± {:.4f}".format(*mean_and_error(per_image[tool][each] - per_image["cryodrgn"][each]))
                    )
            lines.append(f"| {tool} | " + " | ".join(cells) + " |")
    return lines + [""]


def report(results: dict, scale: Scale) -> str:
    """The accuracy, seeds, scaling and profile stages' report (benchmarks/vae.md)."""
    lines = [
        "# Heterogeneous VAE: cryoscape against cryoDRGN 4.3.1 train_vae",
        "",
        "Command: `.venv/bin/python benchmarks/vae.py` (stages: accuracy, paired, seeds, profile, scaling; see its "
        "docstring; the timing stage writes vae_timing.md).",
        "",
        f"Machine: {machine_description()}; cryoscape revision {git_revision()}.",
        "",
        f"Dataset: adenylate kinase closed→open (98 frames, uniform), D={scale.box}, {scale.apix:g} Å/px, CTF, "
        f"shifts ±2 px, SNR 0.1, {scale.n_train:,} training + {scale.n_heldout} held-out particles. Both tools: "
        "encoder/decoder 3×256, zdim 8, batch 8, in memory; cryoscape with `--amp` (bfloat16 autocast), cryoDRGN in "
        "float32: the seconds per epoch here compare bfloat16 with float32 and are not like for like (vae_timing.md "
        "is).",
        "",
    ]
    acc = {k.split("/", 1)[1]: v for k, v in results.items() if k.startswith("accuracy/")}
    if acc:
        reference = np.median(acc["cryodrgn"]["epoch_s"]) if "cryodrgn" in acc else None
        lines += [
            "## Accuracy and speed, same files",
            "",
            "Seconds per epoch are the median over the run's epochs (an epoch that shared the CPU with other "
            "work is slower; the median drops it); cryoscape's are bfloat16, cryoDRGN's float32. Accuracy on the "
            f"{scale.n_heldout} held-out images. cryoscape runs named "
            "`_w0.85` apply the real-space image window of cryoDRGN's default (`--window-r 0.85`; cryoscape's default "
            "is none): in this table it lowered the held-out accuracy (0.515 -> 0.484 FSC area at --max-freq 0.85). "
            "Runs named `_beta0.18` weight the KL term by 0.18 instead of 1/zdim = 0.125: cryoDRGN estimates its "
            "normalization on unwindowed images and then windows them, so the images in its loss have 0.68 of the "
            "variance they have in cryoscape's (measured on 1,000 of these particles), which raises its KL weight "
            "relative to the reconstruction error by 1/0.68, to the equivalent of 0.18 here.",
            "",
            "| run | epochs | s/epoch (median) | cryoDRGN float32 s/epoch ÷ this (bf16) | peak RSS MiB | mean FSC AUC | "
            "mean FSC=0.5 (Å) | abs Spearman PC1 vs frame |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, e in acc.items():
            speed = np.median(e["epoch_s"])
            ratio = f"{reference / speed:.2f}" if reference else "-"
            lines.append(
                f"| {name} | {e['epochs']} | {speed:.0f} | {ratio} | {e['peak_mb']:.0f} | {e['auc']:.3f} | "
                f"{e['resolution_A']:.2f} | {e['spearman']:.3f} |"
            )
        if "cryodrgn" in acc and "auc_each" in acc["cryodrgn"]:
            lines += [
                "",
                f"Paired on the same {scale.n_heldout} held-out images, cryoscape minus cryoDRGN (mean ± standard error; "
                "positive area and negative resolution favour cryoscape):",
                "",
                "| run | FSC area difference | FSC=0.5 difference (Å) | images where cryoscape's area is larger |",
                "|---|---|---|---|",
            ]
            base_auc, base_res = (np.asarray(acc["cryodrgn"][k]) for k in ("auc_each", "resolution_each"))
            for name, e in acc.items():
                if name != "cryodrgn" and "auc_each" in e:
                    da, dr = np.asarray(e["auc_each"]) - base_auc, np.asarray(e["resolution_each"]) - base_res
                    lines.append(
                        "| {} | {:+.4f} ± {:.4f} | {:+.3f} ± {:.3f} | ".format(
                            name, *mean_and_error(da), *mean_and_error(dr)
                        )
                        + f"{int((da > 0).sum())} of {len(da)} |"
                    )
        lines += [
            "",
            "Seconds of each epoch: "
            + "; ".join(f"{t}: " + ", ".join(f"{x:.0f}" for x in e["epoch_s"]) for t, e in acc.items()),
            "",
            "abs Spearman by epoch: "
            + "; ".join(f"{t}: " + ", ".join(f"{x:.2f}" for x in e["spearman_by_epoch"]) for t, e in acc.items()),
            "",
        ]
    lines += seeds_report(results)
    scaling = {k.split("/", 1)[1]: v for k, v in results.items() if k.startswith("scaling/")}
    if scaling:
        sizes = {"n5k": 5000, "n20k": 20000, "n20k_lazy": 20000, "n80k": 80000, "D128_n5k": 5000}
        lines += [
            "## cryoscape scaling (one epoch each)",
            "",
            "| case | particles | s/epoch | µs per particle | peak RSS MiB |",
            "|---|---|---|---|---|",
        ]
        for name, v in scaling.items():
            lines.append(
                f"| {name} | {sizes[name]} | {v['epoch_s'][0]:.0f} | {1e6 * v['epoch_s'][0] / sizes[name]:.0f} | {v['peak_mb']:.0f} |"
            )
        lines.append("")
    if "profile" in results:
        prof = results["profile"]
        lines += [
            "## Where a cryoscape training step spends its time",
            "",
            f"torch profiler, 40 steps of batch 8 (D=64, 3×256 networks, zdim 8, bf16): {prof['ms_per_step']:.0f} ms per step.",
            "",
            "| operation | share of CPU time (%) |",
            "|---|---|",
        ]
        lines += [f"| `{name}` | {share:.1f} |" for name, share in prof["top"]]
        lines.append("")
    return "\n".join(lines)


def per_epoch(entry: dict) -> float:
    """A run's seconds per epoch: the median of its epochs after the first (the first pays warm-up),
    or its one epoch."""
    return float(np.median(entry["epoch_s"][1:] or entry["epoch_s"]))


def timing_report(results: dict, scale: Scale, command: str, note: str = "") -> str:
    """The timing stage's report (benchmarks/vae_timing.md): seconds per epoch of each run, round by
    round, and each cryoscape run against cryoDRGN in the same round."""
    prefix = f"speed/n{scale.n_timing}_e{scale.timing_epochs}/"
    runs = {name: [results.get(f"{prefix}{name}/{r}") for r in range(scale.rounds)] for name in TIMING_RUNS}
    runs = {name: entries for name, entries in runs.items() if all(e is not None for e in entries)}
    peer = runs.get("cryodrgn")
    which = "epochs 2+ (median)" if scale.timing_epochs > 1 else "its one epoch"
    lines = [
        "# VAE training speed, like for like: cryoscape against cryoDRGN 4.3.1 train_vae",
        "",
        f"Command: `{command}` (git {git_revision()}, {time.strftime('%Y-%m-%d')}).",
        "",
        f"Machine: {machine_description()}.",
        "",
        f"Data: adenylate kinase closed→open, {scale.n_timing:,} particles, D={scale.box}, {scale.apix:g} Å/px, CTF, "
        "SNR 0.1, in memory. Every run: encoder and decoder 3×256, zdim 8, batch 8, "
        f"{scale.timing_epochs} epoch(s), on the CPU with {THREADS or 'the default number of'} torch thread(s) in "
        "both tools, each run a separate process. "
        f"{scale.rounds} interleaved round(s): each round runs the rows below once, in the order of the table, back "
        "to back, so that load from other work falls on every row alike.",
        "",
        "Seconds per epoch are each tool's own epoch timer (cryoscape's log.csv, cryoDRGN's `Finished in`): the "
        "training loop only, start-up, image loading and the end-of-epoch pass that writes every latent excluded; "
        f"per run {which}. The ratio is cryoDRGN's seconds per epoch over the row's, within each round, then the "
        "median over rounds (> 1: faster than cryoDRGN). cryoDRGN also applies its default real-space window "
        "(0.85) to the images, cryoscape none (an elementwise product, no measurable cost).",
        "",
        "| tool | precision | band limit | s/epoch, each round | s/epoch, median | images/s | cryoDRGN ÷ this, "
        "each round | median | whole process, s (median) | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entries in runs.items():
        tool, precision, band, _ = TIMING_RUNS[name]
        seconds = [per_epoch(e) for e in entries]
        median = float(np.median(seconds))
        if peer:
            ratios = [per_epoch(p) / s for p, s in zip(peer, seconds)]
            ratio_cells = f"{', '.join(f'{x:.2f}' for x in ratios)} | {np.median(ratios):.2f}"
        else:
            ratio_cells = "- | -"
        lines.append(
            f"| {tool} | {precision} | {band} | {', '.join(f'{x:.1f}' for x in seconds)} | {median:.1f} | "
            f"{scale.n_timing / median:.0f} | {ratio_cells} | {np.median([e['wall_s'] for e in entries]):.0f} | "
            f"{max(e['peak_mb'] for e in entries):.0f} |"
        )
    if not peer:
        reason = "not run (--quick)" if INSTALLED_CRYODRGN.exists() else "not installed beside the project"
        lines.append(f"| cryoDRGN 4.3.1 | float32 | full (Nyquist) | {reason} | | | | | | |")
    order = sorted(
        ((e["started"], name, r, e) for name, entries in runs.items() for r, e in enumerate(entries)),
        key=lambda x: (x[2], list(runs).index(x[1])),
    )
    lines += [
        "",
        "Runs in the order they ran, with the 1-minute load average (os.getloadavg) before → after each: "
        + "; ".join(
            f"round {r + 1} {name} at {t}: {e['load_before']:.2f} → {e['load_after']:.2f}" for t, name, r, e in order
        )
        + ".",
        "",
        f"A load average above the {os.cpu_count()} cores means that other work shared the machine and runs waited "
        "for a core: absolute seconds are then slower than on an idle machine and vary between rounds, while the "
        "interleaving puts that load on all rows alike, so the ratios within a round are the comparison.",
        "",
        *([note, ""] if note else []),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="/tmp/cryoscape-vae-benchmark", help="folder for data and runs")
    parser.add_argument(
        "--stage", choices=("all", "accuracy", "paired", "seeds", "timing", "profile", "scaling"), default="all"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: accuracy and timing stages at 300 particles, D=32, cryoscape only, in a temporary "
        "folder; prints the reports, writes none unless --output",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="report (default benchmarks/vae.md, or vae_timing.md for --stage timing)",
    )
    parser.add_argument("--seeds", default="1,2", help="seeds stage: the extra seeds of both tools (default 1,2)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the side-by-side runs (default 5)")
    parser.add_argument("--timing-n", type=int, default=Scale.n_timing, help="timing stage: particles (default 4000)")
    parser.add_argument(
        "--timing-epochs", type=int, default=Scale.timing_epochs, help="timing stage: epochs of each run (default 2)"
    )
    parser.add_argument("--rounds", type=int, default=Scale.rounds, help="timing stage: interleaved rounds (default 3)")
    parser.add_argument("--note", default="", help="timing stage: a sentence added to the report (the conditions)")
    parser.add_argument(
        "--max-freq",
        type=float,
        default=1.0,
        help="accuracy stage: also train cryoscape with this band limit (fraction of Nyquist)",
    )
    parser.add_argument(
        "--window-r",
        type=float,
        default=0.0,
        help="accuracy stage: cryoscape's real-space window (default 0: none, cryoscape's default)",
    )
    parser.add_argument(
        "--beta",
        type=float,
        default=None,
        help="accuracy stage: cryoscape's KL weight (default: 1/zdim, cryoscape's and cryoDRGN's default)",
    )
    parser.add_argument(
        "--skip-full-band",
        action="store_true",
        help="accuracy stage: only the --max-freq run (the full-band runs are done)",
    )
    parser.add_argument("--device", default="cpu", help="cryoscape's device: cpu (default) or cuda")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch's CPU threads in both tools (default: each tool's, the usable CPUs; 1 with --quick, as threads "
        "that wait for each other collapse when other work takes the cores)",
    )
    args = parser.parse_args()
    global DEVICE, CRYODRGN, THREADS
    DEVICE, THREADS = args.device, args.threads
    command = ".venv/bin/python benchmarks/vae.py" + "".join(f" {a}" for a in sys.argv[1:])
    if args.quick:
        CRYODRGN, THREADS = None, args.threads or 1
        work = Path(tempfile.mkdtemp(prefix="cryoscape_vae_quick_"))
        try:
            results: dict = {}
            stage_accuracy(work, results, 1, scale=QUICK)
            stage_timing(work, results, QUICK)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        text = report(results, QUICK) + "\n" + timing_report(results, QUICK, command, args.note)
        print(text)
        if args.output:
            args.output.write_text(text)
        return
    scale = Scale(n_timing=args.timing_n, timing_epochs=args.timing_epochs, rounds=args.rounds)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    results = json.loads((work / "results.json").read_text()) if (work / "results.json").exists() else {}
    if args.stage == "timing":
        stage_timing(work, results, scale)
        text = timing_report(results, scale, command, args.note)
        print(text)
        (args.output or Path(__file__).parent / "vae_timing.md").write_text(text)
        return
    output = args.output or Path(__file__).with_suffix(".md")

    def done() -> None:  # after every stage
        save(work, results)
        output.write_text(report(results, scale))

    if args.stage in ("all", "accuracy"):
        if not args.skip_full_band:
            stage_accuracy(work, results, args.epochs, window=args.window_r, beta=args.beta)
        if args.max_freq < 1:
            stage_accuracy(work, results, args.epochs, args.max_freq, args.window_r, args.beta)
        done()
    if args.stage in ("all", "accuracy", "paired"):
        stage_paired(work, results)
        done()
    if args.stage == "seeds":
        stage_seeds(work, results, args.epochs, args.max_freq, [int(x) for x in args.seeds.split(",")])
        done()
    if args.stage == "all":
        stage_timing(work, results, scale)
        (Path(__file__).parent / "vae_timing.md").write_text(timing_report(results, scale, command, args.note))
    if args.stage in ("all", "profile"):
        stage_profile(work, results)
        done()
    if args.stage in ("all", "scaling"):
        stage_scaling(work, results)
        done()


if __name__ == "__main__":
    main()
