"""Shared helpers for benchmark scripts: machine description, timing, peak memory, Markdown output."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


def machine_description() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"{cpu}, {os.cpu_count()} cores visible, {mem_gb:.0f} GiB RAM, GPU: {gpu}; "
        f"Python {platform.python_version()}, torch {torch.__version__}, {platform.system()} {platform.release()}"
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def timer(results: dict, key: str):
    start = time.perf_counter()
    yield
    results[key] = time.perf_counter() - start


def adk_trajectory_args(folder, n: int, box: int = 64, apix: float = 1.4, seed: int = 0) -> list[str]:
    """Arguments of `cryoscape simulate` for the VAE benchmarks' data: the README's adenylate kinase
    closed -> open trajectory (98 frames), SNR 0.1, shifts up to 2 px, CTF."""
    return [
        "simulate",
        "adk_dims_closed_to_open",
        "-o",
        str(folder),
        "-n",
        str(n),
        "--box",
        str(box),
        "--apix",
        str(apix),
        "--snr",
        "0.1",
        "--max-shift",
        "2",
        "--seed",
        str(seed),
    ]


def git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except OSError:
        return "unknown"


def sh(cmd: list, log: Path | None = None, env: dict | None = None) -> tuple[float, float]:
    """Run ``cmd`` under /usr/bin/time, with ``env`` added to the environment; (wall seconds, peak
    resident memory MiB)."""
    timed = ["/usr/bin/time", "-f", "PEAK_KB %M", *map(str, cmd)]
    t0 = time.perf_counter()
    out = subprocess.run(timed, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - t0
    if log is not None:
        log.write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        raise SystemExit(f"failed ({out.returncode}): {' '.join(map(str, cmd))}\n{out.stderr[-3000:]}")
    peak = re.findall(r"PEAK_KB (\d+)", out.stderr)
    return seconds, int(peak[-1]) / 1024 if peak else float("nan")


def save_results(work: Path, results: dict) -> None:
    """Write a resumable benchmark's results so far (WORK/results.json)."""
    (work / "results.json").write_text(json.dumps(results, indent=1))


def resumable_main(script: str, doc: str, cases: dict, run_case, report) -> None:
    """The command line of a resumable benchmark: --quick (the "quick" case, one thread, printed only),
    --workdir (keep the runs there; results.json lets a rerun skip what is done), --output (the
    Markdown report, default next to the script). ``run_case(work, case, results) -> results`` and
    ``report(results, case, command) -> str``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--output", default=str(Path(script).with_suffix(".md")))
    args = parser.parse_args()
    case = cases["quick" if args.quick else "full"]
    if args.quick:
        os.environ["OMP_NUM_THREADS"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        saved = work / "results.json"
        results = run_case(work, case, json.loads(saved.read_text()) if saved.exists() else {})
        text = report(results, case, " ".join([f"python benchmarks/{Path(script).name}", *sys.argv[1:]]))
    print(text)
    if not args.quick:
        Path(args.output).write_text(text)
