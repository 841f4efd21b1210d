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
  ``reason`` from :data:`REASONS`; the fault policy in :mod:`nnaudio_data.pipeline.policy` raises or
  skips and counts these by reason.
* Hostile input. A path is opened only if it is a regular file (a FIFO, a device or a folder named
  ``x.wav`` is ``'not_regular_file'``, refused without blocking); the file is opened here and handed
  to libsndfile as a file object, so any bytes in its name work (a name that is not UTF-8 is kept as
  Python's surrogate escapes and shown escaped). What a header may make us allocate is bounded
  before anything is read (``'too_large'``): at most ``max_samples`` (:data:`MAX_SAMPLES`) decoded
  samples (frames x channels), and no more frames than a file of its size can hold
  (:data:`MAX_FRAMES_PER_BYTE`, far above what any codec reaches); gzip-compressed bytes are
  decompressed (the audio they hold is decoded) up to :data:`MAX_ENCODED_BYTES`.
* :class:`DecodeError` - the :class:`SampleError` that :func:`decode` raises; its message names the
  key or the file. Audio with 0 samples is its own reason, ``'empty'``.
* :func:`read_native` - the same checks, but the samples as stored: ``(time, channels)`` int16 /
  int32 for 16-, 24- and 32-bit integer PCM with the scale to apply (reading integers and scaling
  them in torch is 3x faster than libsndfile's own float conversion and gives the same values);
  :func:`scale_into` converts them into a given float tensor (the collate functions write them
  straight into the padded batch). A plain 16-bit PCM WAV (RIFF size matching the file, one PCM
  ``fmt `` chunk, a whole ``data`` chunk) is read without libsndfile, to the same int16 values;
  every other file, and every error, goes through libsndfile.
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
import stat
import struct
import sys
import zlib
from typing import IO, Any

import numpy as np
import soundfile as sf
import torch

from nnaudio_data._checks import check_float_dtype

__all__ = [
    "AUDIO_EXTENSIONS",
    "MAX_ENCODED_BYTES",
    "MAX_FRAMES_PER_BYTE",
    "MAX_SAMPLES",
    "PICKLE_EXTENSIONS",
    "REASONS",
    "DecodeError",
    "SampleError",
    "audio_extension",
    "decode",
    "extension",
    "gunzip",
    "printable",
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
    "too_large",  # more than a worker may allocate for one sample (a header that lies, a bomb)
    "not_regular_file",  # a FIFO, device, folder or unresolvable link where a file should be
    "unexpected_error",  # any other exception a sample caused (named, with its type)
)

#: The most decoded samples (frames x channels) one sample may make a worker allocate: 2**28, i.e.
#: 1 GiB as float32 (101 minutes of 44.1 kHz mono, 51 of stereo). A header declaring more is ``'too_large'``,
#: refused before anything is read; so is a resample whose output would be longer.
MAX_SAMPLES = 2**28
#: The most frames a header may declare per byte of its file. FLAC, the densest codec here,
#: stores silence at about 350 frames per byte with its usual 4096-frame blocks (and, with the
#: format's largest 65535-frame blocks, under 6000): a FLAC of 1 kB that declares 2**36 frames is
#: refused as ``'too_large'`` instead of allocating 128 GiB.
MAX_FRAMES_PER_BYTE = 8192
#: The most bytes that gzip-compressed audio may decompress to (1 GiB): a bomb is ``'too_large'``.
MAX_ENCODED_BYTES = 2**30
_GZIP_MAGIC = b"\x1f\x8b"

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


def audio_extension(name: str) -> str:
    """The extension of what ``name`` holds once decompressed: ``'x.wav.gz'`` -> ``'wav'``
    (gzip-compressed audio is decoded as the audio it holds), else :func:`extension`."""
    ext = extension(name)
    if ext == "gz" and "." in name:
        return extension(name.rsplit(".", 1)[0])
    return ext


def printable(name: str) -> str:
    """``name`` with what cannot be written as UTF-8 (the surrogate escapes of a file name that
    is not UTF-8) as backslash escapes, so that logs and messages can always be written."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def gunzip(
    data: bytes | bytearray | memoryview, *, key: str, limit: int = MAX_ENCODED_BYTES
) -> bytes:
    """Decompress gzip ``data`` (one or more members) to at most ``limit`` bytes.

    Raises:
        DecodeError: ``reason='too_large'`` when it would decompress to more than ``limit``
            bytes (a gzip bomb), ``'decode_error'`` when it is not valid gzip.
    """
    chunks: list[bytes] = []
    total, rest = 0, bytes(data)
    try:
        while rest[:2] == _GZIP_MAGIC:  # one gzip member after another
            unpack = zlib.decompressobj(wbits=31)
            pending = rest
            while not unpack.eof:
                chunk = unpack.decompress(pending, 2**20)  # 1 MiB at a time: a bomb stops early
                total += len(chunk)
                if total > limit:
                    raise DecodeError(
                        f"{key!r} decompresses to more than {limit} bytes "
                        "(MAX_ENCODED_BYTES): refused",
                        key=key,
                        reason="too_large",
                    )
                chunks.append(chunk)
                pending = unpack.unconsumed_tail
                if not chunk and not pending:
                    raise zlib.error("the gzip stream is cut short")
            rest = unpack.unused_data
    except zlib.error as exc:
        raise DecodeError(
            f"cannot decompress {key!r}: {exc}", key=key, reason="decode_error"
        ) from exc
    return b"".join(chunks)


def _open_regular(path: str | os.PathLike[str], name: str) -> IO[bytes]:
    """``path`` opened for reading if it is a regular file. It is opened without blocking (a FIFO
    would block ``open`` until a writer came) and checked on the open descriptor."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise DecodeError(
            f"cannot open audio {name!r}: {exc.strerror}",
            key=name,
            reason="decode_error",
        ) from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
            raise DecodeError(
                f"audio {name!r} is not a regular file ({kind}): not read",
                key=name,
                reason="not_regular_file",
            )
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)  # unbuffered: libsndfile reads the descriptor
    except BaseException:
        os.close(fd)
        raise


_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
    stat.S_IFSOCK: "a socket",
}


def _describe(source: Any, key: str | None) -> str:
    if key is not None:
        return str(key)
    if isinstance(source, str | os.PathLike):
        return os.fsdecode(source)
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
    max_samples: int = MAX_SAMPLES,
) -> tuple[np.ndarray, float, int]:
    """Read audio as soundfile stores it, for callers that convert it themselves.

    Args:
        source, key: as :func:`decode`.
        dtype: the floating dtype the caller will convert to (float64 reads float files as
            float64).
        max_samples: the most decoded samples (frames x channels) to allocate.

    Returns:
        ``(data, scale, sample_rate)``: ``data`` is ``(time, channels)``, int16 or int32 for
        16-, 24- and 32-bit integer PCM (``data * scale`` is the audio in [-1, 1], the value
        libsndfile would give as float), float32 / float64 otherwise (``scale`` 1.0).

    Raises:
        DecodeError: as :func:`decode`.
    """
    out_dtype = check_float_dtype("dtype", dtype)
    name = _describe(source, key)
    shown = name  # repr() escapes what is not UTF-8 (surrogate escapes of a file name)
    size: int | None = None
    fileobj: Any
    if isinstance(source, bytes | bytearray | memoryview):
        data_bytes = bytes(source)
        if data_bytes[:2] == _GZIP_MAGIC:  # gzip-compressed audio: the audio it holds
            data_bytes = gunzip(data_bytes, key=name)
        fileobj, size = io.BytesIO(data_bytes), len(data_bytes)
    elif isinstance(source, str | os.PathLike):
        opened = _open_regular(source, name)  # libsndfile reads its descriptor: any name works
        fileobj, size = opened.fileno(), os.fstat(opened.fileno()).st_size
        if opened.read(2) == _GZIP_MAGIC:  # a gzip-compressed file: the audio it holds
            with opened:
                if size > MAX_ENCODED_BYTES:
                    raise _too_large(shown, name, f"is {size} bytes of gzip")
                data_bytes = gunzip(_GZIP_MAGIC + opened.read(), key=name)
            fileobj, size, source = io.BytesIO(data_bytes), len(data_bytes), data_bytes
        else:
            opened.seek(0)
    else:
        fileobj = source
        if getattr(source, "seekable", lambda: False)():
            here = source.seek(0, io.SEEK_CUR)
            size = source.seek(0, io.SEEK_END) - here
            source.seek(here)
    if size == 0:  # libsndfile cannot open it at all: no audio, rather than corrupt audio
        if isinstance(source, str | os.PathLike):
            opened.close()
        raise DecodeError(f"audio {shown!r} is a 0-byte file", key=name, reason="empty")
    if size is not None and (isinstance(fileobj, int) or isinstance(fileobj, io.BytesIO)):
        raw = opened if isinstance(fileobj, int) else fileobj
        try:
            plain = _plain_wav(raw, size, shown, name, max_samples)
        except BaseException:
            if isinstance(source, str | os.PathLike):
                opened.close()
            raise
        if plain is not None:
            if isinstance(source, str | os.PathLike):
                opened.close()
            return plain
    try:
        with sf.SoundFile(fileobj, closefd=False) as f:
            sample_rate, declared, channels = f.samplerate, f.frames, f.channels
            _check_declared(shown, name, declared, channels, size, max_samples)
            read_dtype, scale = _INTEGER_READS.get(
                f.subtype, (_SOUNDFILE_DTYPES.get(out_dtype, "float32"), 1.0)
            )
            if declared < 2**62:
                data = f.read(dtype=read_dtype, always_2d=True)
            else:  # no length declared: read in blocks, up to max_samples
                data = _read_blocks(f, read_dtype, shown, name, max_samples)
            log = f.extra_info
    except (sf.LibsndfileError, sf.SoundFileError, RuntimeError, TypeError, OSError) as exc:
        # libsndfile's own words, without soundfile's "Error opening <descriptor>: " prefix
        detail = getattr(exc, "error_string", None) or str(exc)
        path = os.fsdecode(source) if isinstance(source, str | os.PathLike) else None
        where = f"{shown!r}" + (f" ({path!r})" if path is not None and path != name else "")
        raise DecodeError(
            f"cannot decode audio {where}: {detail}", key=name, reason="decode_error"
        ) from exc
    except MemoryError as exc:  # within max_samples, but more than this process may hold
        raise _too_large(shown, name, "does not fit in memory") from exc
    finally:
        if isinstance(source, str | os.PathLike):
            opened.close()
    if data.shape[0] == 0:
        raise DecodeError(
            f"audio {shown!r} has 0 samples (empty, or cut before its first frame)",
            key=name,
            reason="empty",
        )
    short = _truncation(log)
    if short is None and 0 < declared < 2**62 and data.shape[0] < declared:
        short = f"{declared} frames declared, {data.shape[0]} read"
    if short is not None:
        raise DecodeError(
            f"audio {shown!r} is truncated ({short})", key=name, reason="decode_error"
        )
    return data, scale, int(sample_rate)


#: How much of a WAV file's start :func:`_plain_wav` looks at for its ``fmt `` and ``data`` chunks.
_WAV_HEAD_BYTES = 4096


def _plain_wav(
    f: Any, size: int, shown: str, name: str, max_samples: int
) -> tuple[np.ndarray, float, int] | None:
    """``read_native``'s result for a plain 16-bit PCM WAV (``RIFF`` size matching the file,
    one 16-byte PCM ``fmt `` chunk, a whole ``data`` chunk within the file, in the first
    :data:`_WAV_HEAD_BYTES`), read straight from ``f`` (a raw or ``BytesIO`` file at position 0)
    without libsndfile: the same int16 values, without its per-file set-up (5x faster for 4 s
    clips). ``None`` for any other file, ``f`` back at position 0 (libsndfile reads it then and
    gives its own errors); a header declaring more than ``max_samples`` is ``'too_large'``."""
    if sys.byteorder != "little" or size < 44:
        return None
    head = f.read(min(size, _WAV_HEAD_BYTES))
    f.seek(0)
    if (
        head[:4] != b"RIFF"
        or head[8:12] != b"WAVE"
        or struct.unpack_from("<I", head, 4)[0] + 8 != size
    ):
        return None
    pos, fmt = 12, None
    while pos + 8 <= len(head):
        chunk, length = head[pos : pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if chunk == b"fmt ":
            if fmt is not None or length != 16 or pos + 24 > len(head):
                return None
            tag, channels, rate, byte_rate, align, bits = struct.unpack_from(
                "<HHIIHH", head, pos + 8
            )
            if tag != 1 or bits != 16 or not 0 < channels <= 1024 or rate == 0:
                return None
            if align != 2 * channels or byte_rate != rate * align:
                return None
            fmt = channels, rate
        elif chunk == b"data":
            start = pos + 8
            if fmt is None or length == 0 or length % (2 * fmt[0]) or start + length > size:
                return None
            channels, rate = fmt
            frames = length // (2 * channels)
            _check_declared(shown, name, frames, channels, size, max_samples)
            data = np.empty((frames, channels), dtype=np.int16)
            f.seek(start)
            view, done = data.data.cast("B"), 0
            while done < length:
                got = f.readinto(view[done:])
                if not got:
                    break
                done += got
            f.seek(0)
            return (data, _INTEGER_READS["PCM_16"][1], rate) if done == length else None
        pos += 8 + length + (length & 1)
    return None


def _too_large(shown: str, name: str, what: str) -> DecodeError:
    return DecodeError(f"audio {shown!r} {what}: refused", key=name, reason="too_large")


def _check_declared(
    shown: str, name: str, frames: int, channels: int, size: int | None, max_samples: int
) -> None:
    """Refuse a header that declares more than ``max_samples`` samples, or more frames than a
    file of ``size`` bytes can hold (``reason='too_large'``), before anything is allocated."""
    if frames >= 2**62:  # no length declared (read in blocks, bounded there)
        return
    if frames * channels > max_samples:
        raise _too_large(
            shown,
            name,
            f"declares {frames} frames x {channels} channels, more than max_samples={max_samples}",
        )
    if size is not None and frames > MAX_FRAMES_PER_BYTE * max(size, 1):
        raise _too_large(
            shown,
            name,
            f"declares {frames} frames in {size} bytes, more than a file of its size can hold "
            f"(MAX_FRAMES_PER_BYTE={MAX_FRAMES_PER_BYTE})",
        )


def _read_blocks(f: Any, dtype: str, shown: str, name: str, max_samples: int) -> np.ndarray:
    """Every frame of ``f``, read in blocks; more than ``max_samples`` samples is refused."""
    blocks, total = [], 0
    for block in f.blocks(blocksize=2**16, dtype=dtype, always_2d=True):
        total += block.size
        if total > max_samples:
            raise _too_large(shown, name, f"holds more than max_samples={max_samples} samples")
        blocks.append(block)
    return np.concatenate(blocks) if blocks else np.zeros((0, f.channels), dtype=dtype)


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
    max_samples: int = MAX_SAMPLES,
) -> tuple[torch.Tensor, int]:
    """Decode audio with soundfile.

    Args:
        source: encoded bytes, a binary file-like object, or a path.
        key: the name used in error messages (default: the path, or the file object's name).
        dtype: floating dtype of the result (float32 by default).
        max_samples: the most decoded samples (frames x channels) a header may make us allocate.

    Returns:
        ``(audio, sample_rate)``: ``audio`` is ``(channels, time)`` (mono files give one channel),
        integer PCM scaled to [-1, 1].

    Raises:
        DecodeError: the source is not readable as audio (``reason='decode_error'``: corrupt,
            truncated - a WAV whose data chunk is shorter than its header declares, or fewer
            frames than declared -, unsupported format, missing file) or holds 0 samples
            (``reason='empty'``); its header declares more than ``max_samples`` samples or more
            frames than the file can hold, or it is gzip that decompresses to more than
            :data:`MAX_ENCODED_BYTES` (``'too_large'``); the path is not a regular file
            (``'not_regular_file'``). The message names ``key`` or the file.
        ValueError: ``dtype`` is not a floating dtype.
    """
    out_dtype = check_float_dtype("dtype", dtype)
    data, scale, sample_rate = read_native(
        source, key=key, dtype=out_dtype, max_samples=max_samples
    )
    audio = torch.empty(data.shape[1], data.shape[0], dtype=out_dtype)
    return scale_into(audio, torch.from_numpy(data).T, scale), sample_rate
