import math
import time

import gemmi
import numpy as np
import pytest
import torch

from cryoscape.errors import InputError
from cryoscape.imaging.atoms import atoms_to_volume, default_bfactor_A2, project_atoms, scattering_coefficients
from cryoscape.imaging.fft import fft3_center
from cryoscape.imaging.grids import frequency_grid_3d


def test_coefficients_come_from_gemmi():
    a, b = scattering_coefficients(["C", "o", "S"])
    assert a.shape == (3, 5)
    np.testing.assert_allclose(a[1], gemmi.Element("O").c4322.a)
    np.testing.assert_allclose(b[2], gemmi.Element("S").c4322.b)
    with pytest.raises(InputError):
        scattering_coefficients(["Xx"])


def test_single_atom_transform_is_the_scattering_factor():
    # The 3D FT of the map of one atom at the origin is f(s)·exp(-B s²/4), f(s) = Σ a_i exp(-b_i s²/4)
    D, apix, B = 32, 1.0, 150.0  # σ ≥ 1.4 px: aliasing below 1e-4
    vol = atoms_to_volume(np.zeros((1, 3)), ["N"], D, apix, bfactor_A2=B).double()
    F = fft3_center(vol)
    s2 = (frequency_grid_3d(D, dtype=torch.float64) ** 2).sum(-1) / apix**2
    coef = gemmi.Element("N").c4322
    f = sum(ai * torch.exp(-(bi + B) * s2 / 4) for ai, bi in zip(coef.a, coef.b))
    np.testing.assert_allclose(F.real.numpy(), f.numpy(), atol=2e-4 * sum(coef.a))
    assert np.abs(F.imag.numpy()).max() < 1e-6 * sum(coef.a)
    # the peak value is Σ a_i (4π/(b_i+B))^{3/2} apix³
    peak = sum(ai * (4 * math.pi / (bi + B)) ** 1.5 for ai, bi in zip(coef.a, coef.b))
    assert vol[16, 16, 16].item() == pytest.approx(peak, rel=1e-6)


def test_scale_and_geometry(adk_atoms):
    coords, elements = adk_atoms
    a, _ = scattering_coefficients(elements)
    vol = atoms_to_volume(coords, elements, 64, 2.0)
    assert vol.shape == (64, 64, 64) and vol.dtype == torch.float32
    assert vol.sum().item() == pytest.approx(a.sum(), rel=1e-4)  # Σ f(0)
    # default centre: the mean of the coordinates sits at voxel D//2
    zz, yy, xx = torch.meshgrid(*(torch.arange(64.0) - 32,) * 3, indexing="ij")
    com = torch.stack([(vol * xx).sum(), (vol * yy).sum(), (vol * zz).sum()]) / vol.sum()
    weighted_centre = (a.sum(1)[:, None] * (coords - coords.mean(0))).sum(0) / a.sum() / 2.0
    np.testing.assert_allclose(com.numpy(), weighted_centre, atol=0.02)
    proj = project_atoms(coords, elements, torch.eye(3)[None], 64, 2.0)
    assert proj.sum().item() == pytest.approx(a.sum(), rel=1e-4)
    np.testing.assert_allclose(proj[0].numpy(), vol.sum(0).numpy(), atol=2e-3 * float(proj.max()))
    # the x axis of the image is the x axis of the map (not transposed)
    assert np.abs(proj[0].numpy() - vol.sum(0).T.numpy()).max() > 0.1 * float(proj.max())
    assert default_bfactor_A2(2.0) == pytest.approx(8 * math.pi**2 * 4)


def test_atoms_to_volume_speed(adk_atoms):
    coords, elements = adk_atoms
    t = time.perf_counter()
    atoms_to_volume(coords, elements, 64, 2.0)
    assert time.perf_counter() - t < 4.0  # ~0.7 s on an idle 2-core machine


def test_atoms_validation():
    with pytest.raises(InputError):
        atoms_to_volume(np.zeros((2, 2)), ["C", "C"], 16, 1.0)
    with pytest.raises(InputError):
        atoms_to_volume(np.zeros((2, 3)), ["C"], 16, 1.0)
    with pytest.raises(InputError):
        project_atoms(np.zeros((1, 3)), ["C"], torch.eye(3), 16, 1.0)
