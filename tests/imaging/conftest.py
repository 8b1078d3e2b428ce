"""Shared fixtures for the imaging tests."""

from pathlib import Path

import numpy as np
import pytest

_CANDIDATES = [
    Path(__file__).resolve().parents[2] / "cryoscape" / "simulate" / "structures" / "adk_open.pdb",
    Path("/work/shared/data/structures/adk_open.pdb"),
]


@pytest.fixture(scope="session")
def adk_atoms():
    """(coords (N, 3) Å, elements (N,)) of adenylate kinase 4AKE (3,341 atoms, with hydrogens).

    The file has no element columns (CHARMM atom names), so the element is the first letter of
    the atom name (C, H, N, O, S in this file).
    """
    gemmi = pytest.importorskip("gemmi")
    path = next((p for p in _CANDIDATES if p.exists()), None)
    if path is None:
        pytest.skip("adk_open.pdb not available")
    structure = gemmi.read_structure(str(path))
    coords, elements = [], []
    for chain in structure[0]:
        for residue in chain:
            for atom in residue:
                coords.append(atom.pos.tolist())
                elements.append(atom.name[0])
    return np.array(coords), np.array(elements)
