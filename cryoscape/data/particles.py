"""The particle table: one row per particle image, in cryoscape's internal conventions.

Internal conventions (every reader converts to them, every writer converts from them):

- ``rotations`` (N, 3, 3) float64: RELION's Euler matrix A (``Euler_angles2matrix(rot, tilt, psi)``),
  which takes volume coordinates (x, y, z) into the image frame. The Fourier slice of image i samples
  the volume at A_i^T (kx, ky, 0). cryoDRGN's pose matrices are the same matrices.
- ``shifts_A`` (N, 2) float64, Å, (x, y): RELION's origin offset (``_rlnOriginXAngst/YAngst``). The
  particle is centred by translating the image by +shift; the simulated image is the centred
  projection translated by -shift.
- ``ctf``: a :class:`CTFParams` with per-particle values (optics groups already resolved).
- ``apix`` (N,) Å per pixel of the stored images; ``box_size`` D, the stored image size in pixels.
- ``image_paths`` (N,) absolute paths of the stacks, ``image_indices`` (N,) 0-based slice in each.
- ``metadata``: every column the user's file had (optics merged in), carried through on writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # torch is imported where CTFs are computed, so that reading particle files stays light
    import torch

    from cryoscape.imaging.ctf import CTF


@dataclass
class CTFParams:
    """Per-particle CTF parameters (arrays of shape (N,)), RELION/cryoDRGN formula.

    Units: defocus in Å, astigmatism angle in degrees, voltage in kV, spherical aberration in mm,
    amplitude contrast as a fraction (0..1), phase shift in degrees, B-factor in Å².
    """

    defocus_u_A: np.ndarray
    defocus_v_A: np.ndarray
    astig_angle_deg: np.ndarray
    voltage_kV: np.ndarray
    cs_mm: np.ndarray
    amplitude_contrast: np.ndarray
    phase_shift_deg: np.ndarray
    bfactor_A2: np.ndarray

    def __len__(self) -> int:
        return len(self.defocus_u_A)

    def subset(self, index) -> CTFParams:
        return CTFParams(**{f.name: np.asarray(getattr(self, f.name))[index] for f in fields(self)})

    def as_dict(self) -> dict[str, np.ndarray]:
        return {f.name: np.asarray(getattr(self, f.name), dtype=np.float64) for f in fields(self)}

    def select(self, index, device: torch.device | str = "cpu") -> CTF:
        """The typed CTF (:class:`cryoscape.imaging.ctf.CTF`, RELION sign) of the particles ``index``."""
        import torch  # noqa: PLC0415

        from cryoscape.imaging.ctf import CTF  # noqa: PLC0415

        return CTF.of(**{k: torch.from_numpy(v[index]) for k, v in self.as_dict().items()}, device=device)

    @classmethod
    def constant(cls, n: int, **values: float) -> CTFParams:
        """N copies of one set of values; unspecified ones get typical defaults (300 kV, 2.7 mm, 0.1)."""
        defaults = dict(
            defocus_u_A=15000.0,
            defocus_v_A=15000.0,
            astig_angle_deg=0.0,
            voltage_kV=300.0,
            cs_mm=2.7,
            amplitude_contrast=0.1,
            phase_shift_deg=0.0,
            bfactor_A2=0.0,
        )
        defaults.update(values)
        return cls(**{k: np.full(n, float(v)) for k, v in defaults.items()})


@dataclass
class ParticleTable:
    """Particles with their images, poses and CTF (see module docstring for conventions)."""

    image_paths: np.ndarray
    image_indices: np.ndarray
    box_size: int
    apix: np.ndarray
    rotations: np.ndarray | None = None
    shifts_A: np.ndarray | None = None
    ctf: CTFParams | None = None
    metadata: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __len__(self) -> int:
        return len(self.image_indices)

    @property
    def shifts_px(self) -> np.ndarray | None:
        """Shifts in pixels of the stored images (RELION origin sign)."""
        return None if self.shifts_A is None else self.shifts_A / self.apix[:, None]

    def shifts_px_of(self, index) -> np.ndarray | None:
        """Shifts in pixels (B, 2) of the particles ``index`` only (O(B), for per-batch use)."""
        if self.shifts_A is None:
            return None
        return np.asarray(self.shifts_A)[index] / np.asarray(self.apix)[index, None]

    def ctf_images(self, index, device: torch.device | str = "cpu") -> torch.Tensor:
        """(B, D, D) RELION-sign CTF images of the particles ``index`` (B,) at their pixel sizes."""
        if self.ctf is None:
            raise ValueError("the particle table has no CTF parameters")
        import torch  # noqa: PLC0415

        apix = torch.from_numpy(np.asarray(self.apix, dtype=np.float64)[index]).to(device)
        return self.ctf.select(index, device).images(self.box_size, apix)

    def subset(self, index) -> ParticleTable:
        """Rows selected by an integer index array or boolean mask (order kept as given)."""
        index = np.asarray(index)

        def pick(a):
            return None if a is None else np.asarray(a)[index]

        meta = self.metadata.iloc[index].reset_index(drop=True) if len(self.metadata) else self.metadata
        return replace(
            self,
            image_paths=pick(self.image_paths),
            image_indices=pick(self.image_indices),
            apix=pick(self.apix),
            rotations=pick(self.rotations),
            shifts_A=pick(self.shifts_A),
            ctf=None if self.ctf is None else self.ctf.subset(index),
            metadata=meta,
        )
