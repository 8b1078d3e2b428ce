"""Atomic models from PDB or mmCIF files (optionally gzipped), read with ``gemmi``.

Each MODEL of the file (e.g. each frame of a trajectory) becomes one :class:`AtomicModel`: flat
per-atom arrays in file order, coordinates in Å in the file's frame. Alternate locations are
reduced to the first conformer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.paths import check_input


@dataclass
class AtomicModel:
    """One model's atoms (N of them), in file order.

    - ``coords_A`` (N, 3) float64: x, y, z in Å.
    - ``elements`` (N,) str: element symbols as gemmi spells them ("C", "N", "Zn"), from the
      element column; where that column is empty, inferred from the atom name (see
      :func:`_element_of`).
    - ``atom_names`` (N,) str: e.g. "CA".
    - ``residue_index`` (N,) int64: 0-based running index of the atom's residue within the model
      (counts residues across chains in file order; use it to group atoms into residues/segments).
    - ``residue_numbers`` (N,) int64: the author residue sequence numbers.
    - ``residue_names`` (N,) str: e.g. "ALA".
    - ``chain_ids`` (N,) str: the chain ID, or the segment ID (columns 73-76) where the chain
      column is blank, as in CHARMM/NAMD files.
    """

    coords_A: np.ndarray
    elements: np.ndarray
    atom_names: np.ndarray
    residue_index: np.ndarray
    residue_numbers: np.ndarray
    residue_names: np.ndarray
    chain_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.coords_A)

    @property
    def n_residues(self) -> int:
        return int(self.residue_index.max()) + 1 if len(self) else 0


# elements that can occur in standard amino acids and nucleotides
_POLYMER_ELEMENTS = {"C", "N", "O", "S", "H", "D", "P", "Se"}
# force-field residue names (CHARMM, AMBER) that gemmi's table does not know
_FORCE_FIELD_RESIDUES = {"HSD", "HSE", "HSP", "HID", "HIE", "HIP", "CYX", "CYM", "ASH", "GLH", "LYN"}


def _element_of(atom, residue, gemmi) -> str:
    """The atom's element: the file's element column, or a guess from the atom name.

    gemmi guesses a missing element from the name's PDB column alignment, which fails for
    left-justified (CHARMM/NAMD-style) names such as "CA  " read as calcium. In standard amino
    acids and nucleotides (and force-field variants such as CHARMM's HSD) an element outside C, N, O, S, H, D, P, Se is therefore replaced by the
    first letter of the atom name (after leading digits: "1HB" -> H); "SE" in MSE stays selenium.
    """
    name = atom.element.name
    info = gemmi.find_tabulated_residue(residue.name)
    polymer = residue.name in _FORCE_FIELD_RESIDUES or (
        info is not None and (info.is_amino_acid() or info.is_nucleic_acid())
    )
    if polymer and name not in _POLYMER_ELEMENTS:
        letters = atom.name.lstrip("0123456789")
        if letters[:2].upper() == "SE" and residue.name == "MSE":
            return "Se"
        return letters[:1].upper() or name
    if name == "X":
        letters = atom.name.lstrip("0123456789")
        guess = gemmi.Element(letters[:1]) if letters else None
        return guess.name if guess is not None and guess.name != "X" else name
    return name


def read_atomic_model(path: str | Path, remove_water: bool = True, remove_hydrogens: bool = False) -> list[AtomicModel]:
    """Read every model of a PDB / mmCIF file (``.pdb``, ``.ent``, ``.cif``, ``.mmcif``, ``.gz``).

    Returns one :class:`AtomicModel` per MODEL. Waters (HOH, WAT, …) are dropped when
    ``remove_water``; hydrogens and deuteriums when ``remove_hydrogens``. Raises InputError if the
    file cannot be parsed or holds no atoms (after the removals).
    """
    import gemmi  # imported here: keeps `cryoscape --help` fast

    path = check_input(path, "atomic model")
    try:
        structure = gemmi.read_structure(str(path))
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(f"{path} could not be read as a PDB/mmCIF file ({first})") from None
    structure.remove_alternative_conformations()
    models = []
    for model in structure:
        coords, elements, atom_names, res_index, res_numbers, res_names, chains = [], [], [], [], [], [], []
        n_res = 0
        for chain in model:
            for residue in chain:
                if remove_water and residue.is_water():
                    continue
                kept = False
                for atom in residue:
                    element = _element_of(atom, residue, gemmi)
                    if remove_hydrogens and element in ("H", "D"):
                        continue
                    pos = atom.pos
                    coords.append((pos.x, pos.y, pos.z))
                    elements.append(element)
                    atom_names.append(atom.name)
                    res_index.append(n_res)
                    res_numbers.append(residue.seqid.num)
                    res_names.append(residue.name)
                    chains.append(chain.name or residue.segment.strip())
                    kept = True
                n_res += kept
        if not coords:
            continue
        xyz = np.asarray(coords, dtype=np.float64).reshape(-1, 3)
        bad = np.flatnonzero(~np.isfinite(xyz).all(axis=1))
        if len(bad):
            i = bad[0]
            raise InputError(
                f"{path}: {len(bad)} atom(s) have coordinates that are not numbers, the first "
                f"{atom_names[i]} of {res_names[i]} {res_numbers[i]} chain {chains[i]}: {xyz[i].tolist()}"
            )
        models.append(
            AtomicModel(
                coords_A=xyz,
                elements=np.asarray(elements, dtype=str),
                atom_names=np.asarray(atom_names, dtype=str),
                residue_index=np.asarray(res_index, dtype=np.int64),
                residue_numbers=np.asarray(res_numbers, dtype=np.int64),
                residue_names=np.asarray(res_names, dtype=str),
                chain_ids=np.asarray(chains, dtype=str),
            )
        )
    if not models:
        raise InputError(
            f"{path} holds no atoms"
            + (" (after removing waters/hydrogens)" if remove_water or remove_hydrogens else "")
        )
    return models


def write_moved_models(template: str | Path, coords_A: list[np.ndarray], path: str | Path) -> None:
    """Write the first model of the file ``template`` with its atoms moved to each ``coords_A``
    (N, 3) Å, in the atom order of :func:`read_atomic_model` (waters removed, hydrogens kept): one
    MODEL per array, same residues, names and chains. PDB, or mmCIF for a ``.cif`` ``path``."""
    import gemmi

    structure = gemmi.read_structure(str(check_input(template, "atomic model")))
    structure.remove_alternative_conformations()
    structure.remove_waters()
    first = structure[0]
    while len(structure) > 1:
        del structure[1]
    atoms = [atom for chain in first for residue in chain for atom in residue]
    frames = []
    for i, xyz in enumerate(coords_A, start=1):
        xyz = np.asarray(xyz, dtype=np.float64)
        if xyz.shape != (len(atoms), 3):
            raise InputError(f"{len(atoms)} atoms in {template}, but coordinates for {xyz.shape[0]}")
        frame = first.clone()
        frame.num = i
        for atom, (x, y, z) in zip([a for c in frame for r in c for a in r], xyz):
            atom.pos = gemmi.Position(x, y, z)
        frames.append(frame)
    del structure[0]
    for frame in frames:
        structure.add_model(frame)
    structure.setup_entities()
    if str(path).endswith(".cif"):
        structure.make_mmcif_document().write_file(str(path))
    else:
        structure.write_pdb(str(path))
