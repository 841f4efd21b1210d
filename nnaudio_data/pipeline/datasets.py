"""Dataset wrappers: any map-style or iterable source of audio -> a dataset whose ``collate``
makes padded batches with lengths.

Interface:

* :class:`AudioDataset` - map-style. ``DataLoader(ds, batch_size=..., collate_fn=ds.collate)``.
* :class:`AudioIterableDataset` - iterable, split by rank (``torch.distributed``) and by
  DataLoader worker, so that every item is read exactly once.
* :func:`worker_info` - ``(rank, world_size, worker, num_workers)`` of the calling process.

The source holds items in any form :class:`~nnaudio_data.pipeline.collate.WaveCollate` accepts:
paths or encoded bytes, ``(audio, sample_rate[, label])`` tuples (audio a tensor / array, or a
path), dicts. Items are decoded in ``__getitem__`` / ``__iter__`` (so in the worker processes);
an item that does not decode is raised or, with ``policy="skip"``, replaced by a
:class:`~nnaudio_data.pipeline.policy.Skipped` marker that ``collate`` counts in
``batch.skipped``. With a ``transform``, ``collate`` is a
:class:`~nnaudio_data.pipeline.collate.SpecCollate` (the transform runs in the CPU worker and the
batches are ``SpecBatch`` es); without one it is a ``WaveCollate`` (run the transform on the device
with :class:`~nnaudio_data.pipeline.device.DeviceStage`).

Unkeyed items get their index in the source as key (``"17"``), so keys are unique.

Hugging Face ``datasets`` (see :mod:`~nnaudio_data.pipeline.hf`): a ``datasets.Dataset`` is a
map-style source (``AudioDataset(ds, label_key="label")``; split it across DDP ranks with
``split_dataset_by_node`` or a rank-aware sampler); a streaming ``datasets.IterableDataset`` is an
iterable source, which ``AudioIterableDataset`` splits by rank with
``datasets.distributed.split_dataset_by_node`` (unless it was split already) and leaves the split
by worker to ``datasets`` itself (by shard: give it at least as many shards as workers, or
the extra workers get none), so every row is read once. Such rows without a key or a path get
``"rank<r>-worker<w>-<i>"``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, IterableDataset

from nnaudio_data._checks import check_non_negative_int, check_positive_int
from nnaudio_data.pipeline.collate import SpecCollate, WaveCollate
from nnaudio_data.pipeline.policy import FaultPolicy, Skipped

__all__ = ["AudioDataset", "AudioIterableDataset", "is_hf_iterable", "worker_info"]


def worker_info() -> tuple[int, int, int, int]:
    """``(rank, world_size, worker, num_workers)`` of the calling process.

    The rank is torch.distributed's when it is initialised, else the ``RANK`` / ``WORLD_SIZE``
    environment variables that ``torchrun`` sets (as webdataset reads them), else ``(0, 1)``;
    the worker is the DataLoader worker, else ``(0, 1)``.
    """
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    elif "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    info = torch.utils.data.get_worker_info()
    worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank, world, worker, workers


def rank_and_world(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)``: the ones given, else :func:`worker_info`'s; a ``ValueError``
    naming them unless ``0 <= rank < world_size``."""
    default_rank, default_world, _, _ = worker_info()
    world = check_positive_int("world_size", default_world if world_size is None else world_size)
    rank = check_non_negative_int("rank", default_rank if rank is None else rank)
    if rank >= world:
        raise ValueError(f"rank must be < world_size={world}, got {rank}")
    return rank, world


def is_hf_iterable(source: Any) -> bool:
    """Whether ``source`` is a Hugging Face ``datasets.IterableDataset`` (without importing
    ``datasets``: a source of that type means it is imported already)."""
    module = sys.modules.get("datasets")
    return module is not None and isinstance(source, module.IterableDataset)


def _hf_rank_share(source: Any, rank: int, world: int) -> Any:
    """This rank's share of a streaming Hugging Face dataset (itself when already split)."""
    if world == 1 or getattr(source, "_distributed", None) is not None:
        return source
    from datasets.distributed import split_dataset_by_node

    return split_dataset_by_node(source, rank=rank, world_size=world)


def make_collate(transform: nn.Module | None, kwargs: dict[str, Any]) -> WaveCollate:
    """``WaveCollate(**kwargs)``, or ``SpecCollate(transform, **kwargs)`` with a transform."""
    return WaveCollate(**kwargs) if transform is None else SpecCollate(transform, **kwargs)


class AudioDataset(Dataset[Any]):
    """A map-style dataset of audio items, with the collate function that batches them.

    Args:
        source: a sequence or map-style dataset (``len`` and integer indexing) of paths, bytes,
            ``(audio, sample_rate[, label])`` tuples or dicts.
        transform: a CPU ``nn.Module`` run on each batch by ``collate`` (in the workers), or
            ``None`` for ``WaveBatch`` es.
        sample_rate, resample, mono, check_finite, audio_key, label_key, dtype: as
            :class:`~nnaudio_data.pipeline.collate.WaveCollate`.
        policy: the fault policy (``"raise"`` default, ``"skip"``).

    Attributes:
        collate: the collate function to give the DataLoader (picklable).
    """

    def __init__(
        self,
        source: Any,
        *,
        transform: nn.Module | None = None,
        policy: FaultPolicy | str | None = None,
        **collate_kwargs: Any,
    ) -> None:
        if not hasattr(source, "__len__") or not hasattr(source, "__getitem__"):
            raise ValueError(
                f"source must support len() and indexing, got {type(source).__name__}; "
                "use AudioIterableDataset for iterables"
            )
        self.source = source
        self.collate = make_collate(transform, {"policy": policy, **collate_kwargs})

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any] | Skipped:
        return self.collate.prepare(self.source[index], int(index))

    def __repr__(self) -> str:
        return f"AudioDataset({len(self)} items, collate={self.collate!r})"


class AudioIterableDataset(IterableDataset[Any]):
    """An iterable dataset of audio items, split by rank and worker, with its collate function.

    Item ``j`` of ``source`` goes to consumer ``j % (world_size * num_workers)`` (consumer
    ``rank * num_workers + worker``), so every item is read once per epoch across all ranks and
    workers; ``source`` is iterated in full by each consumer (it should be cheap to iterate:
    paths, or a generator of small records). ``state_dict()`` / ``load_state_dict()`` let
    ``torchdata``'s ``StatefulDataLoader`` resume mid-epoch without decoding the items already
    delivered.

    Args:
        source: an iterable (re-iterable for several epochs) of items as :class:`AudioDataset`.
        transform, policy, **collate_kwargs: as :class:`AudioDataset`.
    """

    def __init__(
        self,
        source: Iterable[Any],
        *,
        transform: nn.Module | None = None,
        policy: FaultPolicy | str | None = None,
        **collate_kwargs: Any,
    ) -> None:
        if not isinstance(source, Iterable):
            raise ValueError(f"source must be iterable, got {type(source).__name__}")
        self.source = source
        self.collate = make_collate(transform, {"policy": policy, **collate_kwargs})

        self._next = 0  # the source index after the last item this consumer yielded
        self._resume_at = 0

    def state_dict(self) -> dict[str, int]:
        """Where this consumer (one worker's copy) stands, for ``StatefulDataLoader``."""
        return {"next_index": self._next}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume the next iteration after ``state``: earlier items are passed over undecoded."""
        self._resume_at = int(state["next_index"])

    def __iter__(self) -> Iterator[dict[str, Any] | Skipped]:
        rank, world, worker, workers = worker_info()
        start, self._resume_at = self._resume_at, 0
        self._next = start
        if is_hf_iterable(self.source):
            yield from self._iter_hf(start, rank, world, worker)
            return
        consumers, me = world * workers, rank * workers + worker
        for index, item in enumerate(self.source):
            if index >= start and index % consumers == me:
                self._next = index + 1
                yield self.collate.prepare(item, index)

    def _iter_hf(
        self, start: int, rank: int, world: int, worker: int
    ) -> Iterator[dict[str, Any] | Skipped]:
        """A streaming Hugging Face dataset: split by rank here, by worker inside ``datasets``
        (indices count this consumer's rows)."""
        for index, row in enumerate(_hf_rank_share(self.source, rank, world)):
            if index < start:
                continue
            self._next = index + 1
            out = self.collate.prepare(row, index)
            if isinstance(out, dict) and out["key"] == str(index):  # no key, no path
                out["key"] = f"rank{rank}-worker{worker}-{index}"
            yield out

    def __repr__(self) -> str:
        return f"AudioIterableDataset(collate={self.collate!r})"
