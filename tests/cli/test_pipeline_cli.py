"""The quick start through the command line, on a small dataset: simulate, backproject, fsc."""

import json

import numpy as np
import pytest

from cryoscape.cli.main import main
from cryoscape.io.mrc import read_map


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    sim = out / "sim"
    assert (
        main(
            [
                "simulate",
                "adk_open",
                "-o",
                str(sim),
                "-n",
                "600",
                "--box",
                "32",
                "--apix",
                "3.0",
                "--snr",
                "1.0",
                "--max-shift",
                "2",
                "--seed",
                "5",
                "-q",
            ]
        )
        == 0
    )
    return out, sim


def test_simulate_writes_everything_deterministically(small_run, tmp_path):
    out, sim = small_run
    for name in ("particles.mrcs", "particles.star", "labels.npz", "simulation.json", "gt/00_adk_open.mrc"):
        assert (sim / name).exists(), name
    summary = json.loads((sim / "simulation.json").read_text())
    assert summary["config"]["n_particles"] == 600 and summary["noise_sigma"] > 0
    again = tmp_path / "again"
    assert (
        main(
            [
                "simulate",
                "adk_open",
                "-o",
                str(again),
                "-n",
                "600",
                "--box",
                "32",
                "--apix",
                "3.0",
                "--snr",
                "1.0",
                "--max-shift",
                "2",
                "--seed",
                "5",
                "-q",
            ]
        )
        == 0
    )
    a, _, _ = read_map(sim / "gt/00_adk_open.mrc")
    b, _, _ = read_map(again / "gt/00_adk_open.mrc")
    assert np.array_equal(a, b)
    import mrcfile

    with mrcfile.open(sim / "particles.mrcs") as m1, mrcfile.open(again / "particles.mrcs") as m2:
        assert np.array_equal(m1.data, m2.data)


def test_simulate_refuses_to_overwrite_without_force(small_run, capsys):
    _, sim = small_run
    assert main(["simulate", "adk_open", "-o", str(sim), "-n", "10", "--box", "32", "--apix", "3.0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--force" in err[0]


def test_backproject_and_fsc_commands(small_run, capsys):
    out, sim = small_run
    target = out / "map.mrc"
    assert (
        main(
            [
                "backproject",
                str(sim / "particles.star"),
                "-o",
                str(target),
                "--reference",
                str(sim / "gt/00_adk_open.mrc"),
                "-q",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "half-map FSC=0.143" in printed and "FSC vs reference=0.5" in printed
    for name in ("map.mrc", "map_half1.mrc", "map_half2.mrc", "map_fsc.png"):
        assert (out / name).exists()
    vol, voxel, _ = read_map(target)
    truth, _, _ = read_map(sim / "gt/00_adk_open.mrc")
    assert voxel == pytest.approx(3.0)
    assert np.corrcoef(vol.ravel(), truth.ravel())[0, 1] > 0.8  # positive density, no --invert needed
    assert main(["fsc", str(out / "map_half1.mrc"), str(out / "map_half2.mrc"), "--mask", "auto", "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    res = {line.split(":")[0]: float(line.split(":")[1].split()[0]) for line in lines if ":" in line}
    assert 6.0 <= res["FSC=0.143"] <= res["FSC=0.5"] < 40


@pytest.mark.parametrize(
    "argv, message",
    [
        (["backproject", "missing.star", "-o", "x.mrc"], "does not exist"),
        (["fsc", "a.mrc", "b.mrc"], "does not exist"),
        (["simulate", "not_a_structure", "-o", "out"], "neither a file nor a shipped structure"),
        (["simulate", "adk_open", "-o", "out", "--box", "33"], "even"),
    ],
)
def test_bad_input_gives_one_line_error(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_help_documents_every_option(capsys):
    for command in ("simulate", "backproject", "fsc"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        assert "--force" in text


def test_star_cs_and_cryodrgn_inputs_give_the_same_map(small_run):
    """The same particles through cryoSPARC .cs and cryoDRGN pickles reconstruct the same map as from
    the .star: every pose, shift and CTF convention survives both conversions."""
    from cryoscape.data.particle_io import load_particles, save_cs

    out, sim = small_run
    save_cs(out / "particles.cs", load_particles(sim / "particles.star"))
    assert (
        main(
            [
                "export-cryodrgn",
                str(sim / "particles.star"),
                "--poses",
                str(out / "poses.pkl"),
                "--ctf",
                str(out / "ctf.pkl"),
                "-q",
            ]
        )
        == 0
    )
    runs = {
        "star": [str(sim / "particles.star")],
        "cs": [str(out / "particles.cs"), "--datadir", str(sim)],
        "cryodrgn": [str(sim / "particles.mrcs"), "--poses", str(out / "poses.pkl"), "--ctf", str(out / "ctf.pkl")],
    }
    maps = {}
    for name, args in runs.items():
        assert main(["backproject", *args, "-o", str(out / f"via_{name}.mrc"), "-q"]) == 0, name
        maps[name], _, _ = read_map(out / f"via_{name}.mrc")
    scale = np.abs(maps["star"]).max()
    assert np.abs(maps["cs"] - maps["star"]).max() < 1e-4 * scale
    assert np.abs(maps["cryodrgn"] - maps["star"]).max() < 1e-4 * scale
