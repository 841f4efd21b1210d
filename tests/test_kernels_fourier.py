"""Fourier kernels (``kernels.fourier``) against numpy's FFT, librosa and nnAudio 0.3.4's
``create_fourier_kernels``."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from nnAudio.utils import create_fourier_kernels

from nnaudio_data.kernels.fourier import (
    fourier_basis,
    fourier_bins,
    fourier_kernels,
    fourier_window,
    inverse_fourier_basis,
)

# nnAudio computes in float64 and stores float32 (its window product is rounded twice): values
# of magnitude <= 1 differ by a few float32 ulps (6e-8 each).
NNAUDIO_ATOL = 2e-7
# float64 kernels against a float64 FFT: only rounding of ~n_fft-term sums remains.
F64_TOL = 1e-12


@pytest.mark.parametrize("freq_scale", ["no", "linear", "log", "log2"])
@pytest.mark.parametrize(
    ("n_fft", "win_length", "window", "freq_bins"),
    [
        (256, None, "hann", None),
        (1024, 512, "hamming", None),
        (2048, 1500, "boxcar", 300),
        (511, 301, ("kaiser", 6.0), None),
    ],
)
def test_kernels_match_nnaudio(
    freq_scale: str, n_fft: int, win_length: int | None, window: object, freq_bins: int | None
) -> None:
    sin, cos, bins2freq, binslist, mask = create_fourier_kernels(
        n_fft,
        win_length=win_length,
        freq_bins=freq_bins,
        window=window,
        freq_scale=freq_scale,
        fmin=50,
        fmax=6000,
        sr=22050,
        verbose=False,
    )
    wcos, wsin = fourier_kernels(
        n_fft,
        win_length=win_length,
        freq_bins=freq_bins,
        window=window,
        freq_scale=freq_scale,
        fmin=50,
        fmax=6000,
        sr=22050,
    )
    assert wcos.shape == wsin.shape == cos[:, 0].shape
    assert np.max(np.abs(wcos - cos[:, 0] * mask)) <= NNAUDIO_ATOL
    assert np.max(np.abs(wsin - sin[:, 0] * mask)) <= NNAUDIO_ATOL
    bins = fourier_bins(n_fft, freq_bins, freq_scale, 50, 6000, 22050)
    # nnAudio's bins accumulate float64 rounding in a different order
    np.testing.assert_allclose(bins, binslist, rtol=1e-12)
    np.testing.assert_allclose(bins * 22050 / n_fft, bins2freq, rtol=1e-12)


@pytest.mark.parametrize("n_fft", [8, 255, 256, 2048])
def test_float64_kernels_are_the_dft(n_fft: int) -> None:
    rng = np.random.default_rng(1)
    frames = rng.standard_normal((n_fft, 5))
    wcos, wsin = fourier_kernels(n_fft, window="hann")
    w = librosa.filters.get_window("hann", n_fft)
    ref = np.fft.rfft(frames * w[:, None], axis=0)
    ours = wcos @ frames - 1j * (wsin @ frames)
    assert np.linalg.norm(ours - ref) / np.linalg.norm(ref) <= F64_TOL


def test_window_is_centred_as_librosa() -> None:
    for n_fft, win_length in [(1024, 512), (1024, 301), (255, 100)]:
        ref = librosa.util.pad_center(librosa.filters.get_window("hann", win_length), size=n_fft)
        assert np.array_equal(fourier_window("hann", n_fft, win_length), ref)
        wcos, _ = fourier_kernels(n_fft, win_length=win_length)
        assert np.array_equal(wcos[0], ref)  # bin 0 of the cosine kernel is the window itself


def test_log_scales_are_geometric_and_linear_is_even() -> None:
    log = fourier_bins(1024, 100, "log", 50, 6000, 22050) * 22050 / 1024
    assert log[0] == pytest.approx(50.0)
    ratios = log[1:] / log[:-1]
    np.testing.assert_allclose(ratios, (6000 / 50) ** (1 / 100), rtol=1e-12)
    np.testing.assert_allclose(fourier_bins(1024, 100, "log2", 50, 6000, 22050), log * 1024 / 22050)
    lin = fourier_bins(1024, 100, "linear", 50, 6000, 22050) * 22050 / 1024
    np.testing.assert_allclose(np.diff(lin), (6000 - 50) / 100, rtol=1e-9)


def test_cached_results_are_read_only_and_dtype_cast() -> None:
    a, _ = fourier_kernels(512)
    b, _ = fourier_kernels(512)
    assert a is b  # cached
    with pytest.raises(ValueError, match="read-only"):
        a[0, 0] = 1.0
    c, s = fourier_kernels(512, dtype=np.float32)
    assert c.dtype == s.dtype == np.float32 and c.flags.writeable
    np.testing.assert_allclose(c, a, atol=6e-8)
    cos, sin = fourier_basis(512, dtype=np.float16)
    assert cos.dtype == sin.dtype == np.float16


def test_uncached_windows_give_the_same_kernels() -> None:
    named, _ = fourier_kernels(256, window="hann")
    arr, _ = fourier_kernels(256, window=librosa.filters.get_window("hann", 256))
    fn, _ = fourier_kernels(256, window=lambda n: librosa.filters.get_window("hann", n))
    lst, _ = fourier_kernels(256, window=["kaiser", 5.0])
    tup, _ = fourier_kernels(256, window=("kaiser", 5.0))
    assert np.array_equal(named, arr) and np.array_equal(named, fn) and np.array_equal(lst, tup)


@pytest.mark.parametrize("n_fft", [8, 9, 512, 513])
def test_inverse_basis_inverts_rfft_and_fft(n_fft: int) -> None:
    rng = np.random.default_rng(2)
    frames = rng.standard_normal((n_fft, 3))
    spec = np.fft.rfft(frames, axis=0)
    cos, sin = inverse_fourier_basis(n_fft, onesided=True)
    back = (cos.T @ spec.real - sin.T @ spec.imag) / n_fft
    assert np.max(np.abs(back - frames)) <= F64_TOL
    full = np.fft.fft(frames + 0.5j * rng.standard_normal(frames.shape), axis=0)
    cos, sin = inverse_fourier_basis(n_fft, onesided=False)
    assert cos.shape == (n_fft, n_fft)
    ref = np.fft.ifft(full, axis=0).real
    assert np.max(np.abs((cos.T @ full.real - sin.T @ full.imag) / n_fft - ref)) <= F64_TOL


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_fft": 0}, "n_fft"),
        ({"n_fft": 256.0}, "n_fft"),
        ({"n_fft": 256, "freq_bins": 0}, "freq_bins"),
        ({"n_fft": 256, "freq_scale": "mel"}, "freq_scale"),
        ({"n_fft": 256, "freq_scale": "log", "fmin": 0}, "fmin"),
        ({"n_fft": 256, "freq_scale": "linear", "fmin": -1}, "fmin"),
        ({"n_fft": 256, "freq_scale": "linear", "fmin": 500, "fmax": 100}, "fmax"),
        ({"n_fft": 256, "freq_scale": "log2", "sr": 0}, "sr"),
        ({"n_fft": 256, "win_length": 300}, "win_length"),
        ({"n_fft": 256, "win_length": 0}, "win_length"),
        ({"n_fft": 256, "window": "nonsense"}, "window"),
        ({"n_fft": 256, "dtype": np.int32}, "dtype"),
    ],
)
def test_bad_kernel_parameters_raise(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fourier_kernels(**kwargs)  # type: ignore[arg-type]


def test_inverse_basis_needs_the_default_bins() -> None:
    with pytest.raises(ValueError, match="freq_bins"):
        inverse_fourier_basis(256, freq_bins=100)
