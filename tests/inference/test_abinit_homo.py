"""Homogeneous ab initio on small simulated data: poses within a few degrees of the truth (up to the
global turn and hand no method can know), inverted data detected rather than turned into a negative
map, and a symmetric particle's poses right up to its group."""

from dataclasses import replace

import numpy as np
import pytest

from cryoscape.analysis.pose_accuracy import pose_accuracy
from cryoscape.cli.main import main
from cryoscape.data.images import ImageSource
from cryoscape.data.particle_io import load_particles
from cryoscape.imaging.symmetry import symmetry_group
from cryoscape.inference.abinit_homo import AbinitSettings, abinit_homo
from cryoscape.inference.abinit_stochastic import StochasticSettings
from cryoscape.inference.pose_search import SearchSettings
from cryoscape.io.mrc import read_map, write_map

SMALL = AbinitSettings(
    stage1=StochasticSettings(
        iterations=60, minibatch=100, start=200, l_end=15, search=SearchSettings(base_level=1, levels=2, max_shift_px=3)
    ),
    restarts=2,
    probe=200,
    search=SearchSettings(base_level=2, levels=2, max_shift_px=3, l_end=15),
    refine_rounds=2,
    seed=2,
)


def _simulate(out, source, seed):
    args = ["simulate", str(source), "-o", str(out), "-n", "1000", "--box", "32", "--apix", "3", "--snr", "1"]
    assert main([*args, "--max-shift", "2", "--seed", str(seed), "-q"]) == 0
    return load_particles(out / "particles.star")


def _turn_about_z(volume):
    """The map (D, D, D) [z, y, x] turned by 180° about z through the centre voxel D//2."""
    return np.roll(volume[:, ::-1, ::-1], (1, 1), axis=(1, 2))


@pytest.fixture(scope="module")
def adk(tmp_path_factory):
    out = tmp_path_factory.mktemp("adk")
    table = _simulate(out, "adk_open", 11)
    truth, _, _ = read_map(out / "gt/00_adk_open.mrc")
    return table, truth


def test_poses_and_map_are_found_without_poses(adk):
    table, _ = adk
    result = abinit_homo(ImageSource.from_table(table), table, SMALL, progress=False)
    accuracy = pose_accuracy(result.table.rotations, table.rotations)
    assert accuracy.median_deg < 4.5 and accuracy.fraction_within(10) > 0.9, accuracy.median_deg
    assert not result.inverted and result.reconstruction.volume.max() > -result.reconstruction.volume.min()
    stages = ["stochastic 1", "stochastic 2", "global search", "global search, half maps", "refine", "refine"]
    assert [row["stage"] for row in result.rows] == stages
    assert all(row["median_rotation_change_deg"] < 5 for row in result.rows[3:])


def test_inverted_data_are_detected_not_reconstructed_negative(adk):
    table, _ = adk
    result = abinit_homo(ImageSource.from_table(table, invert=True), table, SMALL, progress=False)
    assert result.inverted
    volume = result.reconstruction.volume
    assert volume.max() > -volume.min()  # positive density, as the molecule
    assert pose_accuracy(result.table.rotations, table.rotations).median_deg < 4.5


def test_a_symmetric_particle_is_right_up_to_its_group(tmp_path, adk):
    _, truth = adk
    symmetric = (truth + _turn_about_z(truth)) / 2
    write_map(tmp_path / "c2.mrc", symmetric.astype(np.float32), 3.0)
    table = _simulate(tmp_path / "sim", tmp_path / "c2.mrc", 12)
    group = symmetry_group("C2")
    result = abinit_homo(ImageSource.from_table(table), table, replace(SMALL, symmetry="C2"), progress=False)
    accuracy = pose_accuracy(result.table.rotations, table.rotations, group=group)
    assert accuracy.median_deg < 4.5, accuracy.median_deg
    assert (
        pose_accuracy(result.table.rotations, table.rotations).median_deg > 20
    )  # without the group: half are 180° off
    volume = result.reconstruction.volume
    assert np.corrcoef(volume.ravel(), _turn_about_z(volume).ravel())[0, 1] > 0.99  # C2 about its own z
