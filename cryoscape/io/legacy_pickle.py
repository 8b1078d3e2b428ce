"""Safe reading and exact writing of cryoDRGN's legacy pose and CTF pickles.

cryoDRGN stores particle metadata as Python pickles. A pickle can run arbitrary code when it is
loaded, so cryoscape never calls ``pickle.load`` on a user's file: :class:`RestrictedUnpickler`
admits only the few globals that a pickled numpy array (or a tuple of arrays) refers to, and refuses
anything else with an :class:`~cryoscape.errors.InputError` *before* it is called.

Globals a numpy array pickle can name (numpy 1.x writes ``numpy.core.*``, numpy 2.x writes
``numpy._core.*``; pickle protocol 5 uses ``_frombuffer`` instead of ``_reconstruct``, protocols 0-2
write ``bytes`` through ``_codecs.encode``): ``numpy.{core,_core}.multiarray._reconstruct``,
``numpy.{core,_core}.multiarray.scalar``, ``numpy.{core,_core}.numeric._frombuffer``,
``numpy.ndarray``, ``numpy.dtype``, ``_codecs.encode``. Tuples and lists are pickle opcodes and need
no global. Arrays of dtype ``object`` are refused.

cryoDRGN layouts (written exactly so by the writers here):

- poses: the tuple ``(rot, trans)``; ``rot`` (N, 3, 3) rotation matrices (float64 from
  ``parse_pose_star``, float32 from ``parse_pose_csparc``): RELION's Euler matrix A, see
  :mod:`cryoscape.data.particles`; ``trans`` (N, 2) translations as a fraction
  of the box (pixels / D), RELION origin sign, same dtype as ``rot``. Older files hold ``rot`` alone.
- CTF: an (N, 9) float32 array with columns
  ``[D (px), Apix (Å), DefocusU (Å), DefocusV (Å), DefocusAngle (deg), Voltage (kV), Cs (mm),
  AmplitudeContrast, PhaseShift (deg)]``.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.paths import check_input, check_output
from cryoscape.io.staging import staged_file

CTF_COLUMNS = (
    "D",
    "apix",
    "defocus_u_A",
    "defocus_v_A",
    "astig_angle_deg",
    "voltage_kV",
    "cs_mm",
    "amplitude_contrast",
    "phase_shift_deg",
)

# (module, name) written by numpy 1.x / 2.x array pickles -> (numpy submodule, attribute) to use.
_NUMPY_GLOBALS = {
    ("multiarray", "_reconstruct"),
    ("multiarray", "scalar"),
    ("numeric", "_frombuffer"),
}


def _numpy_core():
    """numpy's core package: ``numpy._core`` (numpy >= 2) or ``numpy.core`` (numpy 1.x)."""
    import importlib  # noqa: PLC0415

    try:
        return importlib.import_module("numpy._core")
    except ImportError:  # numpy 1.x
        return importlib.import_module("numpy.core")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays, tuples and lists, and refuses every other global."""

    def __init__(self, file, source: str = "pickle"):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray") or module.startswith(
            ("numpy.core.", "numpy._core.")
        ):
            if module == "numpy" and name in ("ndarray", "dtype"):
                return getattr(np, name)
            parts = module.split(".")
            if len(parts) == 3 and (parts[2], name) in _NUMPY_GLOBALS:
                return getattr(getattr(_numpy_core(), parts[2]), name)
        if module == "_codecs" and name == "encode":
            import codecs  # noqa: PLC0415

            return codecs.encode
        raise InputError(
            f"{self.source}: refuses to load {module}.{name} (only numpy arrays and tuples are allowed "
            "in a legacy pickle; it may be malicious)"
        )


def safe_load_pickle(path: str | Path, what: str = "pickle"):
    """Load one object from ``path`` with :class:`RestrictedUnpickler`; errors are InputError."""
    path = check_input(path, what)
    data = path.read_bytes()
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), source=str(path)).load()
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad input file
        raise InputError(f"{what} {path} is not a readable pickle ({type(err).__name__}: {err})") from None
    _check_no_objects(obj, path)
    return obj


def _check_no_objects(obj, path: Path) -> None:
    items = obj if isinstance(obj, (tuple, list)) else (obj,)
    for item in items:
        if isinstance(item, np.ndarray) and item.dtype.hasobject:
            raise InputError(f"{path}: refuses arrays of Python objects in a legacy pickle")


def _dump(path: Path, obj) -> None:
    with staged_file(path, force=True) as staged, open(staged, "wb") as f:
        pickle.dump(obj, f)


def read_cryodrgn_poses(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a cryoDRGN pose pickle.

    Returns ``(rotations (N, 3, 3) float64, translations (N, 2) float64 as a fraction of the box, or
    None)`` for files holding ``(rot, trans)`` or ``rot`` alone.
    """
    obj = safe_load_pickle(path, "pose file")
    if isinstance(obj, np.ndarray):
        rot, trans = obj, None
    elif isinstance(obj, (tuple, list)) and len(obj) in (1, 2):
        rot = obj[0]
        trans = obj[1] if len(obj) == 2 else None
    else:
        raise InputError(f"pose file {path}: expected a tuple (rotations, translations), got {type(obj).__name__}")
    rot = np.asarray(rot, dtype=np.float64)
    if rot.ndim != 3 or rot.shape[1:] != (3, 3):
        raise InputError(f"pose file {path}: rotations have shape {rot.shape}, expected (N, 3, 3)")
    if trans is not None:
        trans = np.asarray(trans, dtype=np.float64)
        if trans.shape != (len(rot), 2):
            raise InputError(f"pose file {path}: translations have shape {trans.shape}, expected ({len(rot)}, 2)")
        if np.abs(trans).max(initial=0.0) > 1.0:
            raise InputError(
                f"pose file {path}: translations exceed 1 box; they must be fractions of the box (old cryoDRGN "
                "format in pixels?)"
            )
    return rot, trans


def read_cryodrgn_ctf(path: str | Path) -> np.ndarray:
    """Read a cryoDRGN CTF pickle: (N, 9) float64, columns as in :data:`CTF_COLUMNS`."""
    obj = safe_load_pickle(path, "CTF file")
    if not isinstance(obj, np.ndarray) or obj.ndim != 2 or obj.shape[1] != 9:
        shape = getattr(obj, "shape", type(obj).__name__)
        raise InputError(f"CTF file {path}: expected an (N, 9) array, got {shape}")
    return obj.astype(np.float64)


def write_cryodrgn_poses(
    path: str | Path,
    rotations: np.ndarray,
    translations_fraction: np.ndarray | None,
    force: bool = False,
    dtype=np.float64,
) -> Path:
    """Write the tuple ``(rot (N,3,3), trans (N,2))`` as cryoDRGN's parse_pose_* do.

    cryoDRGN 4.3's ``parse_pose_star`` pickles float64 arrays and ``parse_pose_csparc`` float32 ones
    (the .cs dtype); cryoDRGN reads either. The default float64 keeps poses lossless.

    ``translations_fraction``: pixels / D, RELION origin sign. If None, the bare rotation array is written
    (cryoDRGN's rotation-only layout).
    """
    rot = np.asarray(rotations, dtype=dtype)
    if rot.ndim != 3 or rot.shape[1:] != (3, 3):
        raise ValueError(f"rotations must have shape (N, 3, 3), got {rot.shape}")
    path = check_output(path, force)
    if translations_fraction is None:
        _dump(path, rot)
        return path
    trans = np.asarray(translations_fraction, dtype=dtype)
    if trans.shape != (len(rot), 2):
        raise ValueError(f"translations must have shape ({len(rot)}, 2), got {trans.shape}")
    _dump(path, (rot, trans))
    return path


def write_cryodrgn_ctf(path: str | Path, array: np.ndarray, force: bool = False) -> Path:
    """Write the (N, 9) CTF array as float32, exactly as cryoDRGN's parse_ctf_* do."""
    arr = np.asarray(array, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != 9:
        raise ValueError(f"CTF array must have shape (N, 9), got {arr.shape}")
    path = check_output(path, force)
    _dump(path, arr)
    return path
