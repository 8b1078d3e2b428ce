"""A run's model and latents (any kind with a latent), and maps generated at latents (a numbered series with their latents
and a picture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from cryoscape.analysis import plots
from cryoscape.analysis.latent import check_latents
from cryoscape.errors import InputError
from cryoscape.imaging.fft import downsample_volume
from cryoscape.inference.run_config import RunConfig
from cryoscape.inference.run_models import generate_volumes, load_model
from cryoscape.io.mrc import write_map
from cryoscape.models.contract import VolumeModel


def load_vae(run: Path, epoch: int | str, device, command: str) -> tuple[VolumeModel, RunConfig, int]:
    """(model on ``device``, config, epoch) of a run with a latent (any kind); InputError otherwise."""
    model, config, epoch = load_model(run, epoch)
    if not config.zdim:
        raise InputError(f"{run} is a {config.kind} run without a latent; {command} needs a run with one (train-vae)")
    return (model if device is None else model.to(device)), config, epoch


def class_model(run: Path, model: VolumeModel, config: RunConfig, class_id: int | None) -> VolumeModel:
    """Class ``class_id``'s model of a mixture run; InputError for a mixture run without ``class_id``,
    a class beyond its classes or pruned, or a ``class_id`` for a run without classes."""
    if class_id is None:
        raise InputError(f"{run} is a {config.kind} run of {model.n_classes} classes: choose one with --class C")
    if not model.n_classes:
        raise InputError(f"{run} is a {config.kind} run without classes; --class needs a train-mix run")
    if not 0 <= class_id < model.n_classes:
        raise InputError(f"--class {class_id} is beyond this run's classes 0..{model.n_classes - 1}")
    return model.class_model(class_id)


def class_of_run(
    run: Path, model: VolumeModel, config: RunConfig, epoch: int, class_id: int | None
) -> tuple[VolumeModel, np.ndarray]:
    """(class ``class_id``'s model (:func:`class_model`), (N,) bool: its particles, from
    RUN/class.EPOCH.npy) of a mixture run."""
    head = class_model(run, model, config, class_id)
    path = run / f"class.{epoch}.npy"
    if not path.exists():
        raise InputError(f"no class labels for epoch {epoch}: {path} does not exist")
    members = np.load(path, allow_pickle=False) == class_id
    if members.sum() < 2:
        raise InputError(f"class {class_id} holds {int(members.sum())} particles at epoch {epoch}: too few to analyse")
    return head, members


def load_run_latents(run: Path, config: RunConfig, epoch: int, z_file: str | Path | None = None) -> np.ndarray:
    """The latent means of epoch ``epoch`` (RUN/z.E.npy), or of ``z_file`` (e.g. from eval-images)."""
    path = Path(z_file) if z_file else run / f"z.{epoch}.npy"
    if not path.exists():
        raise InputError(
            f"no latents for epoch {epoch}: {path} does not exist" if not z_file else f"{path} does not exist"
        )
    z = check_latents(np.load(path, allow_pickle=False), str(path))
    if z.shape[1] != config.zdim:
        raise InputError(f"{path} holds {z.shape[1]}-dimensional latents, the run's are {config.zdim}-dimensional")
    return z


def decoded_maps(
    model, config: RunConfig, z: np.ndarray, batch: int, desc: str, progress: bool, downsample: int | None = None
):
    """Maps (D, D, D) of latents ``z`` (n, zdim), in order, with a progress bar; Fourier-cropped to
    ``downsample`` voxels if given (the voxel then grows by D/downsample)."""
    volumes = generate_volumes(model, config, z, batch)
    for volume in tqdm(volumes, total=len(z), desc=desc, unit="map", disable=None if progress else True):
        yield downsample_volume(torch.from_numpy(volume), downsample).numpy() if downsample else volume


def write_maps(
    model,
    config: RunConfig,
    z: np.ndarray,
    folder: Path,
    title: str,
    batch: int,
    progress: bool,
    downsample: int | None = None,
    picture: bool = True,
) -> list[np.ndarray]:
    """Maps at latents ``z`` as folder/vol_###.mrc, their latents in z_values.txt and (``picture``)
    their projections in projections.png."""
    folder.mkdir(parents=True, exist_ok=True)
    apix = config.data.apix * (config.data.D / downsample if downsample else 1.0)
    maps = []
    for i, volume in enumerate(decoded_maps(model, config, z, batch, title, progress, downsample)):
        write_map(folder / f"vol_{i:03d}.mrc", volume, apix)
        maps.append(volume)
    np.savetxt(folder / "z_values.txt", z, fmt="%.6g")
    if picture:
        plots.map_projections(maps, folder / "projections.png", [f"{title} {i}" for i in range(len(maps))])
    return maps
