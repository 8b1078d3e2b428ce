"""Ground-truth volumes for simulation, from maps or atomic models.

A *component* is one kind of particle (compositional heterogeneity); it has one or more
*conformations* (conformational heterogeneity). An atomic-model file gives one component with one
conformation per MODEL (a trajectory); a map file gives one component with one conformation. All
conformations of one file share one frame: atomic models are centred on the mean position of the
atoms of the file's first model, so a trajectory keeps its motion.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cryoscape.errors import InputError
from cryoscape.imaging.atoms import atoms_to_volume
from cryoscape.io.atomic_model import read_atomic_model
from cryoscape.io.mrc import read_map

STRUCTURES = Path(__file__).parent / "structures"
_MODEL_SUFFIXES = (".pdb", ".cif", ".mmcif", ".ent", ".pdb.gz", ".cif.gz", ".mmcif.gz", ".ent.gz")


@dataclass
class Component:
    """One particle kind: ``volumes`` (K, D, D, D) float32 [z, y, x], one per conformation."""

    name: str
    volumes: np.ndarray
    source: str


def resolve_structure(name: str) -> Path:
    """A user path, or the name of a structure shipped with cryoscape (e.g. ``adk_open``)."""
    path = Path(name)
    if path.exists():
        return path
    for suffix in ("", ".pdb", ".pdb.gz", ".cif"):
        shipped = STRUCTURES / f"{name}{suffix}"
        if shipped.exists():
            return shipped
    known = sorted(p.name.split(".")[0] for p in STRUCTURES.glob("*.pdb*"))
    raise InputError(f"{name} is neither a file nor a shipped structure ({', '.join(known)})")


def resample_map(volume: np.ndarray, voxel_A: float, D: int, apix: float) -> np.ndarray:
    """Bring a cubic map to D³ voxels of ``apix`` Å: Fourier crop/pad to the voxel size, then a
    centred real-space crop/pad to the box."""
    n = volume.shape[0]
    m = int(round(n * voxel_A / apix))
    if m < 2:
        raise InputError(f"the map ({n} voxels of {voxel_A} Å) is smaller than two voxels of {apix} Å")
    if m != n:
        ft = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(volume)))
        out = np.zeros((m,) * 3, dtype=complex)
        c_in, c_out, h = n // 2, m // 2, min(n, m) // 2
        src = slice(c_in - h, c_in + h)
        dst = slice(c_out - h, c_out + h)
        out[dst, dst, dst] = ft[src, src, src]
        volume = np.real(np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(out)))) * (m / n) ** 3
    out = np.zeros((D,) * 3, dtype=np.float32)
    h = min(D, m) // 2
    s_src, s_dst = slice(m // 2 - h, m // 2 + h), slice(D // 2 - h, D // 2 + h)
    out[s_dst, s_dst, s_dst] = volume[s_src, s_src, s_src]
    return out


def load_component(
    path: str | Path, D: int, apix: float, bfactor_A2: float | None = None, model_stride: int = 1
) -> Component:
    """Volumes of one input file: a map (resampled to D, apix) or an atomic model (one volume per
    MODEL, every ``model_stride``-th)."""
    path = resolve_structure(str(path))
    name = path.name.split(".")[0]
    if path.name.lower().endswith((".mrc", ".map", ".mrcs")):
        volume, voxel, _ = read_map(path)
        return Component(name, resample_map(volume, voxel, D, apix)[None], str(path))
    if not path.name.lower().endswith(_MODEL_SUFFIXES):
        raise InputError(f"{path}: expected a map (.mrc, .map) or an atomic model (.pdb, .cif, optionally .gz)")
    models = read_atomic_model(path)[::model_stride]
    center = models[0].coords_A.mean(axis=0)
    kwargs = {} if bfactor_A2 is None else {"bfactor_A2": bfactor_A2}
    volumes = [
        atoms_to_volume(torch.from_numpy(m.coords_A), m.elements, D, apix, center_A=torch.from_numpy(center), **kwargs)
        for m in models
    ]
    extent = max(np.abs(m.coords_A - center).max() for m in models)
    if extent > D * apix / 2:
        raise InputError(
            f"{path}: atoms reach {extent:.0f} Å from the centre but the box is only "
            f"{D * apix / 2:.0f} Å in radius; use a larger --box or --apix"
        )
    return Component(name, np.stack([np.asarray(v, dtype=np.float32) for v in volumes]), str(path))
