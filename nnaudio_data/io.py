"""Decoding audio with soundfile.

Interface (other modules and the CLI rely on these names):

* :func:`decode` - WAV / FLAC / OGG (and the other formats libsndfile reads) from ``bytes``, a
  binary file-like object or a path, to a float ``(channels, time)`` tensor and the sample rate.
  Integer PCM is scaled to [-1, 1] (soundfile divides by ``2 ** (bits - 1)``); float files are
  read as they are.
* :class:`SampleError` - a sample the pipeline cannot use (a ``ValueError``) with its ``key`` and a
  ``reason`` such as ``'decode_error'``, ``'empty'``, ``'non_finite'`` or ``'sample_rate'``; the
  fault policy in :mod:`nnaudio_data.pipeline.policy` raises or skips and counts these by reason.
* :class:`DecodeError` - the :class:`SampleError` that :func:`decode` raises; its message names the
  key or the file. Audio with 0 samples is its own reason, ``'empty'``.
* :data:`AUDIO_EXTENSIONS` - the file extensions treated as audio by the adapters.
* :data:`PICKLE_EXTENSIONS` - fields that would be unpickled by other decoders; the project never
  decodes them (see :class:`nnaudio_data.pipeline.webdataset.AudioHandler`).
"""

from __future__ import annotations

import io
import os
from typing import IO, Any

import numpy as np
import soundfile as sf
import torch

from nnaudio_data._checks import check_float_dtype

__all__ = [
    "AUDIO_EXTENSIONS",
    "PICKLE_EXTENSIONS",
    "REASONS",
    "DecodeError",
    "SampleError",
    "decode",
    "extension",
]

#: Extensions (lower case, no dot) that the adapters decode as audio with soundfile.
AUDIO_EXTENSIONS = frozenset(
    {"wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "au", "caf", "w64", "rf64"}
)
#: Extensions whose usual decoders unpickle the data (``pickle.loads`` / ``torch.load``).
PICKLE_EXTENSIONS = frozenset({"pyd", "pickle", "pkl", "pth", "pt"})

#: The reasons a sample is rejected, as the fault policy counts them.
REASONS = (
    "decode_error",  # not readable as audio (corrupt, truncated, unsupported, missing)
    "empty",  # 0 samples
    "non_finite",  # NaN or Inf in the samples
    "sample_rate",  # a sample rate the pipeline does not accept
    "channels",  # a channel count that cannot share a batch with the others
)

_SOUNDFILE_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


class SampleError(ValueError):
    """A sample that the pipeline cannot use.

    Attributes:
        key: the sample's key or file name (``None`` when unknown).
        reason: one of :data:`REASONS`; the fault policy counts skipped samples by it.
    """

    def __init__(self, message: str, *, key: str | None = None, reason: str = "decode_error"):
        super().__init__(message)
        self.key = key
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across worker processes
        return (_rebuild, (type(self), str(self), self.key, self.reason))


def _rebuild(cls: type[SampleError], message: str, key: str | None, reason: str) -> SampleError:
    return cls(message, key=key, reason=reason)


class DecodeError(SampleError):
    """Audio that could not be decoded (``reason='decode_error'``) or has 0 samples
    (``reason='empty'``); the message names the key or the file."""


def extension(name: str) -> str:
    """The last extension of ``name`` in lower case, without the dot (``'a.b.FLAC'`` -> ``'flac'``)."""
    return name.rsplit(".", 1)[-1].lower() if "." in name else name.lower()


def _describe(source: Any, key: str | None) -> str:
    if key is not None:
        return str(key)
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    name = getattr(source, "name", None)
    if isinstance(name, str):
        return name
    if isinstance(source, bytes | bytearray | memoryview):
        return f"<{len(source)} bytes>"
    return f"<{type(source).__name__}>"


def decode(
    source: bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes],
    *,
    key: str | None = None,
    dtype: torch.dtype | str = torch.float32,
) -> tuple[torch.Tensor, int]:
    """Decode audio with soundfile.

    Args:
        source: encoded bytes, a binary file-like object, or a path.
        key: the name used in error messages (default: the path, or the file object's name).
        dtype: floating dtype of the result (float32 by default).

    Returns:
        ``(audio, sample_rate)``: ``audio`` is ``(channels, time)`` (mono files give one channel),
        integer PCM scaled to [-1, 1].

    Raises:
        DecodeError: the source is not readable as audio (``reason='decode_error'``: corrupt,
            truncated, unsupported format, missing file) or holds 0 samples (``reason='empty'``).
            The message names ``key`` or the file.
        ValueError: ``dtype`` is not a floating dtype.
    """
    out_dtype = check_float_dtype("dtype", dtype)
    name = _describe(source, key)
    read_dtype = _SOUNDFILE_DTYPES.get(out_dtype, "float32")
    fileobj: Any = (
        io.BytesIO(bytes(source)) if isinstance(source, bytes | bytearray | memoryview) else source
    )
    try:
        data, sample_rate = sf.read(fileobj, dtype=read_dtype, always_2d=True)
    except (sf.LibsndfileError, sf.SoundFileError, RuntimeError, TypeError, OSError) as exc:
        raise DecodeError(
            f"cannot decode audio {name!r}: {exc}", key=name, reason="decode_error"
        ) from exc
    if data.shape[0] == 0:
        raise DecodeError(f"audio {name!r} has 0 samples", key=name, reason="empty")
    audio = torch.from_numpy(np.ascontiguousarray(data.T))
    return audio.to(out_dtype), int(sample_rate)
