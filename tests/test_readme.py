"""The README's quick start and homogeneous block run as written, by bash, in a fresh folder: scaled
down (fewer particles, epochs and maps, each change an exact text substitution that fails if the
README drifts from it) in the default run, and exactly as written under ``-m slow``."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

# a few seconds of ab initio: it only has to run here (its accuracy is tests/inference/test_abinit_homo.py's)
_QUICK_SEARCH = "--restarts 1 --iterations 4 --minibatch 50 --search-rounds 0 --refine-rounds 1 "

# (text in the README, what the default run uses instead)
SCALED_DOWN = [
    ("-o sim -n 10000 ", "-o sim -n 500 "),
    ("-o vae --zdim 1 -n 4", "-o vae --zdim 1 -n 2"),
    ("--sketch-size 100 --states 4 --n-train 200", "--sketch-size 16 --states 4 --n-train 16"),
    ("-o open -n 5000 ", "-o open -n 500 "),
    ("-o open/nn -n 5 ", "-o open/nn -n 1 "),
    ("-o unposed -n 8000 ", "-o unposed -n 300 "),
    ("-o unposed/abinit ", "-o unposed/abinit " + _QUICK_SEARCH),
    ("-o sim/abinit_het --zdim 8 -n 5 ", "-o sim/abinit_het --zdim 8 -n 1 --rounds 1 " + _QUICK_SEARCH),
]


def _blocks(section: str) -> list[str]:
    """The ```bash blocks of the README section whose heading starts with ``section``."""
    text = README.read_text()
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```bash\n(.*?)```", text[start : end if end > 0 else None], flags=re.S)


def _scripts(scaled: bool) -> dict[str, str]:
    """The quick start section's blocks as two independent scripts, so that they can run side by side:
    "vae" (the VAE, its analysis, and abinit-het on the same data) and "homogeneous" (classical,
    neural and ab initio reconstruction of adk_open)."""
    *vae_blocks, homogeneous, unposed = _blocks("Quick start")
    vae = "\n".join(vae_blocks)
    for setup_line in ("source .venv/bin/activate\n", "mkdir -p ~/cryoscape-quickstart && cd ~/cryoscape-quickstart\n"):
        assert setup_line in vae, f"the README no longer has {setup_line!r}: update tests/test_readme.py"
        vae = vae.replace(setup_line, "")  # the test runs in its own folder, with the venv on PATH
    on_sim = [line for line in unposed.splitlines() if "sim/abinit_het" in line]
    assert len(on_sim) == 2, "the README's abinit-het lines changed: update tests/test_readme.py"
    scripts = {
        "vae": vae + "\n".join(on_sim) + "\n",
        "homogeneous": homogeneous + "\n".join(line for line in unposed.splitlines() if line not in on_sim) + "\n",
    }
    assert "train-vae" in scripts["vae"] and "report" in scripts["vae"] and "train-nn" in scripts["homogeneous"]
    if scaled:
        for old, new in SCALED_DOWN:
            assert any(old in text for text in scripts.values()), (
                f"the README no longer has {old!r}: update tests/test_readme.py"
            )
            scripts = {name: text.replace(old, new) for name, text in scripts.items()}
    return {name: "set -euo pipefail\n" + text for name, text in scripts.items()}


MADE = {
    "vae": (
        "vae/z.npy",
        "vae/maps/vol_007.mrc",
        "vae/analysis/kmeans_labels.npy",
        "vae/path/movie.cxc",
        "one_end.star",
        "one_end.mrc",
        "vae/report.html",
        "sim/abinit_het/z.npy",
        "sim/abinit_het/analysis/summary.txt",
    ),
    "homogeneous": ("open/map.mrc", "open/nn/maps/vol_000.mrc", "unposed/abinit/map.mrc", "unposed/again.mrc"),
}


def _run(tmp_path: Path, scaled: bool, part: str) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("CRYOSCAPE_PROGRESS_SECONDS", None)
    script = _scripts(scaled)[part]
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-4000:]
    for made in MADE[part]:
        assert (tmp_path / made).exists(), made
    if part == "vae":
        z = np.load(tmp_path / "vae/z.npy")
        assert z.dtype == np.float32 and len(np.unique(z)) > 0.95 * len(z)


@pytest.mark.parametrize("part", ["vae", "homogeneous"])
def test_readme_quick_start_scaled_down(tmp_path, part):
    _run(tmp_path, scaled=True, part=part)


@pytest.mark.slow
@pytest.mark.parametrize("part", ["vae", "homogeneous"])
def test_readme_quick_start_as_written(tmp_path, part):
    _run(tmp_path, scaled=False, part=part)
