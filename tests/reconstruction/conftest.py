import pytest

from cryoscape.simulate.conformations import load_component
from cryoscape.simulate.particles import SimulationConfig, simulate_dataset


@pytest.fixture(scope="session")
def adk_open_64():
    """Ground-truth adenylate kinase (open) map at D=64, 1.5 Å/px."""
    return load_component("adk_open", 64, 1.5)


@pytest.fixture(scope="session")
def noise_free_dataset(tmp_path_factory, adk_open_64):
    """10,000 noise-free particles with CTF, astigmatism and shifts (the issue's acceptance case)."""
    out = tmp_path_factory.mktemp("noise_free")
    config = SimulationConfig(
        n_particles=10_000, D=64, apix=1.5, seed=1, snr=None, max_shift_px=4.0, astigmatism_A=500.0, batch_size=1000
    )
    table = simulate_dataset([adk_open_64], config, out, progress=False)
    return out, table, adk_open_64.volumes[0]
