"""Duration bucketing: batches of clips of similar length under a budget, so that little of each
padded batch is padding.

Interface:

* :class:`DurationBatchSampler` - a batch sampler (lists of indices) for
  ``DataLoader(ds, batch_sampler=...)``, ``torchdata.nodes.SamplerWrapper`` (then
  ``ParallelMapper(..., LoadBatch(ds))``) and ``StatefulDataLoader``: shuffled and seeded per
  epoch, split by rank for DDP, resumable mid-epoch (``state_dict`` / ``load_state_dict``).
* :func:`audio_durations` - the durations (seconds) of files or encoded clips, read from their
  headers with soundfile (no decoding), to give the sampler.

How batches are made, each epoch: the items are put into ``num_buckets`` buckets of about equal
count by length (quantiles, computed once); each bucket's items are shuffled and cut greedily into
batches whose padded size - items x the longest item - stays within the budget; the batches of all
buckets are shuffled together and dealt out to the ranks in turn. The order depends only on
``seed`` and the epoch.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Sampler

from nnaudio_data._checks import check_non_negative_int, check_positive_int
from nnaudio_data.pipeline.datasets import rank_and_world

__all__ = ["DurationBatchSampler", "audio_durations"]

logger = logging.getLogger("nnaudio_data.pipeline")


def audio_durations(sources: Iterable[Any]) -> list[float]:
    """The duration in seconds of each path or encoded clip (bytes), from its header.

    A source soundfile cannot read gets 0.0 and a logged warning: the collate function's fault
    policy deals with it (raises, or skips and counts it) when the batch is made.
    """
    import io

    out = []
    for source in sources:
        try:
            if isinstance(source, bytes | bytearray | memoryview):
                info = sf.info(io.BytesIO(bytes(source)))
            else:
                info = sf.info(os.fspath(source))
            out.append(float(info.frames) / float(info.samplerate))
        except (sf.LibsndfileError, sf.SoundFileError, RuntimeError, TypeError, OSError) as exc:
            name = os.fspath(source) if isinstance(source, str | os.PathLike) else "<bytes>"
            logger.warning("duration of %s unknown (%s): counted as 0 s", name, exc)
            out.append(0.0)
    return out


class DurationBatchSampler(Sampler[list[int]]):
    """Batches of indices of clips of similar duration, each within a budget of padded seconds
    (or frames).

    Args:
        durations: the length of each item, in seconds (with ``max_seconds``) or in frames /
            samples (with ``max_frames``); e.g. :func:`audio_durations` of the files.
        max_seconds, max_frames: the budget (give one): a batch's items x its longest item (the
            size of the padded batch) stays within it. An item longer than the budget makes a
            batch of its own (warned once).
        max_batch_size: at most this many items per batch (``None``: no limit).
        num_buckets: buckets of about equal count by duration (1: no bucketing, batches in
            shuffled order under the budget).
        shuffle: shuffle items within buckets and the order of batches, anew each epoch.
        seed: the shuffling seed.
        rank, world_size: this rank and the number of ranks (default: torch.distributed's, or
            ``RANK`` / ``WORLD_SIZE``, or 0 and 1). Batch ``j`` of the epoch goes to rank
            ``j % world_size``.
        drop_last: give every rank the same number of batches (the epoch's last
            ``n_batches % world_size`` are left out; other ones each epoch when shuffled): needed
            under DDP, where a rank with a batch more would wait for ever.

    ``set_epoch(e)`` picks the epoch (``DataLoader`` users call it, ``SamplerWrapper`` does);
    otherwise the epoch counts up after each full pass. ``len()`` is this rank's number of
    batches in the current epoch.

    Raises:
        ValueError: no budget or both, a non-positive budget, a negative or non-finite duration
            (named by index).
    """

    def __init__(
        self,
        durations: Sequence[float] | np.ndarray | torch.Tensor,
        *,
        max_seconds: float | None = None,
        max_frames: int | None = None,
        max_batch_size: int | None = None,
        num_buckets: int = 10,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        drop_last: bool = False,
    ) -> None:
        if (max_seconds is None) == (max_frames is None):
            raise ValueError(
                f"give exactly one budget: max_seconds={max_seconds!r}, max_frames={max_frames!r}"
            )
        budget = float(max_seconds if max_seconds is not None else max_frames)  # type: ignore[arg-type]
        if not math.isfinite(budget) or budget <= 0:
            name = "max_seconds" if max_seconds is not None else "max_frames"
            raise ValueError(f"{name} must be a positive number, got {budget!r}")
        self.budget = budget
        lengths = np.asarray(
            durations.detach().cpu() if isinstance(durations, torch.Tensor) else durations,
            dtype=np.float64,
        ).reshape(-1)
        bad = np.flatnonzero(~np.isfinite(lengths) | (lengths < 0))
        if bad.size:
            raise ValueError(
                f"durations must be finite and >= 0: item {int(bad[0])} has {float(lengths[bad[0]])!r}"
            )
        self.durations = lengths
        self.max_batch_size = (
            None if max_batch_size is None else check_positive_int("max_batch_size", max_batch_size)
        )
        self.num_buckets = check_positive_int("num_buckets", num_buckets)
        self.rank, self.world_size = rank_and_world(rank, world_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self._resume_at = 0  # batches of the epoch to pass over (load_state_dict)
        self._yielded = 0
        too_long = int((lengths > budget).sum())
        if too_long:
            warnings.warn(
                f"{too_long} item(s) are longer than the budget {budget:g}: each makes a batch "
                "of its own",
                stacklevel=2,
            )
        # bucket of each item: quantiles of the durations, so buckets hold about equal counts
        if self.num_buckets > 1 and lengths.size:
            edges = np.quantile(lengths, np.linspace(0, 1, self.num_buckets + 1)[1:-1])
            self._buckets = np.searchsorted(edges, lengths, side="right")
        else:
            self._buckets = np.zeros(lengths.size, dtype=np.int64)

    def __repr__(self) -> str:
        return (
            f"DurationBatchSampler({self.durations.size} items, budget={self.budget:g}, "
            f"num_buckets={self.num_buckets}, rank={self.rank}/{self.world_size})"
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = check_non_negative_int("epoch", epoch)

    def _all_batches(self, epoch: int) -> list[list[int]]:
        """Every rank's batches of ``epoch``, in the order they are dealt out."""
        rng = np.random.default_rng([self.seed % 2**63, epoch])
        batches: list[list[int]] = []
        for bucket in range(int(self._buckets.max(initial=-1)) + 1):
            items = np.flatnonzero(self._buckets == bucket)
            if self.shuffle:
                items = rng.permutation(items)
            batch: list[int] = []
            longest = 0.0
            for index in items.tolist():
                length = float(self.durations[index])
                wider = max(longest, length)
                full = self.max_batch_size is not None and len(batch) >= self.max_batch_size
                if batch and (full or (len(batch) + 1) * wider > self.budget):
                    batches.append(batch)
                    batch, wider = [], length
                batch.append(index)
                longest = wider
            if batch:
                batches.append(batch)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches)).tolist()]
        return batches

    def _mine(self, epoch: int) -> list[list[int]]:
        batches = self._all_batches(epoch)
        end = len(batches) - len(batches) % self.world_size if self.drop_last else len(batches)
        return batches[self.rank : end : self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._mine(self.epoch)
        start, self._resume_at = self._resume_at, 0
        for step in range(start, len(batches)):
            self._yielded = step + 1
            yield batches[step]
        self._yielded = 0
        self.epoch += 1

    def __len__(self) -> int:
        return len(self._mine(self.epoch))

    def state_dict(self) -> dict[str, int]:
        """Where the sampler stands: the epoch and the batches of it already yielded."""
        return {"epoch": self.epoch, "yielded": self._yielded, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume: the next iteration continues ``state``'s epoch after its yielded batches."""
        if int(state.get("seed", self.seed)) != self.seed:
            raise ValueError(f"state has seed {state['seed']}, this sampler {self.seed}")
        self.epoch = check_non_negative_int("epoch", state["epoch"])
        self._resume_at = self._yielded = check_non_negative_int("yielded", state["yielded"])
