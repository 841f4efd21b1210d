"""Mel filterbanks and the DCT matrix (``kernels.mel``, ``kernels.dct``) against librosa 0.11,
nnAudio 0.3.4's ``get_mel`` and scipy."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.fft
from nnAudio.librosa_functions import get_mel

from nnaudio_data.kernels.dct import dct_matrix
from nnaudio_data.kernels.mel import (
    fft_frequencies,
    hz_to_mel,
    mel_filterbank,
    mel_frequencies,
    mel_to_hz,
)

# Both sides compute in float64 with the same formulas; only summation order can differ.
F64_TOL = 1e-12
# nnAudio stores float32 filters: a float32 ulp relative to each value.
NNAUDIO_RTOL = 1.2e-7


@pytest.mark.parametrize("htk", [False, True])
def test_mel_scale_matches_librosa(htk: bool) -> None:
    hz = np.array([0.0, 20.0, 440.0, 999.9, 1000.0, 1000.1, 8000.0, 22050.0])
    np.testing.assert_allclose(hz_to_mel(hz, htk), librosa.hz_to_mel(hz, htk=htk), rtol=F64_TOL)
    mels = hz_to_mel(hz, htk)
    np.testing.assert_allclose(mel_to_hz(mels, htk), hz, rtol=F64_TOL, atol=1e-9)
    np.testing.assert_allclose(
        mel_frequencies(40, 30.0, 8000.0, htk),
        librosa.mel_frequencies(40, fmin=30.0, fmax=8000.0, htk=htk),
        rtol=F64_TOL,
    )
    np.testing.assert_allclose(
        fft_frequencies(16000, 400), librosa.fft_frequencies(sr=16000, n_fft=400)
    )


# nnAudio's norm=1 is librosa 0.7's area normalisation == librosa 0.11's norm='slaney'
NORMS = [(None, None), (1, "slaney"), ("slaney", "slaney"), (np.inf, np.inf), (2, 2), (0.5, 0.5)]


@pytest.mark.parametrize(("norm", "librosa_norm"), NORMS)
@pytest.mark.parametrize("htk", [False, True])
@pytest.mark.parametrize(
    ("sr", "n_fft", "n_mels", "fmin", "fmax"),
    [
        (22050, 2048, 128, 0.0, None),
        (16000, 512, 40, 20.0, 7600.0),
        (44100, 4096, 96, 30.0, 16000.0),
    ],
)
def test_filterbank_matches_librosa(
    norm: object,
    librosa_norm: object,
    htk: bool,
    sr: int,
    n_fft: int,
    n_mels: int,
    fmin: float,
    fmax: float | None,
) -> None:
    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk, norm)
    ref = librosa.filters.mel(
        sr=sr,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        htk=htk,
        norm=librosa_norm,
        dtype=np.float64,
    )
    assert ours.shape == ref.shape == (n_mels, n_fft // 2 + 1)
    assert np.max(np.abs(ours - ref)) <= F64_TOL * np.max(np.abs(ref))


@pytest.mark.parametrize("norm", [1, None])
@pytest.mark.parametrize("htk", [False, True])
def test_filterbank_matches_nnaudio(norm: object, htk: bool) -> None:
    ref = get_mel(22050, 1024, 64, 40.0, 9000.0, htk=htk, norm=norm)
    ours = mel_filterbank(22050, 1024, 64, 40.0, 9000.0, htk, norm, dtype=np.float32)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=NNAUDIO_RTOL, atol=1e-12)


def test_filterbank_cache_and_dtype() -> None:
    a = mel_filterbank(22050, 512, 32)
    assert a is mel_filterbank(22050, 512, 32)
    assert not a.flags.writeable
    assert mel_filterbank(22050, 512, 32, dtype=np.float32).dtype == np.float32


def test_empty_filters_warn_as_librosa() -> None:
    with pytest.warns(UserWarning, match="empty filters"):
        mel_filterbank(8000, 128, 128)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"norm": "l2"}, "norm"),
        ({"norm": 0}, "norm"),
        ({"norm": -1}, "norm"),
        ({"norm": True}, "norm"),
        ({"n_mels": 0}, "n_mels"),
        ({"fmin": -5.0}, "fmin"),
        ({"fmin": 5000.0, "fmax": 1000.0}, "fmax"),
        ({"htk": "yes"}, "htk"),
        ({"sr": 0}, "sr"),
        ({"dtype": np.int64}, "dtype"),
    ],
)
def test_bad_filterbank_parameters_raise(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"sr": 22050, "n_fft": 512, **kwargs}
    with pytest.raises(ValueError, match=match):
        mel_filterbank(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("norm", ["ortho", None])
@pytest.mark.parametrize(("n_out", "n_in"), [(20, 128), (13, 40), (7, 7)])
def test_dct_matches_scipy(norm: str | None, n_out: int, n_in: int) -> None:
    x = np.random.default_rng(3).standard_normal((n_in, 5))
    ref = scipy.fft.dct(x, type=2, axis=0, norm=norm)[:n_out]
    ours = dct_matrix(n_out, n_in, norm) @ x
    assert np.max(np.abs(ours - ref)) <= F64_TOL * np.max(np.abs(ref))
    assert dct_matrix(n_out, n_in, norm, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((30, 20), "n_mfcc must be <= n_mels"),
        ((0, 20), "n_mfcc"),
        ((5, 0), "n_mels"),
        ((5, 20, "l2"), "norm"),
    ],
)
def test_bad_dct_parameters_raise(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        dct_matrix(*args)  # type: ignore[arg-type]
