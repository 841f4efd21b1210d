"""nnaudio_data.io.decode against the samples written with soundfile."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from nnaudio_data.io import DecodeError, SampleError, decode, extension, read_native, scale_into

SR = 16000


def _tone(n: int = 4000, channels: int = 1, sr: int = SR) -> np.ndarray:
    t = np.arange(n) / sr
    rows = [0.5 * np.sin(2 * np.pi * (300 + 200 * c) * t) for c in range(channels)]
    return np.stack(rows, axis=1)  # (time, channels) as soundfile writes


def test_int16_wav_is_scaled_exactly(tmp_path: Path) -> None:
    pcm = np.array([0, 1, -1, 16384, -16384, 32767, -32768, 100], dtype=np.int16)
    path = tmp_path / "a.wav"
    sf.write(path, pcm, SR, subtype="PCM_16")
    audio, sr = decode(path)
    assert sr == SR
    assert audio.dtype == torch.float32 and audio.shape == (1, pcm.size)
    # integer PCM / 2**15 is exact in float32 for 16-bit values
    np.testing.assert_array_equal(audio[0].numpy(), pcm.astype(np.float32) / 32768)
    assert float(audio.min()) == -1.0 and float(audio.max()) < 1.0


def test_float64_stereo_wav_from_str_path(tmp_path: Path) -> None:
    data = _tone(3000, channels=2)
    path = tmp_path / "b.wav"
    sf.write(path, data, 22050, subtype="DOUBLE")
    audio, sr = decode(str(path), dtype="float64")
    assert sr == 22050 and audio.dtype == torch.float64 and audio.shape == (2, 3000)
    np.testing.assert_array_equal(audio.numpy(), data.T)  # DOUBLE is stored exactly
    audio32, _ = decode(path)
    np.testing.assert_array_equal(audio32.numpy(), data.T.astype(np.float32))


def test_flac_from_bytes_and_file_object() -> None:
    data = _tone(5000, channels=2)
    buf = io.BytesIO()
    sf.write(buf, data, SR, format="FLAC", subtype="PCM_16")
    raw = buf.getvalue()
    expected = np.round(data * 32767).astype(np.int16).T / 32768  # FLAC keeps 16-bit PCM exactly
    audio, sr = decode(raw, key="clip-1")
    assert sr == SR and audio.shape == (2, 5000)
    np.testing.assert_allclose(audio.numpy(), expected, atol=1 / 32768)  # one LSB of rounding
    audio2, _ = decode(io.BytesIO(raw))
    assert torch.equal(audio, audio2)
    audio3, _ = decode(memoryview(raw))
    assert torch.equal(audio, audio3)


def test_ogg_vorbis_round_trip() -> None:
    data = _tone(SR, channels=1)
    buf = io.BytesIO()
    sf.write(buf, data, SR, format="OGG", subtype="VORBIS")
    audio, sr = decode(buf.getvalue())
    assert sr == SR and audio.shape == (1, SR)
    # Vorbis is lossy: a pure tone comes back with an SNR above 20 dB
    err = np.linalg.norm(audio[0].numpy() - data[:, 0]) / np.linalg.norm(data[:, 0])
    assert err < 0.1


def test_corrupt_bytes_raise_decode_error_naming_key() -> None:
    with pytest.raises(DecodeError, match="bad-key") as info:
        decode(b"this is not audio" * 10, key="bad-key")
    assert isinstance(info.value, ValueError) and isinstance(info.value, SampleError)
    assert info.value.reason == "decode_error" and info.value.key == "bad-key"


@pytest.mark.parametrize(
    ("fmt", "subtype"), [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_24")]
)
def test_truncated_files_are_decode_errors(fmt: str, subtype: str) -> None:
    buf = io.BytesIO()
    sf.write(buf, _tone(8000, channels=2), SR, format=fmt, subtype=subtype)
    raw = buf.getvalue()
    with pytest.raises(DecodeError, match="clip-7") as info:
        decode(raw[: int(len(raw) * 0.7)], key="clip-7")
    assert info.value.reason == "decode_error"
    assert decode(raw)[0].shape == (2, 8000)


def test_streaming_wav_size_placeholder_is_not_truncation() -> None:
    buf = io.BytesIO()
    sf.write(buf, _tone(3000), SR, format="WAV", subtype="PCM_16")
    raw = bytearray(buf.getvalue())
    at = raw.index(b"data") + 4
    raw[at : at + 4] = b"\xff\xff\xff\xff"  # what a writer that cannot seek back leaves
    audio, _ = decode(bytes(raw))
    assert audio.shape == (1, 3000)


def test_truncated_header_and_missing_file(tmp_path: Path) -> None:
    buf = io.BytesIO()
    sf.write(buf, _tone(1000), SR, format="WAV", subtype="PCM_16")
    with pytest.raises(DecodeError, match=r"cut\.wav"):
        decode(buf.getvalue()[:20], key="cut.wav")
    missing = tmp_path / "nope.wav"
    with pytest.raises(DecodeError, match=r"nope\.wav") as info:
        decode(missing)
    assert info.value.reason == "decode_error"


def test_empty_audio_is_its_own_reason(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 1)), SR, subtype="PCM_16")
    with pytest.raises(DecodeError, match="0 samples") as info:
        decode(path)
    assert info.value.reason == "empty" and info.value.key == str(path)


def test_bad_dtype_names_parameter() -> None:
    with pytest.raises(ValueError, match="dtype"):
        decode(b"", dtype="int16")


def test_errors_pickle_with_key_and_reason() -> None:
    err = DecodeError("cannot decode 'x'", key="x", reason="empty")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is DecodeError and back.key == "x" and back.reason == "empty"
    assert str(back) == str(err)


def test_extension() -> None:
    assert extension("a.b.FLAC") == "flac"
    assert extension(".wav") == "wav"
    assert extension("flac") == "flac"


@pytest.mark.parametrize(
    ("fmt", "subtype", "native"),
    [
        ("WAV", "PCM_16", np.int16),
        ("WAV", "PCM_24", np.int32),
        ("WAV", "PCM_32", np.int32),
        ("FLAC", "PCM_24", np.int32),
        ("WAV", "FLOAT", np.float32),
    ],
)
def test_integer_pcm_read_as_stored_equals_libsndfile_float(
    fmt: str, subtype: str, native: type
) -> None:
    """Integer PCM is read as integers and scaled in torch: the same float32 and float64 values
    as libsndfile's own float read, bit for bit (a power-of-two scale is exact)."""
    rng = np.random.default_rng(0)
    data = np.clip(rng.standard_normal((3000, 2)) * 0.4, -1, 1)
    data[:4, 0] = [1.0, -1.0, 0.999999, -0.999999]  # full-scale values
    buf = io.BytesIO()
    sf.write(buf, data, SR, format=fmt, subtype=subtype)
    raw = buf.getvalue()
    stored, scale, sr = read_native(raw)
    assert stored.dtype == native and stored.shape == (3000, 2) and sr == SR
    for dtype in ("float32", "float64"):
        audio, _ = decode(raw, dtype=dtype)
        ref = sf.read(io.BytesIO(raw), dtype=dtype)[0].T
        assert audio.dtype == getattr(torch, dtype) and audio.is_contiguous()
        np.testing.assert_array_equal(audio.numpy(), ref)
        out = scale_into(
            torch.empty(2, 3000, dtype=getattr(torch, dtype)), torch.from_numpy(stored).T, scale
        )
        np.testing.assert_array_equal(out.numpy(), ref)
