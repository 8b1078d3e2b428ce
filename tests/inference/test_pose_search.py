"""Hierarchical pose search against the true map finds the simulator's poses: rotations within a
few degrees and shifts within a fraction of a pixel, in the particle table's sign (a flipped shift
convention would be off by twice the shift)."""

import dataclasses

import numpy as np
import pytest
import torch

from cryoscape.analysis.pose_accuracy import global_translation, pose_accuracy
from cryoscape.cli.main import main
from cryoscape.data.images import ImageSource
from cryoscape.data.particle_io import load_particles
from cryoscape.imaging.hartley_slicer import HartleySlicer
from cryoscape.imaging.rotations import random_rotations
from cryoscape.inference.batches import make_batch
from cryoscape.inference.pose_search import SearchSettings, search_poses
from cryoscape.io.mrc import read_map

N = 24


SETTINGS = SearchSettings(max_shift_px=6, block=512)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    args = ["simulate", "adk_open", "-o", str(out), "-n", str(N), "--box", "64", "--apix", "2", "--snr", "0.1"]
    assert main([*args, "--max-shift", "4", "--seed", "3", "-q"]) == 0
    table = load_particles(out / "particles.star")
    volume, _, _ = read_map(out / "gt/00_adk_open.mrc")
    unposed = dataclasses.replace(table, shifts_A=None, rotations=None)
    images = torch.from_numpy(ImageSource.from_table(unposed).get(np.arange(N)))
    return table, volume, make_batch(images, unposed, np.arange(N), scale=1.0)


@pytest.fixture(scope="module")
def searched(simulated):
    table, volume, batch = simulated
    render = HartleySlicer(torch.from_numpy(volume.copy()))
    settings = SETTINGS
    found = search_poses(render, batch.images_ht, batch.ctf, settings)
    several = search_poses(render, batch.images_ht[:6], batch.ctf[:6], settings, final=4)
    return table, found, several


def test_rotations_are_found(searched):
    table, found, _ = searched
    errors = pose_accuracy(found.rotations[:, 0].double().numpy(), table.rotations)
    assert not errors.mirrored and np.allclose(errors.rotation, np.eye(3), atol=0.05)  # the true map: no turn
    assert errors.median_deg < 4.0 and errors.fraction_within(8.0) >= 0.8, errors.errors_deg


def test_shifts_are_found_with_the_tables_sign(searched):
    table, found, _ = searched
    true = table.shifts_px_of(np.arange(N))
    ok = np.abs(found.shifts_px[:, 0].numpy() - true).max(axis=1) < 0.75
    assert ok.mean() >= 0.8
    assert np.median(np.abs(found.shifts_px[:, 0].numpy() + true)) > 1.0  # the other sign is far off


def test_pose_accuracy_sees_through_a_global_turn_and_a_mirror():
    truth = random_rotations(50, generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    Q = random_rotations(1, generator=torch.Generator().manual_seed(1), dtype=torch.float64).numpy()[0]
    J = np.diag([1.0, 1.0, -1.0])
    turned = pose_accuracy(truth @ Q, truth)
    assert turned.median_deg < 1e-4 and not turned.mirrored and np.allclose(turned.rotation, Q)
    mirrored = pose_accuracy(J @ truth @ J @ Q, truth)
    assert mirrored.median_deg < 1e-4 and mirrored.mirrored
    assert pose_accuracy(truth[::-1], truth).median_deg > 60  # unrelated poses


def test_global_translation_finds_how_far_the_map_was_moved(simulated):
    """Searching against the true map moved by whole voxels (np.roll, independent of the slicer):
    the shifts found differ from the truth's by the projection of the move, and global_translation
    recovers it in the map's x, y, z, with its sign (a flipped sign or transposed rotations would not)."""
    table, volume, batch = simulated
    move = np.array([2.0, -1.0, 1.0])  # voxels along x, y, z; the array is indexed [z, y, x]
    moved = np.roll(volume, shift=(1, -1, 2), axis=(0, 1, 2))
    found = search_poses(HartleySlicer(torch.from_numpy(moved.copy())), batch.images_ht, batch.ctf, SETTINGS)
    true = table.shifts_px_of(np.arange(N))
    fitted = global_translation(found.shifts_px[:, 0].double().numpy(), true, table.rotations)
    assert np.abs(fitted - move).max() < 0.3, fitted
    residual = found.shifts_px[:, 0].double().numpy() - (table.rotations @ fitted)[:, :2] - true
    assert np.median(np.linalg.norm(residual, axis=1)) < 0.5


def test_the_final_candidates_are_distinct_and_ordered(searched):
    _, found, several = searched
    assert several.rotations.shape == (6, 4, 3, 3) and several.shifts_px.shape == (6, 4, 2)
    assert bool((several.error[:, 1:] >= several.error[:, :-1]).all())
    assert all(len(set(row.tolist())) == 4 for row in several.grid_index)
    assert torch.equal(several.grid_index[:, 0], found.grid_index[:6, 0])  # the best is the same
