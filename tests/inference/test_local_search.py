"""With the exact model and noise-free images, global search finds every image's pose within the
final grid spacing, and local refinement then goes well below it (rotations and shifts, in the
particle table's convention); refinement never raises an image's error."""

import dataclasses

import numpy as np
import pytest
import torch

from cryoscape.analysis.pose_accuracy import pose_accuracy
from cryoscape.cli.main import main
from cryoscape.data.images import ImageSource
from cryoscape.data.particle_io import load_particles
from cryoscape.imaging.hartley_slicer import HartleySlicer
from cryoscape.inference.batches import make_batch
from cryoscape.inference.local_search import refine_poses_locally
from cryoscape.inference.pose_search import SearchSettings, search_poses
from cryoscape.io.mrc import read_map

N = 16
SETTINGS = SearchSettings(base_level=1, levels=3, max_shift_px=4, n_shifts=9, l_start=8, l_end=15, block=512)


@pytest.fixture(scope="module")
def exact(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    args = ["simulate", "adk_open", "-o", str(out), "-n", str(N), "--box", "32", "--apix", "3"]
    assert main([*args, "--max-shift", "3", "--seed", "5", "-q"]) == 0
    table = load_particles(out / "particles.star")
    volume, _, _ = read_map(out / "gt/00_adk_open.mrc")
    unposed = dataclasses.replace(table, shifts_A=None, rotations=None)
    index = np.arange(N)
    batch = make_batch(torch.from_numpy(ImageSource.from_table(unposed).get(index)), unposed, index, scale=1.0)
    render = HartleySlicer(torch.from_numpy(volume.copy()))
    found = search_poses(render, batch.images_ht, batch.ctf, SETTINGS)
    rotations, shifts = found.rotations[:, 0].double(), found.shifts_px[:, 0].double()
    refined = refine_poses_locally(render, batch.images_ht, batch.ctf, rotations, shifts, 15, 2.0, 0.25, rounds=8)
    return table, found, refined


def test_global_search_is_within_the_final_grid_spacing(exact):
    table, found, _ = exact
    spacing = 60.0 / 2 ** (SETTINGS.base_level + SETTINGS.levels)  # 3.75°
    errors = pose_accuracy(found.rotations[:, 0].double().numpy(), table.rotations)
    assert not errors.mirrored and errors.errors_deg.max() < spacing, errors.errors_deg


def test_local_refinement_goes_below_the_grid(exact):
    table, found, (rotations, shifts, error) = exact
    errors = pose_accuracy(rotations.numpy(), table.rotations)
    assert np.allclose(errors.rotation, np.eye(3), atol=0.02)  # the true map: no global turn
    assert np.median(errors.errors_deg) < 0.6 and errors.errors_deg.max() < 1.5, errors.errors_deg
    true_shifts = table.shifts_px_of(np.arange(N))
    assert np.abs(shifts.numpy() - true_shifts).max() < 0.2
    assert np.abs(shifts.numpy() + true_shifts).max() > 1.0  # the opposite sign would be far off


def test_refinement_never_raises_the_error(exact):
    _, found, (_, _, error) = exact
    # the search's last level scored at band 15 too: refinement can only lower each image's error
    assert bool((error <= found.error[:, 0] + 1e-3 * found.error[:, 0].abs()).all())
