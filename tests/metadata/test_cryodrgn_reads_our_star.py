"""Optional (slow): the real cryoDRGN parses the star files cryoscape writes to the same pickles.

Needs a cryoDRGN install beside the project: set CRYODRGN to its `cryodrgn` executable
(default ~/cryodrgn-venv/bin/cryodrgn); skipped otherwise. Run with `pytest -m slow`.
"""

from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cryoscape.data.particle_io import load_particles, save_star

CRYODRGN = Path(os.environ.get("CRYODRGN", Path.home() / "cryodrgn-venv" / "bin" / "cryodrgn"))


@pytest.mark.slow
@pytest.mark.skipif(not CRYODRGN.exists(), reason="cryoDRGN is not installed")
@pytest.mark.parametrize("source,prefix", [("relion31.star", "cryodrgn_r31"), ("particles.cs", "cryodrgn_cs")])
def test_cryodrgn_parses_our_star(work, tmp_path, source, prefix):
    star = save_star(tmp_path / "ours.star", load_particles(work / source))
    for cmd, out in (("parse_pose_star", "p.pkl"), ("parse_ctf_star", "c.pkl")):
        subprocess.run([str(CRYODRGN), cmd, str(star), "-o", str(tmp_path / out)], check=True, capture_output=True)
    with open(tmp_path / "p.pkl", "rb") as f:
        rot, trans = pickle.load(f)
    with open(work.parent / "data" / f"{prefix}_poses.pkl", "rb") as f:
        ref_rot, ref_trans = pickle.load(f)
    np.testing.assert_allclose(rot, ref_rot, atol=1e-6)
    np.testing.assert_allclose(trans, ref_trans, rtol=1e-6, atol=1e-7)
    with open(tmp_path / "c.pkl", "rb") as f, open(work / f"{prefix}_ctf.pkl", "rb") as g:
        np.testing.assert_allclose(pickle.load(f), pickle.load(g), rtol=1e-6)
