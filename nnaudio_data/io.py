"""Decoding audio with soundfile.

Interface (other modules and the CLI rely on these names):

* :func:`decode` - WAV / FLAC / OGG (and the other formats libsndfile reads) from ``bytes``, a
  binary file-like object or a path, to a float ``(channels, time)`` tensor and the sample rate.
  Integer PCM is scaled to [-1, 1] (soundfile divides by ``2 ** (bits - 1)``); float files are
  read as they are. A truncated file is a decode error: a WAV whose data chunk is shorter than
  its header declares (streaming placeholders 0 / 0xFFFFFFFF excepted), a FLAC that loses sync,
  any file giving fewer frames than it declares. (An Ogg file cut short declares no length to
  check against, so it decodes to the frames before the cut, or is 'empty'.)
* :class:`SampleError` - a sample the pipeline cannot use (a ``ValueError``) with its ``key`` and a
  ``reason`` from :data:`REASONS` (``'decode_error'``, ``'empty'``, ``'non_finite'``,
  ``'sample_rate'``, ``'channels'``, ``'too_short'``); the
  fault policy in :mod:`nnaudio_data.pipeline.policy` raises or skips and counts these by reason.
* :class:`DecodeError` - the :class:`SampleError` that :func:`decode` raises; its message names the
  key or the file. Audio with 0 samples is its own reason, ``'empty'``.
* :func:`read_native` - the same checks, but the samples as stored: ``(time, channels)`` int16 /
  int32 for 16-, 24- and 32-bit integer PCM with the scale to apply (reading integers and scaling
  them in torch is 3x faster than libsndfile's own float conversion and gives the same values);
  :func:`scale_into` converts them into a given float tensor (the collate functions write them
  straight into the padded batch).
* :data:`AUDIO_EXTENSIONS` - the file extensions treated as audio by the adapters.
* :data:`PICKLE_EXTENSIONS` - fields that would be unpickled by other decoders; the project never
  decodes them.

The webdataset handler built on :func:`decode` (``(key, data) -> (audio, sample_rate)`` for audio
fields, ``None`` for others, pickle-bearing fields left as bytes) is
:class:`nnaudio_data.pipeline.wds.AudioHandler`: it lives with the fault policy it needs.
"""

from __future__ import annotations

import io
import os
import re
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
    "read_native",
    "scale_into",
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
    "too_short",  # fewer samples than the pipeline's min_length
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


_DATA_SIZE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)  # placeholders that streaming WAV writers leave


def _truncation(log: str) -> str | None:
    """libsndfile's note that a WAV's data chunk is shorter than its header says, if any."""
    match = _DATA_SIZE.search(log)
    if match is None:
        return None
    declared, actual = int(match.group(1)), int(match.group(2))
    if declared in _STREAMING_SIZES or declared <= actual:
        return None
    return f"the header declares {declared} data bytes, the file holds {actual}"


#: Integer PCM subtypes read as integers (libsndfile's own int -> float conversion is 3x slower
#: than reading the integers and scaling them in torch), with the scale that gives [-1, 1]:
#: libsndfile returns 24-bit samples left-justified in int32.
_INTEGER_READS = {
    "PCM_16": ("int16", 2.0**-15),
    "PCM_24": ("int32", 2.0**-31),
    "PCM_32": ("int32", 2.0**-31),
}


def read_native(
    source: bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes],
    *,
    key: str | None = None,
    dtype: torch.dtype | str = torch.float32,
) -> tuple[np.ndarray, float, int]:
    """Read audio as soundfile stores it, for callers that convert it themselves.

    Args:
        source, key: as :func:`decode`.
        dtype: the floating dtype the caller will convert to (float64 reads float files as
            float64).

    Returns:
        ``(data, scale, sample_rate)``: ``data`` is ``(time, channels)``, int16 or int32 for
        16-, 24- and 32-bit integer PCM (``data * scale`` is the audio in [-1, 1], the value
        libsndfile would give as float), float32 / float64 otherwise (``scale`` 1.0).

    Raises:
        DecodeError: as :func:`decode`.
    """
    out_dtype = check_float_dtype("dtype", dtype)
    name = _describe(source, key)
    fileobj: Any = (
        io.BytesIO(bytes(source)) if isinstance(source, bytes | bytearray | memoryview) else source
    )
    try:
        with sf.SoundFile(fileobj) as f:
            sample_rate, declared = f.samplerate, f.frames
            read_dtype, scale = _INTEGER_READS.get(
                f.subtype, (_SOUNDFILE_DTYPES.get(out_dtype, "float32"), 1.0)
            )
            data = f.read(dtype=read_dtype, always_2d=True)
            log = f.extra_info
    except (sf.LibsndfileError, sf.SoundFileError, RuntimeError, TypeError, OSError) as exc:
        raise DecodeError(
            f"cannot decode audio {name!r}: {exc}", key=name, reason="decode_error"
        ) from exc
    if data.shape[0] == 0:
        raise DecodeError(
            f"audio {name!r} has 0 samples (empty, or cut before its first frame)",
            key=name,
            reason="empty",
        )
    short = _truncation(log)
    if short is None and 0 < declared < 2**62 and data.shape[0] < declared:
        short = f"{declared} frames declared, {data.shape[0]} read"
    if short is not None:
        raise DecodeError(f"audio {name!r} is truncated ({short})", key=name, reason="decode_error")
    return data, scale, int(sample_rate)


def scale_into(out: torch.Tensor, data: torch.Tensor, scale: float) -> torch.Tensor:
    """``out[...] = data * scale`` (``out`` floating, ``data`` any real dtype); returns ``out``.

    Integers are converted (rounded as libsndfile rounds them to float) and then scaled by a power
    of two, which is exact: the values are those libsndfile's float read gives.
    """
    out.copy_(data)
    if scale != 1.0:
        out.mul_(scale)
    return out


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
            truncated - a WAV whose data chunk is shorter than its header declares, or fewer
            frames than declared -, unsupported format, missing file) or holds 0 samples
            (``reason='empty'``).
            The message names ``key`` or the file.
        ValueError: ``dtype`` is not a floating dtype.
    """
    out_dtype = check_float_dtype("dtype", dtype)
    data, scale, sample_rate = read_native(source, key=key, dtype=out_dtype)
    audio = torch.empty(data.shape[1], data.shape[0], dtype=out_dtype)
    return scale_into(audio, torch.from_numpy(data).T, scale), sample_rate
