"""A neural field V̂(k, z) in the Fourier domain, rendered as Hartley slices (thesis §2.2–2.4).

The decoder maps the positional encoding of a frequency k (cycles/pixel, |k| ≤ 0.5), concatenated
with a latent z (absent for homogeneous models), to (Re, Im) of the centred 3D Fourier transform.
Hermitian symmetry V̂(−k) = conj V̂(k) is built in: points with k_z > 0 are decoded at −k and
conjugated. Slices are rendered as Hartley images H = Re − Im (the domain images and losses use),
decoding only half of each slice: H(−k) = Re + Im of the decoded k. Slice b samples the field at
R_bᵀ (kx, ky, 0), the convention of :mod:`cryoscape.imaging.slicing`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from cryoscape.errors import InputError
from cryoscape.imaging.fft import ifft3_center
from cryoscape.imaging.grids import centred_lattice
from cryoscape.models.contract import VolumeModel, band_limit_radius, check_max_freq
from cryoscape.models.mlp import ResidualMLP
from cryoscape.models.positional_encoding import KINDS as ENCODINGS
from cryoscape.models.positional_encoding import PositionalEncoding
from cryoscape.models.registry import ModelSettings, register


def half_slice_lattice(
    D: int, device=None, radius_px: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The decoded half of a D×D slice within ``radius_px`` (default D/2 − 1): flat [y, x] indices (M,) of ky > 0 or
    (ky = 0, kx ≥ 0), flat indices of their mirrors −k (M,) (−1 for the origin), and coordinates
    (M, 3) = (kx, ky, 0) in cycles/pixel."""
    flat, xy, mirror = centred_lattice(D, 2, D // 2 - 1 if radius_px is None else radius_px, half=1, device=device)
    mirror = torch.where((xy == 0).all(dim=-1), torch.full_like(mirror, -1), mirror)
    coords = torch.cat([xy, torch.zeros_like(xy[:, :1])], dim=-1).float() / D
    return flat, mirror, coords


class NeuralField(VolumeModel):
    """V̂(k, z): positional encoding + residual MLP -> (Re, Im), Hermitian by construction. As a
    volume model (:mod:`cryoscape.models.contract`): the homogeneous field (zdim 0) of train-nn, and
    the decoder of the VAE."""

    def __init__(
        self,
        D: int,
        zdim: int = 0,
        width: int = 256,
        depth: int = 3,
        encoding: str = "gaussian",
        n_freqs: int | None = None,
        sigma: float = 0.5,
        activation: str = "relu",
        seed: int = 0,
        max_freq: float = 1.0,
    ):
        super().__init__()
        self.radius = band_limit_radius(D, max_freq)  # the field is zero beyond it, in slices and maps
        if zdim < 0:
            raise InputError(f"latent dimension must be >= 0, got {zdim}")
        self.D, self.zdim = D, zdim
        self.encoding = PositionalEncoding(D, encoding, n_freqs, sigma, seed)
        self.mlp = ResidualMLP(self.encoding.out_dim, width, depth, 2, activation, cond_dim=zdim)

    def _check_z(self, z: torch.Tensor | None, batch: int) -> None:
        if self.zdim and (z is None or z.shape != (batch, self.zdim)):
            raise InputError(
                f"this field needs z of shape ({batch}, {self.zdim}), got {None if z is None else tuple(z.shape)}"
            )
        if not self.zdim and z is not None:
            raise InputError("this field is homogeneous (zdim 0) but a latent z was given")

    def fourier(self, coords: Float[Tensor, "B M 3"], z: Float[Tensor, "B Z"] | None = None) -> Tensor:
        """Complex V̂ at ``coords`` (B, M, 3) (cycles/pixel) for latents ``z`` (B, zdim) -> (B, M)."""
        return torch.complex(*self._decode(coords, z))

    def _decode(self, coords: torch.Tensor, z: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(Re V̂, Im V̂) at ``coords`` (B, M, 3), float32 (also under autocast)."""
        self._check_z(z, coords.shape[0])
        flip = coords[..., 2] > 0
        coords = torch.where(flip[..., None], -coords, coords)
        re, im = self.mlp(self.encoding(coords), z).float().unbind(-1)
        return re, torch.where(flip, -im, im)

    def slices(
        self, rotations: Float[Tensor, "B 3 3"], z: Float[Tensor, "B Z"] | None = None, radius_px: int | None = None
    ) -> Float[Tensor, "B D D"]:
        """Hartley slices (B, D, D) on the centred grid at poses ``rotations`` (B, 3, 3); zero beyond
        the band limit (default radius D/2 − 1, cryoDRGN's mask), or beyond ``radius_px`` if smaller
        (only those pixels are evaluated), and on the unpaired Nyquist row and column."""
        D, B = self.D, rotations.shape[0]
        radius = self.radius if radius_px is None else min(self.radius, radius_px)
        flat, mirror, coords = half_slice_lattice(D, rotations.device, radius)
        points = coords.to(rotations.dtype) @ rotations  # row vectors: (Rᵀ k)ᵀ = kᵀ R, (B, M, 3)
        re, im = self._decode(points.float(), z)
        out = torch.zeros(B, D * D, dtype=re.dtype, device=rotations.device)
        out[:, flat] = re - im
        paired = mirror >= 0
        out[:, mirror[paired]] = (re + im)[:, paired]
        return out.reshape(B, D, D)

    @torch.no_grad()
    def volumes(self, z: Float[Tensor, "B Z"] | None = None, chunk: int = 2**16) -> Float[Tensor, "B D D D"]:
        """Real-space maps (B, D, D, D) [z, y, x] of latents ``z`` (B, zdim) (None: one map of a
        homogeneous field), from the field on the full centred lattice within the band limit (half
        decoded, half by Hermitian symmetry), decoded together, ``chunk`` points per network call over all B maps."""
        D = self.D
        device = next(self.parameters()).device
        index, xyz, mirror = centred_lattice(D, 3, self.radius, half=-1, device=device)
        coords = xyz.float() / D
        zb = None if z is None else z.reshape(z.shape[0], -1).float().to(device)
        B = 1 if zb is None else zb.shape[0]
        ft = torch.zeros(B, D**3, dtype=torch.complex64, device=device)
        step = max(1, chunk // B)
        for s in range(0, len(index), step):
            value = self.fourier(coords[None, s : s + step].expand(B, -1, -1), zb)
            ft[:, index[s : s + step]] = value
            ft[:, mirror[s : s + step]] = value.conj()
        return ifft3_center(ft.reshape(B, D, D, D)).real


@register
@dataclass(frozen=True)
class HomogeneousFieldSettings(ModelSettings):
    """One neural field for one map (cryoDRGN's train_nn): ``width`` × ``depth`` residual MLP,
    positional ``encoding``, band limit ``max_freq`` (fraction of Nyquist)."""

    kind = "homogeneous"
    command = "train-nn"
    option = "neural"
    summary = "a neural field (cryoDRGN's train_nn)"
    width: int = 256
    depth: int = 3
    encoding: str = "gaussian"
    max_freq: float = 1.0

    def check(self) -> None:
        check_field_settings(self.width, self.depth, self.encoding, self.max_freq)

    def build(self, D: int, seed: int) -> NeuralField:
        return NeuralField(D, 0, self.width, self.depth, self.encoding, seed=seed, max_freq=self.max_freq)


def check_field_settings(width: int, depth: int, encoding: str, max_freq: float) -> None:
    """InputError for a neural field that cannot be built."""
    if width < 1 or depth < 1:
        raise InputError(f"the network needs a width and depth of at least 1, got {width} and {depth}")
    if encoding not in ENCODINGS:
        raise InputError(f"unknown positional encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
    check_max_freq(max_freq)
