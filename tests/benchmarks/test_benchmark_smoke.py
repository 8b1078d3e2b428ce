"""Smoke runs of the benchmark scripts (their --quick modes), so that none can rot unnoticed."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(script: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *args], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_voxel_benchmark_quick():
    text = _run("voxel.py")
    ratio = float(re.search(r"Resolution ratio voxel / backprojection: ([\d.]+)", text).group(1))
    assert 0.8 < ratio < 1.6, text  # 2,000 particles and 2 epochs: a smoke test, not the benchmark's claim


@pytest.mark.slow
def test_reconstruction_benchmark_quick(tmp_path):
    _run("reconstruction.py", "--output", str(tmp_path / "report.md"))


def test_engine_timing_benchmark_quick():
    """The new code against itself: the comparison machinery finds identical losses."""
    text = _run("engine_timing.py")
    differences = [float(d) for d in re.findall(r"\| \d+ \| [\d.e+-]+ \| [\d.e+-]+ \| ([\d.e+-]+) \|", text)]
    assert len(differences) == 2 and max(differences) == 0.0, text
