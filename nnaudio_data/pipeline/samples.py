"""Sample parsing for the collate functions: what a sample may be (a dict, a Hugging Face row, a
tuple, bytes, a path, a skip marker), its audio as a float tensor, and labels as a tensor.
See :mod:`nnaudio_data.pipeline.collate` for the forms a sample takes."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from nnaudio_data.io import (
    SampleError,
    scale_into,
)
from nnaudio_data.ops import Resample
from nnaudio_data.pipeline.policy import (
    Skipped,
)

__all__ = [
    "ENCODED",
    "PCM",
    "Item",
    "all_finite",
    "as_float",
    "as_sample_error",
    "cached_resampler",
    "collate_labels",
    "hf_audio",
    "pcm",
    "skipped_marker",
]


ENCODED = (bytes, bytearray, memoryview, str, os.PathLike)


@dataclasses.dataclass(frozen=True)
class PCM:
    """Audio decoded as it is stored (what ``AudioHandler(native=True)`` gives the collate):
    ``audio`` ``(channels, time)`` integer PCM, or float, whose values are ``audio * scale``. The
    collate converts it once, straight into the padded batch."""

    audio: torch.Tensor
    sample_rate: int
    scale: float = 1.0


def pcm(data: np.ndarray, scale: float, sample_rate: int) -> PCM:
    """:class:`PCM` of :func:`~nnaudio_data.io.read_native`'s ``(time, channels)`` result: one
    channel as a plain ``(1, time)`` row, several as a transposed view (no copy)."""
    audio = (
        torch.from_numpy(data[:, 0]).unsqueeze(0)
        if data.shape[1] == 1
        else torch.from_numpy(data).T
    )
    return PCM(audio, sample_rate, scale)


@dataclasses.dataclass
class Item:
    audio: torch.Tensor  # (channels, time): float, or integer PCM as read (times `scale`)
    sample_rate: int
    key: str
    label: Any = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    scale: float = 1.0  # the audio is `audio * scale` (integer PCM is converted once, in the batch)

    def as_float(self, dtype: torch.dtype) -> torch.Tensor:
        """The audio as ``dtype`` (integer PCM converted and scaled, kept for later calls)."""
        if self.audio.dtype != dtype:
            out = torch.empty(self.audio.shape, dtype=dtype)
            self.audio, self.scale = scale_into(out, self.audio, self.scale), 1.0
        return self.audio


@functools.lru_cache(maxsize=16)
def cached_resampler(orig_sr: int, new_sr: int) -> Resample:
    """One :class:`~nnaudio_data.ops.Resample` per rate pair, per process."""
    return Resample(orig_sr, new_sr)


def as_float(audio: Any, dtype: torch.dtype, key: str) -> torch.Tensor:
    """A float ``(channels, time)`` CPU tensor; integer PCM scaled to [-1, 1]."""
    kind = getattr(audio, "dtype", None)
    if (isinstance(kind, np.dtype) and kind.kind not in "iuf") or (
        isinstance(kind, torch.dtype) and (kind == torch.bool or kind.is_complex)
    ):
        raise SampleError(
            f"sample {key!r}: audio of dtype {kind} is not real numbers (expected integer or "
            "floating samples)",
            key=key,
            reason="decode_error",
        )
    if isinstance(audio, np.ndarray):
        if audio.dtype.kind == "u":
            bits = audio.dtype.itemsize * 8
            audio = (audio.astype(np.float64) - 2 ** (bits - 1)) / 2 ** (bits - 1)
        elif audio.dtype.kind == "i":
            audio = audio.astype(np.float64) / 2 ** (audio.dtype.itemsize * 8 - 1)
        audio = torch.from_numpy(np.ascontiguousarray(audio))
    if not isinstance(audio, torch.Tensor):
        raise SampleError(
            f"sample {key!r}: audio must be a tensor, an array, bytes or a path, "
            f"got {type(audio).__name__}",
            key=key,
            reason="decode_error",
        )
    if audio.dtype == torch.uint8:
        audio = (audio.double() - 128) / 128
    elif not audio.is_floating_point() and not audio.is_complex():
        audio = audio.double() / 2 ** (torch.iinfo(audio.dtype).bits - 1)
    if audio.ndim == 1:
        audio = audio.unsqueeze(0)
    if audio.ndim != 2:
        raise SampleError(
            f"sample {key!r}: audio has shape {tuple(audio.shape)}; expected (time,) or "
            "(channels, time)",
            key=key,
            reason="channels",
        )
    return audio.detach().to("cpu", dtype)


def all_finite(x: torch.Tensor) -> bool:
    """Whether every value is finite. A sum is NaN or Inf if any value is (20x faster than
    ``isfinite(x).all()`` on long clips); only an overflowing sum needs the full check."""
    return math.isfinite(float(x.sum())) or bool(torch.isfinite(x).all())


def hf_audio(value: Mapping[str, Any], sr: Any, name: str | None) -> tuple[Any, Any, str | None]:
    """``(audio, sample_rate, path)`` of a Hugging Face ``datasets.Audio`` value: decoded
    ``{"array", "sampling_rate"[, "path"]}`` (the array a list, numpy array or tensor), or
    ``Audio(decode=False)``'s ``{"bytes", "path"}`` (encoded bytes, else the file at ``path``,
    decoded here with soundfile: torchcodec is not needed)."""
    path = value.get("path")
    path = os.fspath(path) if isinstance(path, str | os.PathLike) else None
    if "array" in value:
        array, rate = value["array"], value.get("sampling_rate", sr)
        if isinstance(array, list | tuple):
            array = np.asarray(array, dtype=np.float32)
        return array, None if rate is None else int(rate), path
    if "bytes" in value or "path" in value:
        encoded = value.get("bytes")
        if encoded is None and path is None:
            who = name if name is not None else "?"
            raise SampleError(
                f"sample {who!r}: the audio value has neither bytes nor a path",
                key=name,
                reason="decode_error",
            )
        return (encoded if encoded is not None else path), sr, path
    raise SampleError(
        f"sample {name!r}: an audio dict needs 'array' and 'sampling_rate' (a decoded Hugging "
        f"Face Audio value) or 'bytes' / 'path' (Audio(decode=False)), got keys {sorted(value)}",
        key=name,
        reason="decode_error",
    )


def skipped_marker(sample: Any) -> Skipped | None:
    """The :class:`Skipped` marker standing for ``sample`` or one of its fields, if any."""
    if isinstance(sample, Skipped):
        return sample
    if isinstance(sample, Mapping):
        return next((v for v in sample.values() if isinstance(v, Skipped)), None)
    return None


def as_sample_error(error: Exception, sample: Any, index: int) -> SampleError:
    """``error`` if it is a :class:`SampleError`, else one naming the sample and the exception
    (reason ``'too_large'`` for running out of memory, ``'unexpected_error'`` otherwise)."""
    if isinstance(error, SampleError):
        return error
    if isinstance(sample, Mapping):
        name = str(sample.get("key", sample.get("__key__", index)))
    elif isinstance(sample, str | os.PathLike):
        name = os.fsdecode(sample)
    else:
        name = str(index)
    # (torch's CPU allocator raises RuntimeError where numpy raises MemoryError)
    out_of_memory = isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
    )
    reason = "too_large" if out_of_memory else "unexpected_error"
    wrapped = SampleError(
        f"sample {name!r}: {type(error).__name__}: {error}", key=name, reason=reason
    )
    wrapped.__cause__ = error
    return wrapped


def collate_labels(labels: list[Any]) -> torch.Tensor | list[Any] | None:
    """Labels as a tensor when they are numbers or equal-shape arrays / lists / tensors (ints and
    bools -> int64, floats -> the default float dtype, e.g. class indices, regression targets,
    multi-hot lists); else the list as given (strings, ragged lists, mixed types)."""
    if all(label is None for label in labels):
        return None
    if all(isinstance(v, torch.Tensor) for v in labels):
        return torch.stack(labels) if len({v.shape for v in labels}) == 1 else list(labels)
    if any(isinstance(v, str | bytes | Mapping | torch.Tensor) or v is None for v in labels):
        return list(labels)
    try:
        array = np.asarray(labels)
    except ValueError:  # ragged lists
        return list(labels)
    if array.dtype.kind in "biu":
        return torch.from_numpy(array.astype(np.int64))
    if array.dtype.kind == "f":
        return torch.from_numpy(array).to(torch.get_default_dtype())
    return list(labels)
