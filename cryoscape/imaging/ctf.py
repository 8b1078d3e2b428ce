"""Contrast transfer function (the RELION/cryoDRGN formula) as a typed object, and phase flipping.

One sign, RELION's: ctf(k) = w cos γ − sqrt(1 − w²) sin γ  [· exp(−B s²/4)], positive (+w) at
k = 0, so that a positive density (a white particle in RELION's contrast) gives positive pixel
values at low frequency. cryoDRGN's CTF is the negative of this (which is why cryoDRGN inverts
RELION data by default); torch-ctf's equals it.
γ = 2π(-½ Δf(α) λ s² + ¼ Cs λ³ s⁴) - φ₀,
Δf(α) = ½(dfU + dfV + (dfU - dfV) cos(2(α - α_ast))),  α = atan2(ky, kx),  s² = kx² + ky² (1/Å²),
λ(Å) = 12.2643247 / sqrt(V (1 + 0.978466e-6 V)), V in volts.
Units: defocus Å (positive = underfocus), astigmatism angle degrees (from the +x axis towards +y),
voltage kV, Cs mm, amplitude contrast w a fraction, phase shift φ₀ degrees, B-factor Å².
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
from jaxtyping import Float, Shaped
from torch import Tensor

from cryoscape.errors import InputError
from cryoscape.imaging._checks import check_box_size
from cryoscape.imaging.grids import frequency_grid_2d


def electron_wavelength_A(voltage_kV: torch.Tensor) -> torch.Tensor:
    """Relativistic electron wavelength in Å for an accelerating voltage in kV."""
    V = voltage_kV * 1e3
    return 12.2643247 / torch.sqrt(V * (1 + 0.978466e-6 * V))


def _as_batch(name: str, value, device) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64, device=device)
    if t.ndim > 1:
        raise InputError(f"CTF parameter {name} must be a scalar or a (B,) tensor, got {tuple(t.shape)}")
    return t.reshape(-1)


def _ctf(s2: torch.Tensor, cos2a: torch.Tensor, sin2a: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """CTF from s² (1/Å²) and cos/sin of twice the frequency angle, with parameters broadcastable
    against them.

    Written for speed on (B, D, D) grids with one transcendental per point: cos(2(α − φ)) is expanded
    into per-pixel and per-particle factors, and w cos γ − √(1−w²) sin γ = −sin(γ − arcsin w).
    """
    lam = electron_wavelength_A(p["voltage_kV"])
    ang = 2 * torch.deg2rad(p["astig_angle_deg"])
    astig = p["defocus_u_A"] - p["defocus_v_A"]
    defocus = 0.5 * (
        p["defocus_u_A"] + p["defocus_v_A"] + (astig * torch.cos(ang)) * cos2a + (astig * torch.sin(ang)) * sin2a
    )
    cs = p["cs_mm"] * 1e7
    gamma = 2 * math.pi * (-0.5 * defocus * lam * s2 + 0.25 * cs * lam**3 * s2**2)
    gamma = gamma - (torch.deg2rad(p["phase_shift_deg"]) + torch.asin(p["amplitude_contrast"]))
    ctf = -torch.sin(gamma)
    bfactor = p["bfactor_A2"]
    if bool((bfactor != 0).any()):
        ctf = ctf * torch.exp(-bfactor * s2 / 4)
    return ctf


def _double_angle(kx: torch.Tensor, ky: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos 2α and sin 2α of the frequency direction α = atan2(ky, kx) (1 and 0 at the origin)."""
    r2 = kx**2 + ky**2
    safe = torch.where(r2 > 0, r2, torch.ones_like(r2))
    return torch.where(r2 > 0, (kx**2 - ky**2) / safe, 1.0), 2 * kx * ky / safe


@dataclass(frozen=True)
class CTF:
    """CTF parameters of B images, each a (B,) float64 tensor (build with :meth:`of`).

    Units: defocus in Å (positive = underfocus), astigmatism angle in degrees (from +kx towards
    +ky), voltage in kV, spherical aberration in mm, amplitude contrast a fraction in [0, 1), phase
    shift in degrees, B-factor in Å² (0 = no envelope). Values are RELION-sign (see module docstring).
    """

    defocus_u_A: Float[Tensor, " B"]
    defocus_v_A: Float[Tensor, " B"]
    astig_angle_deg: Float[Tensor, " B"]
    voltage_kV: Float[Tensor, " B"]
    cs_mm: Float[Tensor, " B"]
    amplitude_contrast: Float[Tensor, " B"]
    phase_shift_deg: Float[Tensor, " B"]
    bfactor_A2: Float[Tensor, " B"]

    @classmethod
    def of(
        cls,
        defocus_u_A,
        defocus_v_A,
        astig_angle_deg=0.0,
        voltage_kV=300.0,
        cs_mm=2.7,
        amplitude_contrast=0.1,
        phase_shift_deg=0.0,
        bfactor_A2=0.0,
        device=None,
    ) -> CTF:
        """Validated parameters: each a scalar (shared) or a (B,) tensor/array; scalars broadcast to B."""
        values = dict(
            defocus_u_A=defocus_u_A,
            defocus_v_A=defocus_v_A,
            astig_angle_deg=astig_angle_deg,
            voltage_kV=voltage_kV,
            cs_mm=cs_mm,
            amplitude_contrast=amplitude_contrast,
            phase_shift_deg=phase_shift_deg,
            bfactor_A2=0.0 if bfactor_A2 is None else bfactor_A2,
        )
        params = {k: _as_batch(k, v, device) for k, v in values.items()}
        sizes = {len(v) for v in params.values()} - {1}
        if len(sizes) > 1:
            raise InputError(f"CTF parameters have inconsistent lengths {sorted(sizes)}")
        w = params["amplitude_contrast"]
        if bool(((w < 0) | (w >= 1)).any()):
            raise InputError("amplitude_contrast must be in [0, 1)")
        if bool((params["voltage_kV"] <= 0).any()):
            raise InputError("voltage_kV must be positive")
        B = max(sizes, default=1)
        return cls(**{k: v.expand(B).contiguous() for k, v in params.items()})

    def __len__(self) -> int:
        return len(self.defocus_u_A)

    def _params(self, extra_dims: int) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name).reshape((-1,) + (1,) * extra_dims) for f in fields(self)}

    def at(self, freqs_A: Float[Tensor, "... 2"]) -> Float[Tensor, "B ..."]:
        """CTF (B, ...) at frequencies ``freqs_A`` (..., 2) = (kx, ky) in 1/Å, computed in float64 and
        returned in the dtype of ``freqs_A``."""
        if not isinstance(freqs_A, torch.Tensor) or freqs_A.ndim < 1 or freqs_A.shape[-1] != 2:
            shape = tuple(freqs_A.shape) if hasattr(freqs_A, "shape") else type(freqs_A).__name__
            raise InputError(f"freqs_A must be a (..., 2) tensor of (kx, ky) in 1/Å, got {shape}")
        f = freqs_A.to(torch.float64)
        cos2a, sin2a = _double_angle(f[..., 0], f[..., 1])
        params = {k: v.to(f.device) for k, v in self._params(freqs_A.ndim - 1).items()}
        return _ctf((f**2).sum(-1), cos2a, sin2a, params).to(freqs_A.dtype)

    def images(self, D: int, apix_A, dtype=torch.float32) -> Float[Tensor, "B D D"]:
        """(B, D, D) CTFs on the centred D×D Fourier grid of images with pixel sizes ``apix_A`` (B,) or
        a scalar, in Å."""
        D = check_box_size(D)
        device = self.defocus_u_A.device
        apix = _as_batch("apix", apix_A, device)
        if bool((apix <= 0).any()):
            raise InputError("apix must be positive")
        k = frequency_grid_2d(D, device=device, dtype=torch.float64)
        s2 = (k**2).sum(-1) / apix[:, None, None] ** 2
        cos2a, sin2a = _double_angle(k[..., 0], k[..., 1])
        return _ctf(s2, cos2a, sin2a, self._params(2)).to(dtype)


def phase_flip(images_ft: Shaped[Tensor, "B D D"], ctf: Float[Tensor, "B D D"]) -> Shaped[Tensor, "B D D"]:
    """Multiply (B, D, D) transforms by sign(ctf) (0 where the CTF is exactly 0)."""
    if images_ft.shape[-2:] != ctf.shape[-2:]:
        raise InputError(f"images {tuple(images_ft.shape)} and ctf {tuple(ctf.shape)} do not match")
    return images_ft * torch.sign(ctf).to(images_ft.real.dtype if images_ft.is_complex() else images_ft.dtype)
