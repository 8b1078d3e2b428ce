"""Fixtures of the particle-metadata tests: the files in data/ (see data/README.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def work(tmp_path) -> Path:
    """A writable copy of data/ (star, cs and stacks keep their relative layout)."""
    dst = tmp_path / "data"
    shutil.copytree(DATA, dst, ignore=shutil.ignore_patterns("*.py", "README.md", "__pycache__"))
    return dst


@pytest.fixture(scope="session")
def real_project(tmp_path_factory):
    """The real-shaped RELION / cryoSPARC / cryoDRGN project of real_project.py (made once, ~8 s)."""
    from real_project import make_real_project

    return make_real_project(tmp_path_factory.mktemp("real_project"))
