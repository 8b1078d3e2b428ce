"""CTF tests against torch-ctf (teamtomo) and analytic cases.

Mapping to torch-ctf's ``calculate_ctf_2d`` (v0.6):
- sign: torch-ctf returns -sin(χ) with χ = γ - arctan(w/√(1-w²)) (γ as in cryoscape.imaging.ctf),
  and ours (RELION's sign) is w cos γ - √(1-w²) sin γ = -sin(χ): torch-ctf = ours (+w at k = 0);
- defocus = (dfU + dfV)/2 and astigmatism = (dfU - dfV)/2, both in µm; its astigmatism angle is the
  same as ours (measured from +kx towards +ky, degrees), no transposition needed;
- wavelength: torch-ctf uses CODATA constants (h, m_e, c, e), RELION/cryoDRGN use
  12.2643247/√(V(1 + 0.978466e-6 V)); the two differ by 6.4e-6 relative (~6e-4 in the CTF at high
  frequency), so torch-ctf is given the voltage at which its wavelength equals ours;
- torch-ctf computes in float32, so agreement is ~1e-5 where |γ| is moderate and ~1e-4 at high
  frequency (float32 rounding of phases up to ~100 rad): 1e-5 is asserted for |k| <= 0.15 cycles/px
  (max 7e-6), 1e-4 on the whole grid (max 6e-5);
- torch-ctf normalises the frequency direction with |k| + float32-eps (in 1/Å), which biases its
  astigmatic defocus by about 2·(dfU - dfV)/2·eps/|k|² and its CTF by ~π λ (dfU - dfV) eps ≈ 1.5e-5
  per 1,000 Å of astigmatism at every frequency; the parameters below keep astigmatism at 200-600 Å
  (typical values), where that bias is below 1e-5;
- torch-ctf has no B-factor envelope: that is checked analytically.
"""

import math

import numpy as np
import pytest
import scipy.constants as C
import torch
from scipy.optimize import brentq

from cryoscape.errors import InputError
from cryoscape.imaging import ctf as ctf_mod
from cryoscape.imaging.grids import frequency_grid_2d

torch_ctf = pytest.importorskip("torch_ctf")

PARAMS = dict(
    defocus_u_A=torch.tensor([12000.0, 9000.0, 20000.0]),
    defocus_v_A=torch.tensor([11400.0, 8500.0, 19600.0]),
    astig_angle_deg=torch.tensor([30.0, -70.0, 100.0]),
    voltage_kV=torch.tensor([300.0, 200.0, 300.0]),
    cs_mm=torch.tensor([2.7, 2.0, 0.01]),
    amplitude_contrast=torch.tensor([0.1, 0.07, 0.2]),
    phase_shift_deg=torch.tensor([0.0, 40.0, 90.0]),
    bfactor_A2=torch.tensor([0.0, 0.0, 0.0]),
)
APIX = torch.tensor([1.2, 1.5, 2.0], dtype=torch.float64)


def _codata_voltage_kV(kV: float) -> float:
    """Voltage at which the CODATA wavelength (torch-ctf) equals the RELION wavelength at kV."""
    target = ctf_mod.electron_wavelength_A(torch.tensor(kV, dtype=torch.float64)).item()

    def codata(v):
        eV = C.e * v * 1e3
        return C.h * C.c / math.sqrt(eV * (2 * C.m_e * C.c**2 + eV)) * 1e10 - target

    return brentq(codata, kV * 0.99, kV * 1.01, xtol=1e-12)


def _torch_ctf(i, D, voltage_kV=None, angle_sign=1.0):
    p = {k: v[i].item() for k, v in PARAMS.items()}
    return torch_ctf.calculate_ctf_2d(
        defocus=(p["defocus_u_A"] + p["defocus_v_A"]) / 2e4,
        astigmatism=(p["defocus_u_A"] - p["defocus_v_A"]) / 2e4,
        astigmatism_angle=angle_sign * p["astig_angle_deg"],
        voltage=_codata_voltage_kV(p["voltage_kV"]) if voltage_kV is None else voltage_kV,
        spherical_aberration=p["cs_mm"],
        amplitude_contrast=p["amplitude_contrast"],
        phase_shift=p["phase_shift_deg"],
        pixel_size=APIX[i].item(),
        image_shape=(D, D),
        rfft=False,
        fftshift=True,
    ).double()


def test_wavelength_at_300kV():
    lam = ctf_mod.electron_wavelength_A(torch.tensor(300.0, dtype=torch.float64)).item()
    assert lam == pytest.approx(0.0196876, abs=1e-7)


def test_ctf_matches_torch_ctf():
    D = 128
    ours = ctf_mod.CTF.of(**PARAMS).images(D, APIX, dtype=torch.float64)
    r = torch.linalg.vector_norm(frequency_grid_2d(D, dtype=torch.float64), dim=-1)
    for i in range(3):
        dev = (ours[i] - _torch_ctf(i, D)).abs()  # torch-ctf = ours
        assert dev[r <= 0.15].max() < 1e-5, dev[r <= 0.15].max()  # |γ| up to ~20 rad
        assert dev.max() < 1e-4, dev.max()
        # a flipped astigmatism angle (or the other sign convention) is clearly different
        assert (ours[i] + _torch_ctf(i, D)).abs().max() > 1.0
        if PARAMS["defocus_u_A"][i] != PARAMS["defocus_v_A"][i]:
            assert (ours[i] - _torch_ctf(i, D, angle_sign=-1.0)).abs().max() > 0.5


def test_ctf_at_shapes_sign_and_bfactor():
    freqs = frequency_grid_2d(32, dtype=torch.float64) / 1.5
    common = {k: v for k, v in PARAMS.items() if k != "bfactor_A2"}
    c = ctf_mod.CTF.of(**common).at(freqs)
    assert c.shape == (3, 32, 32) and c.dtype == torch.float64
    w, phi = PARAMS["amplitude_contrast"].double(), torch.deg2rad(PARAMS["phase_shift_deg"].double())
    np.testing.assert_allclose(c[:, 16, 16], w * torch.cos(-phi) - torch.sqrt(1 - w**2) * torch.sin(-phi))
    assert c[0, 16, 16] == pytest.approx(0.1)  # RELION's sign: positive at low frequency
    with_b = ctf_mod.CTF.of(**common, bfactor_A2=torch.tensor([100.0, 0.0, 50.0]))
    cb = with_b.at(freqs)
    s2 = (freqs**2).sum(-1)
    np.testing.assert_allclose(cb[0], c[0] * torch.exp(-100 * s2 / 4), atol=1e-14)
    np.testing.assert_allclose(cb[1], c[1], atol=1e-14)
    np.testing.assert_allclose(with_b.images(32, 1.5, dtype=torch.float64), cb, atol=1e-12)
    # a 1D radial profile matches the closed-form γ for the round (non-astigmatic) case
    k = torch.tensor([[0.1, 0.0]], dtype=torch.float64)
    lam = 12.2643247 / math.sqrt(300e3 * (1 + 0.978466e-6 * 300e3))
    gamma = 2 * math.pi * (-0.5 * 15000 * lam * 0.01 + 0.25 * 2.7e7 * lam**3 * 1e-4)
    val = ctf_mod.CTF.of(15000.0, 15000.0, 0.0, 300.0, 2.7, 0.1).at(k)
    assert val.item() == pytest.approx(0.1 * math.cos(gamma) - math.sqrt(0.99) * math.sin(gamma), abs=1e-12)


def test_ctf_batch_equals_loop_of_single_images():
    ctf = ctf_mod.CTF.of(**PARAMS)
    batch = ctf.images(24, APIX)
    for i in range(3):
        single = ctf_mod.CTF.of(**{k: v[i] for k, v in PARAMS.items()}).images(24, APIX[i])
        assert len(single) == 1
        torch.testing.assert_close(batch[i], single[0], rtol=0, atol=0)


def test_phase_flip_and_validation():
    ctf = ctf_mod.CTF.of(**PARAMS).images(16, torch.ones(3))
    images = torch.randn(3, 16, 16, dtype=torch.complex64)
    flipped = ctf_mod.phase_flip(images, ctf)
    np.testing.assert_allclose(flipped.numpy(), (images * torch.sign(ctf)).numpy())
    assert ((ctf_mod.phase_flip(torch.ones(3, 16, 16), ctf) * ctf) >= 0).all()
    with pytest.raises(TypeError):
        ctf_mod.CTF.of(**{k: v for k, v in PARAMS.items() if k not in ("defocus_v_A",)})
    with pytest.raises(InputError):
        ctf_mod.CTF.of(**{**PARAMS, "amplitude_contrast": torch.full((3,), 1.0)})
    with pytest.raises(InputError):
        ctf_mod.CTF.of(1.0, 1.0).at(torch.zeros(4, 3))
    with pytest.raises(InputError):
        ctf_mod.CTF.of(torch.ones(2), torch.ones(3))
