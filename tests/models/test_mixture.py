"""The mixture of neural fields: a Gaussian likelihood summed over pixels with the noise estimated
from the data, balanced warm-up responsibilities, and the pruning and merging rules."""

import logging

import numpy as np
import pytest
import torch

from cryoscape.imaging.grids import fourier_disk_mask
from cryoscape.models.contract import ImageBatch
from cryoscape.models.mixture import MixtureSettings
from cryoscape.models.mixture_classes import balanced_responsibilities, prune_and_merge

D = 16


def _model(**changes):
    torch.manual_seed(0)
    settings = MixtureSettings(classes=3, width=32, depth=1, encoding="geom_lowf", anneal_epochs=1, **changes)
    return settings.build(D, seed=0)


def _batch(images, rotations, ctf=None):
    return ImageBatch(index=torch.arange(len(images)), images_ht=images, ctf=ctf, rotations=rotations)


def _rotations(n, seed=0):
    q = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed))
    q = q / q.norm(dim=1, keepdim=True)
    w, x, y, z = q.unbind(1)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    return torch.stack([torch.stack(r, -1) for r in rows], 1)


def test_log_likelihood_is_a_gaussian_summed_over_pixels_with_the_given_noise():
    model = _model().eval()
    sigma = 0.3
    model.noise_var.fill_(sigma**2)
    rotations = _rotations(32)
    ctf = 0.5 + torch.rand(32, D, D, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        clean = model.heads[1].slices(rotations) * ctf
    noise = sigma * torch.randn(32, D, D, generator=torch.Generator().manual_seed(2))
    mask = fourier_disk_mask(D)
    ll, sq, data, _ = model.log_likelihoods(_batch(clean + noise, rotations, ctf), mask, None)
    P = int(mask.sum())
    assert ll.shape == (32, 4) and data.shape == (32, P)
    # class 1 made the images: its log-likelihood is −Σ noise² / 2σ² exactly, about −P/2 per image
    expected = -(noise[:, mask] ** 2).sum(1) / (2 * sigma**2)
    assert torch.allclose(ll[:, 1], expected, rtol=1e-4)
    assert abs(ll[:, 1].mean().item() + P / 2) < 3 * (P / 2) ** 0.5
    assert torch.allclose(ll[:, 3], -(data**2).sum(1) / (2 * sigma**2), rtol=1e-4)  # junk: the zero map
    posterior = torch.softmax(model.posterior_logits(ll), dim=1)
    assert (posterior.argmax(1) == 1).all()


def test_noise_variance_is_estimated_from_the_residuals():
    model = _model().train()
    model.epochs_done.fill_(1)  # past the warm-up: exact posteriors, junk included
    sigma, mask = 0.7, fourier_disk_mask(D)
    generator = torch.Generator().manual_seed(3)
    for step in range(60):
        images = sigma * torch.randn(16, D, D, generator=generator)
        model(_batch(images, _rotations(16, step)), mask)
    # the untrained heads are near 0, so every component's residual is the noise itself
    estimate = model.noise_var[1 : D // 2].numpy()
    assert np.allclose(estimate, sigma**2, rtol=0.15), estimate


def test_balanced_responsibilities_share_the_batch_equally():
    logits = torch.tensor([[0.0, -5.0, -9.0, 3.0]] * 6 + [[-1.0, 0.0, -2.0, 0.0]] * 6)
    logits[:, 2] = -torch.inf  # a removed class
    q = balanced_responsibilities(logits)
    assert torch.allclose(q.sum(1), torch.ones(12), atol=1e-5)
    assert (q[:, 2] == 0).all() and (q[:, 3] == 0).all()
    assert torch.allclose(q[:, :2].sum(0), torch.tensor([6.0, 6.0]), atol=0.01)
    # class 0 fits every image best, yet the balance gives class 1 the images it fits relatively best
    assert (q[6:, 1] > 0.9).all() and (q[:6, 0] > 0.9).all()


def test_an_empty_class_is_pruned_and_duplicates_are_merged(caplog):
    model = _model()
    model.heads[2].load_state_dict(model.heads[0].state_dict())  # class 2 duplicates class 0
    n = 100
    prob = np.zeros((n, 4))
    prob[:60, 0], prob[60:90, 2], prob[:, 3] = 0.9, 0.9, 0.1
    prob[90:, 0], prob[90:, 1] = 0.899, 0.001  # class 1 holds (almost) nothing
    evidence = np.full((n, 3), 100.0)
    with caplog.at_level(logging.INFO, logger="cryoscape"):
        assert np.array_equal(prune_and_merge(model, 1, prob, evidence, None), prob)  # still warming up
        after = prune_and_merge(model, 2, prob, evidence, None)
    assert model.kept_classes() == [0]
    assert np.allclose(after.sum(1), 1.0) and (after[:, 1:3] == 0).all()
    assert np.allclose(after[:, 0], 0.9, atol=1e-3)  # class 2's particles joined class 0
    assert "pruned class 1: proportion 0.0001 < 0.0200 (0 particles assigned)" in caplog.text
    assert "merged class 2 into class 0: FSC of their maps 1.000" in caplog.text
    with pytest.raises(ValueError, match="class 1 was pruned or merged"):
        model.class_model(1)


def test_a_class_that_only_fits_noise_goes_to_junk(caplog):
    model = _model(merge_fsc=1.0)
    prob = np.zeros((90, 4))
    prob[:40, 0] = prob[40:80, 1] = prob[80:, 2] = 1.0
    evidence = np.zeros((90, 3))
    evidence[:40, 0], evidence[40:80, 1], evidence[80:, 2] = 200.0, 120.0, 3.0
    with caplog.at_level(logging.INFO, logger="cryoscape"):
        after = prune_and_merge(model, 2, prob, evidence, None)
    assert model.kept_classes() == [0, 1] and (after[80:, 3] == 1).all()
    assert "pruned class 2 as junk-like" in caplog.text
