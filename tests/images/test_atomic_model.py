"""Atomic models: atom counts, elements and models of the shipped structures."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from cryoscape.errors import InputError
from cryoscape.io.atomic_model import read_atomic_model

STRUCTURES = Path(__file__).resolve().parents[2] / "cryoscape" / "simulate" / "structures"


def test_adk_open_with_hydrogens_and_left_justified_names():
    (model,) = read_atomic_model(STRUCTURES / "adk_open.pdb")
    assert len(model) == 3341
    assert model.coords_A.shape == (3341, 3) and model.coords_A.dtype == np.float64
    np.testing.assert_allclose(model.coords_A[0], [-11.921, 26.307, 10.410])
    assert model.n_residues == 214
    counts = dict(zip(*np.unique(model.elements, return_counts=True)))
    # no element column: "CA" must be carbon, not calcium; 1656 heavy atoms as in the DIMS trajectory
    assert counts == {"C": 1040, "H": 1685, "N": 289, "O": 320, "S": 7}
    assert model.atom_names[4] == "CA" and model.residue_names[0] == "MET"
    assert set(model.chain_ids) == {"4AKE"}  # blank chain column: the segment ID
    assert len(read_atomic_model(STRUCTURES / "adk_open.pdb", remove_hydrogens=True)[0]) == 1656


def test_trajectory_gives_one_model_per_frame():
    models = read_atomic_model(STRUCTURES / "adk_dims_closed_to_open.pdb.gz")
    assert len(models) == 98
    assert {len(m) for m in models} == {1656}
    assert set(models[0].elements) == {"C", "N", "O", "S"}
    ca = models[0].atom_names == "CA"
    assert ca.sum() == 214
    np.testing.assert_array_equal(models[0].residue_index[ca], np.arange(214))
    # the frames differ: the closed -> open motion moves CA atoms by several Å
    shift = np.linalg.norm(models[-1].coords_A[ca] - models[0].coords_A[ca], axis=1)
    assert shift.max() > 5.0


def test_water_removal_and_mmcif(tmp_path):
    with_water = read_atomic_model(STRUCTURES / "1a28.pdb.gz", remove_water=False)[0]
    without = read_atomic_model(STRUCTURES / "1a28.pdb.gz")[0]
    assert len(with_water) == 4262 and len(without) == 4082
    assert "HOH" in set(with_water.residue_names) and "HOH" not in set(without.residue_names)
    import gemmi

    st = gemmi.read_structure(str(STRUCTURES / "4E43.pdb"))
    st.setup_entities()
    doc = st.make_mmcif_document()
    doc.write_file(str(tmp_path / "4e43.cif"))
    from_cif = read_atomic_model(tmp_path / "4e43.cif")[0]
    from_pdb = read_atomic_model(STRUCTURES / "4E43.pdb")[0]
    assert len(from_cif) == len(from_pdb) == 1655
    np.testing.assert_allclose(from_cif.coords_A, from_pdb.coords_A)


def test_empty_and_unparseable_files(tmp_path):
    (tmp_path / "empty.pdb").write_text("REMARK nothing here\nEND\n")
    with pytest.raises(InputError, match="empty.pdb holds no atoms"):
        read_atomic_model(tmp_path / "empty.pdb")
    with gzip.open(tmp_path / "bad.cif.gz", "wt") as f:
        f.write("data_x\nloop_\n_atom_site.id\n'unterminated\n")
    with pytest.raises(InputError, match="bad.cif.gz"):
        read_atomic_model(tmp_path / "bad.cif.gz")


def test_coordinates_that_are_not_numbers_are_named(tmp_path):
    """A NaN coordinate would give a NaN map after the whole simulation; it is named at reading."""
    lines = (STRUCTURES / "adk_open.pdb").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("ATOM"))
    lines[first] = lines[first][:30] + "     nan" + lines[first][38:]
    (tmp_path / "nan.pdb").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"1 atom\(s\) have coordinates that are not numbers, the first N of MET 1"):
        read_atomic_model(tmp_path / "nan.pdb")
