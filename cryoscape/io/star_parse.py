"""A line-aware reader of STAR files (RELION 3.0 / 3.1 / 4 / 5), so that every problem names its line.

:func:`parse_star` returns the data blocks in file order as :class:`StarBlock` s: a ``loop_``
block becomes a DataFrame (columns = labels without the leading underscore, numbers parsed,
``string_columns`` kept as text) with the file line of each row; a block of ``_label value`` pairs
becomes a dict. The ``# version NNNNN`` comment written before a block is kept, so that a file can
be written back as the version it was (RELION 3.0 writes none, 3.1 and 4 ``30001``, 5 ``50001``).

InputError (one line, naming file and line) for: bytes that are not UTF-8, a label given twice in
one table, a row with more or fewer values than the table has columns, a block defined twice, and
a line that fits no table.
"""

from __future__ import annotations

import io
import re
import shlex
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cryoscape.errors import InputError

_VERSION = re.compile(r"#\s*version\s+(\d+)")


@dataclass
class StarBlock:
    """One ``data_NAME`` block: ``table`` (a loop) or ``pairs`` (label -> value), never both.

    ``line``: file line (1-based) of ``data_NAME``; ``rows``: file line of each table row (int64,
    (n_rows,)); ``version``: the number of the ``# version`` comment before the block, or None.
    """

    name: str
    line: int
    version: str | None = None
    table: pd.DataFrame | None = None
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pairs: dict = field(default_factory=dict)


def _decode(path: Path) -> list[str]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise InputError(
            f"star file {path} line {line}: byte 0x{raw[err.start]:02x} (column {column}) is not UTF-8 text "
            "(is it a STAR file?)"
        ) from None
    return text.removeprefix("\ufeff").split("\n")


def _tokens(line: str) -> int:
    """Number of values on a data line (quoted strings count as one; ``#`` starts a comment)."""
    if '"' not in line and "'" not in line:
        return len(line.split("#", 1)[0].split())
    try:
        return len(shlex.split(line.replace("'", '"'), comments=True))
    except ValueError:  # an unclosed quote
        return -1


def parse_star(path: Path, string_columns: Sequence[str] = ()) -> list[StarBlock]:
    """The data blocks of the STAR file ``path``, in file order (see the module docstring)."""
    lines = _decode(path)
    blocks: list[StarBlock] = []
    seen: dict[str, int] = {}
    version: str | None = None
    i, n = 0, len(lines)
    while i < n:
        s = lines[i].strip()
        i += 1
        if s.startswith("#"):
            match = _VERSION.match(s)
            version = match.group(1) if match else version
            continue
        if not s.startswith("data_"):
            continue  # text before the first block is ignored, as RELION does
        block = StarBlock(name=s[5:].split("#", 1)[0].strip(), line=i, version=version)
        if block.name in seen:
            raise InputError(
                f"star file {path} line {i}: data_{block.name} is defined twice (first at line {seen[block.name]})"
            )
        seen[block.name], version = i, None
        blocks.append(block)
        i, version = _parse_block(path, lines, i, block, string_columns)
    return blocks


def _parse_block(
    path: Path, lines: list[str], i: int, block: StarBlock, string_columns: Sequence[str]
) -> tuple[int, str | None]:
    """Fill ``block`` from ``lines[i:]``; returns where the next block starts and its version."""
    columns: dict[str, int] = {}
    rows: list[str] = []
    row_lines: list[int] = []
    version = None
    in_loop = False
    while i < len(lines):
        s = lines[i].strip()
        if s.startswith("data_"):
            break
        i += 1
        if not s or s.startswith("#"):
            match = _VERSION.match(s)
            version = match.group(1) if match else version
            continue
        if s.startswith("loop_") and not in_loop and not block.pairs:
            in_loop = True
        elif s.startswith("_") and in_loop and not rows:
            label = s.split()[0][1:]
            if label in columns:
                raise InputError(
                    f"star file {path} line {i}: column _{label} appears twice in data_{block.name} "
                    f"(first at line {columns[label]})"
                )
            columns[label] = i
        elif s.startswith("_") and not in_loop:
            words = shlex.split(s.replace("'", '"'), comments=True)
            if len(words) != 2:
                raise InputError(f"star file {path} line {i}: expected '_label value', got '{s[:60]}'")
            block.pairs[words[0][1:]] = words[1] if words[0][1:] in string_columns else _number(words[1])
        elif in_loop and columns:
            rows.append(s)
            row_lines.append(i)
        else:
            raise InputError(f"star file {path} line {i}: unexpected '{s[:40]}' in data_{block.name}")
    if in_loop:
        block.table = _table(path, block.name, list(columns), rows, np.array(row_lines, dtype=np.int64), string_columns)
        block.rows = np.array(row_lines, dtype=np.int64)
    return i, version


def _number(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _table(
    path: Path, name: str, columns: list[str], rows: list[str], lines: np.ndarray, string_columns: Sequence[str]
) -> pd.DataFrame:
    """The rows of a loop as a DataFrame; InputError naming the first row of the wrong length."""
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object if c in string_columns else np.float64) for c in columns})
    width = len(columns)

    def refuse(candidates) -> None:
        for j in candidates:
            count = _tokens(rows[j])
            if count != width:
                problem = "an unclosed quote" if count < 0 else f"{count} values"
                raise InputError(
                    f"star file {path} line {lines[j]} could not be parsed: the row has {problem} but "
                    f"data_{name} has {width} columns"
                )

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rows longer than width + 1 are found below
            df = pd.read_csv(
                io.StringIO("\n".join(rows).replace("'", '"')),
                sep=r"\s+",
                header=None,
                names=list(range(width + 1)),  # one spare column catches rows that are too long
                index_col=False,
                comment="#",
                dtype={k: str for k, c in enumerate(columns) if c in string_columns},
                keep_default_na=False,  # only a missing value is NaN here; "nan" text is converted below
                na_values=[],
                skip_blank_lines=False,
                low_memory=False,
                engine="c",
            )
    except (pd.errors.ParserError, ValueError) as err:
        refuse(range(len(rows)))
        raise InputError(f"star file {path}: data_{name} could not be parsed ({str(err).strip()[:80]})") from None
    if len(df) != len(rows):
        refuse(range(len(rows)))
    refuse(np.flatnonzero((df[width - 1].isna() | df[width].notna()).to_numpy()))
    df = df.drop(columns=width)
    df.columns = columns
    for c in columns:
        if c not in string_columns and not pd.api.types.is_numeric_dtype(df[c]):
            df[c] = _numeric(df[c])
    return df


def _numeric(column: pd.Series) -> pd.Series:
    """A text column as numbers if every value is one ("nan", "inf" included), else unchanged."""
    try:
        return pd.to_numeric(column)
    except (ValueError, TypeError):
        pass
    try:
        return column.astype(np.float64)  # numpy reads "nan" / "inf", pandas' to_numeric does not
    except (ValueError, TypeError):
        return column
