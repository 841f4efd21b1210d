"""Bad (and merely unusual) inputs for the reliability tests, as real encoded files.

Every case is a :class:`Case`: a key, the encoded bytes of a file (made with soundfile, or by hand
where soundfile would refuse to write it), the file extension, and what the pipeline must do with it
under ``FaultPolicy("skip")`` with ``sample_rate=SR, mono=True, resample=False``: deliver it
(``reason=None``) or skip and count it under ``reason``. The expectation is decided here, from
what the input is, not from what the code does:

* unreadable bytes (corrupt, truncated, an unsupported codec) -> ``decode_error``;
* no samples -> ``empty``; NaN or Inf anywhere -> ``non_finite``; another rate -> ``sample_rate``
  (and, even with ``resample=True``, a rate whose ratio to ``sr`` does not reduce to small
  integers, as a corrupt header may claim);
* silence, stereo and 6-channel audio, 8/16/32-bit integer PCM, float64, clips shorter than
  ``n_fft`` (but long enough for its centre padding), a 10-minute clip: valid data, delivered.

:func:`write_files` puts the cases in a folder, :func:`write_shards` in WebDataset tar shards.
"""

from __future__ import annotations

import dataclasses
import io
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = [
    "LONG_SECONDS",
    "ODD_RATE",
    "SR",
    "Case",
    "cases",
    "expected_counts",
    "expected_keys",
    "reference_audio",
    "write_files",
    "write_shards",
]

SR = 8000  # the fault matrix runs at 8 kHz: the 10-minute clip is then 4.8 M samples
LONG_SECONDS = 600
ODD_RATE = 44101  # coprime with 8000 and 22050: an exact polyphase resampler would need GBs


@dataclasses.dataclass(frozen=True)
class Case:
    key: str
    data: bytes
    ext: str
    reason: str | None  # None: delivered; else the reason it is skipped and counted under
    about: str


def _encode(
    data: np.ndarray, sr: int, fmt: str, subtype: str, *, channels_last: bool = True
) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, data if channels_last else data.T, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def _noise(n: int, channels: int = 1, seed: int = 0, scale: float = 0.3) -> np.ndarray:
    out = scale * np.random.default_rng(seed).standard_normal((n, channels))
    return np.clip(out, -0.99, 0.99)


def _tone(n: int, sr: int, freq: float = 220.0) -> np.ndarray:
    return (0.25 * np.sin(2 * np.pi * freq * np.arange(n) / sr)).reshape(-1, 1)


def _wav_with_format_tag(tag: int, sr: int, n_bytes: int = 400) -> bytes:
    """A well-formed RIFF/WAVE file whose codec (format tag) libsndfile does not implement."""
    fmt = struct.pack("<HHIIHH", tag, 1, sr, sr * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", n_bytes) + bytes(n_bytes)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def cases(sr: int = SR, *, long: bool = True, short: int = 300) -> list[Case]:
    """Every bad or unusual input, at rate ``sr`` (the wrong-rate one at ``2.75 * sr``); the
    ``short`` clip has ``short`` samples: fewer than the transform's ``n_fft``, more than its
    centre padding ``n_fft // 2`` (300 for the tests' ``n_fft=512``)."""
    good = _encode(_noise(3000, seed=1), sr, "WAV", "PCM_16")
    non_finite = _noise(2000, seed=2).astype(np.float32)
    nan, inf = non_finite.copy(), non_finite.copy()
    nan[700, 0] = np.nan
    inf[1500, 0] = np.inf
    wrong_sr = int(sr * 2.75)
    out = [
        Case("good-a", good, "wav", None, "int16 WAV, 3000 samples"),
        Case("good-b", _encode(_noise(2500, seed=3), sr, "FLAC", "PCM_16"), "flac", None, "FLAC"),
        Case(
            "corrupt",
            b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4,
            "wav",
            "decode_error",
            "a RIFF header followed by garbage",
        ),
        Case(
            "corrupt-flac",
            b"fLaC" + bytes(range(255, 0, -1)) * 3,
            "flac",
            "decode_error",
            "FLAC magic followed by garbage",
        ),
        Case(
            "truncated",
            good[: len(good) * 6 // 10],
            "wav",
            "decode_error",
            "an int16 WAV cut at 60 % of its bytes (the header declares 3000 frames)",
        ),
        Case(
            "unsupported",
            _wav_with_format_tag(0x1234, sr),
            "wav",
            "decode_error",
            "a well-formed WAV whose codec (format tag 0x1234) libsndfile does not know",
        ),
        Case(
            "empty",
            _encode(np.zeros((0, 1)), sr, "WAV", "PCM_16"),
            "wav",
            "empty",
            "a valid WAV header with 0 frames",
        ),
        Case(
            "zeros",
            _encode(np.zeros((3000, 1)), sr, "WAV", "PCM_16"),
            "wav",
            None,
            "3000 samples of silence: valid data",
        ),
        Case("nan", _encode(nan, sr, "WAV", "FLOAT"), "wav", "non_finite", "float32 WAV, one NaN"),
        Case("inf", _encode(inf, sr, "WAV", "FLOAT"), "wav", "non_finite", "float32 WAV, one +Inf"),
        Case(
            "wrong-rate",
            _encode(_noise(2750, seed=4), wrong_sr, "WAV", "PCM_16"),
            "wav",
            "sample_rate",
            f"int16 WAV at {wrong_sr} Hz",
        ),
        Case(
            "odd-rate",
            _encode(_noise(4410, seed=12), ODD_RATE, "WAV", "PCM_16"),
            "wav",
            "sample_rate",
            f"int16 WAV whose header says {ODD_RATE} Hz: too costly to resample to sr",
        ),
        Case(
            "stereo",
            _encode(_noise(2200, 2, seed=5), sr, "WAV", "PCM_16"),
            "wav",
            None,
            "2 channels: valid, averaged to mono",
        ),
        Case(
            "six-channel",
            _encode(_noise(1800, 6, seed=6), sr, "WAV", "PCM_16"),
            "wav",
            None,
            "6 channels: valid, averaged to mono",
        ),
        Case(
            "int8", _encode(_noise(2100, seed=7), sr, "FLAC", "PCM_S8"), "flac", None, "8-bit FLAC"
        ),
        Case(
            "uint8",
            _encode(_noise(2100, seed=8), sr, "WAV", "PCM_U8"),
            "wav",
            None,
            "8-bit WAV (unsigned)",
        ),
        Case(
            "int32",
            _encode(_noise(2300, seed=9), sr, "WAV", "PCM_32"),
            "wav",
            None,
            "32-bit integer WAV",
        ),
        Case(
            "float64",
            _encode(_noise(2400, seed=10), sr, "WAV", "DOUBLE"),
            "wav",
            None,
            "float64 WAV",
        ),
        Case(
            "short",
            _encode(_noise(short, seed=11), sr, "WAV", "PCM_16"),
            "wav",
            None,
            f"{short} samples: fewer than n_fft, more than its centre padding n_fft // 2",
        ),
    ]
    if long:
        n = LONG_SECONDS * sr
        out.append(
            Case(
                "ten-minutes",
                _encode(_tone(n, sr), sr, "FLAC", "PCM_16"),
                "flac",
                None,
                f"a {LONG_SECONDS // 60}-minute FLAC ({n} samples)",
            )
        )
    return out


def expected_keys(all_cases: Sequence[Case]) -> list[str]:
    """Keys of the cases that must be delivered."""
    return sorted(c.key for c in all_cases if c.reason is None)


def expected_counts(all_cases: Sequence[Case]) -> dict[str, int]:
    """``{reason: n}`` of the cases that must be skipped."""
    counts: dict[str, int] = {}
    for c in all_cases:
        if c.reason is not None:
            counts[c.reason] = counts.get(c.reason, 0) + 1
    return counts


def reference_audio(case: Case) -> np.ndarray:
    """The case's samples as soundfile reads them (float32), averaged to mono: ``(time,)``."""
    data, _ = sf.read(io.BytesIO(case.data), dtype="float32", always_2d=True)
    return data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]


def write_files(folder: Path, all_cases: Sequence[Case]) -> dict[str, str]:
    """One file per case, ``<key>.<ext>``; returns ``{key: path}``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for c in all_cases:
        path = folder / f"{c.key}.{c.ext}"
        path.write_bytes(c.data)
        paths[c.key] = str(path)
    return paths


def write_shards(
    folder: Path,
    all_cases: Sequence[Case],
    n_shards: int,
    extra: Callable[[Case], dict[str, bytes]] | None = None,
) -> list[str]:
    """The cases dealt round-robin into ``n_shards`` WebDataset tar shards (``<key>.<ext>`` plus
    a ``cls`` label and ``extra(case)``'s fields); returns the shard paths."""
    import webdataset as wds

    folder.mkdir(parents=True, exist_ok=True)
    paths = [str(folder / f"shard-{s:03d}.tar") for s in range(n_shards)]
    writers = [wds.TarWriter(p) for p in paths]
    try:
        for i, c in enumerate(all_cases):
            sample = {"__key__": c.key, c.ext: c.data, "cls": i}
            if extra is not None:
                sample.update(extra(c))
            writers[i % n_shards].write(sample)
    finally:
        for w in writers:
            w.close()
    return paths


# -- hostile input (issue 10) ----------------------------------------------------------------
#
# Inputs an attacker of a data loader would write: headers that promise more than the file holds,
# a clip that overflows the spectrogram, gzip, names and files that are not what they say. The
# expectations hold under ``FaultPolicy("skip")`` with ``sample_rate=SR, mono=True,
# resample=True`` and an STFT run on each batch.

ONE_HZ_SAMPLES = 40_000  # at 1 Hz resampled to SR: 3.2e8 samples, above MAX_SAMPLES (2**28)


def flac_declaring(frames: int, n: int = 2000) -> bytes:
    """A valid FLAC of ``n`` frames whose STREAMINFO declares ``frames`` (36 bits) instead."""
    data = bytearray(_encode(np.full((n, 1), 0.1), SR, "FLAC", "PCM_16"))
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO comes first
    # STREAMINFO bytes 10-17 (file bytes 18-25): rate (20 bits), channels, depth, total (36 bits)
    bits = int.from_bytes(data[18:26], "big")
    bits = (bits & ~(2**36 - 1)) | frames
    data[18:26] = bits.to_bytes(8, "big")
    return bytes(data)


def wav_declaring_data_bytes(size: int, n: int = 1000) -> bytes:
    """An int16 WAV of ``n`` frames whose data chunk says it holds ``size`` bytes."""
    data = bytearray(_encode(_noise(n, seed=21), SR, "WAV", "PCM_16"))
    at = data.index(b"data") + 4
    data[at : at + 4] = struct.pack("<I", size)
    return bytes(data)


def gzip_bomb(size: int) -> bytes:
    """Gzip members that decompress to ``size`` zero bytes (about 1 kB per MiB)."""
    import gzip

    member = gzip.compress(bytes(2**24), compresslevel=9)  # 16 MiB of zeros
    return member * -(-size // 2**24)


def hostile_cases(sr: int = SR) -> list[Case]:
    """The byte-level hostile inputs (each also written as a file and a shard member)."""
    import gzip

    good = _encode(_noise(3000, seed=20), sr, "WAV", "PCM_16")
    loud = _noise(2000, seed=22).astype(np.float32) * np.float32(1e30)  # finite samples
    return [
        Case("good", good, "wav", None, "int16 WAV, 3000 samples"),
        Case(
            "claims-2e36",
            flac_declaring(2**36 - 1),
            "flac",
            "too_large",
            "a FLAC of 2000 frames whose header declares 2**36 - 1 (128 GiB as int16)",
        ),
        Case(
            "claims-2e27",
            flac_declaring(2**27),
            "flac",
            "too_large",
            "a 99-byte FLAC declaring 2**27 frames: below MAX_SAMPLES, more than its size holds",
        ),
        Case(
            "one-hertz",
            _encode(_noise(ONE_HZ_SAMPLES, seed=23), 1, "WAV", "PCM_16"),
            "wav",
            "too_large",
            f"a WAV at 1 Hz: resampled to {sr} Hz it would be {ONE_HZ_SAMPLES * sr} samples",
        ),
        Case(
            "overflow",
            _encode(loud, sr, "WAV", "FLOAT"),
            "wav",
            "non_finite",
            "float32 WAV of amplitude 1e30: finite samples, an infinite spectrogram",
        ),
        Case(
            "lies-data-size",
            wav_declaring_data_bytes(0xFFFFFFF0),
            "wav",
            "decode_error",
            "a WAV of 1000 frames whose data chunk declares 4 GiB",
        ),
        Case(
            "streaming-size",
            wav_declaring_data_bytes(0xFFFFFFFF),
            "wav",
            None,
            "a WAV with the streaming writers' placeholder size 0xFFFFFFFF: valid",
        ),
        Case("gzipped", gzip.compress(good), "wav.gz", None, "a gzip-compressed WAV"),
        Case(
            "gzip-cut",
            gzip.compress(good)[:-40],
            "wav.gz",
            "decode_error",
            "a gzip-compressed WAV cut short",
        ),
        Case("zero-bytes", b"", "wav", "empty", "a 0-byte file"),
    ]


def write_special_files(folder: Path, good: bytes) -> dict[str, tuple[str, str | None]]:
    """Files that are not what their names say: ``{key: (path, reason)}``.

    A FIFO (opening it for reading would block for ever), a folder, a link to a character device,
    a dangling link and a link loop, all named ``*.wav``; and a valid WAV whose name is not UTF-8
    (bytes ``\\xff\\xfe``; delivered).
    """
    import os

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[str, str | None]] = {}
    os.mkfifo(folder / "fifo.wav")
    out["fifo"] = (str(folder / "fifo.wav"), "not_regular_file")
    (folder / "folder.wav").mkdir()
    (folder / "folder.wav" / "inside.txt").write_text("a folder named like audio")
    out["folder"] = (str(folder / "folder.wav"), "not_regular_file")
    os.symlink("/dev/zero", folder / "device.wav")  # endless zeros if it were read
    out["device"] = (str(folder / "device.wav"), "not_regular_file")
    os.symlink(folder / "missing.flac", folder / "dangling.wav")
    out["dangling"] = (str(folder / "dangling.wav"), "decode_error")
    os.symlink(folder / "loop-b.wav", folder / "loop-a.wav")
    os.symlink(folder / "loop-a.wav", folder / "loop-b.wav")
    out["loop-a"] = (str(folder / "loop-a.wav"), "decode_error")
    out["loop-b"] = (str(folder / "loop-b.wav"), "decode_error")
    name = os.fsdecode(os.fsencode(str(folder)) + b"/\xff\xfe-not-utf8.wav")
    with open(name, "wb") as f:
        f.write(good)
    out["not-utf8"] = (name, None)
    return out


def write_tar(path: Path, members: Sequence[tuple[str, bytes]]) -> str:
    """A tar of ``(name, data)`` regular members, written with :mod:`tarfile` as they are
    (webdataset's ``TarWriter`` would gzip a ``.gz`` field's bytes again)."""
    import tarfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def write_case_shards(folder: Path, all_cases: Sequence[Case], n_shards: int) -> list[str]:
    """The cases dealt round-robin into ``n_shards`` tar shards of ``<key>.<ext>`` members."""
    return [
        write_tar(
            folder / f"shard-{s:03d}.tar",
            [(f"{c.key}.{c.ext}", c.data) for c in all_cases[s::n_shards]],
        )
        for s in range(n_shards)
    ]
