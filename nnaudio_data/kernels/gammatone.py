"""Gammatone filterbank weights on FFT bins (Ellis' ``fft2gammatonemx``, after Slaney's
MakeERBFilters), as nnAudio 0.3.4's ``Gammatonegram`` uses them; vectorised and cached."""

from __future__ import annotations

import functools

import numpy as np

from nnaudio_data._checks import check_positive_float, check_positive_int

__all__ = ["gammatone_center_frequencies", "gammatone_filterbank"]

_EAR_Q = 9.26449
_MIN_BW = 24.7


def gammatone_center_frequencies(n_bins: int, fmin: float, fmax: float) -> np.ndarray:
    """Centre frequencies in Hz, ascending, equally spaced on the ERB scale from ``fmin`` (the
    lowest is slightly above it) to ``fmax``."""
    em = _EAR_Q * _MIN_BW
    k = np.arange(1, n_bins + 1)
    cf = (fmax + em) * np.exp(k * (np.log(fmin + em) - np.log(fmax + em)) / n_bins) - em
    return cf[::-1].copy()


def gammatone_filterbank(
    sr: float, n_fft: int, n_bins: int = 64, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Weights ``(n_bins, n_fft // 2 + 1)`` (float32, divided by ``n_fft`` as nnAudio) mapping an
    FFT magnitude spectrum to 4th-order gammatone bands.

    Args:
        sr (float > 0):
        n_fft (int > 0):
        n_bins (int > 0):
        fmin (float >= 0):
        fmax (float > fmin, default ``sr / 2``):
    """
    sr = check_positive_float("sr", sr)
    n_fft = check_positive_int("n_fft", n_fft)
    n_bins = check_positive_int("n_bins", n_bins)
    fmin = check_positive_float("fmin", fmin, allow_zero=True)
    fmax = sr / 2 if fmax is None else check_positive_float("fmax", fmax)
    if fmax <= fmin:
        raise ValueError(f"fmax must be above fmin={fmin}, got fmax={fmax}")
    w = _filterbank(sr, n_fft, n_bins, fmin, fmax).copy()
    return w


@functools.lru_cache(maxsize=16)
def _filterbank(sr: float, n_fft: int, n_bins: int, fmin: float, fmax: float) -> np.ndarray:
    cf = gammatone_center_frequencies(n_bins, fmin, fmax)[:, None]
    t = 1.0 / sr
    erb = cf / _EAR_Q + _MIN_BW
    b = 1.019 * 2 * np.pi * erb
    pole = np.exp(-b * t) * np.exp(2j * np.pi * cf * t)
    ebt = np.exp(b * t)
    cpt = 2 * np.pi * cf * t
    ccpt, scpt = 2 * t * np.cos(cpt), 2 * t * np.sin(cpt)
    s3p, s3m = np.sqrt(3 + 2**1.5), np.sqrt(3 - 2**1.5)
    zeros = [
        (ccpt + sign * root * scpt) / ebt / 2 / t for root in (s3p, s3m) for sign in (1.0, -1.0)
    ]
    e4 = np.exp(4j * np.pi * cf * t)
    e2 = np.exp(-b * t + 2j * np.pi * cf * t)
    gain = np.ones_like(e4)
    for root in (s3m, s3p):
        for sign in (-1.0, 1.0):
            gain = gain * (-2 * e4 * t + 2 * e2 * t * (np.cos(cpt) + sign * root * np.sin(cpt)))
    gain = np.abs(gain / (-2 / np.exp(2 * b * t) - 2 * e4 + 2 * (1 + e4) / ebt) ** 4)
    ucirc = np.exp(2j * np.pi * np.arange(n_fft // 2 + 1) / n_fft)[None, :]
    w = t**4 / gain
    for z in zeros:
        w = w * np.abs(ucirc - z)
    w = w * np.abs(((pole - ucirc) * (np.conj(pole) - ucirc)) ** -4)
    out = (w / n_fft).astype(np.float32)
    out.setflags(write=False)
    return out
