"""The batch types that travel through a pipeline.

:class:`WaveBatch` is padded audio with valid lengths in samples; :class:`SpecBatch` is the
spectrogram a transform made of it, with valid lengths in frames. Both carry the sample rate, the
sample keys, the labels and free metadata, move with ``.to(device, non_blocking=...)`` and pin with
``.pin_memory()`` (so ``DataLoader(pin_memory=True)`` pins them), and unpack as a pair:
``spec, lengths = batch`` (``audio, lengths`` for a ``WaveBatch``).

Pickled (a DataLoader worker's queue, a ``torchdata.nodes`` worker), the small CPU tensors of a
batch (``lengths``, ``labels``) travel by value inside the pickle, and only the large one by
torch's shared memory: each shared tensor costs a shared-memory segment in the worker and a
descriptor hand-over to the main process (a 2-worker DataLoader of 1.4 MB batches: 2.3-2.8 ms a
batch with the spectrogram alone, 3.0-3.4 ms with its lengths as a second shared tensor).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from typing_extensions import Self

__all__ = ["SpecBatch", "WaveBatch", "length_mask"]


def length_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """``(batch, size)`` boolean mask, ``True`` where the position is within the valid length."""
    positions = torch.arange(size, device=lengths.device)
    return positions.unsqueeze(0) < lengths.reshape(-1, 1)


#: CPU tensors up to this many bytes are pickled by value (see the module docstring)
BY_VALUE_BYTES = 1 << 16


@dataclasses.dataclass(frozen=True)
class _ByValue:
    """A small tensor's values in a pickle (a numpy array pickles by value)."""

    array: Any


def _by_value(value: Any) -> Any:
    if not isinstance(value, torch.Tensor) or value.device.type != "cpu" or value.requires_grad:
        return value
    if value.numel() * value.element_size() > BY_VALUE_BYTES or value.is_shared():
        return value
    try:
        return _ByValue(value.numpy())
    except TypeError:  # a dtype numpy lacks (bfloat16, ...): torch's own reduction
        return value


def _move(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    return fn(value) if isinstance(value, torch.Tensor) else value


@dataclasses.dataclass(kw_only=True)
class _Batch:
    lengths: torch.Tensor
    sample_rate: int
    keys: list[str] = dataclasses.field(default_factory=list)
    labels: torch.Tensor | list[Any] | None = None
    meta: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped_keys: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @property
    def data(self) -> torch.Tensor:
        """The padded tensor (``audio`` or ``spec``)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    def __iter__(self) -> Iterator[torch.Tensor]:
        """``data, lengths = batch``: the ``(features, lengths)`` pair that lhotse's
        ``collate_features`` (and most training loops) use. ``len(batch)`` stays the number of
        items."""
        return iter((self.data, self.lengths))

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Self:
        changes = {f.name: _move(getattr(self, f.name), fn) for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **changes)

    def to(
        self,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        non_blocking: bool = False,
    ) -> Self:
        """Move every tensor to ``device``; ``dtype`` applies to floating tensors only."""

        def move(t: torch.Tensor) -> torch.Tensor:
            t = t.to(device=device, non_blocking=non_blocking)
            return t.to(dtype) if dtype is not None and t.is_floating_point() else t

        return self._map(move)

    def pin_memory(self) -> Self:
        """A copy whose tensors live in pinned (page-locked) memory."""
        return self._map(lambda t: t.pin_memory())

    @property
    def device(self) -> torch.device:
        return self.data.device

    def __getstate__(self) -> dict[str, Any]:
        return {name: _by_value(value) for name, value in self.__dict__.items()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            if isinstance(value, _ByValue):
                value = torch.from_numpy(value.array)
            self.__dict__[name] = value


@dataclasses.dataclass(kw_only=True)
class WaveBatch(_Batch):
    """Padded waveforms.

    Attributes:
        audio: ``(batch, time)`` or ``(batch, channels, time)``, zero-padded after each item's end.
        lengths: ``(batch,)`` int64, valid samples per item.
        sample_rate: the (single) sample rate of every item.
        keys: one string per item (file name, shard key...).
        labels: a tensor or list of per-item labels, or ``None``.
        meta: one dict per item.
        skipped: ``{reason: count}`` of the samples the fault policy skipped while this batch was
            made (in whichever process made it); summed in the main process by
            ``nnaudio_data.pipeline.SkipCounter``. A batch may be empty (length 0) and carry
            only counts.
        skipped_keys: ``{reason: [key or file name, ...]}`` of those samples, where known (a
            stream error counted by ``policy(exception)`` has no sample key).
    """

    audio: torch.Tensor

    def __post_init__(self) -> None:
        _check(self.audio, self.lengths, "audio")

    @property
    def data(self) -> torch.Tensor:
        return self.audio


@dataclasses.dataclass(kw_only=True)
class SpecBatch(_Batch):
    """Spectrograms with valid frame lengths.

    Attributes:
        spec: ``(batch, ..., frames)``; time is the last axis for the Magnitude / Phase formats and
            the second-to-last for Complex ``(batch, freq, frames, 2)``: see ``time_dim``.
        lengths: ``(batch,)`` int64, valid frames per item.
        time_dim: the axis of ``spec`` that is time (default -1).
        keys, labels, meta, sample_rate, skipped, skipped_keys: as in :class:`WaveBatch`.
    """

    spec: torch.Tensor
    time_dim: int = -1

    def __post_init__(self) -> None:
        _check(self.spec, self.lengths, "spec")

    @property
    def data(self) -> torch.Tensor:
        return self.spec

    @property
    def mask(self) -> torch.Tensor:
        """``(batch, frames)`` boolean mask of valid frames."""
        return length_mask(self.lengths.to(self.spec.device), self.spec.shape[self.time_dim])


def _check(data: torch.Tensor, lengths: torch.Tensor, name: str) -> None:
    if not isinstance(lengths, torch.Tensor) or lengths.ndim != 1:
        raise ValueError(f"lengths must be a 1-D tensor, got {lengths!r}")
    if data.shape[0] != lengths.shape[0]:
        raise ValueError(
            f"{name} has batch size {data.shape[0]} but lengths has {lengths.shape[0]} entries"
        )


def keys_or_default(keys: Sequence[str] | None, n: int) -> list[str]:
    """``keys`` as a list, or ``['0', '1', ...]``."""
    return list(keys) if keys is not None else [str(i) for i in range(n)]
