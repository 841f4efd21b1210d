"""The fault policy: what a pipeline does with a sample it cannot use, and the skip counts.

Interface:

* :class:`FaultPolicy` - ``FaultPolicy(on_error="raise")`` raises the :class:`SampleError` (a
  ``ValueError`` naming the sample); ``FaultPolicy(on_error="skip")`` logs it (``logging``, no
  sleep) and returns a :class:`Skipped` marker that takes the sample's place. Picklable, so it goes
  to DataLoader worker processes with the collate function or the dataset.
* :class:`Skipped` - the marker; collate functions drop it and count it by ``reason`` in the
  batch's ``skipped`` dict, so the counts travel with the batch out of worker processes. Nothing is
  dropped without being counted: a batch whose every sample was skipped is an empty batch (length
  0) that still carries its counts.
* :class:`SkipCounter` - the aggregator in the main process: ``counter.update(batch)`` adds a
  batch's counts; ``counter.counts`` is ``{reason: n}``; ``counter.wrap(loader)`` counts every
  batch a loader yields and passes the non-empty ones on. The device stage holds one.

Errors raised by code outside the project's stages (e.g. a broken tar stream inside WebDataset)
reach the policy through ``policy(exception)``, webdataset's handler signature: with ``"skip"`` it
logs, records the count in the current process, and returns ``True`` (continue); the next batch
collated in that process carries the count (see :func:`take_pending`), or, after the last batch,
the empty batch that :func:`flush_skips` adds. Such an error is counted once per event (e.g. a
tar stream that breaks off counts 1, whatever number of samples it still held).

Reasons (:data:`nnaudio_data.io.REASONS`): ``decode_error``, ``empty``, ``non_finite`` (in the
samples, or in the transform's output), ``sample_rate``, ``channels``, ``too_short``,
``too_large`` (a header, a resample or a compressed member that would make a worker allocate more
than its bound), ``not_regular_file`` (a FIFO, device, folder or unresolvable link),
``unexpected_error`` (any other exception a sample caused: counted, never a crash of the loop);
``stream_error`` for other exceptions that reach ``policy(exception)``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

import torch

from nnaudio_data._checks import check_choice
from nnaudio_data.batch import WaveBatch
from nnaudio_data.io import SampleError, printable

__all__ = [
    "FaultPolicy",
    "SampleError",
    "SkipCounter",
    "Skipped",
    "add_counts",
    "flush_skips",
    "log_skip",
    "take_pending",
]

logger = logging.getLogger("nnaudio_data.pipeline")

B = TypeVar("B")


@dataclasses.dataclass(frozen=True)
class Skipped:
    """Stands in for a sample that the policy skipped; collate functions count and drop it."""

    key: str | None
    reason: str
    message: str = ""


class FaultPolicy:
    """Raise or skip samples that cannot be used.

    Args:
        on_error: ``"raise"`` (default) re-raises the :class:`SampleError`, naming the sample;
            ``"skip"`` logs a warning through the ``nnaudio_data.pipeline`` logger and returns a
            :class:`Skipped` marker (no sleep, no retry).
    """

    def __init__(self, on_error: str = "raise") -> None:
        self.on_error = check_choice("on_error", on_error, ("raise", "skip"))

    @classmethod
    def of(cls, policy: FaultPolicy | str | None) -> FaultPolicy:
        """``policy`` itself, or the policy named ``"raise"`` / ``"skip"`` (``None``: raise)."""
        return policy if isinstance(policy, FaultPolicy) else cls(policy or "raise")

    @property
    def skips(self) -> bool:
        return self.on_error == "skip"

    def __repr__(self) -> str:
        return f"FaultPolicy(on_error={self.on_error!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FaultPolicy) and other.on_error == self.on_error

    def __hash__(self) -> int:
        return hash(self.on_error)

    def handle(self, error: SampleError) -> Skipped:
        """Raise ``error``, or log it and return its :class:`Skipped` marker."""
        if not self.skips:
            raise error
        log_skip(error.key, error.reason, str(error))
        return Skipped(key=error.key, reason=error.reason, message=str(error))

    def __call__(self, exn: BaseException) -> bool:
        """webdataset's handler signature: raise, or log, count and return ``True`` (continue).

        A :class:`SampleError` (or an exception caused by one, such as webdataset's
        ``DecodingError``) is raised as itself or counted by its reason; anything else is
        re-raised or counted as ``'stream_error'``.
        The count waits in this process until the next batch is collated here.
        """
        cause = exn if isinstance(exn, SampleError) else exn.__cause__
        key = getattr(exn, "key", None)  # webdataset's DecodingError: the sample's key
        if isinstance(cause, SampleError) and cause is not exn:
            url = getattr(exn, "url", None)
            where = f"sample {key!r}" + (f" of {url}" if url else "")
            cause = type(cause)(f"{where}: {cause}", key=key or cause.key, reason=cause.reason)
        if not self.skips:
            if isinstance(cause, SampleError) and cause is not exn:
                raise cause from exn
            raise exn
        reason = cause.reason if isinstance(cause, SampleError) else "stream_error"
        log_skip(key, reason, str(cause) if isinstance(cause, SampleError) else repr(exn))
        _pending_counter()[reason] += 1
        return True


def log_skip(key: str | None, reason: str, message: str) -> None:
    """Log one skipped sample (a warning on the ``nnaudio_data.pipeline`` logger; no sleep)."""
    shown = None if key is None else printable(key)  # a file name that is not UTF-8, escaped
    logger.warning("skipping sample %s (%s): %s", shown, reason, message)


def add_counts(total: dict[str, int], counts: Mapping[str, int]) -> dict[str, int]:
    """Add ``counts`` into ``total`` (in place) and return it."""
    for reason, n in counts.items():
        total[reason] = total.get(reason, 0) + int(n)
    return total


_PENDING: tuple[int, Counter[str]] = (os.getpid(), Counter())


def _pending_counter() -> Counter[str]:
    global _PENDING
    if _PENDING[0] != os.getpid():  # a forked worker starts with none of its parent's counts
        _PENDING = (os.getpid(), Counter())
    return _PENDING[1]


def take_pending() -> dict[str, int]:
    """The skips recorded by ``policy(exception)`` in this process since the last call; resets."""
    pending = _pending_counter()
    counts = dict(pending)
    pending.clear()
    return counts


def flush_skips(batches: Iterable[B]) -> Iterator[Any]:
    """A stage after batching: pass the batches on, then, if ``policy(exception)`` recorded skips
    in this process after the last batch was collated, one empty ``WaveBatch`` carrying them.

    Use it as the last stage of a webdataset pipeline (``.compose(flush_skips)``;
    :func:`~nnaudio_data.pipeline.wds.audio_pipeline` adds it), so that a stream error near the
    end of a worker's shards is still counted in the main process.
    """
    yield from batches
    pending = take_pending()
    if pending:
        yield WaveBatch(
            audio=torch.zeros(0, 0),
            lengths=torch.zeros(0, dtype=torch.long),
            sample_rate=0,
            skipped=pending,
        )


class SkipCounter:
    """Sums the ``skipped`` counts of the batches the main process receives.

    Attributes:
        counts: ``{reason: number of samples skipped}``.
        batches: batches seen (empty ones included).
        samples: samples delivered (skipped ones excluded).
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.batches = 0
        self.samples = 0

    @property
    def total(self) -> int:
        """Samples skipped, all reasons together."""
        return sum(self.counts.values())

    def update(self, batch: Any) -> None:
        """Add one batch's counts (any object with a ``skipped`` dict and a length)."""
        add_counts(self.counts, getattr(batch, "skipped", {}) or {})
        self.batches += 1
        self.samples += len(batch)

    def wrap(self, batches: Iterable[B]) -> Iterator[B]:
        """Count every batch and yield the non-empty ones."""
        for batch in batches:
            self.update(batch)
            if len(batch):  # type: ignore[arg-type]
                yield batch

    def __repr__(self) -> str:
        return f"SkipCounter(counts={self.counts}, batches={self.batches}, samples={self.samples})"
