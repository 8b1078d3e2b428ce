"""The voxel-grid volume model: its slices follow the imaging convention, and train-nn --model voxel
(the same engine and loss as the neural fields) reconstructs within 1.2x of backprojection's
resolution from the same particles and poses."""

import json
import math

import numpy as np
import pytest
import torch

from cryoscape.cli.main import main
from cryoscape.errors import InputError
from cryoscape.imaging.fft import ht2_center, ht3_center, iht3_center
from cryoscape.imaging.forward import trilinear_kernel_ft
from cryoscape.imaging.fsc import fsc
from cryoscape.imaging.grids import spherical_mask
from cryoscape.imaging.rotations import random_rotations
from cryoscape.io.mrc import read_map
from cryoscape.models.voxel_grid import VoxelGrid

BLOBS = (((3, 0, -2), 2.0), ((-4, 3, 1), 1.5), ((0, -4, 4), 1.0))  # centres (x, y, z) px, widths px


def _blobs(D: int) -> torch.Tensor:
    """An asymmetric map of three Gaussian blobs (D, D, D) [z, y, x] within the central half of the box."""
    a = torch.arange(D, dtype=torch.float64) - D // 2
    z, y, x = torch.meshgrid(a, a, a, indexing="ij")
    out = torch.zeros(D, D, D, dtype=torch.float64)
    for (cx, cy, cz), w in BLOBS:
        out += torch.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / (2 * w**2))
    return out.float()


def _analytic_projections(D: int, R: torch.Tensor) -> torch.Tensor:
    """Exact projections (B, D, D) of :func:`_blobs` rotated by R: a blob at c projects to a 2D
    Gaussian of mass sqrt(2π)·w at (R c)_xy."""
    a = torch.arange(D, dtype=torch.float64) - D // 2
    y, x = torch.meshgrid(a, a, indexing="ij")
    out = torch.zeros(len(R), D, D, dtype=torch.float64)
    for c, w in BLOBS:
        centres = R.double() @ torch.tensor(c, dtype=torch.float64)
        for b, (px, py, _) in enumerate(centres.tolist()):
            out[b] += math.sqrt(2 * math.pi) * w * torch.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * w**2))
    return out.float()


@pytest.mark.parametrize("oversample", [1, 2])
def test_slices_are_hartley_transforms_of_projections(oversample):
    D = 24
    volume = _blobs(D)
    model = VoxelGrid(D, oversample=oversample)
    N = oversample * D
    padded = torch.zeros(N, N, N)
    lo = N // 2 - D // 2
    padded[lo : lo + D, lo : lo + D, lo : lo + D] = volume
    kernel = trilinear_kernel_ft(N)
    errors = {}
    for name, grid in (("plain", ht3_center(padded)), ("corrected", ht3_center(padded / kernel))):
        with torch.no_grad():
            model.hartley.copy_(grid)
        R = random_rotations(6, generator=torch.Generator().manual_seed(2))
        projections = ht2_center(_analytic_projections(D, R))
        inside = model.disk
        power = (projections[:, inside] ** 2).mean()
        with torch.no_grad():
            errors[name] = float(((model.slices(R) - projections)[:, inside] ** 2).mean() / power)
        # the transposed rotations (the other convention) are far off
        wrong = ((model.slices(R.transpose(1, 2)) - projections)[:, inside] ** 2).mean() / power
        assert wrong > 10 * errors[name]
    # a grid pre-divided by the trilinear kernel (as the forward model prepares maps) renders the
    # projections more closely, and the map the model reports is then the map itself
    assert errors["corrected"] < 0.5 * errors["plain"], errors
    assert errors["corrected"] < (5e-4 if oversample == 2 else 1e-2), errors
    assert (model.volumes()[0] - volume).abs().max() < 0.03
    # it is the inverse transform within the slices' reach, times the kernel, cropped back to D³
    ball = spherical_mask(N, min(N // 2, oversample * (D // 2 - 1) + 2))
    expected = (iht3_center(model.hartley.detach() * ball) * kernel)[lo : lo + D, lo : lo + D, lo : lo + D]
    torch.testing.assert_close(model.volumes()[0], expected, atol=1e-5, rtol=0)
    with pytest.raises(InputError):
        model.slices(R, torch.zeros(6, 1))


@pytest.fixture(scope="module")
def adk(tmp_path_factory):
    out = tmp_path_factory.mktemp("voxel")
    assert (
        main(
            [
                "simulate",
                "adk_open",
                "-o",
                str(out / "sim"),
                "-n",
                "4000",
                "--box",
                "32",
                "--apix",
                "3.0",
                "--max-shift",
                "2",
                "--snr",
                "0.1",
                "--seed",
                "5",
                "-q",
            ]
        )
        == 0
    )
    return out


def test_train_nn_voxel_reaches_backprojection_resolution(adk):
    star, truth = str(adk / "sim/particles.star"), read_map(adk / "sim/gt/00_adk_open.mrc")[0]
    assert main(["backproject", star, "-o", str(adk / "bp.mrc"), "-q"]) == 0
    reference = fsc(read_map(adk / "bp.mrc")[0], truth, apix=3.0).resolution_A(0.5)
    run = adk / "voxel"
    assert (
        main(["train-nn", star, "-o", str(run), "--model", "voxel", "-n", "4", "-b", "16", "--device", "cpu", "-q"])
        == 0
    )
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "voxel" and config["model"]["oversample"] == 2 and config["training"]["lr_decay"] == 0.5
    assert main(["eval-vol", str(run), "-o", str(adk / "maps"), "-q"]) == 0
    volume, apix, _ = read_map(adk / "maps/vol_000.mrc")
    assert apix == pytest.approx(3.0) and volume.shape == (32, 32, 32)
    ours = fsc(volume, truth, apix=3.0).resolution_A(0.5)
    print(f"voxel {ours:.2f} Å, backprojection {reference:.2f} Å")
    assert ours < 1.2 * reference, (ours, reference)
    assert np.corrcoef(volume.ravel(), truth.ravel())[0, 1] > 0.8
    # latents make no sense for it
    assert main(["eval-vol", str(run), "-z", "0", "-o", str(adk / "bad")]) == 1


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_voxel_training_on_cuda_follows_the_cpu(adk):
    star = str(adk / "sim/particles.star")
    for device in ("cuda", "cpu"):
        run = adk / f"voxel_{device}"
        assert (
            main(
                ["train-nn", star, "-o", str(run), "--model", "voxel", "-n", "2", "-b", "16", "--device", device, "-q"]
            )
            == 0
        )
    gpu, cpu = (float((adk / f"voxel_{d}/log.csv").read_text().splitlines()[-1].split(",")[1]) for d in ("cuda", "cpu"))
    assert gpu == pytest.approx(cpu, rel=1e-3)
