"""torchdata.nodes helpers: resumable audio loading graphs.

Interface:

* :class:`~nnaudio_data.pipeline.collate.BatchTransform` is the Mapper-ready stage:
  ``torchdata.nodes.Mapper(batches, BatchTransform(mel))``. It holds no iteration state, so a
  ``Loader``'s ``state_dict()`` / ``load_state_dict()`` resume exactly where the source nodes do.
* :class:`LoadBatch` - a picklable ``indices -> collate([dataset[i] for i in indices])``, the map
  function of a ``ParallelMapper`` over batches of indices (decode, pad and the CPU transform all
  run in the worker).
* :func:`audio_nodes` - sampler -> batches of indices -> ``LoadBatch`` (in ``num_workers``
  processes or threads, in order) -> optionally ``BatchTransform``: wrap it in
  ``torchdata.nodes.Loader`` and resume it mid-epoch with no sample lost or repeated.

``torchdata.stateful_dataloader.StatefulDataLoader`` works with the dataset wrappers as a
``DataLoader`` does: ``StatefulDataLoader(ds, batch_size=..., collate_fn=ds.collate)``; the
map-style wrapper resumes through the sampler's state, the iterable one through its own
``state_dict()`` (no item decoded twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import Sampler

from nnaudio_data._checks import check_choice, check_non_negative_int, check_positive_int
from nnaudio_data.batch import SpecBatch, WaveBatch
from nnaudio_data.pipeline.collate import BatchTransform, WaveCollate
from nnaudio_data.pipeline.datasets import AudioDataset, worker_info

__all__ = ["LoadBatch", "SplitSampler", "audio_nodes"]


class SplitSampler(Sampler[int]):
    """Indices ``0..n-1``, optionally shuffled per epoch, this rank's share only.

    Rank ``r`` of ``world_size`` gets positions ``r, r + world_size, ...`` of the epoch's order:
    every index goes to exactly one rank (no padding with repeats, unlike
    ``DistributedSampler``; ranks may differ by one item). The order depends only on ``seed`` and
    the epoch (:meth:`set_epoch`, which ``torchdata.nodes.SamplerWrapper`` calls), so a resumed
    run replays it exactly.

    Ranks that differ by one item may differ by one batch, and under DDP a rank with a batch more
    would wait for ever in the gradient all-reduce: for training pass ``drop_last=True``, which
    leaves out the epoch's last ``n % world_size`` positions (other items each epoch when
    shuffled) so that every rank gets ``n // world_size`` items.

    Args:
        n: number of items.
        shuffle: a new permutation per epoch.
        seed: the permutation seed.
        rank, world_size: this rank and the number of ranks (default: torch.distributed's, or 0
            and 1).
        drop_last: give every rank the same number of items, ``n // world_size``.
    """

    def __init__(
        self,
        n: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        drop_last: bool = False,
    ) -> None:
        self.n = check_non_negative_int("n", n)
        default_rank, default_world, _, _ = worker_info()
        self.world_size = check_positive_int(
            "world_size", default_world if world_size is None else world_size
        )
        self.rank = check_non_negative_int("rank", default_rank if rank is None else rank)
        if self.rank >= self.world_size:
            raise ValueError(f"rank must be < world_size={self.world_size}, got {self.rank}")
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.n, generator=generator).tolist()

    def __iter__(self) -> Any:
        order = self._order()
        if self.drop_last:  # the same number of items on every rank
            order = order[: self.n - self.n % self.world_size]
        return iter(order[self.rank :: self.world_size])

    def __len__(self) -> int:
        if self.drop_last:
            return self.n // self.world_size
        return len(range(self.rank, self.n, self.world_size))


class LoadBatch:
    """``indices -> collate([dataset[i] for i in indices])`` (picklable when both are).

    Args:
        dataset: map-style dataset (e.g. :class:`~nnaudio_data.pipeline.datasets.AudioDataset`).
        collate: the collate function (default: ``dataset.collate``).
    """

    def __init__(self, dataset: Any, collate: WaveCollate | None = None) -> None:
        collate = collate if collate is not None else getattr(dataset, "collate", None)
        if collate is None:
            raise ValueError("collate is required when the dataset has no .collate attribute")
        self.dataset = dataset
        self.collate = collate

    def __call__(self, indices: Sequence[int]) -> WaveBatch | SpecBatch:
        return self.collate([self.dataset[i] for i in indices])


def audio_nodes(
    dataset: Any,
    *,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    sampler: Sampler[int] | None = None,
    drop_last: bool = False,
    num_workers: int = 0,
    method: str = "process",
    multiprocessing_context: str | None = None,
    device_transform: nn.Module | None = None,
    **dataset_kwargs: Any,
) -> Any:
    """A ``torchdata.nodes`` graph yielding padded batches; wrap it in ``nodes.Loader``.

    Args:
        dataset: an :class:`~nnaudio_data.pipeline.datasets.AudioDataset`, or a sequence of items
            that one is made of with ``**dataset_kwargs`` (``transform``, ``policy``,
            ``sample_rate``...).
        batch_size: items per batch.
        shuffle: shuffle every epoch (a new order per epoch, the same for the same ``seed``).
        seed: the shuffling seed.
        sampler: a sampler of indices instead (``shuffle`` / ``seed`` are then unused). The
            default is a :class:`SplitSampler` (this rank's share; one rank: all items); for DDP
            training pass ``SplitSampler(len(dataset), shuffle=..., drop_last=True)`` so that
            every rank runs the same number of steps.
        drop_last: drop the last, smaller batch.
        num_workers: processes (or threads) that load batches; 0 loads in the caller.
        method: ``"process"`` or ``"thread"``.
        multiprocessing_context: e.g. ``"fork"``, ``"spawn"`` (``None``: torch's default).
        device_transform: applied to each batch in the main process by a ``Mapper`` stage (e.g. a
            transform on the GPU); the CPU one goes in ``dataset_kwargs["transform"]``.

    Returns:
        the root node (``torchdata.nodes.BaseNode``).
    """
    from torchdata import nodes

    batch_size = check_positive_int("batch_size", batch_size)
    num_workers = check_non_negative_int("num_workers", num_workers)
    method = check_choice("method", method, ("process", "thread"))
    if not isinstance(dataset, AudioDataset):
        dataset = AudioDataset(dataset, **dataset_kwargs)
    elif dataset_kwargs:
        raise ValueError(
            f"{sorted(dataset_kwargs)} cannot be given with an AudioDataset: set them on it"
        )
    if sampler is None:
        sampler = SplitSampler(len(dataset), shuffle=shuffle, seed=seed)
    node: Any = nodes.SamplerWrapper(sampler)
    node = nodes.Batcher(node, batch_size=batch_size, drop_last=drop_last)
    load = LoadBatch(dataset)
    if num_workers == 0:
        node = nodes.Mapper(node, load)
    else:
        node = nodes.ParallelMapper(
            node,
            load,
            num_workers=num_workers,
            in_order=True,
            method=method,
            multiprocessing_context=multiprocessing_context,
        )
    if device_transform is not None:
        node = nodes.Mapper(node, BatchTransform(device_transform, no_grad=False))
    return node
