"""The bead family's parts: start beads from an atomic model, zero deformation, restraints,
segments moving atoms consistently with their beads, and the rigid fit of a displaced model."""

import numpy as np
import pytest
import torch

from cryoscape.analysis.bead_fit import fit_start, start_correlation
from cryoscape.errors import InputError
from cryoscape.io.atomic_model import AtomicModel, read_atomic_model
from cryoscape.models.bead_deformation import BeadDeformation
from cryoscape.models.bead_restraints import BeadRestraints
from cryoscape.models.bead_start import map_beads, residue_beads
from cryoscape.models.gaussian_beads import GaussianBeadSettings
from cryoscape.simulate.conformations import resolve_structure

D, APIX = 32, 3.0


@pytest.fixture(scope="module")
def adk():
    return read_atomic_model(resolve_structure("adk_closed"))[0]


def _in_box(model: AtomicModel) -> AtomicModel:
    coords = model.coords_A - model.coords_A.mean(0) + D // 2 * APIX
    return AtomicModel(coords, model.elements, model.atom_names, model.residue_index, model.residue_numbers,
                       model.residue_names, model.chain_ids)  # fmt: skip


def test_residue_beads_sit_on_the_c_alphas_with_their_electrons(adk):
    start = residue_beads(_in_box(adk), D, APIX)
    ca = _in_box(adk).coords_A[adk.atom_names == "CA"]
    np.testing.assert_allclose((start.centers + D // 2) * APIX, ca, atol=1e-9)
    np.testing.assert_allclose(start.from_pixels(start.centers), ca, atol=1e-9)
    assert len(start.bonds) == 213  # one chain of 214 residues
    first = adk.residue_index == 0  # MET: C5 H11 N O S with the hydrogens the file holds
    assert start.masses[0] == pytest.approx(
        sum({"C": 6, "N": 7, "O": 8, "S": 16, "H": 1}[e] for e in adk.elements[first])
    )
    assert start.sigmas[0] == pytest.approx(2.0 / APIX)


def test_a_model_of_hydrogens_only_is_refused(adk):
    h = adk.elements == "H"
    only_h = AtomicModel(adk.coords_A[h], adk.elements[h], adk.atom_names[h], adk.residue_index[h],
                         adk.residue_numbers[h], adk.residue_names[h], adk.chain_ids[h])  # fmt: skip
    with pytest.raises(InputError, match="hydrogens"):
        residue_beads(only_h, D, APIX)


@pytest.mark.parametrize("deform", ["free", "segments", "residues"])
def test_zero_deformation_reproduces_the_start_exactly(adk, deform):
    start = residue_beads(_in_box(adk), D, APIX)
    settings = GaussianBeadSettings(beads=start.to_json(), zdim=2, deform=deform, width=16, depth=1,
                                    enc_width=16, enc_depth=1, n_segments=4)  # fmt: skip
    model = settings.build(D, seed=0)
    z = torch.randn(3, 2)
    centers = model.centers(z)
    torch.testing.assert_close(centers, torch.as_tensor(start.centers, dtype=torch.float32).expand(3, -1, -1))
    atoms = torch.as_tensor(start.to_pixels(_in_box(adk).coords_A), dtype=torch.float32)
    moved = model.deformation.move_points(z, atoms, torch.as_tensor(adk.residue_index))
    torch.testing.assert_close(moved, atoms.expand(3, -1, -1))


def test_segments_move_atoms_as_their_beads():
    start = torch.randn(40, 3) * 5
    deformation = BeadDeformation(start, 2, "segments", 16, 1, 3)
    torch.nn.init.normal_(deformation.decoder.body[-1].weight, std=0.3)
    z = torch.randn(4, 2)
    beads = deformation(z)
    same = deformation.move_points(z, start, torch.arange(40))
    torch.testing.assert_close(beads, same)
    # a segment moves rigidly: distances within a hard segment are kept
    w = deformation.memberships()
    core = torch.nonzero(w[:, 0] > 0.999).flatten()
    assert len(core) > 3
    d0 = torch.cdist(start[core], start[core])
    torch.testing.assert_close(torch.cdist(beads[0, core], beads[0, core]), d0, atol=2e-3, rtol=1e-3)


def test_restraints_are_zero_at_the_start_and_grow_with_violations():
    chain = torch.zeros(10, 3)
    chain[:, 0] = torch.arange(10) * 3.8 / APIX  # Cα spacing, pixels
    restraints = BeadRestraints(chain, torch.stack([torch.arange(9), torch.arange(1, 10)], 1), APIX)
    terms = restraints(chain[None])
    assert terms["bond"].item() == pytest.approx(0, abs=1e-8) and terms["clash"].item() == 0
    assert terms["angle"].item() == pytest.approx(0, abs=1e-8) and len(restraints.angles) == 8
    bent = chain.clone()  # the chain turned by 90° at bead 5: bonds keep their length, one angle changes
    bent[6:] = bent[5] + (chain[6:] - chain[5])[:, [1, 0, 2]]
    bent_terms = restraints(bent[None])
    assert bent_terms["bond"].item() == pytest.approx(0, abs=1e-6)
    span = 3.8 * 2 - 3.8 * np.sqrt(2)  # the 1–3 distance at bead 5 goes from 7.6 Å to 3.8·√2 Å
    assert bent_terms["angle"].item() == pytest.approx(span**2 / 8, rel=1e-3)
    stretched = chain.clone()
    stretched[5:, 0] += 1.0 / APIX  # one bond 1 Å longer
    assert restraints(stretched[None])["bond"].item() == pytest.approx(1 / 9, rel=1e-3)
    folded = chain.clone()
    folded[2] = folded[0] + torch.tensor([0.0, 2.0 / APIX, 0.0])  # 2 Å from a non-bonded bead
    assert restraints(folded[None])["clash"].item() > 0


def test_map_beads_fit_the_map(adk):
    start = residue_beads(_in_box(adk), D, APIX)
    target = start.volume(D)
    fitted = map_beads(target, APIX, 120, steps=200)
    corr, _ = start_correlation(fitted, target)
    assert corr > 0.95, corr


def test_fit_puts_a_displaced_model_back(adk):
    start = residue_beads(_in_box(adk), D, APIX)
    consensus = start.volume(D)
    angle = np.deg2rad(40)
    R = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    displaced = start.moved(R, np.array([3.0, -2.0, 1.0]))
    fitted = fit_start(displaced, consensus)
    rmsd_px = np.sqrt(((fitted.centers - start.centers) ** 2).sum(1).mean())
    assert rmsd_px * APIX < 1.0, rmsd_px * APIX
    corr, mirrored = start_correlation(fitted, consensus)
    assert corr > 0.98 and mirrored < corr
