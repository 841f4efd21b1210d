"""Mel filterbanks (HTK and Slaney scales), vectorised, with librosa 0.11's numbers.

``norm`` follows nnAudio 0.3.4 where the two libraries differ: ``1`` is nnAudio's (and librosa
0.7's) *area* normalisation, which librosa 0.11 calls ``norm='slaney'`` (the filters are
identical). ``'slaney'`` is accepted as a synonym. ``None`` leaves the triangles with peak 1;
``np.inf`` divides each filter by its maximum and any other number ``p > 0`` by its ``p``-norm, as
``librosa.filters.mel(norm=p)`` does. (So librosa's own ``norm=1``, an L1 normalisation, is not
available here: it is nnAudio's meaning that ``1`` keeps.)
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from typing import Any

import numpy as np

from nnaudio_data._checks import check_positive_float, check_positive_int

__all__ = [
    "fft_frequencies",
    "hz_to_mel",
    "kaldi_mel_filterbank",
    "mel_filterbank",
    "mel_frequencies",
    "mel_to_hz",
]

# Slaney's scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(frequencies: Any, htk: bool = False) -> np.ndarray:
    """Hz to mels (float64 array of the input's shape): HTK ``2595 log10(1 + f / 700)`` or
    Slaney's linear-then-log scale (librosa's default)."""
    f = np.asarray(frequencies, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    with np.errstate(divide="ignore"):
        log_part = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log_part, f / _F_SP)


def mel_to_hz(mels: Any, htk: bool = False) -> np.ndarray:
    """Mels to Hz, the inverse of :func:`hz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    log_part = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(m, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(m >= _MIN_LOG_MEL, log_part, _F_SP * m)


def mel_frequencies(
    n_mels: int = 128, fmin: float = 0.0, fmax: float = 11025.0, htk: bool = False
) -> np.ndarray:
    """``n_mels`` frequencies (Hz) equally spaced on the mel scale from ``fmin`` to ``fmax``."""
    mels = np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels)
    return mel_to_hz(mels, htk)


def fft_frequencies(sr: float = 22050, n_fft: int = 2048) -> np.ndarray:
    """Centre frequencies (Hz) of the ``n_fft // 2 + 1`` bins of a real FFT."""
    return np.fft.rfftfreq(n=n_fft, d=1.0 / sr)


def _norm_key(norm: Any) -> Any:
    """``norm`` as a hashable canonical value: None, 'slaney', inf or a float p > 0."""
    if norm is None:
        return None
    if isinstance(norm, str):
        if norm == "slaney":
            return "slaney"
    elif isinstance(norm, numbers.Real) and not isinstance(norm, bool):
        p = float(norm)
        if p == 1.0:
            return "slaney"
        if p == math.inf or (math.isfinite(p) and p > 0):
            return p
    raise ValueError(
        f"norm must be None, 1 or 'slaney' (area normalisation), np.inf, or a number > 0 "
        f"(librosa's p-norm), got {norm!r}"
    )


@functools.lru_cache(maxsize=32)
def _mel(
    sr: float, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool, norm: Any
) -> np.ndarray:
    fftfreqs = fft_frequencies(sr, n_fft)
    mel_f = mel_frequencies(n_mels + 2, fmin, fmax, htk)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fftfreqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    elif norm is not None:
        if norm == math.inf:
            length = weights.max(axis=1, keepdims=True)
        else:
            length = np.sum(weights**norm, axis=1, keepdims=True) ** (1.0 / norm)
        # as librosa.util.normalize: an all-zero filter stays zero
        length[length < np.finfo(np.float64).tiny] = 1.0
        weights = weights / length
    weights.setflags(write=False)
    return weights


def mel_filterbank(
    sr: float,
    n_fft: int,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: Any = 1,
    *,
    dtype: Any = np.float64,
) -> np.ndarray:
    """A mel filterbank that maps ``n_fft // 2 + 1`` FFT bins to ``n_mels`` mel bands.

    Args:
        sr (float > 0):
        n_fft (int > 0):
        n_mels (int > 0):
        fmin (float >= 0): Lowest frequency (Hz).
        fmax (float > fmin or None): Highest frequency (Hz); ``None`` gives ``sr / 2``.
        htk (bool): HTK's mel scale instead of Slaney's.
        norm (None, 1, 'slaney', np.inf or a number > 0): See the module docstring (``1`` ==
            ``'slaney'``, area normalisation).
        dtype (numpy floating dtype):

    Returns:
        np.ndarray [shape=(n_mels, n_fft // 2 + 1)]; read-only in float64 (cached), else a new
        array.

    Warns:
        UserWarning: a filter is empty (too many mels for the FFT size), as librosa does.
    """
    sr = check_positive_float("sr", sr)
    n_fft = check_positive_int("n_fft", n_fft)
    n_mels = check_positive_int("n_mels", n_mels)
    fmin = check_positive_float("fmin", fmin, allow_zero=True)
    fmax = sr / 2 if fmax is None else check_positive_float("fmax", fmax)
    if fmax <= fmin:
        raise ValueError(f"fmax must be greater than fmin, got fmin={fmin!r}, fmax={fmax!r}")
    if fmax > sr / 2:
        raise ValueError(
            f"fmax={fmax!r} is above the Nyquist frequency sr / 2 = {sr / 2} (sr={sr}): the "
            "bands above it would hold no signal; lower fmax or give the right sr"
        )
    if not isinstance(htk, bool | np.bool_):
        raise ValueError(f"htk must be a bool, got {htk!r}")
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a numpy floating dtype, got {dtype!r}")
    weights = _mel(sr, n_fft, n_mels, fmin, fmax, bool(htk), _norm_key(norm))
    mel_f = mel_frequencies(n_mels + 2, fmin, fmax, bool(htk))
    if not np.all((mel_f[:-2] == 0) | (weights.max(axis=1) > 0)):
        warnings.warn(
            f"empty filters in the mel filterbank (n_mels={n_mels}, n_fft={n_fft}, sr={sr}): "
            "some mel bands will always be zero; use fewer mels or a larger n_fft",
            stacklevel=2,
        )
    return weights if dt == weights.dtype else weights.astype(dt)


def kaldi_mel_scale(frequencies: Any) -> np.ndarray:
    """Kaldi's (and VGGish's) mel scale, ``1127 ln(1 + f / 700)``."""
    return 1127.0 * np.log1p(np.asarray(frequencies, dtype=np.float64) / 700.0)


@functools.lru_cache(maxsize=32)
def _kaldi_mel(sr: float, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    mel = kaldi_mel_scale(np.arange(n_fft // 2 + 1) * (sr / n_fft))
    lo, hi = float(kaldi_mel_scale(fmin)), float(kaldi_mel_scale(fmax))
    edges = lo + (hi - lo) / (n_mels + 1) * np.arange(n_mels + 2)
    left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    weights = np.where((mel > left) & (mel < right), np.where(mel <= center, up, down), 0.0)
    weights[:, n_fft // 2] = 0.0  # Kaldi's bins stop below Nyquist
    weights.setflags(write=False)
    return weights


def kaldi_mel_filterbank(
    sr: float, n_fft: int, n_mels: int, fmin: float = 20.0, fmax: float = 0.0
) -> np.ndarray:
    """Kaldi's mel triangles (``mel-computations.cc``), as ``torchaudio.compliance.kaldi`` and
    kaldi-native-fbank build them: centres equally spaced on :func:`kaldi_mel_scale` between
    ``fmin`` and ``fmax``, each triangle linear in mel (not Hz), peak 1, no normalisation, and
    the Nyquist bin never used. VGGish's matrix is the same construction.

    Args:
        sr (float > 0):
        n_fft (int > 0 (the padded frame length)):
        n_mels (int > 0):
        fmin (float >= 0):
        fmax (float; ``<= 0`` counts down from Nyquist (Kaldi's ``high_freq``: ``-400`` is): ``sr /
            2 - 400``)

    Returns:
        np.ndarray [shape=(n_mels, n_fft // 2 + 1)], float64, read-only (a filter whose band holds no
        FFT bin is all zero, as torchaudio allows).
    """
    sr = check_positive_float("sr", sr)
    n_fft = check_positive_int("n_fft", n_fft)
    n_mels = check_positive_int("n_mels", n_mels)
    nyquist = sr / 2
    top = nyquist + fmax if fmax <= 0 else float(fmax)
    if not 0 <= fmin < top <= nyquist:
        raise ValueError(
            f"need 0 <= fmin < fmax <= sr / 2 = {nyquist}, got fmin={fmin!r}, fmax={fmax!r} "
            f"(an upper edge of {top} Hz)"
        )
    return _kaldi_mel(sr, n_fft, n_mels, float(fmin), top)
