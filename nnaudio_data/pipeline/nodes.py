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
* :class:`ProcessMapper` - the node that runs ``LoadBatch`` in worker processes: an in-order map
  over a ``concurrent.futures.ProcessPoolExecutor``. A worker that dies (the OOM-killer, a
  signal) is a ``RuntimeError`` naming the worker, its exit signal and the batch, raised as soon
  as the death is seen (``torchdata.nodes.ParallelMapper`` would wait for it for ever); the
  workers are joined at the end of each epoch (no zombies), or, with
  ``persistent_workers=True`` (as ``DataLoader``'s), kept for the next epoch: a new epoch then
  starts no processes, and each worker keeps what its transform built on its first batch.
* :class:`SeededBatches` and :class:`SeededStage` - how ``audio_nodes`` makes random ops
  (``RandomCrop``, the masks) reproducible: the sampler of batches tags each batch with the salt
  ``(seed, rank, epoch, batch number)`` - part of the graph's state - and the stages run their
  function inside :func:`nnaudio_data.ops.random_context` with it. The crops and masks are then
  the same whichever worker computes a batch, differ between batches and epochs, and a resumed
  ``Loader`` repeats them exactly. Use the two to build such a graph by hand.

``torchdata.stateful_dataloader.StatefulDataLoader`` works with the dataset wrappers as a
``DataLoader`` does: ``StatefulDataLoader(ds, batch_size=..., collate_fn=ds.collate)``; the
map-style wrapper resumes through the sampler's state, the iterable one through its own
``state_dict()`` (no item decoded twice).
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils.data import Sampler

from nnaudio_data._checks import check_choice, check_non_negative_int, check_positive_int
from nnaudio_data.batch import SpecBatch, WaveBatch
from nnaudio_data.ops import random_context
from nnaudio_data.pipeline.collate import BatchTransform, WaveCollate
from nnaudio_data.pipeline.datasets import AudioDataset, worker_info

try:
    from torchdata.nodes import BaseNode as _BaseNode
except ImportError:  # pragma: no cover - torchdata is optional (the "nodes" extra)
    _BaseNode = object

__all__ = [
    "LoadBatch",
    "ProcessMapper",
    "SeededBatch",
    "SeededBatches",
    "SeededStage",
    "SplitSampler",
    "audio_nodes",
]


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


class SeededBatch(NamedTuple):
    """A value (a batch of indices, then the batch) with the salt of its random draws."""

    salt: tuple[int, ...]
    value: Any


class SeededBatches(Sampler[SeededBatch]):
    """Batches of ``sampler``'s indices, each a :class:`SeededBatch` with the salt
    ``(seed, rank, epoch, batch number in the epoch)``.

    Wrap it in ``torchdata.nodes.SamplerWrapper``: that sets the epoch (:meth:`set_epoch`, passed
    on to ``sampler``) and records it with the batches yielded in its state, so a resumed graph
    gives the same batches with the same salts.

    Args:
        sampler: a sampler of indices (e.g. :class:`SplitSampler`).
        batch_size: indices per batch.
        drop_last: drop the last, smaller batch.
        seed: part of the salt (any integer; e.g. the shuffling seed).
        rank: part of the salt (default: ``sampler.rank`` where it has one, else this rank).
    """

    def __init__(
        self,
        sampler: Sampler[int],
        batch_size: int,
        *,
        drop_last: bool = False,
        seed: int = 0,
        rank: int | None = None,
    ) -> None:
        self.sampler = sampler
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        if rank is None:
            rank = getattr(sampler, "rank", None)
        self.rank = check_non_negative_int("rank", worker_info()[0] if rank is None else rank)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = check_non_negative_int("epoch", epoch)
        set_epoch = getattr(self.sampler, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)

    def _batch(self, step: int, indices: list[int]) -> SeededBatch:
        return SeededBatch((self.seed % 2**64, self.rank, self.epoch, step), indices)

    def __iter__(self) -> Iterator[SeededBatch]:
        indices: list[int] = []
        step = 0
        for index in self.sampler:
            indices.append(index)
            if len(indices) == self.batch_size:
                yield self._batch(step, indices)
                step, indices = step + 1, []
        if indices and not self.drop_last:
            yield self._batch(step, indices)

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class SeededStage:
    """A picklable map function over :class:`SeededBatch` es: ``fn(value)`` inside
    ``random_context(*salt, stage)``.

    Args:
        fn: the function (e.g. :class:`LoadBatch`, a ``BatchTransform``).
        stage: added to the salt, so that two stages of a graph draw independently.
        keep_salt: return ``SeededBatch(salt, fn(value))`` for a later stage instead of
            ``fn(value)``.
    """

    def __init__(self, fn: Callable[[Any], Any], stage: int = 0, *, keep_salt: bool = False):
        self.fn = fn
        self.stage = check_non_negative_int("stage", stage)
        self.keep_salt = bool(keep_salt)

    def __repr__(self) -> str:
        return f"SeededStage({self.fn!r}, stage={self.stage}, keep_salt={self.keep_salt})"

    def __call__(self, item: SeededBatch) -> Any:
        if not isinstance(item, SeededBatch):
            raise ValueError(f"item must be a SeededBatch, got {type(item).__name__}")
        with random_context(*item.salt, self.stage):
            out = self.fn(item.value)
        return SeededBatch(item.salt, out) if self.keep_salt else out


_WORKER: tuple[Callable[[Any], Any], Any] | None = None


def _start_worker(fn: Callable[[Any], Any], started: Any) -> None:
    """A worker's initializer: the map function arrives once, not with every item."""
    global _WORKER
    _WORKER = (fn, started)
    torch.set_num_threads(1)  # as torchdata's workers: one thread per worker process


def _run_in_worker(number: int, item: Any) -> Any:
    if _WORKER is None:
        raise RuntimeError("ProcessMapper's worker ran without its initializer")
    fn, started = _WORKER
    started.put((os.getpid(), number))  # written at once: known even if the worker dies
    return fn(item)


def _exit_status(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class ProcessMapper(_BaseNode):
    """A ``torchdata.nodes`` node: ``fn`` over ``source``'s items in ``num_workers`` processes,
    in order, at most ``2 * num_workers`` in flight; resumable (its state is the source's after
    the last item it yielded).

    Raises (from ``next``):
        RuntimeError: a worker process died while an item was in flight (killed by the
            OOM-killer or a signal, or it exited): the message names the worker (number, pid,
            exit signal) and the item (its number in the epoch). The other workers are stopped.
        the exception ``fn`` raised for an item, as itself (the workers are stopped; the state
        before it still resumes the epoch).

    Args:
        source: the node of items (e.g. a ``SamplerWrapper``).
        fn: a picklable function (sent to each worker once, when it starts).
        num_workers: worker processes.
        multiprocessing_context: ``"fork"``, ``"spawn"``, ``"forkserver"`` (``None``: the
            platform's default).
        persistent_workers: keep the worker processes from one epoch (``reset``) to the next
            instead of joining them at the end of each epoch; they end with the node (or with an
            error). A ``reset`` in mid-epoch waits for the items in flight and drops them.
    """

    def __init__(
        self,
        source: Any,
        fn: Callable[[Any], Any],
        *,
        num_workers: int,
        multiprocessing_context: str | None = None,
        persistent_workers: bool = False,
    ) -> None:
        super().__init__()
        self.source = source
        self.fn = fn
        self.num_workers = check_positive_int("num_workers", num_workers)
        self.multiprocessing_context = multiprocessing_context
        self.persistent_workers = bool(persistent_workers)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._workers: dict[int, Any] = {}
        self._pending: collections.deque[tuple[concurrent.futures.Future[Any], Any, int]] = (
            collections.deque()
        )

    def reset(self, initial_state: dict[str, Any] | None = None) -> None:
        super().reset(initial_state)
        if self.persistent_workers and self._pool is not None:
            self._drop_pending()
        else:
            self._close()
        if initial_state is not None:
            self.source.reset(initial_state["source"])
            self._count = int(initial_state["items"])
        else:
            self.source.reset()
            self._count = 0
        self._state = self.source.get_state()
        self._exhausted = False
        self._loading: dict[int, int] = {}
        if self._pool is not None:  # persistent workers, alive and idle
            return
        context: Any = (
            multiprocessing.get_context()
            if self.multiprocessing_context is None
            else multiprocessing.get_context(self.multiprocessing_context)
        )
        self._started = context.SimpleQueue()  # (pid, item number) as each worker starts one
        self._pool = concurrent.futures.ProcessPoolExecutor(
            self.num_workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(self.fn, self._started),
        )
        self._workers = {}

    def _fill(self) -> None:
        if self._pool is None:
            raise RuntimeError("ProcessMapper: no pool (the epoch has ended)")
        while not self._exhausted and len(self._pending) < 2 * self.num_workers:
            try:
                item = self.source.next()
            except StopIteration:
                self._exhausted = True
                break
            number = self._count + len(self._pending)
            future = self._pool.submit(_run_in_worker, number, item)
            self._pending.append((future, self.source.get_state(), number))
            self._workers.update(getattr(self._pool, "_processes", None) or {})

    def next(self) -> Any:
        if self._pool is None:  # the epoch has ended
            raise StopIteration
        try:
            return self._next()
        except BrokenProcessPool as error:  # from a result, or from submitting to the pool
            message = self._dead_workers(self._count)
            self._close()
            raise RuntimeError(message) from error

    def _next(self) -> Any:
        self._fill()
        if not self._pending:
            if not self.persistent_workers:
                self._close()
            raise StopIteration
        future, state, number = self._pending.popleft()
        try:
            out = future.result()
        except BrokenProcessPool:
            raise
        except BaseException:  # the item's own error (e.g. a SampleError under "raise")
            self._close()  # the loop is left: stop the workers now, not when collected
            raise
        self._state, self._count = state, number + 1
        self._note_started()
        self._fill()
        return out

    def _note_started(self) -> None:
        """Read which item each worker started last (also keeps the pipe from filling up)."""
        while not self._started.empty():
            pid, number = self._started.get()
            self._loading[pid] = number

    def _dead_workers(self, number: int) -> str:
        stopped = -int(signal.SIGTERM)  # what the pool does to the survivors
        workers = list(self._workers.values())
        deadline = time.monotonic() + 5  # one bound for all (not 5 s per worker still running)
        for process in workers:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
        self._note_started()
        dead = [(i, p) for i, p in enumerate(workers) if p.exitcode not in (None, 0, stopped)]

        def describe(i: int, p: Any) -> str:
            item = self._loading.get(p.pid)
            doing = "before its first item" if item is None else f"while loading item {item}"
            return f"worker {i} (pid {p.pid}) was {_exit_status(p.exitcode)} {doing}"

        named = "; ".join(describe(i, p) for i, p in (dead or list(enumerate(workers))))
        return (
            f"a worker process of the torchdata graph died: {named} (items count from 0 in "
            f"the epoch; each is a batch). The OOM-killer or a signal may have ended it; items "
            f"from {number} on are lost and the other workers were stopped"
        )

    def get_state(self) -> dict[str, Any]:
        return {"source": self._state, "items": self._count}

    def _drop_pending(self) -> None:
        """Cancel the items not started and wait for the running ones (their results dropped),
        keeping the workers; a pool that broke meanwhile is closed (the next ``reset`` makes a new
        one)."""
        pending, self._pending = self._pending, collections.deque()
        futures = [future for future, _, _ in pending if not future.cancel()]
        concurrent.futures.wait(futures)
        if any(isinstance(f.exception(), BrokenProcessPool) for f in futures):
            self._close()

    def _close(self, wait: bool = True) -> None:
        # the items not started are cancelled here (shutdown's own cancel_futures races with the
        # pool's manager thread in Python 3.11); the running ones finish, then the workers exit
        pending = getattr(self, "_pending", ())  # (none if __init__ raised)
        self._pending = collections.deque()
        for future, _, _ in pending:
            future.cancel()
        pool, self._pool = getattr(self, "_pool", None), None
        if pool is not None:
            pool.shutdown(wait=wait)  # joins the workers: no zombies

    def __del__(self) -> None:
        self._close(wait=False)


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
    persistent_workers: bool = False,
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
        seed: the shuffling seed, and part of the salt of the random ops' draws (see the module
            docstring: each batch's crops and masks depend on ``seed``, the rank, the epoch and
            the batch's number, not on the worker that computes it).
        sampler: a sampler of indices instead (``shuffle`` is then unused; ``seed`` still salts
            the draws). The default is a :class:`SplitSampler` (this rank's share; one rank: all
            items); for DDP training pass
            ``SplitSampler(len(dataset), shuffle=..., drop_last=True)`` so that every rank runs
            the same number of steps.
        drop_last: drop the last, smaller batch.
        num_workers: processes (or threads) that load batches; 0 loads in the caller.
        method: ``"process"`` or ``"thread"``.
        multiprocessing_context: e.g. ``"fork"``, ``"spawn"`` (``None``: torch's default).
        persistent_workers: keep the worker processes from one epoch to the next (as
            ``DataLoader``'s option; ``method="process"`` and ``num_workers > 0`` only): a new
            epoch starts no processes (see :class:`ProcessMapper`).
        device_transform: applied to each batch in the main process by a ``Mapper`` stage (e.g. a
            transform on the GPU); the CPU one goes in ``dataset_kwargs["transform"]``.

    Returns:
        the root node (``torchdata.nodes.BaseNode``).
    """
    from torchdata import nodes

    batch_size = check_positive_int("batch_size", batch_size)
    num_workers = check_non_negative_int("num_workers", num_workers)
    method = check_choice("method", method, ("process", "thread"))
    if persistent_workers and (num_workers == 0 or method != "process"):
        raise ValueError(
            "persistent_workers=True needs worker processes (num_workers > 0, method='process'), "
            f"got num_workers={num_workers}, method={method!r}"
        )
    if not isinstance(dataset, AudioDataset):
        dataset = AudioDataset(dataset, **dataset_kwargs)
    elif dataset_kwargs:
        raise ValueError(
            f"{sorted(dataset_kwargs)} cannot be given with an AudioDataset: set them on it"
        )
    if sampler is None:
        sampler = SplitSampler(len(dataset), shuffle=shuffle, seed=seed)
    # batches of indices with their salts; the salt's epoch and batch number are the
    # SamplerWrapper's state, so they resume with it
    batches = SeededBatches(sampler, batch_size, drop_last=drop_last, seed=seed)
    node: Any = nodes.SamplerWrapper(batches)
    load = SeededStage(LoadBatch(dataset), 0, keep_salt=device_transform is not None)
    if num_workers == 0:
        node = nodes.Mapper(node, load)
    elif method == "process":
        node = ProcessMapper(
            node,
            load,
            num_workers=num_workers,
            multiprocessing_context=multiprocessing_context,
            persistent_workers=persistent_workers,
        )
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
        node = nodes.Mapper(node, SeededStage(BatchTransform(device_transform, no_grad=False), 1))
    return node
