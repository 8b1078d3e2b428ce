"""train-gmm end to end on the adenylate-kinase closed→open data (D=32), and its bad inputs."""

import logging
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cryoscape.analysis.bead_models import write_atomic_models
from cryoscape.cli.main import main
from cryoscape.inference.run_models import load_model
from cryoscape.io.atomic_model import read_atomic_model, write_moved_models
from cryoscape.io.mrc import write_map
from cryoscape.models.bead_start import residue_beads
from cryoscape.models.gaussian_beads import GaussianBeadSettings
from cryoscape.simulate.conformations import resolve_structure

D, APIX = 32, 3.0
TINY = ["--enc-dim", "64", "--dec-dim", "64", "--lr", "1e-3", "-b", "16", "-q"]


@pytest.fixture(scope="module")
def adk(tmp_path_factory):
    """1,000 particles of the closed→open trajectory (every 4th frame), SNR 1, and the closed model
    placed in the map's frame as a user would fit it (the simulation centres frame 1's atoms)."""
    out = tmp_path_factory.mktemp("gmm")
    args = ["simulate", "adk_dims_closed_to_open", "-o", str(out / "sim"), "-n", "1000", "--box", str(D)]
    assert main(args + ["--apix", str(APIX), "--snr", "1", "--model-stride", "4", "--seed", "2", "-q"]) == 0
    frames = read_atomic_model(resolve_structure("adk_dims_closed_to_open"))
    centre = frames[0].coords_A.mean(0)
    write_moved_models(resolve_structure("adk_dims_closed_to_open"), [frames[0].coords_A - centre + D // 2 * APIX],
                       out / "closed.pdb")  # fmt: skip
    ca = np.stack([f.coords_A[f.atom_names == "CA"] - centre + D // 2 * APIX for f in frames[::4]])
    return out, ca


def _ca_rmsd(run, ca, conformation):
    model, config, _ = load_model(run)
    z = torch.as_tensor(np.load(run / "z.npy"), dtype=torch.float32)
    with torch.no_grad():
        pos = (model.centers(z).numpy() + D // 2) * APIX
    start = (model.deformation.start.numpy() + D // 2) * APIX
    truth = ca[conformation]
    rmsd = np.sqrt(((pos - truth) ** 2).sum(-1).mean(-1))
    rmsd0 = np.sqrt(((start - truth) ** 2).sum(-1).mean(-1))
    return rmsd, rmsd0, pos


def test_segments_bring_the_closed_model_to_each_particle(adk, tmp_path):
    out, ca = adk
    run = tmp_path / "run"
    args = ["train-gmm", str(out / "sim/particles.star"), "-o", str(run), "--init-model", str(out / "closed.pdb")]
    assert main(args + ["--zdim", "1", "-n", "4", "--segments", "8", *TINY]) == 0
    conformation = np.load(out / "sim/labels.npz")["conformation"]
    rmsd, rmsd0, pos = _ca_rmsd(run, ca, conformation)
    assert rmsd.mean() < 0.75 * rmsd0.mean(), (rmsd.mean(), rmsd0.mean())
    bonds = np.linalg.norm(np.diff(pos, axis=1), axis=-1)
    assert bonds.max() < 4.6, bonds.max()
    # eval-vol writes the map and the moved atomic model of each latent value
    maps = tmp_path / "maps"
    assert main(["eval-vol", str(run), "-z", "0", "--z-start", "-1", "--z-end", "1", "-n", "2", "-o", str(maps)]) != 0
    assert main(["eval-vol", str(run), "--z-start", "-1", "--z-end", "1", "-n", "2", "-o", str(maps), "-q"]) == 0
    moved = [read_atomic_model(maps / f"model_{i:03d}.pdb")[0] for i in range(2)]
    start = read_atomic_model(out / "closed.pdb")[0]
    assert all((m.atom_names == start.atom_names).all() for m in moved)
    assert np.abs(moved[0].coords_A - moved[1].coords_A).max() > 2.0  # the two ends differ
    assert (maps / "vol_001.mrc").exists()


def test_the_frc_loss_also_fits_the_motion(adk, tmp_path):
    """e2gmm's loss trains the same model (scale-free: the gain stays at its calibration; the
    correlation loss takes the same path, its value checked in tests/models/test_image_losses.py);
    the per-epoch loss term is logged under its own name."""
    out, ca = adk
    run, loss = tmp_path / "frc", "frc"
    args = ["train-gmm", str(out / "sim/particles.star"), "-o", str(run), "--init-model", str(out / "closed.pdb")]
    assert main(args + ["--zdim", "1", "-n", "4", "--segments", "8", "--loss", loss, *TINY]) == 0
    rmsd, rmsd0, _ = _ca_rmsd(run, ca, np.load(out / "sim/labels.npz")["conformation"])
    assert rmsd.mean() < 0.8 * rmsd0.mean(), (rmsd.mean(), rmsd0.mean())
    assert f"one_minus_{loss}" in (run / "log.csv").read_text().splitlines()[0]


def test_train_gmm_defaults_to_its_own_batch_schedule_and_float32(adk, tmp_path):
    """train-gmm's defaults are its own (batch 32, lr 4e-4 falling by 0.7 per epoch, float32, as
    measured in benchmarks/gmm.md); train-vae keeps batch 8 at 1e-4."""
    import json

    out, _ = adk
    run = tmp_path / "run"
    args = ["train-gmm", str(out / "sim/particles.star"), "-o", str(run), "--init-model", str(out / "closed.pdb")]
    assert main(args + ["-n", "1", "--enc-dim", "16", "--dec-dim", "16", "-q"]) == 0
    training = json.loads((run / "config.json").read_text())["training"]
    assert (training["batch_size"], training["lr"], training["lr_decay"], training["amp"]) == (32, 4e-4, 0.7, False)
    assert (sum(1 for _ in open(run / "log.csv")) - 1, len(np.load(run / "z.npy"))) == (1, 1000)
    vae = tmp_path / "vae"
    args = ["train-vae", str(out / "sim/particles.star"), "-o", str(vae), "-n", "1", "--zdim", "1"]
    assert main(args + ["--enc-dim", "16", "--dec-dim", "16", "--dec-layers", "1", "--enc-layers", "1", "-q"]) == 0
    training = json.loads((vae / "config.json").read_text())["training"]
    assert (training["batch_size"], training["lr"]) == (8, 1e-4)


def test_an_undeformed_model_writes_the_start_atoms(adk, tmp_path):
    out, _ = adk
    start = residue_beads(read_atomic_model(out / "closed.pdb")[0], D, APIX)
    settings = GaussianBeadSettings(beads=start.to_json(), init_model=str(out / "closed.pdb"), zdim=1, width=16,
                                    depth=1, enc_width=16, enc_depth=1)  # fmt: skip
    config = SimpleNamespace(model=settings)
    write_atomic_models(settings.build(D, 0), config, np.array([[0.7]]), tmp_path)
    moved = read_atomic_model(tmp_path / "model_000.pdb")[0]
    assert np.abs(moved.coords_A - read_atomic_model(out / "closed.pdb")[0].coords_A).max() < 1e-3  # PDB precision


def test_bad_start_models_and_maps(adk, tmp_path, capsys):
    out, _ = adk
    star = str(out / "sim/particles.star")
    frame = read_atomic_model(out / "closed.pdb")[0]
    write_moved_models(out / "closed.pdb", [frame.coords_A + 200.0], tmp_path / "far.pdb")
    write_moved_models(out / "closed.pdb", [frame.coords_A + 12.0], tmp_path / "shifted.pdb")
    write_map(tmp_path / "small.mrc", np.ones((16, 16, 16), np.float32), APIX)
    cases = {
        "outside the 32-pixel box": ["--init-model", str(tmp_path / "far.pdb")],
        "does not overlap": ["--init-model", str(tmp_path / "shifted.pdb")],
        "16-voxel map": ["--init-map", str(tmp_path / "small.mrc")],
        "needs an atomic model": ["--init-map", str(tmp_path / "small.mrc"), "--deform", "segments"],
    }
    for message, extra in cases.items():
        run = tmp_path / "bad"
        assert main(["train-gmm", star, "-o", str(run), "-n", "1", *extra, "-q"]) != 0
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
        assert not run.exists() or not any(run.iterdir())
    # --fit puts the shifted model back, and training starts
    run = tmp_path / "fitted"
    assert main(["train-gmm", star, "-o", str(run), "--init-model", str(tmp_path / "shifted.pdb"), "--fit",
                 "-n", "1", "--zdim", "1", *TINY]) == 0  # fmt: skip
    assert "fitted the model into the consensus map: correlation" in (run / "run.log").read_text()


def test_a_start_model_of_the_other_hand_is_warned_about(adk, tmp_path, caplog):
    out, _ = adk
    frame = read_atomic_model(out / "closed.pdb")[0]
    mirrored = frame.coords_A.copy()
    mirrored[:, 2] = 2 * (D // 2) * APIX - mirrored[:, 2]  # through the box centre along z, as flip-hand mirrors maps
    write_moved_models(out / "closed.pdb", [mirrored], tmp_path / "mirrored.pdb")
    warning = "the mirror image of the start model fits the consensus map better"
    for name, model in {"mirrored": tmp_path / "mirrored.pdb", "right": out / "closed.pdb"}.items():
        args = ["train-gmm", str(out / "sim/particles.star"), "-o", str(tmp_path / name), "--init-model", str(model)]
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="cryoscape"):
            assert main([*args, "-n", "1", "--zdim", "1", "--deform", "free", *TINY]) == 0
        err = caplog.text
        correlation, mirror = map(
            float, re.search(r"correlation ([\d.-]+) \(its mirror image: ([\d.-]+)\)", err).groups()
        )
        assert (warning in err) == (name == "mirrored") and (mirror > correlation + 0.05) == (name == "mirrored"), err
        run_log = (tmp_path / name / "run.log").read_text()  # the start model's checks are in the run's own log
        assert "residue beads of" in run_log and "(its mirror image:" in run_log
        assert (warning in run_log) == (name == "mirrored"), run_log
