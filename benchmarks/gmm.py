"""Benchmark: Gaussian-bead heterogeneity (`cryoscape train-gmm`) on adenylate kinase closed→open.

Run:  .venv/bin/python benchmarks/gmm.py            (writes benchmarks/gmm.md; about 45 minutes on 2 cores)
      .venv/bin/python benchmarks/gmm.py --quick    (600 particles at D=32, 2 epochs, one thread; prints only)

Data: the VAE benchmark's (`cryoscape simulate adk_dims_closed_to_open`: 98 frames, D=64, 1.4 Å/px,
CTF, shifts up to 2 px, SNR 0.1), 20,000 particles with their true poses, and 100 held-out particles
simulated apart (another seed).

A. Atomic model. The start is the shipped adk_closed.pdb (PDB 1AKE), placed in the map's frame by
   `train-gmm --fit` (centred, then fitted rigidly to the consensus backprojection of the given
   poses). Runs: --deform segments and --deform residues, zdim 4, at train-gmm's default batch and
   learning rate, and segments again at the VAE's (-b 8 --lr 1e-4). Scored on every training particle:
   the Cα RMSD of its decoded model against its true frame's Cα (frames centred as the simulator
   centres them), beside the RMSD of the undeformed start; the longest consecutive Cα–Cα distance
   and the closest non-bonded Cα pair in decoded models (1,000 particles); the segments' residue
   ranges (each residue in the segment of its largest membership); |Spearman| of PC1 of z with the frame.
B. Beads from a map: --init-map = `cryoscape backproject` of the training particles, --deform free.
   Per-image FSC area of the held-out particles' maps (eval-images, eval-vol) against their true
   frames, beside the VAE's (`train-vae`, 3×256, zdim 4) on the same data and epochs.
C. Speed: images/s of each training (its own epoch timer, log.csv), same data and CPU, each command at
   its default batch size and precision (as a user runs it), and train-gmm segments also at batch 8.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import adk_trajectory_args, git_revision, machine_description, resumable_main, save_results, sh  # noqa: E402

CRYOSCAPE = Path(sys.executable).parent / "cryoscape"
BATCH_8 = ["-b", "8", "--lr", "1e-4"]  # the VAE's batch and learning rate: train-gmm like for like
CASES = {
    "full": {"n": 20000, "box": 64, "apix": 1.4, "epochs": 6, "threads": 2, "arch": "256", "resolution": 6},
    "quick": {"n": 600, "box": 32, "apix": 3.0, "epochs": 2, "threads": 1, "arch": "32", "resolution": 9},
}


def threads(case: dict) -> list[str]:
    return ["--threads", str(case["threads"])]


def arch(case: dict) -> list[str]:
    w = case["arch"]
    return ["--enc-dim", w, "--enc-layers", "3", "--dec-dim", w, "--dec-layers", "3", "--zdim", "4"]


def training_of(run: Path) -> dict:
    """The batch size, learning rate (and its decay per epoch) and precision a run trained with (its
    config.json)."""
    t = json.loads((run / "config.json").read_text())["training"]
    precision = "bfloat16" if t["amp"] else "float32"
    return {"batch": t["batch_size"], "lr": t["lr"], "lr_decay": t["lr_decay"], "precision": precision}


def true_c_alphas(case: dict) -> np.ndarray:
    """(98, 214, 3) Cα of every frame, in the map's frame (Å, origin 0), centred as the simulator does."""
    from cryoscape.io.atomic_model import read_atomic_model
    from cryoscape.simulate.conformations import resolve_structure

    frames = read_atomic_model(resolve_structure("adk_dims_closed_to_open"))
    centre = frames[0].coords_A.mean(0)
    return np.stack([f.coords_A[f.atom_names == "CA"] - centre + case["box"] // 2 * case["apix"] for f in frames])


def images_per_s(run: Path) -> float:
    with open(run / "log.csv") as f:
        rows = list(csv.DictReader(f))
    return float(np.median([float(r["images_per_s"]) for r in rows]))


def spearman_pc1(z: np.ndarray, frames: np.ndarray) -> float:
    from scipy.stats import spearmanr

    centred = z - z.mean(axis=0)
    pc1 = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
    return float(abs(spearmanr(pc1, frames).statistic))


def score_atomic(run: Path, sim: Path, case: dict) -> dict:
    import torch

    from cryoscape.inference.run_models import load_model

    model, config, _ = load_model(run)
    frames = np.load(sim / "labels.npz")["conformation"]
    z = torch.as_tensor(np.load(run / "z.npy"), dtype=torch.float32)
    with torch.no_grad():
        decoded = np.concatenate([model.centers(z[i : i + 1000]).numpy() for i in range(0, len(z), 1000)])
    to_A = lambda px: (px + case["box"] // 2) * case["apix"]  # noqa: E731
    pos, start = to_A(decoded), to_A(model.deformation.start.numpy())
    truth = true_c_alphas(case)[frames]
    rmsd = np.sqrt(((pos - truth) ** 2).sum(-1).mean(-1))
    rmsd0 = np.sqrt(((start - truth) ** 2).sum(-1).mean(-1))
    sample = pos[np.random.default_rng(0).choice(len(pos), min(1000, len(pos)), replace=False)]
    bonds = np.linalg.norm(np.diff(sample, axis=1), axis=-1)
    d = np.linalg.norm(sample[:, :, None] - sample[:, None], axis=-1)
    d[:, np.abs(np.arange(214)[:, None] - np.arange(214)) <= 1] = np.inf
    open_end, closed_end = frames >= 88, frames < 10
    out = {
        "rmsd_closed_end_A": float(rmsd[closed_end].mean()),
        "start_rmsd_closed_end_A": float(rmsd0[closed_end].mean()),
        "rmsd_A": float(rmsd.mean()),
        "start_rmsd_A": float(rmsd0.mean()),
        "rmsd_open_end_A": float(rmsd[open_end].mean()),
        "start_rmsd_open_end_A": float(rmsd0[open_end].mean()),
        "max_bond_A": float(bonds.max()),
        "min_nonbonded_A": float(d.min()),
        "spearman_pc1": spearman_pc1(z.numpy(), frames),
        "images_per_s": images_per_s(run),
    }
    if config.model.deform == "segments":  # the run's own segments.json: ranges and motion along PC1
        summary = json.loads((run / "segments.json").read_text())
        turns = {m["segment"]: m for m in summary["directions"][0]["segments"]}
        out["segments"] = [
            [f"{r['chain']}:{r['first']}-{r['last']}" for r in seg["ranges"]]
            + [f"{turns[seg['segment']]['rotation_deg']:.0f}°, {turns[seg['segment']]['centroid_shift_A']:.1f} Å"]
            for seg in summary["segments"]
        ]
    return out


def per_image_fsc_area(run: Path, heldout: Path, case: dict) -> float:
    from cryoscape.imaging.fsc import fsc
    from cryoscape.io.mrc import read_map

    z = run / "heldout_z.npy"
    sh([CRYOSCAPE, "eval-images", run, heldout / "particles.star", "-o", z, *threads(case), "--force", "-q"])
    np.savetxt(run / "heldout_z.txt", np.load(z))
    maps = run / "heldout_maps"
    sh([CRYOSCAPE, "eval-vol", run, "--zfile", run / "heldout_z.txt", "-o", maps, *threads(case), "--force", "-q"])
    frames = np.load(heldout / "labels.npz")["conformation"]
    truth = sorted((heldout / "gt").glob("*.mrc"))
    areas = [
        fsc(read_map(m)[0], read_map(truth[k])[0], apix=case["apix"]).auc()
        for m, k in zip(sorted(maps.glob("vol_*.mrc")), frames)
    ]
    return float(np.mean(areas))


def run_case(work: Path, case: dict, results: dict) -> dict:
    sim, heldout = work / "sim", work / "heldout"
    if not (sim / "particles.star").exists():
        sh([CRYOSCAPE, *adk_trajectory_args(sim, case["n"], case["box"], case["apix"]), "-q"])
        sh([CRYOSCAPE, *adk_trajectory_args(heldout, 100, case["box"], case["apix"], seed=1), "-q"])
    star, n = sim / "particles.star", ["-n", str(case["epochs"])]
    adk_closed = Path(__file__).parents[1] / "cryoscape/simulate/structures/adk_closed.pdb"
    for deform, extra in (("segments", []), ("residues", []), ("segments", BATCH_8)):
        key = f"atomic/{deform}" + ("_b8" if extra else "")
        run = work / key.replace("/", "_")
        if key not in results:
            seconds, _ = sh([CRYOSCAPE, "train-gmm", star, "-o", run, "--init-model", adk_closed, "--fit",
                             "--deform", deform, *arch(case), *n, *extra, *threads(case), "--force", "-q"])  # fmt: skip
            results[key] = {**score_atomic(run, sim, case), **training_of(run), "wall_s": seconds}
            save_results(work, results)
    if "map/free" not in results:
        consensus = work / "consensus"
        consensus.mkdir(exist_ok=True)
        sh([CRYOSCAPE, "backproject", star, "-o", consensus / "map.mrc", *threads(case), "--force", "-q"])
        run = work / "map_free"
        seconds, _ = sh([CRYOSCAPE, "train-gmm", star, "-o", run, "--init-map", consensus / "map.mrc",
                         "--resolution", str(case["resolution"]), *arch(case), *n, *threads(case), "--force", "-q"])  # fmt: skip
        results["map/free"] = {"fsc_area": per_image_fsc_area(run, heldout, case), "images_per_s": images_per_s(run),
                               **training_of(run), "wall_s": seconds}  # fmt: skip
        save_results(work, results)
    if "vae" not in results:
        run = work / "vae"
        seconds, _ = sh([CRYOSCAPE, "train-vae", star, "-o", run, *arch(case), *n, *threads(case), "--force", "-q"])
        results["vae"] = {"fsc_area": per_image_fsc_area(run, heldout, case), "images_per_s": images_per_s(run),
                          **training_of(run), "wall_s": seconds}  # fmt: skip
        save_results(work, results)
    return results


def report(results: dict, case: dict, command: str) -> str:
    seg, res, seg8, free, vae = (
        results[k] for k in ("atomic/segments", "atomic/residues", "atomic/segments_b8", "map/free", "vae")
    )
    lines = [
        "# Gaussian-bead heterogeneity: train-gmm on adenylate kinase closed→open",
        "",
        f"Command: `{command}` (git {git_revision()}).  ",
        f"Machine: {machine_description()}.  ",
        f"Data: {case['n']} particles, D={case['box']}, {case['apix']} Å/px, SNR 0.1, CTF, true poses; "
        f"{case['epochs']} epochs for every run, zdim 4, encoder and decoder 3×{case['arch']}; each command at its "
        f"default batch size, learning rate and precision on this CPU (train-gmm {seg['batch']} at {seg['lr']:g} in "
        f"{seg['precision']}, train-vae {vae['batch']} at {vae['lr']:g} in {vae['precision']}), and train-gmm "
        f"segments also at the VAE's batch and learning rate; every train-gmm run's learning rate falls by "
        f"{seg['lr_decay']:g} per epoch (its default).",
        "",
        "## A. From the atomic model (adk_closed.pdb, fitted by --fit)",
        "",
        "| deform | batch | mean Cα RMSD to the true frame | undeformed start | closed end (frames < 10): decoded / "
        "start | open end (frames ≥ 88): decoded / start | longest Cα–Cα | closest non-bonded Cα | abs Spearman PC1 "
        "vs frame | images/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in (("segments", seg), ("residues", res), ("segments", seg8)):
        lines.append(
            f"| {name} | {r['batch']} (lr {r['lr']:g}) | {r['rmsd_A']:.2f} Å | {r['start_rmsd_A']:.2f} Å | {r['rmsd_closed_end_A']:.2f} / "
            f"{r['start_rmsd_closed_end_A']:.2f} Å | {r['rmsd_open_end_A']:.2f} / "
            f"{r['start_rmsd_open_end_A']:.2f} Å | {r['max_bond_A']:.2f} Å | {r['min_nonbonded_A']:.2f} Å | "
            f"{r['spearman_pc1']:.3f} | {r['images_per_s']:.0f} |"
        )
    lines += [
        "",
        f"The start model (PDB 1AKE, fitted) is itself {seg['start_rmsd_closed_end_A']:.2f} Å from the simulation's "
        "closed frames (frames < 10, whose structure it should be): rigid segments cannot bring the decoded models "
        "much closer to any frame than that.",
    ]
    ranges = "; ".join(f"{', '.join(s[:-1])} ({s[-1]})" for s in seg["segments"])
    shifts = [float(s[-1].split(", ")[1].removesuffix(" Å")) for s in seg["segments"]]
    moving = ", ".join(", ".join(s[:-1]) for s, v in zip(seg["segments"], shifts) if v > max(shifts) / 2)
    lines += [
        "",
        "Segments found (RUN/segments.json: residue ranges, each residue in its largest membership; in "
        f"brackets the segment's turn and centroid shift between the ends of PC1 of z, mean ± 2 sd): {ranges}. "
        "In adenylate kinase the NMP-binding domain is residues ~30-59 and the LID ~122-159.",
        "",
        f"Segments that move most along PC1 (centroid shift above half the largest): {moving}.",
        "",
        f"## B. From a map (beads fitted to the consensus backprojection, --resolution {case['resolution']}, "
        "--deform free) beside the VAE",
        "",
        "| model | batch | per-image FSC area vs the true frame (100 held-out particles) | images/s | wall |",
        "|---|---|---|---|---|",
        f"| train-gmm --init-map | {free['batch']} | {free['fsc_area']:.4f} | {free['images_per_s']:.0f} | "
        f"{free['wall_s'] / 60:.1f} min |",
        f"| train-vae (3×{case['arch']}) | {vae['batch']} | {vae['fsc_area']:.4f} | {vae['images_per_s']:.0f} | "
        f"{vae['wall_s'] / 60:.1f} min |",
        "",
        f"Speed against the VAE's images/s (each run's median epoch, same data and CPU, each at its default batch "
        f"and precision): train-gmm segments {seg['images_per_s'] / vae['images_per_s']:.2f}×, residues "
        f"{res['images_per_s'] / vae['images_per_s']:.2f}×, map beads {free['images_per_s'] / vae['images_per_s']:.2f}×; "
        f"at the VAE's batch of {seg8['batch']}, segments {seg8['images_per_s'] / vae['images_per_s']:.2f}×.",
        "",
        "cryoSPHERE 0.6.1 needs CUDA; no GPU was available to this run, so it could not be compared.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    resumable_main(__file__, __doc__, CASES, run_case, report)


if __name__ == "__main__":
    main()
