"""Regenerate the metadata fixtures in this folder (see README.md). Deterministic (seeded).

Run from the repository root:  .venv/bin/python tests/metadata/data/make_fixtures.py
Then run the cryoDRGN commands listed in README.md to refresh the cryodrgn_*.pkl files.
"""

from pathlib import Path

import mrcfile
import numpy as np

HERE = Path(__file__).resolve().parent
rng = np.random.default_rng(20261122)
BOX, APIX = 16, 2.5


def write_stack(path: Path, n: int, apix: float = APIX) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = rng.normal(size=(n, BOX, BOX)).astype(np.float32)
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(data)
        m.set_image_stack()
        m.voxel_size = apix


def eulers(n: int) -> np.ndarray:
    """Random (rot, tilt, psi) in degrees plus edge cases (gimbal lock, ±180, 90)."""
    e = np.column_stack(
        [rng.uniform(-180, 180, n), np.degrees(np.arccos(rng.uniform(-1, 1, n))), rng.uniform(-180, 180, n)]
    )
    edge = [
        (0, 0, 0),
        (30, 0, 40),
        (-120, 180, 10),
        (180, 90, -180),
        (-180, 90, 180),
        (90, 45.5, -90),
        (0.001, 179.999, 359.5),
    ]
    e[: len(edge)] = edge[:n]
    return np.round(e, 6)


def fmt(v) -> str:
    return v if isinstance(v, str) else (str(v) if isinstance(v, (int, np.integer)) else f"{v:.6f}")


def loop(name: str, cols: dict) -> str:
    lines = [f"data_{name}", "", "loop_"] + [f"_{c} #{i}" for i, c in enumerate(cols, 1)]
    n = len(next(iter(cols.values())))
    for i in range(n):
        lines.append("  ".join(fmt(v[i]) for v in cols.values()))
    return "\n".join(lines) + "\n\n"


def relion31() -> None:
    n = 20
    write_stack(HERE / "stacks" / "mic1_particles.mrcs", 12)
    write_stack(HERE / "stacks" / "mic2_particles.mrcs", 8)
    names = [f"{i + 1:06d}@stacks/mic1_particles.mrcs" for i in range(12)] + [
        f"{i + 1:06d}@stacks/mic2_particles.mrcs" for i in range(8)
    ]
    e = eulers(n)
    dfu = rng.uniform(8000, 25000, n)
    optics = {
        "rlnOpticsGroup": [1, 2],
        "rlnOpticsGroupName": ["opticsGroup1", "opticsGroup2"],
        "rlnAmplitudeContrast": [0.1, 0.07],
        "rlnSphericalAberration": [2.7, 0.01],
        "rlnVoltage": [300.0, 200.0],
        "rlnImagePixelSize": [APIX, APIX],
        "rlnImageSize": [BOX, BOX],
        "rlnImageDimensionality": [2, 2],
    }
    parts = {
        "rlnCoordinateX": np.round(rng.uniform(100, 3000, n), 1),
        "rlnCoordinateY": np.round(rng.uniform(100, 3000, n), 1),
        "rlnImageName": names,
        "rlnMicrographName": ["mics/mic1.mrc"] * 12 + ["mics/mic2.mrc"] * 8,
        "rlnOpticsGroup": [1] * 12 + [2] * 8,
        "rlnDefocusU": dfu,
        "rlnDefocusV": dfu - rng.uniform(0, 800, n),
        "rlnDefocusAngle": rng.uniform(-180, 180, n),
        "rlnPhaseShift": rng.uniform(0, 90, n),
        "rlnCtfBfactor": rng.uniform(0, 50, n),
        "rlnAngleRot": e[:, 0],
        "rlnAngleTilt": e[:, 1],
        "rlnAnglePsi": e[:, 2],
        "rlnOriginXAngst": rng.uniform(-8, 8, n),
        "rlnOriginYAngst": rng.uniform(-8, 8, n),
        "rlnClassNumber": rng.integers(1, 4, n),
        "rlnRandomSubset": [1, 2] * (n // 2),
        "rlnLogLikeliContribution": rng.normal(1e5, 1e3, n),
    }
    text = "\n# version 30001\n\n" + loop("optics", optics) + "\n# version 30001\n\n" + loop("particles", parts)
    (HERE / "relion31.star").write_text(text)


def relion30() -> None:
    n = 12
    write_stack(HERE / "stacks" / "r30_particles.mrcs", n)
    e = eulers(n)
    dfu = rng.uniform(8000, 25000, n)
    parts = {
        "rlnImageName": [f"{i + 1:06d}@stacks/r30_particles.mrcs" for i in range(n)],
        "rlnMicrographName": ["mics/mic1.mrc"] * n,
        "rlnDefocusU": dfu,
        "rlnDefocusV": dfu - rng.uniform(0, 800, n),
        "rlnDefocusAngle": rng.uniform(0, 180, n),
        "rlnVoltage": [300.0] * n,
        "rlnSphericalAberration": [2.7] * n,
        "rlnAmplitudeContrast": [0.1] * n,
        "rlnPhaseShift": [0.0] * n,
        "rlnMagnification": [20000.0] * n,
        "rlnDetectorPixelSize": [5.0] * n,
        "rlnAngleRot": e[:, 0],
        "rlnAngleTilt": e[:, 1],
        "rlnAnglePsi": e[:, 2],
        "rlnOriginX": rng.uniform(-3, 3, n),
        "rlnOriginY": rng.uniform(-3, 3, n),
        "rlnGroupNumber": [1] * n,
    }
    (HERE / "relion30.star").write_text("\ndata_\n\n" + loop("", parts)[len("data_\n\n") :])


def cryosparc() -> None:
    n = 15
    write_stack(HERE / "J3" / "imported" / "cs_stack.mrcs", n)
    pose = rng.normal(size=(n, 3))
    pose /= np.linalg.norm(pose, axis=1, keepdims=True)
    pose *= rng.uniform(0.05, np.pi, (n, 1))  # no exact zero: cryoDRGN's expmap divides by |v|
    dtype = [
        ("uid", "<u8"),
        ("blob/path", "S40"),
        ("blob/idx", "<u4"),
        ("blob/shape", "<u4", (2,)),
        ("blob/psize_A", "<f4"),
        ("blob/sign", "<f4"),
        ("ctf/type", "S8"),
        ("ctf/accel_kv", "<f4"),
        ("ctf/cs_mm", "<f4"),
        ("ctf/amp_contrast", "<f4"),
        ("ctf/df1_A", "<f4"),
        ("ctf/df2_A", "<f4"),
        ("ctf/df_angle_rad", "<f4"),
        ("ctf/phase_shift_rad", "<f4"),
        ("ctf/bfactor", "<f4"),
        ("alignments3D/split", "<u4"),
        ("alignments3D/shift", "<f4", (2,)),
        ("alignments3D/pose", "<f4", (3,)),
        ("alignments3D/psize_A", "<f4"),
        ("alignments3D/error", "<f4"),
        ("alignments3D/class_posterior", "<f4"),
        ("alignments3D/class", "<u4"),
    ]
    rec = np.zeros(n, dtype=dtype)
    rec["uid"] = rng.integers(0, 2**63, n, dtype=np.uint64)
    rec["blob/path"] = [b">J3/imported/cs_stack.mrcs" if i % 2 else b"J3/imported/cs_stack.mrcs" for i in range(n)]
    rec["blob/idx"] = rng.permutation(n)
    rec["blob/shape"] = BOX
    rec["blob/psize_A"] = APIX
    rec["blob/sign"] = -1
    rec["ctf/type"] = b"spa"
    rec["ctf/accel_kv"] = 300
    rec["ctf/cs_mm"] = 2.7
    rec["ctf/amp_contrast"] = 0.1
    dfu = rng.uniform(8000, 25000, n)
    rec["ctf/df1_A"] = dfu
    rec["ctf/df2_A"] = dfu - rng.uniform(0, 800, n)
    rec["ctf/df_angle_rad"] = rng.uniform(-np.pi, np.pi, n)
    rec["ctf/phase_shift_rad"] = rng.uniform(0, 1, n)
    rec["ctf/bfactor"] = rng.uniform(0, 40, n)
    rec["alignments3D/split"] = np.arange(n) % 2
    rec["alignments3D/shift"] = rng.uniform(-3, 3, (n, 2))
    rec["alignments3D/pose"] = pose
    rec["alignments3D/psize_A"] = APIX
    rec["alignments3D/error"] = rng.uniform(0, 1, n)
    rec["alignments3D/class_posterior"] = 1.0
    with open(HERE / "particles.cs", "wb") as f:
        np.save(f, rec)


if __name__ == "__main__":
    relion31()
    relion30()
    cryosparc()
