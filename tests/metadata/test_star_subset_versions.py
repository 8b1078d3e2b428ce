"""`cryoscape select` writes a subset in the RELION version of its source (issue 11, item 10).

RELION 3.0 files have one ``data_`` block with per-particle optics and no ``# version`` line;
RELION 3.0 reads a ``# version 30001`` file with an optics block wrongly, so a subset of a 3.0 file
must stay 3.0. A 3.1/4 file keeps ``# version 30001`` and its optics block, a RELION 5 file 50001.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from cryoscape.cli.main import main
from cryoscape.data.particle_io import load_particles

CHOSEN = np.array([10, 2, 7, 3])


def _select(star: Path, tmp_path: Path) -> str:
    np.save(tmp_path / "ind.npy", CHOSEN)
    out = star.parent / "subset.star"  # same folder: image names stay as written
    assert main(["select", str(star), "--ind", str(tmp_path / "ind.npy"), "-o", str(out), "-q"]) == 0
    return out.read_text()


def _layout(text: str) -> list[str]:
    """Version lines, block names and column labels, in file order."""
    return [
        line.split()[0] + (" " + line.split()[-1] if line.startswith("#") else "")
        for line in text.splitlines()
        if re.match(r"(# version|data_|_rln)", line)
    ]


def _rows(text: str, block: str) -> list[list[str]]:
    """The value rows of ``data_<block>`` as tokens."""
    body = text.split(f"data_{block}\n", 1)[1].split("data_", 1)[0]
    return [line.split() for line in body.splitlines() if line.strip() and not line.startswith(("_", "loop_", "#"))]


def test_subset_of_relion30_stays_30(work, tmp_path):
    source = (work / "relion30.star").read_text()
    subset = _select(work / "relion30.star", tmp_path)
    assert "# version" not in subset and "data_optics" not in subset
    assert _layout(subset) == _layout(source)  # one data_ block, the same 17 columns in the same order
    want = [_rows(source, "")[i] for i in sorted(CHOSEN)]
    got = _rows(subset, "")
    assert [r[0] for r in got] == [r[0] for r in want]  # image names as written
    np.testing.assert_allclose(np.array([r[2:] for r in got], float), np.array([r[2:] for r in want], float))
    table = load_particles(work / "subset.star")
    assert len(table) == 4 and table.metadata["rlnVoltage"].eq(300.0).all()


def test_subset_of_relion31_keeps_optics_and_version(work, tmp_path):
    source = (work / "relion31.star").read_text()
    subset = _select(work / "relion31.star", tmp_path)
    assert _layout(subset) == _layout(source)
    assert subset.count("# version 30001") == 2
    got, want = _rows(subset, "optics"), _rows(source, "optics")
    assert [r[1] for r in got] == [r[1] for r in want] == ["opticsGroup1", "opticsGroup2"]
    np.testing.assert_array_equal(
        np.delete(np.array(got), 1, axis=1).astype(float), np.delete(np.array(want), 1, axis=1).astype(float)
    )
    assert [r[2] for r in _rows(subset, "particles")] == [_rows(source, "particles")[i][2] for i in sorted(CHOSEN)]


def test_subset_of_relion5_keeps_its_version(work, tmp_path):
    star = work / "relion31.star"
    star.write_text(star.read_text().replace("# version 30001", "# version 50001"))
    subset = _select(star, tmp_path)
    assert subset.count("# version 50001") == 2 and "30001" not in subset
    assert _layout(subset) == _layout(star.read_text())
