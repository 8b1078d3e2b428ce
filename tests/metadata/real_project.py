"""A particle project shaped like real RELION / cryoSPARC / cryoDRGN ones, made from simulated
particles with known ground truth (issue 11). :func:`make_real_project` writes into a folder:

- ``Extract/job005/Movies/micNNN.mrcs``: one stack per micrograph, 2-5 images each (many tiny stacks);
- ``Refine3D/job010/run_data.star``: RELION 3.1, two optics groups (300 kV and 200 kV, 3.0 Å/px),
  image paths relative to the project folder, the columns a refinement writes;
- ``Refine3D/job010/run_data_relion30.star``: the same particles as RELION 3.0 writes them after a
  cryoSPARC conversion: one table, ``_rlnOriginX/Y`` in pixels, ``_rlnDetectorPixelSize`` and
  ``_rlnMagnification``, and no ``_rlnAmplitudeContrast``;
- ``CS-project/J12/J12_particles_downsampled.cs`` with ``J12/downsampled/batch_N.mrcs``: a cryoSPARC
  "Downsample particles" job (box D/2: ``blob/psize_A`` = 2 × ``alignments3D/psize_A``, shifts in
  pixels of the original images);
- ``cryodrgn/poses.pkl``, ``cryodrgn/ctf.pkl`` at the original box, ``cryodrgn/particles.txt`` (the
  stacks) and ``cryodrgn/particles.D2.mrcs`` (the images downsampled to D/2, one stack);
- ``gt.mrc``: the ground-truth map.

The files are written with mrcfile, numpy and pickle (not cryoscape); only the particles come from
``cryoscape simulate``. Truth is returned in the order of the star files.
"""

from __future__ import annotations

import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import starfile
from scipy.spatial.transform import Rotation

from cryoscape.cli.main import main

BOX, APIX = 32, 3.0
GROUPS = ({"kv": 300.0, "cs": 2.7, "w": 0.1}, {"kv": 200.0, "cs": 2.7, "w": 0.1})


@dataclass
class RealProject:
    """Paths of the project's files and the truth of its particles (star order)."""

    root: Path
    star: Path
    star30: Path
    cs: Path
    poses: Path
    ctf: Path
    stack_list: Path
    stack_small: Path
    gt: Path
    stacks: list[Path]
    rotations: np.ndarray  # (N, 3, 3) RELION's Euler matrices
    shifts_A: np.ndarray  # (N, 2) RELION origin offsets, Å
    voltage_kV: np.ndarray  # (N,)
    optics_group: np.ndarray  # (N,) 1 or 2

    @property
    def n(self) -> int:
        return len(self.rotations)


def fourier_crop(images: np.ndarray, size: int) -> np.ndarray:
    """(N, D, D) -> (N, size, size) by keeping the central frequencies (mean pixel value kept)."""
    D = images.shape[-1]
    f = np.fft.fftshift(np.fft.fft2(images), axes=(-2, -1))
    lo = D // 2 - size // 2
    f = f[:, lo : lo + size, lo : lo + size]
    return np.real(np.fft.ifft2(np.fft.ifftshift(f, axes=(-2, -1)))).astype(np.float32) * (size / D) ** 2


def fourier_crop_volume(volume: np.ndarray, size: int) -> np.ndarray:
    """(D, D, D) -> (size, size, size), as :func:`fourier_crop` in 3-D."""
    D = volume.shape[-1]
    f = np.fft.fftshift(np.fft.fftn(volume))
    lo = D // 2 - size // 2
    f = f[lo : lo + size, lo : lo + size, lo : lo + size]
    return np.real(np.fft.ifftn(np.fft.ifftshift(f))).astype(np.float32) * (size / D) ** 3


def _write_stack(path: Path, images: np.ndarray, apix: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(np.asarray(images, dtype=np.float32))
        m.set_image_stack()
        m.voxel_size = apix


def _simulate(folder: Path, n: int, group: dict, seed: int, snr: float) -> tuple[np.ndarray, dict]:
    args = ["simulate", "adk_open", "-o", str(folder), "-n", str(n), "--box", str(BOX), "--apix", str(APIX)]
    args += ["--max-shift", "2", "--voltage", str(group["kv"]), "--cs", str(group["cs"])]
    args += ["--amplitude-contrast", str(group["w"]), "--snr", str(snr), "--seed", str(seed), "-q"]
    assert main(args) == 0
    with mrcfile.open(folder / "particles.mrcs", permissive=True) as m:
        images = np.array(m.data, dtype=np.float32)
    columns = starfile.read(folder / "particles.star", always_dict=True)["particles"]
    return images, {c: columns[c].to_numpy() for c in columns.columns}


def _num(x) -> str:
    """A number as its shortest round-trip text."""
    return repr(float(x))


def _star_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["loop_"] + [f"_{c} #{i}" for i, c in enumerate(header, start=1)]
    return "\n".join(lines + [" ".join(r) for r in rows]) + "\n"


def make_real_project(root: Path, n_micrographs: int = 200, snr: float = 3.0, seed: int = 5) -> RealProject:
    """Write the project into ``root`` (see the module docstring) and return its paths and truth."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(2, 6, n_micrographs)  # images per micrograph, 2..5
    half = n_micrographs // 2
    sizes = [int(counts[:half].sum()), int(counts[half:].sum())]
    images, cols = [], {}
    for g, (n, group) in enumerate(zip(sizes, GROUPS)):
        im, c = _simulate(root / f"sim{g + 1}", n, group, seed + g, snr)
        images.append(im)
        for k, v in c.items():
            cols[k] = np.concatenate([cols[k], v]) if k in cols else v
    images_all = np.concatenate(images)
    n = len(images_all)
    group_of = np.repeat([1, 2], sizes)
    shutil.copy(root / "sim1/gt/00_adk_open.mrc", root / "gt.mrc")

    # one stack per micrograph, in particle order
    mic_of = np.repeat(np.arange(n_micrographs), counts)
    slice_of = np.concatenate([np.arange(c) for c in counts])
    stacks = [root / f"Extract/job005/Movies/mic{m:03d}.mrcs" for m in range(n_micrographs)]
    for m, path in enumerate(stacks):
        _write_stack(path, images_all[mic_of == m], APIX)

    eul = np.stack([cols["rlnAngleRot"], cols["rlnAngleTilt"], cols["rlnAnglePsi"]], axis=1).astype(float)
    origin_A = np.stack([cols["rlnOriginXAngst"], cols["rlnOriginYAngst"]], axis=1).astype(float)
    dfu, dfv, dfa = (cols[c].astype(float) for c in ("rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle"))
    names = [f"{s + 1:06d}@Extract/job005/Movies/mic{m:03d}.mrcs" for m, s in zip(mic_of, slice_of)]
    mics = [f"MotionCorr/job002/Movies/mic{m:03d}.mrc" for m in mic_of]
    subset = rng.integers(1, 3, n)

    # RELION 3.1 refinement output, two optics groups
    job = root / "Refine3D/job010"
    job.mkdir(parents=True)
    optics = _star_table(
        [
            "rlnOpticsGroupName",
            "rlnOpticsGroup",
            "rlnMicrographOriginalPixelSize",
            "rlnVoltage",
            "rlnSphericalAberration",
            "rlnAmplitudeContrast",
            "rlnImagePixelSize",
            "rlnImageSize",
            "rlnImageDimensionality",
            "rlnCtfDataAreCtfPremultiplied",
        ],
        [
            [f"opticsGroup{g + 1}", str(g + 1), "0.75", f"{p['kv']:.6f}", f"{p['cs']:.6f}", f"{p['w']:.6f}"]
            + [f"{APIX:.6f}", str(BOX), "2", "0"]
            for g, p in enumerate(GROUPS)
        ],
    )
    header = ["rlnCoordinateX", "rlnCoordinateY", "rlnImageName", "rlnMicrographName", "rlnOpticsGroup"]
    header += ["rlnCtfMaxResolution", "rlnCtfFigureOfMerit", "rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle"]
    header += ["rlnCtfBfactor", "rlnCtfScalefactor", "rlnPhaseShift", "rlnGroupNumber", "rlnAngleRot"]
    header += ["rlnAngleTilt", "rlnAnglePsi", "rlnOriginXAngst", "rlnOriginYAngst", "rlnClassNumber"]
    header += ["rlnNormCorrection", "rlnLogLikeliContribution", "rlnRandomSubset"]
    rows = []
    for i in range(n):
        rows.append(
            [f"{rng.uniform(100, 3900):.6f}", f"{rng.uniform(100, 3900):.6f}", names[i], mics[i], str(group_of[i])]
            + [f"{rng.uniform(3, 6):.6f}", "0.120000", _num(dfu[i]), _num(dfv[i]), _num(dfa[i])]
            + ["0.000000", "1.000000", "0.000000", str(mic_of[i] + 1), _num(eul[i, 0])]
            + [_num(eul[i, 1]), _num(eul[i, 2]), _num(origin_A[i, 0]), _num(origin_A[i, 1]), "1"]
            + ["1.000000", "1.234567e+05", str(subset[i])]
        )
    star = job / "run_data.star"
    star.write_text(
        "\n# version 30001\n\ndata_optics\n\n"
        + optics
        + "\n\n# version 30001\n\ndata_particles\n\n"
        + _star_table(header, rows)
        + "\n"
    )

    # RELION 3.0, as converted from cryoSPARC: no amplitude contrast, origins in pixels
    kv = np.array([GROUPS[g - 1]["kv"] for g in group_of])
    header30 = ["rlnImageName", "rlnMicrographName", "rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle", "rlnVoltage"]
    header30 += ["rlnSphericalAberration", "rlnDetectorPixelSize", "rlnMagnification", "rlnAngleRot"]
    header30 += ["rlnAngleTilt", "rlnAnglePsi", "rlnOriginX", "rlnOriginY", "rlnClassNumber", "rlnRandomSubset"]
    rows30 = [
        [names[i], mics[i], _num(dfu[i]), _num(dfv[i]), _num(dfa[i]), f"{kv[i]:.1f}", "2.7", "5.0", _num(5.0e4 / APIX)]
        + [_num(eul[i, 0]), _num(eul[i, 1]), _num(eul[i, 2])]
        + [_num(origin_A[i, 0] / APIX), _num(origin_A[i, 1] / APIX), "1", str(subset[i])]
        for i in range(n)
    ]
    star30 = job / "run_data_relion30.star"
    star30.write_text("\ndata_\n\n" + _star_table(header30, rows30) + "\n")

    # truth: RELION's Euler matrix A = (intrinsic ZYZ rotation)^T
    rotations = np.swapaxes(Rotation.from_euler("ZYZ", eul, degrees=True).as_matrix(), -1, -2)
    small = fourier_crop(images_all, BOX // 2)
    cs = _write_cryosparc(root / "CS-project", small, rotations, origin_A, dfu, dfv, dfa, kv, rng)
    poses, ctf, stack_list, stack_small = _write_cryodrgn(root / "cryodrgn", stacks, small, rotations, origin_A)
    with open(ctf, "wb") as f:
        ctf_rows = [np.full(n, BOX), np.full(n, APIX), dfu, dfv, dfa, kv, np.full(n, 2.7), np.full(n, 0.1)]
        pickle.dump(np.stack(ctf_rows + [np.zeros(n)], axis=1).astype(np.float32), f)
    return RealProject(
        root=root,
        star=star,
        star30=star30,
        cs=cs,
        poses=poses,
        ctf=ctf,
        stack_list=stack_list,
        stack_small=stack_small,
        gt=root / "gt.mrc",
        stacks=stacks,
        rotations=rotations,
        shifts_A=origin_A,
        voltage_kV=kv,
        optics_group=group_of,
    )


def _write_cryosparc(folder, small, rotations, origin_A, dfu, dfv, dfa, kv, rng) -> Path:
    """A cryoSPARC "Downsample particles" output: box D/2, blob/psize_A = 2 × alignments3D/psize_A."""
    n, d = len(small), small.shape[-1]
    batches = np.array_split(np.arange(n), 3)
    paths, idx = np.empty(n, dtype="S64"), np.zeros(n, dtype=np.uint32)
    for b, rows in enumerate(batches):
        rel = f"J12/downsampled/batch_{b:03d}_particles_downsampled.mrcs"
        _write_stack(folder / rel, small[rows], APIX * BOX / d)
        paths[rows], idx[rows] = rel.encode(), np.arange(len(rows))
    vec3, vec2, vec4 = (3,), (2,), (4,)
    dtype = [("uid", "<u8"), ("blob/path", "S64"), ("blob/idx", "<u4"), ("blob/shape", "<u4", vec2)]
    dtype += [("blob/psize_A", "<f4"), ("blob/sign", "<f4"), ("blob/import_sig", "<u8"), ("ctf/type", "S1")]
    dtype += [("ctf/exp_group_id", "<u4"), ("ctf/accel_kv", "<f4"), ("ctf/cs_mm", "<f4"), ("ctf/amp_contrast", "<f4")]
    dtype += [("ctf/df1_A", "<f4"), ("ctf/df2_A", "<f4"), ("ctf/df_angle_rad", "<f4"), ("ctf/phase_shift_rad", "<f4")]
    dtype += [("ctf/scale", "<f4"), ("ctf/scale_const", "<f4"), ("ctf/shift_A", "<f4", vec2)]
    dtype += [("ctf/tilt_A", "<f4", vec2), ("ctf/trefoil_A", "<f4", vec2), ("ctf/tetra_A", "<f4", vec4)]
    dtype += [("ctf/anisomag", "<f4", vec4), ("ctf/bfactor", "<f4"), ("alignments3D/split", "<u4")]
    dtype += [("alignments3D/shift", "<f4", vec2), ("alignments3D/pose", "<f4", vec3), ("alignments3D/psize_A", "<f4")]
    dtype += [("alignments3D/error", "<f4"), ("alignments3D/cross_cor", "<f4"), ("alignments3D/class", "<u4")]
    rec = np.zeros(n, dtype=dtype)
    rec["uid"] = rng.integers(1, 2**63, n, dtype=np.uint64)
    rec["blob/path"], rec["blob/idx"], rec["blob/shape"] = paths, idx, d
    rec["blob/psize_A"], rec["blob/sign"] = APIX * BOX / d, -1.0
    rec["ctf/type"], rec["ctf/exp_group_id"] = b"i", np.where(kv == 300.0, 1, 2)
    rec["ctf/accel_kv"], rec["ctf/cs_mm"], rec["ctf/amp_contrast"] = kv, 2.7, 0.1
    rec["ctf/df1_A"], rec["ctf/df2_A"], rec["ctf/df_angle_rad"] = dfu, dfv, np.deg2rad(dfa)
    rec["ctf/scale"], rec["ctf/scale_const"], rec["ctf/anisomag"] = 1.0, 0.0, [1.0, 0.0, 0.0, 1.0]
    rec["alignments3D/split"] = rng.integers(0, 2, n)
    # cryoSPARC's pose v: expm([v]x) = A^T; its shift is RELION's origin, in pixels of the aligned images
    rec["alignments3D/pose"] = Rotation.from_matrix(np.swapaxes(rotations, -1, -2)).as_rotvec()
    rec["alignments3D/shift"] = origin_A / APIX
    rec["alignments3D/psize_A"] = APIX
    path = folder / "J12/J12_particles_downsampled.cs"
    with open(path, "wb") as f:
        np.save(f, rec)
    return path


def _write_cryodrgn(folder, stacks, small, rotations, origin_A):
    """cryoDRGN's poses.pkl (rot, trans as box fractions) at the original box, a .txt stack list, and
    one stack of the images downsampled to D/2 (cryoDRGN's downsample workflow)."""
    folder.mkdir(parents=True)
    poses = folder / "poses.pkl"
    with open(poses, "wb") as f:
        pickle.dump((rotations.astype(np.float64), origin_A / APIX / BOX), f)
    stack_list = folder / "particles.txt"
    stack_list.write_text("".join(f"../{p.relative_to(folder.parent)}\n" for p in stacks))
    stack_small = folder / "particles.D2.mrcs"
    _write_stack(stack_small, small, APIX * BOX / small.shape[-1])
    return poses, folder / "ctf.pkl", stack_list, stack_small
