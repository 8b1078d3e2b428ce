"""Bad input through the command line: one clear line on stderr, exit 1, never a traceback."""

import os
import pickle

import numpy as np
import pytest

from cryoscape.cli.main import main
from cryoscape.data.particle_io import save_star
from cryoscape.data.particles import CTFParams, ParticleTable
from cryoscape.io.mrc_writer import write_stack


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def _dataset(folder, n=8, D=16):
    stack = folder / "p.mrcs"
    images = np.random.default_rng(0).normal(size=(n, D, D)).astype(np.float32)
    write_stack(stack, images, apix=2.0)
    table = ParticleTable(
        image_paths=np.array([str(stack)] * n),
        image_indices=np.arange(n),
        box_size=D,
        apix=np.full(n, 2.0),
        rotations=np.tile(np.eye(3), (n, 1, 1)),
        shifts_A=np.zeros((n, 2)),
        ctf=CTFParams.constant(n),
    )
    save_star(folder / "p.star", table)
    return stack, images


def _break(case, folder):
    stack, images = _dataset(folder)
    star = folder / "p.star"
    text = star.read_text()
    if case == "missing stack":
        stack.unlink()
    elif case == "index beyond the stack":
        star.write_text(text.replace("000008@", "000009@"))
    elif case == "NaN pixels":
        images[3, 2, 2] = np.nan
        write_stack(stack, images, apix=2.0, force=True)
    elif case == "non-square images":
        import mrcfile

        with mrcfile.new(stack, overwrite=True) as mrc:
            mrc.set_data(np.zeros((8, 16, 12), np.float32))
    elif case == "truncated stack":
        data = stack.read_bytes()
        stack.write_bytes(data[: len(data) - 100])
    elif case == "empty star":
        star.write_text("")
    elif case == "missing CTF columns":
        star.write_text(text.replace("_rlnDefocusU", "_rlnSomethingElse"))
    elif case == "malicious pickle":
        with open(folder / "poses.pkl", "wb") as f:
            pickle.dump(_Evil(), f)
        return [str(stack), "--poses", str(folder / "poses.pkl"), "--ctf", str(folder / "poses.pkl")]
    elif case == "stack and poses differ in count":
        with open(folder / "poses.pkl", "wb") as f:
            pickle.dump((np.tile(np.eye(3), (5, 1, 1)), np.zeros((5, 2))), f)
        return [str(stack), "--poses", str(folder / "poses.pkl"), "--no-ctf"]
    return [str(star)]


CASES = {
    "missing stack": "not found",
    "index beyond the stack": "9",
    "NaN pixels": "NaN",
    "non-square images": "square",
    "truncated stack": "truncated",
    "empty star": "empty",
    "missing CTF columns": "CTF",
    "malicious pickle": "refuse",
    "stack and poses differ in count": "5",
}


@pytest.mark.parametrize("case", list(CASES))
def test_backproject_bad_input(tmp_path, monkeypatch, capsys, case):
    monkeypatch.chdir(tmp_path)
    args = _break(case, tmp_path)
    code = main(["backproject", *args, "-o", str(tmp_path / "out.mrc"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1, err
    assert len(err) == 1 and err[0].startswith("cryoscape backproject: error:"), err
    assert CASES[case].lower() in err[0].lower(), err[0]
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "out.mrc").exists()


def test_backproject_never_overwrites_without_force(tmp_path, capsys):
    _dataset(tmp_path)
    (tmp_path / "out_half1.mrc").write_text("mine")
    assert main(["backproject", str(tmp_path / "p.star"), "-o", str(tmp_path / "out.mrc"), "-q"]) == 1
    assert (tmp_path / "out_half1.mrc").read_text() == "mine"
    assert "--force" in capsys.readouterr().err
    assert main(["backproject", str(tmp_path / "p.star"), "-o", str(tmp_path / "out.mrc"), "-q", "--force"]) == 0


def test_backproject_rejects_an_unknown_or_missing_device(tmp_path, capsys):
    import torch

    _dataset(tmp_path)
    assert main(["backproject", str(tmp_path / "p.star"), "-o", str(tmp_path / "o.mrc"), "--device", "tpu9", "-q"]) == 1
    assert "unknown device" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert (
            main(["backproject", str(tmp_path / "p.star"), "-o", str(tmp_path / "o.mrc"), "--device", "cuda", "-q"])
            == 1
        )
        assert "no CUDA device" in capsys.readouterr().err
