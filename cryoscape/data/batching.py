"""Batches of particle rows for training loops: shuffled index batches
(:func:`iterate_batches`, :class:`ParticleBatchSampler`, which splits each batch among torchrun's
processes), and a DataLoader whose workers fetch a whole batch with one call
(:class:`ParticleImageDataset`, :func:`make_dataloader`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from cryoscape.data.images import ImageSource
from cryoscape.errors import InputError


def _batches(n: int, batch_size: int, shuffle: bool, seed: int, drop_last: bool) -> list[np.ndarray]:
    if batch_size < 1:
        raise InputError(f"batch size must be positive, got {batch_size}")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    return [order[i : min(i + batch_size, stop)] for i in range(0, stop, batch_size)]


def iterate_batches(
    n: int, batch_size: int, shuffle: bool = True, seed: int = 0, drop_last: bool = False
) -> Iterator[np.ndarray]:
    """Yield int64 index arrays covering ``range(n)`` once, ``batch_size`` at a time.

    With ``shuffle`` the order is a permutation drawn from ``seed``; ``drop_last`` drops a final
    short batch.
    """
    yield from _batches(n, batch_size, shuffle, seed, drop_last)


class ParticleBatchSampler:
    """Batches of particle indices for ``DataLoader(..., sampler=this, batch_size=None)``.

    Each epoch uses the permutation of ``seed + epoch`` (call :meth:`set_epoch`). For distributed
    training give ``rank`` and ``world_size``: every rank takes its share ``batch[rank::world_size]``
    of each batch of the same permutation, so that the ranks together process exactly the batches
    one process would (a final batch smaller than ``world_size`` is dropped).
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ):
        if not 0 <= rank < world_size:
            raise InputError(f"rank {rank} is outside a world of size {world_size}")
        if batch_size < world_size:
            raise InputError(f"batch size {batch_size} is smaller than the number of processes {world_size}")
        self.n, self.batch_size, self.shuffle, self.seed, self.drop_last = n, batch_size, shuffle, seed, drop_last
        self.rank, self.world_size, self.epoch = rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _mine(self) -> list[np.ndarray]:
        batches = _batches(self.n, self.batch_size, self.shuffle, self.seed + self.epoch, self.drop_last)
        if self.world_size == 1:
            return batches
        return [b[self.rank :: self.world_size] for b in batches if len(b) >= self.world_size]

    def __iter__(self) -> Iterator[np.ndarray]:
        yield from self._mine()

    def __len__(self) -> int:
        return len(self._mine())


class ParticleImageDataset:
    """A map-style torch dataset whose items are whole batches: ``dataset[indices]`` returns
    ``(images (B, D, D) float32 tensor, indices (B,) int64 tensor)``; an int index gives B = 1.

    Use with :class:`ParticleBatchSampler` and ``batch_size=None`` so that one worker reads one
    batch with a single grouped :meth:`ImageSource.get`. (It does not subclass
    ``torch.utils.data.Dataset``, which DataLoader does not require, so that importing this module
    does not import torch.)
    """

    def __init__(self, source: ImageSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, indices):
        import torch

        indices = np.atleast_1d(np.asarray(indices, dtype=np.int64))
        return torch.from_numpy(self.source.get(indices)), torch.from_numpy(indices)


def make_dataloader(source: ImageSource, sampler: Iterable[np.ndarray], num_workers: int = 0):
    """A ``torch.utils.data.DataLoader`` yielding ``(images (B, D, D), indices (B,))`` batches in the
    order of ``sampler`` (a :class:`ParticleBatchSampler`, or any fixed sequence of index arrays);
    workers stay alive between epochs."""
    from typing import cast  # noqa: PLC0415

    from torch.utils.data import DataLoader, Dataset  # noqa: PLC0415

    dataset = cast(Dataset, ParticleImageDataset(source))  # a map-style dataset, duck-typed
    return DataLoader(
        dataset, sampler=sampler, batch_size=None, num_workers=num_workers, persistent_workers=num_workers > 0
    )
