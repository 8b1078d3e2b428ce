"""Search by cluster: each particle is searched against its own cluster's map. With the exact maps
of two conformations (adk closed and open) and noise-free images, the poses come out well below the
grid spacing, and the right cluster's map explains each image better than the other's (so a search
that ignored or swapped the labels would fail). The current poses compete: random ones lose to the
search, the true ones hold."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from cryoscape.analysis.pose_accuracy import pose_accuracy
from cryoscape.cli.main import main
from cryoscape.data.images import ImageSource
from cryoscape.data.particle_io import load_particles
from cryoscape.errors import InputError
from cryoscape.inference.cluster_search import search_by_cluster
from cryoscape.inference.pose_search import SearchSettings
from cryoscape.io.mrc import read_map

N = 24
SETTINGS = SearchSettings(base_level=1, levels=3, max_shift_px=3, n_shifts=7, l_start=8, l_end=15)


@pytest.fixture(scope="module")
def two_states(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    args = ["simulate", "adk_closed", "adk_open", "-o", str(out), "-n", str(N), "--box", "32", "--apix", "3"]
    assert main([*args, "--max-shift", "2", "--seed", "3", "-q"]) == 0
    table = load_particles(out / "particles.star")
    maps = [read_map(out / f"gt/{name}.mrc")[0].copy() for name in ("00_adk_closed", "01_adk_open")]
    labels = np.load(out / "labels.npz")["component"].astype(np.int64)
    return table, ImageSource.from_table(table, lazy=False), maps, labels


def test_poses_against_the_right_cluster_map(two_states):
    table, source, maps, labels = two_states
    assert 0 < labels.sum() < N  # both states present
    random = (Rotation.random(N, random_state=0).as_matrix(), np.zeros((N, 2)))
    rotations, shifts, right, searched = search_by_cluster(source, table, maps, labels, SETTINGS, random,
                                                           progress=False)  # fmt: skip
    errors = pose_accuracy(rotations, table.rotations)
    assert not errors.mirrored and np.median(errors.errors_deg) < 1.0, errors.errors_deg
    assert np.abs(shifts - table.shifts_px_of(np.arange(N))).max() < 0.3
    assert searched.mean() > 0.9  # random poses lose
    _, _, swapped, _ = search_by_cluster(source, table, maps, 1 - labels, SETTINGS, random, progress=False)
    assert np.mean(right < swapped) > 0.9, (right, swapped)


def test_the_current_pose_holds_when_it_is_right(two_states):
    table, source, maps, labels = two_states
    true = (table.rotations, table.shifts_px_of(np.arange(N)))
    rotations, _, _, searched = search_by_cluster(source, table, maps, labels, SETTINGS, true, progress=False)
    errors = pose_accuracy(rotations, table.rotations)
    assert np.median(errors.errors_deg) < 0.6, errors.errors_deg


def test_labels_must_name_a_map(two_states):
    table, source, maps, labels = two_states
    with pytest.raises(InputError, match="cluster labels"):
        search_by_cluster(source, table, maps, labels + 1, SETTINGS, (table.rotations, np.zeros((N, 2))))
