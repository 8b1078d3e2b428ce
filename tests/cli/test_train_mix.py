"""train-mix on a tiny two-species mixture with junk: exact classes, junk found, spare classes
pruned, class maps from eval-vol --class, and bad input refused in one line."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from cryoscape.analysis.report_classes import class_shares
from cryoscape.cli.main import main
from cryoscape.data.images import ImageSource
from cryoscape.data.particle_io import load_particles
from cryoscape.imaging.fsc import fsc
from cryoscape.inference.batches import make_batch
from cryoscape.inference.run_models import load_model
from cryoscape.io.mrc import read_map
from cryoscape.models.mixture_screening import screen_classes, screens

SMALL = ["-b", "8", "--lr", "2e-3", "--dec-dim", "64", "--dec-layers", "2", "--pe", "geom_lowf"]
FAST = ["--device", "cpu", "--no-amp", "-q"]


@pytest.fixture(scope="module")
def mixture(tmp_path_factory):
    """adk closed and HIV protease (1hvr) + 10% pure-noise junk, D=24, 3 Å/px, SNR 1, 400 particles;
    trained with -k 3 (one class too many) for 12 epochs, 8 of them warm-up."""
    out = tmp_path_factory.mktemp("mix")
    sim = out / "sim"
    assert (
        main(
            ["simulate", "adk_closed", "1hvr", "-o", str(sim), "-n", "400", "--box", "24", "--apix", "3.0"]
            + ["--max-shift", "1", "--snr", "1", "--junk-fraction", "0.1", "--seed", "2", "-q"]
        )
        == 0
    )
    run = out / "run"
    args = ["train-mix", str(sim / "particles.star"), "-o", str(run), "-k", "3", "-n", "12", "--anneal-epochs", "8"]
    assert main(args + SMALL + FAST) == 0
    return sim, run


def test_classes_are_exact_junk_is_found_and_the_spare_class_is_pruned(mixture):
    sim, run = mixture
    truth = np.load(sim / "labels.npz")["component"]  # -1 for junk
    found = np.load(run / "class.npy")
    prob = np.load(run / "class_prob.npy")
    assert found.shape == (400,) and found.dtype == np.int64 and prob.shape == (400, 4)
    assert np.allclose(prob.sum(1), 1.0, atol=1e-5) and np.array_equal(np.load(run / "class.12.npy"), found)
    assert adjusted_rand_score(truth, found) >= 0.98  # junk counted as its own class
    species = truth >= 0
    assert adjusted_rand_score(truth[species], found[species]) == 1.0
    junk_recall = np.mean(found[truth == -1] == -1)
    junk_precision = np.mean(truth[found == -1] == -1)
    assert junk_recall >= 0.9 and junk_precision >= 0.9, (junk_recall, junk_precision)
    kept = sorted(set(found[found >= 0].tolist()))
    assert len(kept) == 2
    log = (run / "run.log").read_text()
    assert "pruned class" in log and "epoch 12: K = 2 classes" in log
    assert (prob[:, [k for k in range(3) if k not in kept]] == 0).all()


def test_a_junk_only_batch_goes_to_junk(mixture):
    sim, run = mixture
    model, config, _ = load_model(run)
    table = load_particles(sim / "particles.star")
    truth = np.load(sim / "labels.npz")["component"]
    noise_std = ImageSource.from_table(table, lazy=False).get(np.nonzero(truth == -1)[0]).std()
    index = np.arange(64)
    fresh = torch.from_numpy(np.random.default_rng(5).normal(0, noise_std, (64, 24, 24)).astype(np.float32))
    prob = model.particle_outputs(make_batch(fresh, table, index, config.data.scale))["class_prob"]
    assert prob[:, -1].min() > 0.99, prob[:, -1].min()


def test_screening_keeps_the_posterior_and_renders_about_one_class_per_image(mixture):
    sim, run = mixture
    model, config, _ = load_model(run)
    table = load_particles(sim / "particles.star")
    index = np.arange(400)
    images = torch.as_tensor(ImageSource.from_table(table, lazy=False).get(index))
    batch = make_batch(images, table, index, config.data.scale)
    assert screens(model)
    candidates, _ = screen_classes(model, batch, None)
    screened = model.particle_outputs(batch)["class_prob"]
    model.settings = dataclasses.replace(model.settings, screen=0.0)
    assert not screens(model)
    full = model.particle_outputs(batch)["class_prob"]
    assert torch.equal(screened.argmax(1), full.argmax(1))
    assert (screened - full).abs().max() < 1e-3, (screened - full).abs().max()
    assert candidates.sum(1).float().mean() < 1.05, candidates.sum(1).float().mean()  # 2 classes kept


def test_eval_vol_class_maps_match_their_species(mixture, tmp_path, capsys):
    sim, run = mixture
    truth_maps = [read_map(p)[0] for p in sorted((sim / "gt").glob("*.mrc"))]
    labels, found = np.load(sim / "labels.npz")["component"], np.load(run / "class.npy")
    for c in sorted(set(found[found >= 0].tolist())):
        species = np.bincount(labels[found == c] + 1).argmax() - 1
        assert main(["eval-vol", str(run), "--class", str(c), "-o", str(tmp_path / f"c{c}"), "-q"]) == 0
        volume = read_map(tmp_path / f"c{c}/vol_000.mrc")[0]
        own, other = (fsc(volume, truth_maps[s], apix=3.0).resolution_A(0.5) for s in (species, 1 - species))
        assert own < 14.0 and other > own + 10.0, (c, own, other)
    pruned = next(c for c in range(3) if c not in found)
    for argv, message in (
        (["--class", "3"], "--class 3 is beyond this run's classes 0..2"),
        ([], "is a mixture run of 3 classes: choose one with --class C"),
        (["--class", str(pruned)], f"class {pruned} was pruned or merged"),
    ):
        capsys.readouterr()
        assert main(["eval-vol", str(run), "-o", str(tmp_path / "bad"), *argv]) == 1
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_report_shows_the_classes_their_shares_maps_and_confusion_matrix(mixture, tmp_path):
    sim, run = mixture
    page_path = tmp_path / "report.html"
    assert main(["report", str(run), "-o", str(page_path), "-q"]) == 0
    page = page_path.read_text()
    truth, found = np.load(sim / "labels.npz")["component"], np.load(run / "class.npy")
    ari = adjusted_rand_score(truth, found)  # scikit-learn's, beside the report's own
    assert "<h2>Classes</h2>" in page and f"ARI {ari:.3f} with junk counted as a class" in page
    assert "map of each class" in page and "adk_closed" in page and "1hvr" in page
    shares = class_shares(run)
    final = np.load(run / "class_prob.npy").mean(0)
    kept = [f"class {k}" for k in sorted(set(found[found >= 0].tolist()))]
    assert np.allclose(shares.loc[12, [*kept, "junk"]], final[[int(k.split()[1]) for k in kept] + [-1]], atol=1e-6)
    assert list(shares.index) == list(range(1, 13))


def test_bad_input_is_one_line(mixture, tmp_path, capsys):
    sim, run = mixture
    star = str(sim / "particles.star")
    cases = (
        (["-k", "0"], "the number of classes (-k) must be at least 1, got 0"),
        (["-k", "41"], "-k 41 needs at least 410 particles (10 per class); the input has 400"),
    )
    for argv, message in cases:
        capsys.readouterr()
        assert main(["train-mix", star, "-o", str(tmp_path / "bad"), "-n", "1", *argv, *FAST]) == 1
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "bad").exists()
    vae = tmp_path / "vae"
    vae_args = ["train-vae", star, "-o", str(vae), "--zdim", "1", "-n", "1", "--enc-dim", "16", "--enc-layers", "1"]
    assert main(vae_args + ["--dec-dim", "16", "--dec-layers", "1", *FAST]) == 0
    capsys.readouterr()
    assert main(["eval-vol", str(vae), "--class", "0", "-z", "0", "-o", str(tmp_path / "maps")]) == 1
    err = capsys.readouterr().err.strip()
    assert "is a vae run without classes; --class needs a train-mix run" in err and len(err.splitlines()) == 1


def test_a_latent_per_class_the_class_map_at_its_median_latent_and_analyze_class(mixture, tmp_path, capsys):
    sim, _ = mixture
    run = tmp_path / "run"
    args = ["train-mix", str(sim / "particles.star"), "-o", str(run), "-k", "2", "--zdim", "2", "-n", "2"]
    assert main(args + ["--anneal-epochs", "1", "--enc-dim", "16", "--enc-layers", "1", *SMALL, *FAST]) == 0
    z, found = np.load(run / "z.npy"), np.load(run / "class.npy")
    assert z.shape == (400, 2) and np.isfinite(z).all() and "kl" in (run / "log.csv").read_text().splitlines()[0]
    c = int(np.bincount(found[found >= 0]).argmax())
    assert main(["eval-vol", str(run), "--class", str(c), "-o", str(tmp_path / "maps"), "-q"]) == 0
    used = np.loadtxt(tmp_path / "maps/z_values.txt", ndmin=2)
    assert np.allclose(used, np.median(z[found == c], axis=0)[None], atol=1e-5)
    assert read_map(tmp_path / "maps/vol_000.mrc")[0].shape == (24, 24, 24)
    out = tmp_path / "analysis"
    quick = ["--ksample", "3", "--pc", "1", "--n-per-pc", "2", "--skip-umap", "--truth-images", "4", "-q"]
    assert main(["analyze", str(run), "--class", str(c), "-o", str(out), *quick]) == 0
    members = found == c
    assert np.load(out / "kmeans_labels.npy").shape == (members.sum(),)
    assert members[np.loadtxt(out / "kmeans_centers_ind.txt", dtype=int)].all()  # input rows, all in class c
    assert len(list((out / "kmeans").glob("vol_*.mrc"))) == 3
    summary = json.loads((out / "analysis.json").read_text())
    truth = np.load(sim / "labels.npz")["component"][members]
    share = np.mean(truth == np.bincount(truth[truth >= 0]).argmax())
    assert summary["class"] == c and summary["truth"]["class_purity"]["fraction"] == pytest.approx(share)
    capsys.readouterr()
    assert main(["analyze", str(run), "-o", str(tmp_path / "bad"), *quick]) == 1
    err = capsys.readouterr().err.strip()
    assert "is a mixture run of 2 classes: choose one with --class C" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "bad").exists()
