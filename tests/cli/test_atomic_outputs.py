"""Outputs appear whole or not at all (issue 11, items 12 and 13): a killed, failed or out-of-space
command leaves nothing under its outputs' names, says why in one line, and a rerun works."""

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cryoscape.cli.main import main
from cryoscape.errors import OverwriteError
from cryoscape.io.mrc import read_map, write_map
from cryoscape.io.staging import output_transaction, staged_file, staged_folder

CLI = [sys.executable, "-m", "cryoscape.cli.main"]


def _names(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


def test_a_transaction_publishes_everything_or_nothing(tmp_path):
    with output_transaction():
        write_map(tmp_path / "a.mrc", np.ones((4, 4, 4), np.float32), 1.0)
        with staged_folder(tmp_path / "folder") as folder:
            write_map(folder / "b.mrc", np.zeros((4, 4, 4), np.float32), 1.0)
        assert _names(tmp_path) - {n for n in _names(tmp_path) if n.startswith(".")} == set()  # held back
    assert {"a.mrc", "folder", "folder/b.mrc"} <= _names(tmp_path)
    assert read_map(tmp_path / "folder/b.mrc")[0].shape == (4, 4, 4)
    with pytest.raises(RuntimeError), output_transaction():
        write_map(tmp_path / "c.mrc", np.ones((4, 4, 4), np.float32), 1.0)
        raise RuntimeError("a later step fails")
    assert _names(tmp_path) == {"a.mrc", "folder", "folder/b.mrc"}  # nothing of the failed command, no temp


def test_a_staged_file_keeps_the_old_file_until_the_new_one_is_complete(tmp_path):
    path = tmp_path / "labels.npy"
    np.save(path, np.arange(3))
    with pytest.raises(OverwriteError):
        with staged_file(path):
            pass
    with pytest.raises(ValueError), staged_file(path, force=True) as staged:
        np.save(staged, np.arange(10))
        raise ValueError("interrupted half way")
    assert np.load(path).tolist() == [0, 1, 2] and _names(tmp_path) == {"labels.npy"}


@pytest.fixture(scope="module")
def particles(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", "adk_open", "-o", str(out), "-n", "64", "--box", "32", "--apix", "3.0", "-q"]) == 0
    return out


def test_an_error_after_the_computation_leaves_no_output(particles, tmp_path, capsys):
    write_map(tmp_path / "small.mrc", np.zeros((16, 16, 16), np.float32), 6.0)
    args = ["backproject", str(particles / "particles.star"), "-o", str(tmp_path / "map.mrc"), "-q"]
    assert main([*args, "--reference", str(tmp_path / "small.mrc")]) == 1
    assert "the reference is 16³ but the particles are 32²" in capsys.readouterr().err
    assert _names(tmp_path) == {"small.mrc"}
    assert main(args) == 0  # a plain rerun works
    assert {"map.mrc", "map_half1.mrc", "map_half2.mrc", "map_fsc.png"} <= _names(tmp_path)


def test_simulate_refuses_an_existing_ground_truth_map_before_writing(tmp_path, capsys):
    (tmp_path / "gt").mkdir()
    write_map(tmp_path / "gt/00_adk_open.mrc", np.zeros((4, 4, 4), np.float32), 1.0)
    assert main(["simulate", "adk_open", "-o", str(tmp_path), "-n", "8", "--box", "32", "--apix", "3", "-q"]) == 1
    assert "gt/00_adk_open.mrc exists" in capsys.readouterr().err
    assert _names(tmp_path) == {"gt", "gt/00_adk_open.mrc"}


def _limit_file_size(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    """A file-size limit (RLIMIT_FSIZE) fails writes as a full disk does, without root: the stack is
    reserved before it is written through its memory map, so the error is a message, not SIGBUS."""
    out = tmp_path / "sim"
    command = [*CLI, "simulate", "adk_open", "-o", str(out), "-n", "300", "--box", "64", "-q"]
    result = subprocess.run(command, capture_output=True, text=True, preexec_fn=_limit_file_size(1_000_000))
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot write" in lines[0] and "particles.mrcs" in lines[0], result.stderr
    assert "file-size limit" in lines[0]
    assert not any(out.rglob("*.*")) if out.exists() else True  # no stack, star or temporary file


@pytest.mark.skipif(os.getuid() == 0, reason="root ignores file permissions")
def test_a_read_only_folder_is_one_line(particles, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(["backproject", str(particles / "particles.star"), "-o", str(folder / "map.mrc"), "-q"]) == 1
    finally:
        folder.chmod(0o755)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "map.mrc" in err[0] and "ermission" in err[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_simulation_leaves_no_output_and_a_rerun_works(tmp_path, sig):
    out = tmp_path / "sim"
    command = [*CLI, "simulate", "adk_open", "-o", str(out), "-n", "20000", "--box", "64", "-q"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list(out.glob(".particles.part-*")) and time.time() < deadline:  # the stack is being written
        time.sleep(0.05)
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    visible = {n for n in _names(out) if not Path(n).name.startswith(".")}
    assert visible <= {"gt"}, visible  # no stack claiming 20,000 images with a zero tail, no star
    if sig == signal.SIGTERM:
        assert process.returncode == 130 and "interrupted" in err
        assert _names(out) <= {"gt"}  # its temporary files removed too
    small = [*CLI, "simulate", "adk_open", "-o", str(out), "-n", "16", "--box", "32", "--apix", "3", "-q"]
    assert subprocess.run(small, capture_output=True).returncode == 0
    assert {"particles.mrcs", "particles.star"} <= _names(out)
