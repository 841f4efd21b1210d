"""Fourier kernels: the cos / sin bases that an ``STFT`` applies as 1-D convolutions.

Row ``k`` of the cosine kernel is ``cos(2 pi f_k n / n_fft) * w[n]`` and of the sine kernel
``sin(2 pi f_k n / n_fft) * w[n]`` (``n = 0 .. n_fft - 1``), where ``f_k`` is the (possibly
fractional) bin number of frequency ``k`` and ``w`` the window centred in ``n_fft`` samples. So
``sum_n x[n] cos_k[n]`` is the real part of the DFT of a frame at ``f_k`` and ``-sum_n x[n]
sin_k[n]`` its imaginary part (nnAudio's and librosa's sign convention).

``freq_scale`` picks the bins as nnAudio 0.3.4 does: ``'no'`` the DFT bins ``0 .. freq_bins - 1``,
``'linear'`` ``freq_bins`` bins from ``fmin`` in steps of ``(fmax - fmin) / freq_bins`` Hz,
``'log'`` / ``'log2'`` ``freq_bins`` bins from ``fmin`` in equal ratios of ``(fmax / fmin) **
(1 / freq_bins)`` (both spacings give the same frequencies: nnAudio's two names differ only in the
base of the logarithm they use internally).

Everything is computed in float64 and cast at the end; for ``'no'`` the phase ``k n mod n_fft`` is
reduced exactly in integers, so float64 kernels agree with a float64 FFT to rounding. Results for
hashable arguments are cached and returned read-only (``np.array(k)`` gives a writable copy).
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import numpy as np

from nnaudio_data._checks import check_choice, check_positive_float, check_positive_int
from nnaudio_data.kernels.windows import WindowSpec, get_window, pad_center

__all__ = [
    "FREQ_SCALES",
    "fourier_basis",
    "fourier_bins",
    "fourier_kernels",
    "fourier_window",
    "inverse_fourier_basis",
]

FREQ_SCALES = ("no", "linear", "log", "log2")


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _hashable_window(window: WindowSpec) -> Any:
    """A hashable cache key for ``window``, or ``None`` when it has none (array, callable)."""
    if isinstance(window, str):
        return window
    if isinstance(window, numbers.Real) and not isinstance(window, bool):
        return float(window)
    if isinstance(window, tuple | list) and window and isinstance(window[0], str):
        key = tuple(window)
        try:
            hash(key)
        except TypeError:
            return None
        return key
    return None


def _check_scale(
    n_fft: int, freq_bins: int | None, freq_scale: str, fmin: float, fmax: float, sr: float
) -> tuple[int, int, str, float, float, float]:
    n_fft = check_positive_int("n_fft", n_fft)
    freq_bins = n_fft // 2 + 1 if freq_bins is None else check_positive_int("freq_bins", freq_bins)
    check_choice("freq_scale", freq_scale, FREQ_SCALES)
    sr = check_positive_float("sr", sr)
    if freq_scale == "no":
        return n_fft, freq_bins, freq_scale, float(fmin), float(fmax), sr
    fmin = check_positive_float("fmin", fmin, allow_zero=freq_scale == "linear")
    fmax = check_positive_float("fmax", fmax)
    if fmax <= fmin:
        raise ValueError(f"fmax must be greater than fmin, got fmin={fmin!r}, fmax={fmax!r}")
    if fmax > sr / 2:
        raise ValueError(
            f"fmax={fmax!r} is above the Nyquist frequency sr / 2 = {sr / 2} (sr={sr}): bins "
            "there hold no signal; lower fmax or give the right sr"
        )
    return n_fft, freq_bins, freq_scale, fmin, fmax, sr


def fourier_bins(
    n_fft: int,
    freq_bins: int | None = None,
    freq_scale: str = "no",
    fmin: float = 50.0,
    fmax: float = 6000.0,
    sr: float = 22050,
) -> np.ndarray:
    """Bin numbers ``f_k`` (cycles per ``n_fft`` samples) of each kernel row, float64.

    Args:
        n_fft (int > 0):
        freq_bins (int > 0 or None): Number of rows; ``None`` gives ``n_fft // 2 + 1``.
        freq_scale ({'no', 'linear', 'log', 'log2'}): See the module docstring. ``fmin``, ``fmax``
            (Hz) and ``sr`` are used by all but ``'no'``.

    Returns:
        np.ndarray [shape=(freq_bins,)], read-only. Multiply by ``sr / n_fft`` for Hz.
    """
    return _fourier_bins(*_check_scale(n_fft, freq_bins, freq_scale, fmin, fmax, sr))


@functools.lru_cache(maxsize=64)
def _fourier_bins(
    n_fft: int, freq_bins: int, freq_scale: str, fmin: float, fmax: float, sr: float
) -> np.ndarray:
    k = np.arange(freq_bins, dtype=np.float64)
    if freq_scale == "no":
        return _readonly(k)
    start_bin = fmin * n_fft / sr
    if freq_scale == "linear":
        bins = k * ((fmax - fmin) * n_fft / sr / freq_bins) + start_bin
    else:  # 'log' and 'log2' space the bins identically
        bins = np.exp(k * (np.log(fmax / fmin) / freq_bins)) * start_bin
    return _readonly(bins)


@functools.lru_cache(maxsize=32)
def _basis(
    n_fft: int, freq_bins: int, freq_scale: str, fmin: float, fmax: float, sr: float
) -> tuple[np.ndarray, np.ndarray]:
    n = np.arange(n_fft)
    if freq_scale == "no":
        # exact integer phase reduction k n mod n_fft, then a lookup in one period's table
        idx = np.outer(np.arange(freq_bins), n)
        idx %= n_fft
        angle = n * (2 * np.pi / n_fft)
        return _readonly(np.cos(angle)[idx]), _readonly(np.sin(angle)[idx])
    bins = _fourier_bins(n_fft, freq_bins, freq_scale, fmin, fmax, sr)
    cycles = np.outer(bins, n / n_fft)
    phase = (cycles - np.floor(cycles)) * (2 * np.pi)
    return _readonly(np.cos(phase)), _readonly(np.sin(phase))


def fourier_basis(
    n_fft: int,
    freq_bins: int | None = None,
    freq_scale: str = "no",
    fmin: float = 50.0,
    fmax: float = 6000.0,
    sr: float = 22050,
    *,
    dtype: Any = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Unwindowed ``(cos, sin)`` bases, each ``(freq_bins, n_fft)`` (arguments as
    :func:`fourier_bins`); read-only for float64, new arrays for other dtypes."""
    cos, sin = _basis(*_check_scale(n_fft, freq_bins, freq_scale, fmin, fmax, sr))
    return _cast(cos, dtype), _cast(sin, dtype)


def _cast(a: np.ndarray, dtype: Any) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a numpy floating dtype, got {dtype!r}")
    return a if dt == a.dtype else a.astype(dt)


def fourier_window(
    window: WindowSpec, n_fft: int, win_length: int | None = None, *, dtype: Any = np.float64
) -> np.ndarray:
    """The periodic ``window`` of ``win_length`` samples (default ``n_fft``) zero-padded to
    ``n_fft``, centred as librosa does. A new ``(n_fft,)`` array."""
    n_fft = check_positive_int("n_fft", n_fft)
    win_length = n_fft if win_length is None else check_positive_int("win_length", win_length)
    if win_length > n_fft:
        raise ValueError(f"win_length must be <= n_fft={n_fft}, got {win_length!r}")
    return _cast(pad_center(get_window(window, win_length, fftbins=True), n_fft), dtype)


@functools.lru_cache(maxsize=32)
def _kernels(
    window_key: Any,
    n_fft: int,
    win_length: int,
    freq_bins: int,
    freq_scale: str,
    fmin: float,
    fmax: float,
    sr: float,
) -> tuple[np.ndarray, np.ndarray]:
    w = fourier_window(window_key, n_fft, win_length)
    cos, sin = _basis(n_fft, freq_bins, freq_scale, fmin, fmax, sr)
    return _readonly(cos * w), _readonly(sin * w)


def fourier_kernels(
    n_fft: int,
    *,
    win_length: int | None = None,
    freq_bins: int | None = None,
    window: WindowSpec = "hann",
    freq_scale: str = "no",
    fmin: float = 50.0,
    fmax: float = 6000.0,
    sr: float = 22050,
    dtype: Any = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Windowed Fourier kernels ``(wcos, wsin)``, each ``(freq_bins, n_fft)``.

    Args:
        n_fft (int > 0): Kernel length.
        win_length (int in [1, n_fft] or None): Window length (default ``n_fft``); a shorter window
            is centred in ``n_fft`` samples.
        freq_bins, freq_scale, fmin, fmax, sr: As :func:`fourier_bins`.
        window (str, tuple, list, callable or array): As
            :func:`nnaudio_data.kernels.windows.get_window` (periodic).
        dtype (numpy floating dtype):

    Returns:
        (wcos, wsin) : np.ndarray [shape=(freq_bins, n_fft)] each; read-only when cached (float64 and
        a named window), else new arrays.
    """
    n_fft, freq_bins, freq_scale, fmin, fmax, sr = _check_scale(
        n_fft, freq_bins, freq_scale, fmin, fmax, sr
    )
    win_length = n_fft if win_length is None else check_positive_int("win_length", win_length)
    if win_length > n_fft:
        raise ValueError(f"win_length must be <= n_fft={n_fft}, got {win_length!r}")
    key = _hashable_window(window)
    if key is not None:
        cos, sin = _kernels(key, n_fft, win_length, freq_bins, freq_scale, fmin, fmax, sr)
    else:
        w = fourier_window(window, n_fft, win_length)
        cos, sin = _basis(n_fft, freq_bins, freq_scale, fmin, fmax, sr)
        cos, sin = cos * w, sin * w
    return _cast(cos, dtype), _cast(sin, dtype)


def inverse_fourier_basis(
    n_fft: int,
    freq_bins: int | None = None,
    freq_scale: str = "no",
    fmin: float = 50.0,
    fmax: float = 6000.0,
    sr: float = 22050,
    *,
    onesided: bool = True,
    dtype: Any = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Synthesis bases ``(cos, sin)`` so that a frame is ``(cos.T @ re - sin.T @ im) / n_fft``.

    With ``onesided`` the ``freq_bins`` rows of :func:`fourier_basis` are weighted 2 for the
    bins ``1 .. n_fft - freq_bins`` that stand for a mirrored pair (the rest once), which is the
    real inverse DFT for ``freq_scale='no'`` and ``freq_bins = n_fft // 2 + 1`` (and nnAudio's
    ``extend_fbins`` rule for the other scales). Without it the ``n_fft`` rows of a full
    spectrum: the ``freq_bins`` rows, then rows ``n_fft - freq_bins .. 1`` mirrored (sine
    negated). ``freq_bins`` must be ``n_fft // 2 + 1`` (the default).

    Returns:
        (cos, sin) : np.ndarray [shape=(freq_bins or n_fft, n_fft)] each, new arrays.
    """
    n_fft = check_positive_int("n_fft", n_fft)
    half = n_fft // 2 + 1
    if freq_bins is not None and freq_bins != half:
        raise ValueError(
            f"freq_bins must be n_fft // 2 + 1 = {half} for an inverse STFT, got {freq_bins!r}"
        )
    cos, sin = fourier_basis(n_fft, half, freq_scale, fmin, fmax, sr)
    m = n_fft - half  # bins 1..m have a mirror image
    if onesided:
        weight = np.ones(half)
        weight[1 : m + 1] = 2.0
        return _cast(cos * weight[:, None], dtype), _cast(sin * weight[:, None], dtype)
    full_cos = np.concatenate([cos, cos[1 : m + 1][::-1]])
    full_sin = np.concatenate([sin, -sin[1 : m + 1][::-1]])
    return _cast(full_cos, dtype), _cast(full_sin, dtype)
