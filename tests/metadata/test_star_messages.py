"""Broken RELION star files: one line naming the file, the line and the problem (issue 11, items 16-17).

Each case edits the fixtures relion31.star / relion30.star (copies, with their stacks) the way real
files go wrong: a column written twice by a script, a row cut short by a full disk, a micrograph
name in Latin-1, an image index that is not a whole 1-based number.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cryoscape.cli.main import main
from cryoscape.data.particle_io import load_particles
from cryoscape.errors import InputError


def _line_of(text: str, needle: str) -> int:
    """1-based number of the first line of ``text`` that contains ``needle``."""
    return next(k for k, line in enumerate(text.split("\n"), start=1) if needle in line)


def _edit_row(star: Path, needle: str, edit) -> int:
    """Apply ``edit`` to the row holding ``needle``; returns that row's line number."""
    lines = star.read_text().split("\n")
    k = _line_of("\n".join(lines), needle)
    lines[k - 1] = edit(lines[k - 1])
    star.write_text("\n".join(lines))
    return k


def duplicated_column(work: Path) -> tuple[Path, int, str]:
    star = work / "relion31.star"
    text = star.read_text()
    # a script appended rlnDefocusU again as column 19, with a value on every particle row
    text = text.replace("_rlnLogLikeliContribution #18\n", "_rlnLogLikeliContribution #18\n_rlnDefocusU #19\n")
    text = re.sub(r"(@stacks/mic\d_particles\.mrcs .*)\n", r"\1  12000.0\n", text)
    star.write_text(text)
    return star, _line_of(text, "_rlnDefocusU #19"), "column _rlnDefocusU appears twice"


def short_row_31(work: Path) -> tuple[Path, int, str]:
    star = work / "relion31.star"
    line = _edit_row(star, "000005@stacks/mic2", lambda row: row.rsplit(maxsplit=2)[0])  # last 2 values lost
    return star, line, "the row has 16 values but data_particles has 18 columns"


def truncated_row_31(work: Path) -> tuple[Path, int, str]:
    """A write cut off after the micrograph name: its optics group used to be read as NaN."""
    star = work / "relion31.star"
    line = _edit_row(star, "000006@stacks/mic1", lambda row: " ".join(row.split()[:4]))
    return star, line, "the row has 4 values but data_particles has 18 columns"


def short_row_30(work: Path) -> tuple[Path, int, str]:
    star = work / "relion30.star"
    line = _edit_row(star, "000007@stacks/r30", lambda row: row.rsplit(maxsplit=1)[0])
    return star, line, "the row has 16 values but data_ has 17 columns"


def latin1_byte(work: Path) -> tuple[Path, int, str]:
    star = work / "relion31.star"
    text = star.read_text()
    line = _line_of(text, "000003@stacks/mic2")
    lines = text.encode().split(b"\n")
    lines[line - 1] = lines[line - 1].replace(b"mics/mic2.mrc", "mics/mic2_caf\u00e9.mrc".encode("latin-1"))
    star.write_bytes(b"\n".join(lines))
    return star, line, "byte 0xe9 (column "


def image_index(bad: str):
    def make(work: Path) -> tuple[Path, int, str]:
        star = work / "relion31.star"
        line = _edit_row(star, "000004@stacks/mic1", lambda row: row.replace("000004@stacks", f"{bad}@stacks"))
        return star, line, f"(particle 4): image name '{bad}@stacks/mic1_particles.mrcs' needs a whole 1-based index"

    return make


CASES = {
    "duplicated column": duplicated_column,
    "short row, RELION 3.1": short_row_31,
    "row cut short before its optics group, RELION 3.1": truncated_row_31,
    "short row, RELION 3.0": short_row_30,
    "non-UTF-8 byte": latin1_byte,
    "fractional image index": image_index("1.5"),
    "image index 0": image_index("0"),
    "negative image index": image_index("-3"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_load_particles_names_file_line_and_problem(work, case):
    star, line, problem = CASES[case](work)
    with pytest.raises(InputError) as info:
        load_particles(star)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"star file {star} line {line}"), message
    assert problem in message, message


@pytest.mark.parametrize("command", ["backproject", "export-cryodrgn"])
@pytest.mark.parametrize("case", list(CASES))
def test_cli_prints_one_line_and_exits_1(work, tmp_path, capsys, command, case):
    star, line, problem = CASES[case](work)
    if command == "backproject":
        out = ["-o", str(tmp_path / "out.mrc")]
    else:
        out = ["--poses", str(tmp_path / "poses.pkl"), "--ctf", str(tmp_path / "ctf.pkl")]
    before = sorted(work.rglob("*"))
    code = main([command, str(star), *out, "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1, err
    assert len(err) == 1 and err[0].startswith(f"cryoscape {command}: error: star file {star} line {line}"), err
    assert problem in err[0], err[0]
    assert sorted(work.rglob("*")) == before and not list(tmp_path.glob("*.*"))  # nothing written


def test_a_well_formed_star_still_reads(work):
    """The strict reader accepts the fixtures as they are (and 'nan' text stays a number)."""
    star = work / "relion31.star"
    star.write_text(star.read_text().replace("98582.696577", "nan"))
    table = load_particles(star)
    assert len(table) == 20
    assert table.metadata["rlnLogLikeliContribution"].isna().sum() == 1
    assert len(load_particles(work / "relion30.star")) == 12
