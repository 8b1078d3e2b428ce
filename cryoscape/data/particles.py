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

import logging
import math
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cryoscape.errors import InputError

if TYPE_CHECKING:  # torch is imported where CTFs are computed, so that reading particle files stays light
    import torch

    from cryoscape.imaging.ctf import CTF

log = logging.getLogger("cryoscape")

# CTF field -> (command-line option, what it is, unit, a typical value)
CTF_OPTIONS = {
    "voltage_kV": ("--kv", "voltage", "kV", "300"),
    "cs_mm": ("--cs", "spherical aberration", "mm", "2.7"),
    "amplitude_contrast": ("-w", "amplitude contrast", "", "0.1"),
    "phase_shift_deg": ("--ps", "phase shift", "°", "0"),
}
# below this |defocus| (Å) values look like µm (RELION and cryoSPARC write Å: 5000-50000 typically)
MIN_DEFOCUS_A = 100.0


@dataclass(frozen=True)
class CTFOverrides:
    """CTF values the user gives (cryoDRGN's ``--kv`` kV, ``--cs`` mm, ``-w`` fraction, ``--ps``
    degrees). Each one given replaces the particle file's column, or fills it where the file has none;
    None takes the file's."""

    voltage_kV: float | None = None
    cs_mm: float | None = None
    amplitude_contrast: float | None = None
    phase_shift_deg: float | None = None

    def __post_init__(self) -> None:
        checks = {
            "voltage_kV": (lambda v: v > 0, "a positive voltage in kV"),
            "cs_mm": (lambda v: v >= 0, "a spherical aberration >= 0 in mm"),
            "amplitude_contrast": (lambda v: 0 <= v < 1, "an amplitude contrast fraction in [0, 1)"),
            "phase_shift_deg": (lambda v: True, "a phase shift in degrees"),
        }
        for name, (ok, what) in checks.items():
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and ok(value)):
                raise InputError(f"{CTF_OPTIONS[name][0]} must be {what}, got {value}")

    def given(self) -> dict[str, float]:
        """The values given, by CTF field name."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None}


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


def _values(a: np.ndarray) -> str:
    """'300' or '200-300': the range of a column's values, for messages."""
    lo, hi = float(np.min(a)), float(np.max(a))
    return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"


def resolve_ctf(
    columns: dict[str, np.ndarray | None],
    labels: dict[str, str],
    overrides: CTFOverrides | None,
    source: str,
    required: bool,
) -> CTFParams | None:
    """The CTF of N particles from a file's columns (CTFParams field -> (N,) array, or None where the
    file lacks the column; ``labels`` names each in the file) and the user's ``overrides``.

    No defocus: None (the file has no CTF). Voltage, Cs and amplitude contrast must come from the file
    or an override; a missing one is an InputError naming the column and the option if ``required``
    (the command uses the CTF), else the CTF is left out (None, logged). Defocus V defaults to U; the
    angle, phase shift and B-factor to 0. Each override logs one INFO line saying whether it replaced
    a column or filled a missing one. Values are checked (:func:`check_ctf`).
    """
    overrides = overrides or CTFOverrides()
    given = overrides.given()
    if columns.get("defocus_u_A") is None:
        if given:
            log.warning("%s has no defocus (%s): no CTF, and %s unused", source, labels["defocus_u_A"], _options(given))
        return None
    n = len(columns["defocus_u_A"])  # type: ignore[arg-type]
    out: dict[str, np.ndarray] = {}
    missing = []
    for name in (f.name for f in fields(CTFParams)):
        col = columns.get(name)
        if name in given:
            option, what, unit, _ = CTF_OPTIONS[name]
            unit = unit if unit in ("", "°") else " " + unit
            done = (
                f"replaces {labels[name]} ({_values(col)}{unit} in the file)"
                if col is not None
                else f"fills the missing {labels[name]}"
            )
            log.info("%s: %s %g%s (%s) %s", source, what, given[name], unit, option, done)
            out[name] = np.full(n, given[name])
        elif col is not None:
            out[name] = np.asarray(col, dtype=np.float64)
        elif name in ("voltage_kV", "cs_mm", "amplitude_contrast"):
            missing.append(name)
        else:
            out[name] = (
                np.asarray(columns["defocus_u_A"], dtype=np.float64).copy() if name == "defocus_v_A" else np.zeros(n)
            )
    if missing:
        what = " or ".join(labels[m] for m in missing)
        hint = ", ".join(f"{CTF_OPTIONS[m][1]} with {CTF_OPTIONS[m][0]} (e.g. {CTF_OPTIONS[m][3]})" for m in missing)
        if required:
            raise InputError(f"{source} has no {what}: give the {hint}")
        log.info("%s has no %s: its CTF is not read (give the %s)", source, what, hint)
        return None
    ctf = CTFParams(**out)
    check_ctf(ctf, source, required)
    return ctf


def _options(given: dict[str, float]) -> str:
    return ", ".join(CTF_OPTIONS[name][0] for name in given)


def check_ctf(ctf: CTFParams, source: str, required: bool) -> None:
    """InputError naming the first particle (1-based) with a NaN/Inf CTF value; defocus values that
    look like µm (all |defocus| < 100 Å) are an InputError if ``required`` (the CTF is used), else a
    warning, and so are some of them below 100 Å."""
    for name, values in ctf.as_dict().items():
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"{source}: {name} of particle {row + 1} is {values[row]}, not a finite number")
    defocus = np.maximum(np.abs(ctf.defocus_u_A), np.abs(ctf.defocus_v_A))
    small = defocus < MIN_DEFOCUS_A
    if not small.any():
        return
    shown = _values(np.concatenate([ctf.defocus_u_A[small], ctf.defocus_v_A[small]]))
    if small.all():
        msg = (
            f"{source}: every defocus is below {MIN_DEFOCUS_A:g} Å ({shown}): these look like µm, but RELION "
            "and cryoSPARC give defocus in Å (multiply by 10000)"
        )
        if required:
            raise InputError(msg)
        log.warning(msg)
        return
    log.warning(
        "%s: %d of %d particles have a defocus below %g Å (%s): µm instead of Å?",
        source,
        int(small.sum()),
        len(small),
        MIN_DEFOCUS_A,
        shown,
    )


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

    def with_poses(self, rotations: np.ndarray, shifts_px: np.ndarray) -> ParticleTable:
        """A copy with rotations (N, 3, 3) and shifts given in pixels (N, 2) (stored in Å)."""
        apix = np.asarray(self.apix, dtype=np.float64)[:, None]
        return replace(self, rotations=np.array(rotations), shifts_A=np.asarray(shifts_px) * apix)

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

    def describe_images(self, index) -> str:
        """Which images the particles ``index`` are, for messages: 'images 0..9 of STACK' (0-based)
        when they lie in one stack, else the count of images and stacks with the first stack."""
        index = np.asarray(index)
        stacks = np.unique(np.asarray(self.image_paths)[index].astype(str))
        slices = np.asarray(self.image_indices)[index]
        if len(stacks) == 1:
            lo, hi = int(slices.min()), int(slices.max())
            return f"image{'s' if lo != hi else ''} {lo}{f'..{hi}' if lo != hi else ''} of {stacks[0]}"
        return f"{len(index)} images in {len(stacks)} stacks ({stacks[0]}, ...)"

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
