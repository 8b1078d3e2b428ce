"""Smoke runs of every benchmark script (its --quick mode: tiny sizes, no peer tool, no report
written), so that none can rot unnoticed. Each test checks a number of the script's output."""

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(script: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *args], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_lazy_loading_benchmark_quick():
    text = _run("lazy_loading.py")
    assert "Checksum of the pixels read, equal in every mode: yes" in text, text
    rates = re.findall(r"\| (lazy-cold|lazy-warm|in-memory) \| [\d.]+ \| ([\d,]+) \| ([\d,]+) \|", text)
    assert len(rates) == 3 and all(float(r.replace(",", "")) > 0 for _, *pair in rates for r in pair), text


def test_reconstruction_benchmark_quick(tmp_path):
    report = tmp_path / "report.md"
    text = _run("reconstruction.py", "--output", str(report))
    # noise-free, 1,000 particles: the issue asks for FSC vs truth > 0.5 to 0.9 x Nyquist (0.98 measured)
    minimum = float(re.search(r"minimum FSC over shells 0..0.9·Nyquist = ([\d.]+)", text).group(1))
    assert minimum > 0.9, text
    assert text.count("not run (--quick)") == 3 and report.read_text() in text


def test_vae_benchmark_quick():
    text = _run("vae.py")
    seconds = re.findall(r"\| cryoscape \| (?:float32|bfloat16)[^|]*\| [^|]+\| [\d.]+ \| ([\d.]+) \|", text)
    assert len(seconds) == 3 and all(float(s) > 0 for s in seconds), text
    peer = re.search(r"\| cryoDRGN 4\.3\.1 \| float32 \| full \(Nyquist\) \| ([^|]+) \|", text)
    assert peer and peer.group(1) in ("not run (--quick)", "not installed beside the project"), text
    accuracy = re.search(r"\| cryoscape \| 1 \| [\d.]+ \| - \| \d+ \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", text)
    auc, resolution, spearman = map(float, accuracy.groups())
    assert 0 < auc < 1 and resolution > 2 * 2.8 and 0 <= spearman <= 1, text  # 1 epoch: a smoke test only


def test_analysis_benchmark_quick():
    text = _run("analysis.py")
    auc = float(re.search(r"\| cryoscape \| \d+ s \| \d+ MiB \| ([\d.]+) \|", text).group(1))
    assert 0 < auc < 1, text
    explained = [
        float(v) for v in re.search(r"volume PCs 1-5: ([\d., %]+)\.", text).group(1).replace("%", "").split(",")
    ]
    assert explained == sorted(explained, reverse=True) and 0 < sum(explained) <= 100.01, text


def test_voxel_benchmark_quick():
    text = _run("voxel.py")
    ratio = float(re.search(r"Resolution ratio voxel / backprojection: ([\d.]+)", text).group(1))
    assert 0.8 < ratio < 1.6, text  # 2,000 particles and 2 epochs: a smoke test, not the benchmark's claim


def test_engine_timing_benchmark_quick():
    """The new code against itself: the comparison machinery finds identical losses."""
    text = _run("engine_timing.py")
    differences = [float(d) for d in re.findall(r"\| \d+ \| [\d.e+-]+ \| [\d.e+-]+ \| ([\d.e+-]+) \|", text)]
    assert len(differences) == 2 and max(differences) == 0.0, text


def test_abinit_peer_benchmark_quick():
    text = _run("abinit_peer.py")
    assert "| cryoDRGN 4.3.1 `abinit` (HPS epochs) | float32 | not run (--quick) |" in text, text
    searches = re.findall(
        r"\| cryoscape `search_poses`, levels=\d [^|]*\| float32 \| 16 \| [\d.]+ \| ([\d.]+) \| - \| ([\d.]+)°", text
    )
    assert len(searches) == 2 and all(float(rate) > 0 for rate, _ in searches), text
    assert all(float(error) < 6.0 for _, error in searches), text  # the true map: within a few grid steps
    assert "cryoscape `abinit-homo` on" in text, text  # run, or its failure reported


def test_abinit_benchmark_quick():
    text = _run("abinit.py")
    median = float(re.search(r"median rotation error \(after global rotation and hand\) \| ([\d.]+)°", text).group(1))
    assert median < 10, text  # 600 particles at D=32: ab initio works (random poses: ~100°)
    rates = re.findall(r"\| 32 \| 8 \| 3 \| 1.88° \| 64 \| ([\d.]+) \|", text)
    assert len(rates) == 1 and float(rates[0]) > 0, text
    assert text.count("| abinit-het | found (no poses given) |") == 1, text
    assert re.search(r"after each step .*: consensus [\d.]+°, round 1 [\d.]+°\.", text), text


def test_gmm_benchmark_quick():
    text = _run("gmm.py")
    rows = re.findall(
        r"\| (segments|residues) \| \d+ \(lr [\d.e-]+\) \| ([\d.]+) Å \| ([\d.]+) Å \| [\d.]+ / [\d.]+ Å \| "
        r"[\d.]+ / [\d.]+ Å \| ([\d.]+) Å \|",
        text,
    )
    assert [r[0] for r in rows] == ["segments", "residues", "segments"], text  # the last at the VAE's batch
    for _, decoded, start, longest_bond in rows:
        assert float(decoded) < float(start) and float(longest_bond) < 5.0, text  # 2 epochs: a smoke test
    areas = re.findall(r"\| train-(?:gmm --init-map|vae \(3×32\)) \| \d+ \| ([\d.]+) \|", text)
    assert len(areas) == 2 and all(0 < float(a) < 1 for a in areas), text
    assert "Segments found (RUN/segments.json" in text and "Segments that move most along PC1" in text, text


def test_gmm_losses_benchmark_quick():
    text = _run("gmm_losses.py")
    # columns: mean Cα RMSD | closed end decoded / start | open end decoded / start
    rows = re.findall(
        r"\| (gaussian|frc|correlation) \| [\d.]+ Å \| [\d.]+ / [\d.]+ Å \| ([\d.]+) / ([\d.]+) Å \|", text
    )
    assert [r[0] for r in rows] == ["gaussian", "frc", "correlation"], text
    assert all(0 < float(decoded) < 2 * float(start) for _, decoded, start in rows), text  # 2 epochs: a smoke test
    assert "Best by each measure: mean Cα RMSD: `" in text and "train-gmm's default is `--loss gaussian`" in text, text


def test_mixture_benchmark_quick():
    text = _run("mixture.py")
    row = re.search(r"\| ([\d.-]+) \| ([\d.-]+) \| ([\d.]+) \| ([\d.]+) \| (\d+) \(of -k 4\) \|", text)
    ari, _, junk_recall, junk_precision, k_found = row.groups()
    assert float(junk_recall) >= 0.9 and float(junk_precision) >= 0.9 and int(k_found) >= 2, text
    assert float(ari) > 0.5, text  # 900 particles at D=24, 6 epochs: a smoke test, not the benchmark's claim
    calibrated = re.findall(r"\| \[[\d.]+, [\d.]+[)\]] \| (\d+) \| [\d.]+ \| [\d.]+ \|", text)
    assert sum(map(int, calibrated)) == 900, text
    costs = re.findall(r"\| ([134]) \| (\d+) \| (\d+) \| ([\d.]+)× \| (\d+) \| (\d+) \| ([\d.]+)× \|", text)
    assert [c[0] for c in costs] == ["1", "3", "4"] and all(float(v) > 0 for c in costs for v in c[1:]), text
    assert "train-vae --zdim 8 (k-means of z, 4 clusters)" in text, text
    pair = re.findall(r"\| (0\.1|1\.0) \| (-?[\d.]+) \| (\d) \| \d+ \| ", text)
    assert [p[0] for p in pair] == ["0.1", "1.0"] and all(-1 <= float(p[1]) <= 1 for p in pair), text


def test_six_species_benchmark_quick():
    text = _run("mixture_six.py")
    row = re.search(r"\| ([\d.-]+) \| ([\d.-]+) \| ([\d.-]+) \| ([\d.]+) \| ([\d.na]+) \| (\d+) \(of -k 8\) \|", text)
    assert row, text
    aris, junk_recall, k_found = [float(v) for v in row.groups()[:3]], float(row.group(4)), int(row.group(6))
    assert all(-1 <= a <= 1 for a in aris) and junk_recall >= 0.8 and 2 <= k_found <= 8, text  # 600 particles, D=24
    counts = re.findall(
        r"^\| (?:junk|adk \(closed→open\)|1hvr|4E43 \(on 1hvr\)|1a28|19hc|5a7u) \| ([\d |]+) \|$", text, re.M
    )
    assert len(counts) == 7 and sum(int(v) for c in counts for v in c.split("|")) == 600, text
