"""Analytic bead slices against independent renderings: a numpy real-space projection, and the
sampled bead map through the existing slicing and forward model (with the CTF)."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from cryoscape.imaging.ctf import CTF
from cryoscape.imaging.fft import ht2_center
from cryoscape.imaging.forward import prepare_volume, render_images, transfer
from cryoscape.imaging.gaussians import bead_slices, bead_volume

D = 32


def _beads(M=12, seed=0):
    rng = np.random.default_rng(seed)
    centers = torch.tensor(rng.uniform(-7, 7, (M, 3)), dtype=torch.float64)
    masses = torch.tensor(rng.uniform(0.5, 2.0, M), dtype=torch.float64)
    sigmas = torch.tensor(rng.uniform(1.5, 2.5, M), dtype=torch.float64)
    return centers, masses, sigmas


def _rotations(n, seed=1):
    return torch.tensor(Rotation.random(n, random_state=seed).as_matrix())


def _numpy_projection(centers, masses, sigmas, R):
    """Σ_z of the continuous bead map at pixel centres, written independently in numpy."""
    q = centers.numpy() @ R.numpy().T  # (M, 3): R p, row vectors
    grid = np.arange(D) - D // 2
    out = np.zeros((D, D))
    for (x, y, _), m, s in zip(q, masses.numpy(), sigmas.numpy()):
        gx = np.exp(-((grid - x) ** 2) / (2 * s**2))
        gy = np.exp(-((grid - y) ** 2) / (2 * s**2))
        out += m / (2 * np.pi * s**2) * gy[:, None] * gx[None, :]
    return out


def test_slices_equal_the_transform_of_a_numpy_projection():
    centers, masses, sigmas = _beads()
    R = _rotations(3)
    slices = bead_slices(centers, masses, sigmas, R, D)
    for b in range(3):
        reference = ht2_center(torch.tensor(_numpy_projection(centers, masses, sigmas, R[b])))
        err = (slices[b] - reference).abs().max() / reference.abs().max()
        assert err < 2e-3, err


def test_transposed_rotations_do_not_match():
    centers, masses, sigmas = _beads()
    R = _rotations(1)
    reference = ht2_center(torch.tensor(_numpy_projection(centers, masses, sigmas, R[0])))
    wrong = bead_slices(centers, masses, sigmas, R.transpose(1, 2), D)[0]
    assert (wrong - reference).abs().max() / reference.abs().max() > 0.1


def test_slices_with_ctf_equal_the_forward_model_of_the_sampled_map():
    centers, masses, sigmas = (x.float() for x in _beads())
    R = _rotations(4).float()
    ctf = CTF.of(torch.tensor([15000.0, 12000, 9000, 20000]), 14000.0, 30.0).images(D, 1.5)
    volume = bead_volume(centers, masses, sigmas, D)
    assert volume.sum().item() == pytest.approx(masses.sum().item(), rel=1e-3)
    images = render_images(prepare_volume(volume), R, ctf=ctf)
    reference = ht2_center(images)
    analytic = transfer(bead_slices(centers, masses, sigmas, R, D), ctf)
    err = (analytic - reference).norm() / reference.norm()
    assert err < 0.02, err


def test_batched_centres_equal_a_loop_and_gradients_flow():
    centers, masses, sigmas = (x.float() for x in _beads())
    R = _rotations(5).float()
    moved = (centers + torch.randn(5, *centers.shape) * 0.5).requires_grad_(True)
    batch = bead_slices(moved, masses, sigmas, R, D)
    for b in range(5):
        one = bead_slices(moved[b], masses, sigmas, R[b : b + 1], D)[0]
        torch.testing.assert_close(batch[b], one, rtol=1e-4, atol=1e-4)
    batch.square().sum().backward()
    assert moved.grad is not None and moved.grad.abs().sum() > 0


def test_bead_volume_is_centred_at_the_bead():
    one = bead_volume(torch.tensor([[3.0, -2.0, 1.0]]), torch.tensor([1.0]), torch.tensor([1.5]), D)
    z, y, x = np.unravel_index(int(one.argmax()), one.shape)
    assert (x - D // 2, y - D // 2, z - D // 2) == (3, -2, 1)


def test_bead_volume_in_chunks_equals_one_pass(monkeypatch):
    """Beads evaluated a few at a time (bounded memory, e.g. one wide bead among many) give the same map
    and gradients."""
    import cryoscape.imaging.gaussians as gaussians

    g = torch.Generator().manual_seed(4)
    centers = (torch.rand(40, 3, generator=g) * 16 - 8).requires_grad_(True)
    masses, sigmas = torch.rand(40, generator=g) + 0.5, torch.rand(40, generator=g) + 0.8
    sigmas[3] = 30.0  # wider than the box: the cube is capped at the box
    whole = bead_volume(centers, masses, sigmas, 24)
    (grad_whole,) = torch.autograd.grad(whole.square().sum(), centers)
    monkeypatch.setattr(gaussians, "_CUBE_VOXELS", 3 * 25**3)  # three beads per chunk
    chunked = bead_volume(centers, masses, sigmas, 24)
    (grad_chunked,) = torch.autograd.grad(chunked.square().sum(), centers)
    assert torch.allclose(whole, chunked, atol=1e-6) and torch.allclose(grad_whole, grad_chunked, atol=1e-5)
