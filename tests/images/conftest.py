"""Shared fixtures of the image I/O tests: small synthetic stacks in a temporary folder."""

from __future__ import annotations

import numpy as np
import pytest

from cryoscape.io.mrc_writer import write_stack


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def two_stacks(tmp_path, rng):
    """Two stacks (7 and 5 images of 16×16, 1.5 Å) and their images."""
    a = rng.normal(size=(7, 16, 16)).astype(np.float32)
    b = rng.normal(size=(5, 16, 16)).astype(np.float32)
    pa = write_stack(tmp_path / "a.mrcs", a, 1.5)
    pb = write_stack(tmp_path / "b.mrcs", b, 1.5)
    return pa, pb, a, b
