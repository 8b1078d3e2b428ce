"""The restricted unpickler and cryoDRGN's pose/CTF pickle layouts."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest

from cryoscape.errors import InputError, OverwriteError
from cryoscape.io.legacy_pickle import (
    RestrictedUnpickler,
    read_cryodrgn_ctf,
    read_cryodrgn_poses,
    safe_load_pickle,
    write_cryodrgn_ctf,
    write_cryodrgn_poses,
)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_arrays_and_tuples_load_with_every_protocol(tmp_path, protocol):
    rot = np.random.default_rng(0).normal(size=(5, 3, 3)).astype(np.float32)
    trans = np.arange(10, dtype=np.float64).reshape(5, 2) / 100
    obj = (rot, trans, [np.int64(3), np.float32(2.5)], np.array([1, 2], dtype=np.int32))
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    back = safe_load_pickle(path)
    assert back[0].dtype == np.float32 and np.array_equal(back[0], rot)
    assert np.array_equal(back[1], trans)
    assert back[2][0] == 3 and back[2][1] == np.float32(2.5)
    assert np.array_equal(back[3], [1, 2])


@pytest.mark.parametrize("protocol", [0, 2])
def test_numpy1_module_names_are_accepted(tmp_path, protocol):
    """numpy 1.x pickles name numpy.core.multiarray; the text opcodes let us rewrite one by hand."""
    data = pickle.dumps(np.arange(6, dtype=np.float32).reshape(2, 3), protocol=protocol)
    assert b"numpy._core.multiarray" in data
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path = tmp_path / "np1.pkl"
    path.write_bytes(data)
    assert np.array_equal(safe_load_pickle(path), np.arange(6, dtype=np.float32).reshape(2, 3))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "poses.pkl"
    path.write_bytes(pickle.dumps((np.eye(3)[None], _Evil(marker))))
    with pytest.raises(InputError, match=r"refuses to load (posix|nt|os)\.system"):
        read_cryodrgn_poses(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "module,name",
    [
        ("builtins", "eval"),
        ("subprocess", "Popen"),
        ("numpy", "load"),
        ("numpy.core.multiarray", "frombuffer_evil"),
        ("builtins", "getattr"),
        ("torch", "load"),
    ],
)
def test_other_globals_are_refused(module, name):
    with pytest.raises(InputError, match=f"refuses to load {module}.{name}"):
        RestrictedUnpickler(io.BytesIO(b""), "x.pkl").find_class(module, name)


def test_object_arrays_are_refused(tmp_path):
    path = tmp_path / "obj.pkl"
    path.write_bytes(pickle.dumps(np.array([1, "a"], dtype=object)))
    with pytest.raises(InputError):
        safe_load_pickle(path)


def test_garbage_and_empty_files(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle at all")
    with pytest.raises(InputError, match="bad.pkl"):
        read_cryodrgn_ctf(bad)
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_cryodrgn_poses(empty)


def test_pose_and_ctf_writers_use_cryodrgn_layout(tmp_path):
    rng = np.random.default_rng(1)
    rot = rng.normal(size=(4, 3, 3))
    trans = rng.uniform(-0.1, 0.1, (4, 2))
    p = write_cryodrgn_poses(tmp_path / "poses.pkl", rot, trans)
    with open(p, "rb") as f:
        obj = pickle.load(f)  # our own file: plain pickle is fine here
    assert isinstance(obj, tuple) and len(obj) == 2
    assert obj[0].dtype == np.float64 and obj[0].shape == (4, 3, 3) and np.array_equal(obj[0], rot)
    assert obj[1].dtype == np.float64 and np.array_equal(obj[1], trans)
    r2, t2 = read_cryodrgn_poses(p)
    assert np.array_equal(r2, rot) and np.array_equal(t2, trans)

    ctf = rng.uniform(0, 100, (4, 9))
    c = write_cryodrgn_ctf(tmp_path / "ctf.pkl", ctf)
    with open(c, "rb") as f:
        arr = pickle.load(f)
    assert arr.dtype == np.float32 and arr.shape == (4, 9)
    np.testing.assert_array_equal(read_cryodrgn_ctf(c), ctf.astype(np.float32).astype(np.float64))

    with pytest.raises(OverwriteError):
        write_cryodrgn_ctf(tmp_path / "ctf.pkl", ctf)
    write_cryodrgn_ctf(tmp_path / "ctf.pkl", ctf, force=True)


def test_rotation_only_pose_files(tmp_path):
    rot = np.tile(np.eye(3), (3, 1, 1))
    p = write_cryodrgn_poses(tmp_path / "rot.pkl", rot, None)
    r, t = read_cryodrgn_poses(p)
    assert t is None and np.array_equal(r, rot)


def test_pose_file_in_pixels_is_rejected(tmp_path):
    p = tmp_path / "old.pkl"
    p.write_bytes(pickle.dumps((np.tile(np.eye(3), (2, 1, 1)), np.array([[3.0, -5.0], [0.0, 1.0]]))))
    with pytest.raises(InputError, match="fraction"):
        read_cryodrgn_poses(p)


def test_wrong_shapes(tmp_path):
    p = tmp_path / "ctf.pkl"
    p.write_bytes(pickle.dumps(np.zeros((3, 8), dtype=np.float32)))
    with pytest.raises(InputError, match=r"\(N, 9\)"):
        read_cryodrgn_ctf(p)
    q = tmp_path / "poses.pkl"
    q.write_bytes(pickle.dumps((np.zeros((3, 3)), np.zeros((3, 2)))))
    with pytest.raises(InputError, match=r"\(N, 3, 3\)"):
        read_cryodrgn_poses(q)
