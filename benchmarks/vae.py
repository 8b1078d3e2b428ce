"""Benchmark: the heterogeneous VAE against cryoDRGN 4.3.1 train_vae, side by side (issue 3).

Run:  .venv/bin/python benchmarks/vae.py                 (everything; writes benchmarks/vae.md)
      .venv/bin/python benchmarks/vae.py --stage accuracy (only the side-by-side training runs)
      .venv/bin/python benchmarks/vae.py --stage paired   (per-image differences against cryoDRGN, same images)
      .venv/bin/python benchmarks/vae.py --stage seeds --max-freq 0.85 --seeds 1,2
                                                          (both tools again with other seeds: training noise)
      .venv/bin/python benchmarks/vae.py --stage timing   (one epoch of each tool, back to back)
      .venv/bin/python benchmarks/vae.py --stage profile  (where a cryoscape training step spends its time)
      .venv/bin/python benchmarks/vae.py --stage scaling  (cryoscape: 5k/20k/80k particles, D 64/128, lazy)
Stages keep their outputs in --workdir and are skipped when already done, so a stopped run resumes.
Results go to --workdir/results.json; the Markdown report is rewritten from it after every stage.

Dataset: `cryoscape simulate adk_dims_closed_to_open` (98 frames of adenylate kinase closing to open,
drawn uniformly), D=64, 1.4 Å/px (the largest extent, 60 Å, fills 2/3 of the 89.6 Å box), CTF,
shifts up to ±2 px, SNR 0.1; 20,000 training particles and 100 held-out particles simulated apart
(another seed). Both tools: encoder and decoder 3×256, zdim 8, batch 8, the same epochs, in memory.

Accuracy: held-out images are encoded (cryoscape eval-images / cryodrgn eval_images), a map is
generated at each latent (eval-vol / eval_vol), and its FSC against the ground-truth frame of that
image is computed (no mask): mean area under the FSC curve and mean FSC=0.5 resolution. Latent
order: |Spearman| between the first principal component of the training latents and the frame.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import adk_trajectory_args, git_revision, machine_description, sh  # noqa: E402

CRYOSCAPE = Path(sys.executable).parent / "cryoscape"
CRYODRGN = Path.home() / "cryodrgn-venv" / "bin" / "cryodrgn"
ARCH = ["--enc-dim", "256", "--enc-layers", "3", "--dec-dim", "256", "--dec-layers", "3", "-b", "8"]
D, APIX, ZDIM = 64, 1.4, 8
DEVICE = "cpu"  # --device: cryoscape's device (cryoDRGN takes the GPU by itself when torch sees one)


def simulate(folder: Path, n: int, seed: int, box: int = D) -> Path:
    if not (folder / "particles.star").exists():
        apix = APIX * D / box
        sh([CRYOSCAPE, *adk_trajectory_args(folder, n, box, apix, seed), "--force", "-q"])
    if CRYODRGN.exists() and not (folder / "ctf.pkl").exists():
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
            "--amp",
            "--device",
            DEVICE,
            "--force",
            *extra,
        ],
        console_log(run),
    )
    rows = [line.split(",") for line in (run / "log.csv").read_text().splitlines()[1:]]
    return {"wall_s": seconds, "peak_mb": peak, "epoch_s": [float(r[4]) for r in rows]}


def train_cryodrgn(data: Path, run: Path, epochs: int, extra: list = ()) -> dict:
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


def per_image_accuracy(maps: list[Path], heldout: Path) -> dict:
    from cryoscape.imaging.fsc import fsc
    from cryoscape.io.mrc import read_map

    frames = np.load(heldout / "labels.npz")["conformation"]
    gt = {int(k): read_map(p)[0] for k, p in enumerate(sorted((heldout / "gt").glob("*.mrc")))}
    curves = [fsc(read_map(m)[0], gt[int(k)], apix=APIX) for m, k in zip(maps, frames)]
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


def evaluate_ours(run: Path, train: Path, heldout: Path) -> dict:
    z_held = run / "heldout_z.npy"
    sh([CRYOSCAPE, "eval-images", run, heldout / "particles.star", "-o", z_held, "--force", "-q"])
    np.savetxt(run / "heldout_z.txt", np.load(z_held))
    sh([CRYOSCAPE, "eval-vol", run, "--zfile", run / "heldout_z.txt", "-o", run / "heldout_maps", "--force", "-q"])
    frames = np.load(train / "labels.npz")["conformation"]
    epochs = sorted(int(m.group(1)) for p in run.glob("z.*.npy") if (m := re.match(r"z\.(\d+)\.npy", p.name)))
    return {
        **per_image_accuracy(sorted((run / "heldout_maps").glob("vol_*.mrc")), heldout),
        "spearman": spearman_pc1(np.load(run / "z.npy"), frames),
        "spearman_by_epoch": [spearman_pc1(np.load(run / f"z.{e}.npy"), frames) for e in epochs],
    }


def evaluate_cryodrgn(run: Path, train: Path, heldout: Path) -> dict:
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
    work: Path, results: dict, epochs: int, max_freq: float = 1.0, window: float = 0.0, beta: float | None = None
) -> None:
    """Both tools for ``epochs`` on the same files; with ``max_freq`` < 1 only cryoscape, band-limited.
    cryoscape runs with the real-space window ``window`` (0: none; runs named _w<window>) and the KL
    weight ``beta`` (None: 1/zdim; runs named _beta<beta>)."""
    train, heldout = simulate(work / "train", 20_000, 1), simulate(work / "heldout", 100, 2)
    tools = ["cryoscape"] + (["cryodrgn"] if CRYODRGN.exists() and max_freq == 1.0 else [])
    for tool in tools:
        name = cryoscape_name(max_freq, window, beta) if tool == "cryoscape" else tool
        run = work / f"{name}_e{epochs}"
        trained = f"training/{name}/e{epochs}"
        if trained not in results:
            extra = ["--in-memory", "--max-freq", max_freq, "--window-r", window] + (
                [] if beta is None else ["--beta", beta]
            )
            results[trained] = (
                train_ours(train, run, epochs, extra) if tool == "cryoscape" else train_cryodrgn(train, run, epochs)
            )
            save(work, results)
        if f"accuracy/{name}" not in results or results[f"accuracy/{name}"]["epochs"] != epochs:
            scores = (
                evaluate_ours(run, train, heldout) if tool == "cryoscape" else evaluate_cryodrgn(run, train, heldout)
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
                trained = train_ours(train, run, epochs, ["--in-memory", "--max-freq", max_freq, "--seed", seed])
                scores = evaluate_ours(run, train, heldout)
            results[key] = {**trained, **scores, "epochs": epochs, "seed": seed}
            save(work, results)


def stage_timing(work: Path, results: dict) -> None:
    """One epoch of each tool on the 20k particles, back to back (the machine otherwise idle)."""
    train = simulate(work / "train", 20_000, 1)
    for repeat in range(1):
        for tool in ("cryoscape", "cryodrgn"):
            key = f"timing/{tool}/{repeat}"
            if key in results or (tool == "cryodrgn" and not CRYODRGN.exists()):
                continue
            run = work / f"timing_{tool}_{repeat}"
            results[key] = (
                train_ours(train, run, 1, ["--in-memory"]) if tool == "cryoscape" else train_cryodrgn(train, run, 1)
            )
            save(work, results)


def stage_scaling(work: Path, results: dict) -> None:
    """cryoscape only: one epoch at 5k, 20k (the timing stage's run), 80k particles (D=64), lazy vs in
    memory, D=128."""
    if "timing/cryoscape/0" in results:
        results["scaling/n20k"] = results["timing/cryoscape/0"]
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
            results[key] = train_ours(data, work / f"scaling_{name}", 1, extra)
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
    write_report(results)


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


def write_report(results: dict) -> None:
    lines = [
        "# Heterogeneous VAE: cryoscape against cryoDRGN 4.3.1 train_vae",
        "",
        "Command: `.venv/bin/python benchmarks/vae.py` (stages: accuracy, paired, seeds, timing, profile, scaling; see its docstring).",
        "",
        f"Machine: {machine_description()}; cryoscape revision {git_revision()}.",
        "",
        "Dataset: adenylate kinase closed→open (98 frames, uniform), D=64, 1.4 Å/px, CTF, shifts ±2 px, SNR 0.1, "
        "20,000 training + 100 held-out particles. Both tools: encoder/decoder 3×256, zdim 8, batch 8, in memory; "
        "cryoscape with `--amp` (bfloat16 networks).",
        "",
    ]
    acc = {k.split("/", 1)[1]: v for k, v in results.items() if k.startswith("accuracy/")}
    if acc:
        reference = np.median(acc["cryodrgn"]["epoch_s"]) if "cryodrgn" in acc else None
        lines += [
            "## Accuracy and speed, same files",
            "",
            "Seconds per epoch are the median over the run's epochs (an epoch that shared the CPU with other "
            "work is slower; the median drops it). Accuracy on the 100 held-out images. cryoscape runs named "
            "`_w0.85` apply the real-space image window of cryoDRGN's default (`--window-r 0.85`; cryoscape's default "
            "is none): in this table it lowered the held-out accuracy (0.515 -> 0.484 FSC area at --max-freq 0.85). "
            "Runs named `_beta0.18` weight the KL term by 0.18 instead of 1/zdim = 0.125: cryoDRGN estimates its "
            "normalization on unwindowed images and then windows them, so the images in its loss have 0.68 of the "
            "variance they have in cryoscape's (measured on 1,000 of these particles), which raises its KL weight "
            "relative to the reconstruction error by 1/0.68, to the equivalent of 0.18 here.",
            "",
            "| run | epochs | s/epoch (median) | speed-up vs cryoDRGN | peak RSS MiB | mean FSC AUC | "
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
                "Paired on the same 100 held-out images, cryoscape minus cryoDRGN (mean ± standard error; "
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
    timing = {
        t: [results[k]["epoch_s"][0] for k in results if k.startswith(f"timing/{t}/")]
        for t in ("cryoscape", "cryodrgn")
    }
    if timing["cryoscape"] and timing["cryodrgn"]:
        ours, theirs = np.median(timing["cryoscape"]), np.median(timing["cryodrgn"])
        lines += [
            "## Time per epoch, back to back on an otherwise idle machine",
            "",
            "| tool | seconds per epoch (each repeat) | images/s | ratio cryoDRGN / cryoscape |",
            "|---|---|---|---|",
            f"| cryoscape | {', '.join(f'{t:.0f}' for t in timing['cryoscape'])} | {20000 / ours:.0f} | {theirs / ours:.2f} |",
            f"| cryoDRGN | {', '.join(f'{t:.0f}' for t in timing['cryodrgn'])} | {20000 / theirs:.0f} | 1 |",
            "",
        ]
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
    (Path(__file__).parent / "vae.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="/tmp/cryoscape-vae-benchmark", help="folder for data and runs")
    parser.add_argument(
        "--stage", choices=("all", "accuracy", "paired", "seeds", "timing", "profile", "scaling"), default="all"
    )
    parser.add_argument("--seeds", default="1,2", help="seeds stage: the extra seeds of both tools (default 1,2)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the side-by-side runs (default 5)")
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
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    results = json.loads((work / "results.json").read_text()) if (work / "results.json").exists() else {}
    if args.stage in ("all", "accuracy"):
        if not args.skip_full_band:
            stage_accuracy(work, results, args.epochs, window=args.window_r, beta=args.beta)
        if args.max_freq < 1:
            stage_accuracy(work, results, args.epochs, args.max_freq, args.window_r, args.beta)
    if args.stage in ("all", "accuracy", "paired"):
        stage_paired(work, results)
    if args.stage == "seeds":
        stage_seeds(work, results, args.epochs, args.max_freq, [int(x) for x in args.seeds.split(",")])
    if args.stage in ("all", "timing"):
        stage_timing(work, results)
    if args.stage in ("all", "profile"):
        stage_profile(work, results)
    if args.stage in ("all", "scaling"):
        stage_scaling(work, results)
    save(work, results)


if __name__ == "__main__":
    main()
