"""Backprojection under a point group inserts each image at its equivalent poses R·g: from a few
images of a C4-symmetric particle the map is C4-symmetric and closer to the truth than without."""

import numpy as np
import torch

from cryoscape.imaging.forward import adjoint_images, prepare_volume, project
from cryoscape.imaging.fsc import fsc
from cryoscape.imaging.rotations import random_rotations
from cryoscape.imaging.symmetry import symmetry_group
from cryoscape.inference.backprojection import FourierAccumulator


def _turn(volume):
    """The map [z, y, x] turned by 90° about z through the centre voxel D//2: (dx, dy) -> (−dy, dx)."""
    D = volume.shape[0]
    y, x = np.meshgrid(np.arange(D), np.arange(D), indexing="ij")
    return volume[:, (2 * (D // 2) - x) % D, y]


def _c4(volume):
    """Average of the map turned by 0, 90, 180 and 270° about z."""
    turns = [volume]
    for _ in range(3):
        turns.append(_turn(turns[-1]))
    return np.mean(turns, axis=0)


def test_symmetric_insertion_gives_a_symmetric_better_map():
    D = 24
    rng = np.random.default_rng(0)
    blobs = np.zeros((D, D, D), np.float32)
    for _ in range(6):
        z, y, x = rng.integers(7, 17, 3)
        blobs[z - 1 : z + 2, y - 1 : y + 2, x - 1 : x + 2] += rng.uniform(0.5, 1.5)
    truth = _c4(blobs).astype(np.float32)
    assert np.allclose(_c4(truth), truth, atol=1e-6)
    rotations = random_rotations(6, generator=torch.Generator().manual_seed(2), dtype=torch.float32)
    images = project(prepare_volume(torch.from_numpy(truth)), rotations)
    maps = {}
    for name, group in (("C1", None), ("C4", torch.from_numpy(symmetry_group("C4")).float())):
        acc = FourierAccumulator(D, group=group)
        acc.add(*adjoint_images(images, None, None), rotations)
        maps[name] = acc.reconstruct()
        assert acc.count == 6
    assert np.corrcoef(maps["C4"].ravel(), _c4(maps["C4"]).ravel())[0, 1] > 0.999
    assert np.corrcoef(maps["C1"].ravel(), _c4(maps["C1"]).ravel())[0, 1] < 0.99
    assert fsc(maps["C4"], truth).auc() > fsc(maps["C1"], truth).auc()
