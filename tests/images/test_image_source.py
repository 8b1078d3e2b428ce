"""ImageSource (lazy and in-memory), batching and chunked streaming."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cryoscape.data.images as images_module
from cryoscape.data.batching import ParticleBatchSampler, ParticleImageDataset, iterate_batches, make_dataloader
from cryoscape.data.images import ImageSource, iterate_chunks, load_image_table
from cryoscape.data.particle_io import load_stacks
from cryoscape.data.particles import ParticleTable
from cryoscape.errors import InputError
from cryoscape.io.mrc_writer import write_stack


def mixed_table(pa, pb, rows):
    """Particles drawn from two stacks: rows = list of (stack 0/1, index)."""
    paths = np.array([str(pa if s == 0 else pb) for s, _ in rows], dtype=object)
    return ParticleTable(
        image_paths=paths, image_indices=np.array([i for _, i in rows]), box_size=16, apix=np.full(len(rows), 1.5)
    )


ROWS = [(1, 4), (0, 0), (0, 6), (1, 0), (0, 3), (1, 2), (0, 3)]


def expected(a, b, rows):
    return np.stack([(a if s == 0 else b)[i] for s, i in rows])


@pytest.mark.parametrize("lazy", [True, False])
def test_get_returns_requested_order_across_stacks(two_stacks, lazy):
    pa, pb, a, b = two_stacks
    source = ImageSource.from_table(mixed_table(pa, pb, ROWS), lazy=lazy)
    assert len(source) == 7
    want = expected(a, b, ROWS)
    np.testing.assert_array_equal(source.get(np.arange(7)), want)
    order = np.array([6, 0, 3, 3, 1])
    got = source.get(order)
    assert got.dtype == np.float32 and got.shape == (5, 16, 16)
    np.testing.assert_array_equal(got, want[order])


def test_lazy_and_in_memory_are_identical(two_stacks, rng):
    pa, pb, a, b = two_stacks
    table = load_stacks([pa, pb])
    lazy, eager = ImageSource.from_table(table), ImageSource.from_table(table, lazy=False)
    for batch in iterate_batches(len(table), 5, seed=3):
        np.testing.assert_array_equal(lazy.get(batch), eager.get(batch))
    np.testing.assert_array_equal(eager.get(np.arange(12)), np.concatenate([a, b]))
    assert len(lazy._stacks) == 2  # one open stack per distinct file


def test_invert(two_stacks):
    pa, _, a, _ = two_stacks
    table = load_stacks([pa])
    np.testing.assert_array_equal(ImageSource.from_table(table, invert=True).get(np.array([2])), -a[[2]])
    np.testing.assert_array_equal(ImageSource.from_table(table, lazy=False, invert=True).get(np.array([2])), -a[[2]])


@pytest.mark.parametrize("lazy", [True, False])
def test_nan_pixel_names_the_particle(tmp_path, lazy):
    imgs = np.zeros((4, 8, 8), np.float32)
    imgs[2, 3, 5] = np.nan
    path = write_stack(tmp_path / "nan.mrcs", imgs, 1.0)
    source = ImageSource.from_table(load_stacks([path]), lazy=lazy)
    assert source.get(np.array([0, 1, 3])).sum() == 0
    with pytest.raises(InputError, match=r"particle 2 \(image 2 of .*nan.mrcs\) holds NaN/Inf pixels"):
        source.get(np.array([1, 2]))


def test_construction_checks_stacks_and_indices(two_stacks, tmp_path):
    pa, pb, _, _ = two_stacks
    with pytest.raises(InputError, match=r"particle 1 refers to image 7 of .*a.mrcs, which holds only 7 images"):
        ImageSource.from_table(mixed_table(pa, pb, [(0, 6), (0, 7)]))
    table = mixed_table(pa, pb, [(0, 1)])
    table.box_size = 32
    with pytest.raises(InputError, match=r"a.mrcs holds 16×16 images but the particles have box size 32"):
        ImageSource.from_table(table)
    missing = mixed_table(tmp_path / "gone.mrcs", pb, [(0, 0)])
    with pytest.raises(InputError, match="gone.mrcs does not exist"):
        ImageSource.from_table(missing)
    source = ImageSource.from_table(mixed_table(pa, pb, [(0, 0), (1, 1)]))
    with pytest.raises(InputError, match=r"particle index 2 is out of range \(there are 2 particles\)"):
        source.get(np.array([2]))


def test_in_memory_refuses_when_ram_is_short(two_stacks, monkeypatch):
    pa, _, _, _ = two_stacks
    monkeypatch.setattr(images_module, "available_memory_bytes", lambda: 1000)
    with pytest.raises(InputError, match=r"needs 0.0 GiB but only 0.0 GiB of memory is available; use lazy loading"):
        ImageSource.from_table(load_stacks([pa]), lazy=False)
    ImageSource.from_table(load_stacks([pa]), lazy=True)  # lazy needs no room


def test_available_memory_is_plausible():
    assert 2**26 < images_module.available_memory_bytes() < 2**50


def test_load_image_table_from_stack_and_list(two_stacks, tmp_path):
    pa, pb, _, _ = two_stacks
    table, kind = load_image_table(pa)
    assert kind == "stack" and len(table) == 7 and table.box_size == 16
    np.testing.assert_allclose(table.apix, 1.5, atol=1e-6)
    (tmp_path / "list.txt").write_text("a.mrcs\nb.mrcs\n")
    table, kind = load_image_table(tmp_path / "list.txt")
    assert len(table) == 12
    np.testing.assert_array_equal(table.image_indices, [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4])
    with pytest.raises(InputError, match="unknown image input type '.png'"):
        load_image_table(tmp_path / "x.png")


def test_iterate_batches():
    batches = list(iterate_batches(10, 4, shuffle=False))
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [len(b) for b in iterate_batches(10, 4, drop_last=True)] == [4, 4]
    shuffled = np.concatenate(list(iterate_batches(10, 3, seed=1)))
    assert sorted(shuffled.tolist()) == list(range(10)) and shuffled.tolist() != list(range(10))
    again = np.concatenate(list(iterate_batches(10, 3, seed=1)))
    np.testing.assert_array_equal(shuffled, again)


def test_batch_sampler_epochs_and_ranks():
    sampler = ParticleBatchSampler(20, 4, seed=5)
    first = np.concatenate(list(sampler))
    sampler.set_epoch(1)
    second = np.concatenate(list(sampler))
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(20))
    assert first.tolist() != second.tolist()
    ranks = [ParticleBatchSampler(22, 4, seed=5, rank=r, world_size=2) for r in range(2)]
    assert [len(r) for r in ranks] == [6, 6]  # each rank takes its half of the 6 batches of a 22-permutation
    one = ParticleBatchSampler(22, 4, seed=5)
    for whole, *shares in zip(one, *ranks):  # together the ranks process exactly one process's batches
        assert sorted(np.concatenate(shares).tolist()) == sorted(whole.tolist())


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloader_yields_whole_batches(two_stacks, num_workers):
    pa, pb, a, b = two_stacks
    source = ImageSource.from_table(load_stacks([pa, pb]))
    source.get(np.array([0]))  # an open memory map must not stop the workers
    loader = make_dataloader(source, ParticleBatchSampler(len(source), 5, seed=0), num_workers=num_workers)
    all_images = np.concatenate([a, b])
    seen = []
    for images, indices in loader:
        assert isinstance(images, torch.Tensor) and images.dtype == torch.float32
        assert images.shape == (len(indices), 16, 16)
        np.testing.assert_array_equal(images.numpy(), all_images[indices.numpy()])
        seen += indices.tolist()
    assert sorted(seen) == list(range(12)) and len(loader) == 3
    images, idx = ParticleImageDataset(source)[3]
    assert images.shape == (1, 16, 16) and idx.tolist() == [3]


def test_iterate_chunks_streams_in_order(two_stacks):
    pa, pb, a, b = two_stacks
    source = ImageSource.from_table(load_stacks([pa, pb]))
    chunks = list(iterate_chunks(source, 5))
    assert [c[0].tolist() for c in chunks] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks]), np.concatenate([a, b]))
