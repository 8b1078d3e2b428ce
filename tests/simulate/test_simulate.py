"""Simulation: compositions, conformations, junk, the SNR definition and determinism."""

import json

import mrcfile
import numpy as np
import pytest

from cryoscape.data.particle_io import load_particles
from cryoscape.errors import InputError
from cryoscape.simulate.conformations import load_component, resample_map
from cryoscape.simulate.particles import SimulationConfig, simulate_dataset


def _stack(path):
    with mrcfile.open(path) as m:
        return np.array(m.data)


def test_snr_is_signal_variance_over_noise_variance(tmp_path):
    comp = load_component("5a7u", 32, 2.0)
    base = dict(n_particles=300, D=32, apix=2.0, seed=7, max_shift_px=2, batch_size=300)
    simulate_dataset([comp], SimulationConfig(snr=None, **base), tmp_path / "clean", progress=False)
    simulate_dataset([comp], SimulationConfig(snr=0.5, **base), tmp_path / "noisy", progress=False)
    clean, noisy = _stack(tmp_path / "clean/particles.mrcs"), _stack(tmp_path / "noisy/particles.mrcs")
    noise = noisy - clean
    assert clean.var() / noise.var() == pytest.approx(0.5, rel=0.03)
    assert abs(np.corrcoef(noise.ravel(), clean.ravel())[0, 1]) < 0.02


def test_compositional_mixture_with_weights_and_junk(tmp_path):
    comps = [load_component("1hvr", 48, 2.0), load_component("5a7u", 48, 2.0)]
    cfg = SimulationConfig(
        n_particles=2000, D=48, apix=2.0, seed=3, snr=1.0, junk_fraction=0.1, junk_kind="blobs", batch_size=500
    )
    simulate_dataset(comps, cfg, tmp_path, component_weights=[3, 1], progress=False)
    labels = np.load(tmp_path / "labels.npz")
    component = labels["component"]
    assert np.mean(component == -1) == pytest.approx(0.1, abs=0.02)
    real = component[component >= 0]
    assert np.mean(real == 0) == pytest.approx(0.75, abs=0.03)
    assert sorted(p.name for p in (tmp_path / "gt").iterdir()) == ["00_1hvr.mrc", "01_5a7u.mrc"]
    summary = json.loads((tmp_path / "simulation.json").read_text())
    assert summary["counts"]["-1"] == int(np.sum(component == -1))
    table = load_particles(tmp_path / "particles.star")
    assert len(table) == 2000 and np.allclose(table.rotations, labels["rotations"])


def test_trajectory_gives_one_conformation_per_model_in_one_frame():
    comp = load_component("adk_dims_closed_to_open", 48, 2.0, model_stride=24)
    assert comp.volumes.shape == (5, 48, 48, 48)  # models 1, 25, 49, 73, 97
    # consecutive frames are more alike than the two ends: the motion is kept in one frame
    c = [np.corrcoef(comp.volumes[0].ravel(), v.ravel())[0, 1] for v in comp.volumes]
    assert c[0] == pytest.approx(1.0) and c[1] > c[4] and c[4] < 0.97


def test_conformation_weights_pick_models(tmp_path):
    comp = load_component("adk_dims_closed_to_open", 32, 3.0, model_stride=49)  # 2 models
    cfg = SimulationConfig(n_particles=400, D=32, apix=3.0, seed=1, snr=None, batch_size=400)
    simulate_dataset([comp], cfg, tmp_path, conformation_weights=[1, 0], progress=False)
    assert np.all(np.load(tmp_path / "labels.npz")["conformation"] == 0)


def test_map_input_is_resampled_to_the_requested_grid():
    D = 32
    k = np.arange(D) - D // 2
    z, y, x = np.meshgrid(k, k, k, indexing="ij")
    blob = np.exp(-(x**2 + y**2 + z**2) / (2 * 3.0**2)).astype(np.float32)  # σ = 3 voxels of 2 Å = 6 Å
    out = resample_map(blob, 2.0, 48, 1.0)  # σ = 6 voxels of 1 Å, in a 48 box
    assert out.shape == (48, 48, 48)
    zz = np.arange(48) - 24
    profile = out[24, 24, :]
    sigma = np.sqrt(np.sum(profile * zz**2) / np.sum(profile))
    assert sigma == pytest.approx(6.0, rel=0.03)
    assert out.sum() == pytest.approx(blob.sum() * 8, rel=0.02)  # same total density per Å³


def test_atoms_outside_the_box_are_refused():
    with pytest.raises(InputError, match="box"):
        load_component("adk_open", 16, 1.0)
