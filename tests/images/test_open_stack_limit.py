"""Thousands of stacks under a low open-file limit (issue 11, item 2).

RELION writes one stack per micrograph: a project of 3,000 micrographs has 3,000 stacks. Lazy
reading must not hold a file descriptor per stack (it used to hold two, and failed after ~500
stacks under ``ulimit -n 1024`` with "holds no readable image data"), in the main process and in
DataLoader workers alike. The limit is set in a child process so that pytest keeps its own.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from cryoscape.data.images import ImageSource, open_stack_limit
from cryoscape.data.particle_io import load_particles, save_star
from cryoscape.data.particles import CTFParams, ParticleTable
from cryoscape.io.mrc_stacks import MRCStack

N_STACKS, D = 3000, 8
ROOT = Path(__file__).resolve().parents[2]


def _write_mrcs(path: Path, images: np.ndarray) -> None:
    """A float32 stack written as header + raw images (write_stack's staging is slow for 3,000)."""
    with mrcfile.new(path.with_suffix(".hdr"), overwrite=True) as mrc:
        mrc.set_data(np.zeros(images.shape, np.float32))
        mrc.set_image_stack()
        mrc.voxel_size = 1.0
        header = mrc.header.tobytes()
    path.with_suffix(".hdr").unlink()
    path.write_bytes(header + images.astype(np.float32).tobytes())


def stack_value(paths, indices) -> np.ndarray:
    """The value every pixel of image ``index`` of ``mic_<s>.mrcs`` holds: 8 s + index."""
    return np.array([8 * int(Path(p).stem.split("_")[1]) + i for p, i in zip(paths, indices)], dtype=np.float32)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A RELION 3.1 star of 3,000 micrograph stacks of 1-4 images each (8×8 px): ~7,500 particles."""
    root = tmp_path_factory.mktemp("relion")
    movies = root / "Extract" / "job007" / "Movies"
    movies.mkdir(parents=True)
    counts = np.random.default_rng(0).integers(1, 5, N_STACKS)
    paths, indices = [], []
    for s, count in enumerate(counts.tolist()):
        path = movies / f"mic_{s:05d}.mrcs"
        _write_mrcs(path, np.ones((count, D, D), np.float32) * (8 * s + np.arange(count))[:, None, None])
        paths += [str(path)] * count
        indices += range(count)
    n = len(paths)
    table = ParticleTable(
        image_paths=np.array(paths, dtype=object),
        image_indices=np.array(indices),
        box_size=D,
        apix=np.full(n, 1.0),
        rotations=np.tile(np.eye(3), (n, 1, 1)),
        shifts_A=np.zeros((n, 2)),
        ctf=CTFParams.constant(n),
    )
    save_star(root / "particles.star", table)
    return root / "particles.star"


CHILD = """
import os, resource, sys
import numpy as np
resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from cryoscape.data.batching import ParticleBatchSampler, iterate_batches, make_dataloader
from cryoscape.data.images import ImageSource, iterate_chunks
from cryoscape.data.particle_io import load_particles
sys.path.insert(0, sys.argv[2])
from test_open_stack_limit import stack_value

table = load_particles(sys.argv[1])
want = stack_value(table.image_paths, table.image_indices)
n = len(table)
source = ImageSource.from_table(table)
most = 0
for batch in iterate_batches(n, 64, seed=0):
    images = source.get(batch)
    assert (images == want[batch][:, None, None]).all()
    most = max(most, len(os.listdir("/proc/self/fd")))
for rows, images in iterate_chunks(source, 500):
    assert (images == want[rows][:, None, None]).all()
print("mapped", len(source._stacks), "most fds", most, flush=True)
seen = np.zeros(n, bool)
for epoch in range(2):
    sampler = ParticleBatchSampler(n, 64, seed=1)
    sampler.set_epoch(epoch)
    for images, rows in make_dataloader(source, sampler, num_workers=2):
        assert (images.numpy() == want[rows.numpy()][:, None, None]).all()
        seen[rows.numpy()] = True
assert seen.all()
print("read", n, "particles of", len(source.paths), "stacks", flush=True)
"""


def _child(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, timeout=600, cwd=ROOT
    )


def test_3000_stacks_under_256_open_files(project):
    run = _child(CHILD, str(project), str(Path(__file__).parent))
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    mapped, most = int(lines[0].split()[1]), int(lines[0].split()[4])
    assert mapped == 256 // 8  # open_stack_limit under this limit; the other stacks are read unmapped
    assert most < 256 // 2, lines[0]
    assert lines[1].startswith("read ") and lines[1].endswith(f"particles of {N_STACKS} stacks")


def test_a_few_open_maps_and_the_rest_read_unmapped(project):
    table = load_particles(project)
    want = stack_value(table.image_paths, table.image_indices)
    source = ImageSource.from_table(table, max_open_stacks=5)
    order = np.random.default_rng(3).permutation(len(table))
    for start in range(0, len(order), 100):
        batch = order[start : start + 100]
        np.testing.assert_array_equal(
            source.get(batch), np.broadcast_to(want[batch][:, None, None], (len(batch), D, D))
        )
    assert len(source._stacks) == 5 and all(s.is_open for s in source._stacks.values())
    assert sum(s.is_open for s in source._all) == 5
    copy = pickle.loads(pickle.dumps(source))  # what a spawned DataLoader worker gets
    assert copy._stacks == {} and not any(s.is_open for s in copy._all)
    np.testing.assert_array_equal(copy.get(order[:7])[:, 0, 0], want[order[:7]])
    assert 1 <= open_stack_limit() <= 128


def _forked_reader(source: ImageSource, rows: np.ndarray, queue) -> None:
    inherited = sorted(source._stacks)
    images = source.get(rows)
    queue.put((inherited, sorted(source._stacks), images[:, 0, 0].tolist()))


def test_a_forked_worker_maps_its_own_stacks(project):
    table = load_particles(project)
    want = stack_value(table.image_paths, table.image_indices)
    source = ImageSource.from_table(table, max_open_stacks=2)
    source.get(np.array([0, len(table) - 1]))  # the parent maps the first and the last stack
    parent = sorted(source._stacks)
    rows = np.array([len(table) // 2])
    queue = multiprocessing.get_context("fork").SimpleQueue()
    child = multiprocessing.get_context("fork").Process(target=_forked_reader, args=(source, rows, queue))
    child.start()
    inherited, own, values = queue.get()
    child.join(timeout=60)
    assert inherited == parent and len(own) == 1 and own[0] not in parent  # the parent's maps were dropped
    assert values == want[rows].tolist()
    assert sorted(source._stacks) == parent and all(source._stacks[k].is_open for k in parent)
    np.testing.assert_array_equal(source.get(np.array([0, len(table) - 1]))[:, 0, 0], want[[0, len(table) - 1]])


EMFILE = """
import os, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
import numpy as np
from cryoscape.data.images import ImageSource
from cryoscape.data.particle_io import load_particles
from cryoscape.errors import InputError

source = ImageSource.from_table(load_particles(sys.argv[1]))
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
os.close(held.pop())  # one descriptor left: a map needs two for a moment, a read one
print("one left", source.get(np.array([5]))[0, 0, 0], len(source._stacks), flush=True)
held.append(os.open(os.devnull, os.O_RDONLY))  # none left
try:
    source.get(np.array([9]))
except InputError as err:
    print("error", err)
"""


def test_out_of_descriptors_is_one_clear_line(project):
    run = _child(EMFILE, str(project))
    assert run.returncode == 0, run.stderr[-3000:]
    first, second = run.stdout.splitlines()
    table = load_particles(project)
    assert first == f"one left {stack_value(table.image_paths[5:6], table.image_indices[5:6])[0]} 0"
    assert second.startswith("error cannot open ") and "too many open files (this process may open 64;" in second
    assert "holds no readable image data" not in run.stdout


@pytest.mark.parametrize("dtype", [np.float32, np.int16, ">f4"])
def test_unmapped_reads_equal_mapped_reads(tmp_path, dtype):
    """The preadv path (stacks beyond the open set) gives what the memory map gives: any order,
    duplicates, runs longer than one preadv call, and modes other than native float32."""
    data = np.random.default_rng(1).integers(-500, 500, size=(1200, 4, 4)).astype(dtype)
    with mrcfile.new(tmp_path / "s.mrcs") as mrc:
        mrc.set_data(data)
    stack = MRCStack(tmp_path / "s.mrcs")
    indices = np.concatenate([np.arange(100, 1200), [7, 7, 3, 1199, 0]])  # a run of 1,100 images
    out = np.full((len(indices), 4, 4), np.nan, np.float32)
    rows = np.random.default_rng(2).permutation(len(indices))
    stack.read_unmapped(indices, out, rows)
    assert not stack.is_open
    want = np.empty_like(out)
    want[rows] = data[indices].astype(np.float32)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(stack.get(indices), data[indices].astype(np.float32))
    assert stack.is_open
    stack.close()
    assert not stack.is_open
