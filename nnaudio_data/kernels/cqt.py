"""Constant-Q and variable-Q kernels: bin frequencies, filter lengths and time-domain wavelets.

Two conventions for the quality factor ``Q`` (``q_mode``):

``'nnaudio'`` (nnAudio 0.3.4)
    ``Q = filter_scale / (2 ** (1 / bins_per_octave) - 1)``; lengths ``ceil(Q * sr / (f + gamma / a))``
    with ``a = 2 ** (1 / bins_per_octave) - 1``.
``'librosa'`` (librosa >= 0.10, ``librosa.filters.wavelet``)
    ``Q = filter_scale / alpha`` with ``alpha = (2 ** (2 / bpo) - 1) / (2 ** (2 / bpo) + 1)`` and
    fractional lengths ``Q * sr / (f + gamma / alpha)`` (the wavelet and its window have
    ``len(range(-length // 2, length // 2))`` samples, as in librosa 0.11). At 12 bins per octave this Q is 1.5 % longer, so magnitudes
    under ``'nnaudio'`` are about 0.985 of librosa's; use ``'librosa'`` to match ``librosa.cqt``.
    librosa applies each wavelet as ``FFT(wavelet) * FFT(frame)`` without a conjugate, i.e. it
    correlates with the conjugated wavelet reversed about the frame centre; under ``'librosa'`` the
    kernels are built that way too, so the complex output (phase included) matches librosa's.

Each wavelet is ``window * exp(2j pi f n / sr)`` with ``n = -len // 2 ... len // 2 - 1``, normalised
(L1 by default), and centred in a common width (the next power of two of the longest length), so
that sample ``width // 2`` is the wavelet's time origin.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from nnaudio_data._checks import check_choice, check_positive_float, check_positive_int
from nnaudio_data.kernels.windows import get_window

__all__ = [
    "Q_MODES",
    "cqt_alpha",
    "cqt_frequencies",
    "cqt_kernels",
    "cqt_lengths",
    "cqt_q",
    "dft_kernels",
    "n_bins_from_fmax",
    "spectral_kernels",
]

Q_MODES = ("nnaudio", "librosa")


def cqt_frequencies(n_bins: int, fmin: float, bins_per_octave: int) -> np.ndarray:
    """``fmin * 2 ** (k / bins_per_octave)`` for ``k = 0 .. n_bins - 1`` (float64)."""
    n_bins = check_positive_int("n_bins", n_bins)
    fmin = check_positive_float("fmin", fmin)
    bins_per_octave = check_positive_int("bins_per_octave", bins_per_octave)
    return fmin * 2.0 ** (np.arange(n_bins) / float(bins_per_octave))


def n_bins_from_fmax(fmin: float, fmax: float, bins_per_octave: int) -> int:
    """Bins from ``fmin`` up to ``fmax`` as nnAudio counts them: ``ceil(bpo * log2(fmax / fmin))``."""
    fmin = check_positive_float("fmin", fmin)
    fmax = check_positive_float("fmax", fmax)
    if fmax <= fmin:
        raise ValueError(f"fmax must be above fmin={fmin}, got fmax={fmax}")
    return math.ceil(bins_per_octave * math.log2(fmax / fmin))


def cqt_alpha(bins_per_octave: int, q_mode: str = "nnaudio") -> float:
    """Relative bandwidth: ``2 ** (1 / bpo) - 1`` (nnAudio) or librosa's ``(r^2 - 1) / (r^2 + 1)``."""
    check_choice("q_mode", q_mode, Q_MODES)
    bins_per_octave = check_positive_int("bins_per_octave", bins_per_octave)
    if q_mode == "nnaudio":
        return 2.0 ** (1.0 / bins_per_octave) - 1.0
    r2 = 2.0 ** (2.0 / bins_per_octave)
    return (r2 - 1.0) / (r2 + 1.0)


def cqt_q(filter_scale: float, bins_per_octave: int, q_mode: str = "nnaudio") -> float:
    """The quality factor ``filter_scale / alpha`` (see :func:`cqt_alpha`)."""
    filter_scale = check_positive_float("filter_scale", filter_scale)
    return filter_scale / cqt_alpha(bins_per_octave, q_mode)


def cqt_lengths(
    freqs: np.ndarray,
    sr: float,
    *,
    filter_scale: float = 1.0,
    bins_per_octave: int = 12,
    gamma: float = 0.0,
    q_mode: str = "nnaudio",
) -> np.ndarray:
    """Filter lengths in samples at rate ``sr`` (integers as floats under ``'nnaudio'``)."""
    gamma = check_positive_float("gamma", gamma, allow_zero=True)
    alpha = cqt_alpha(bins_per_octave, q_mode)
    q = cqt_q(filter_scale, bins_per_octave, q_mode)
    lengths = q * float(sr) / (np.asarray(freqs, dtype=np.float64) + gamma / alpha)
    if q_mode == "nnaudio":
        lengths = np.ceil(lengths)
    return lengths


def _window(window: Any, n: int) -> np.ndarray:
    """nnAudio's window dispatch: ``('gaussian', att_db)`` is an attenuation at the border."""
    if isinstance(window, tuple | list) and len(window) == 2 and window[0] == "gaussian":
        att = float(window[1])
        if att <= 0:
            raise ValueError(f"window ('gaussian', att) needs att > 0 dB, got {window!r}")
        sigma = abs(math.floor(-n / 2 / math.sqrt(-2 * math.log(10 ** (-att / 20)))))
        return get_window(("gaussian", max(sigma, 1e-3)), n)
    return get_window(window, n)


def _hashable(window: Any) -> Any:
    if isinstance(window, list):
        return tuple(window)
    if isinstance(window, np.ndarray):
        raise ValueError("window for CQT kernels must be a name or a (name, param) tuple")
    return window


def cqt_kernels(
    freqs: np.ndarray,
    sr: float,
    *,
    filter_scale: float = 1.0,
    bins_per_octave: int = 12,
    norm: float | None = 1,
    window: Any = "hann",
    gamma: float = 0.0,
    q_mode: str = "nnaudio",
    width: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Time-domain wavelets for ``freqs`` at rate ``sr``.

    Parameters
    ----------
    freqs : np.ndarray [shape=(n_bins,)], Hz, each below ``sr / 2``
    sr : float > 0
    filter_scale, bins_per_octave, gamma, q_mode : see the module docstring
    norm : 1, 2, np.inf or None
        Norm each wavelet is divided by (``None``/``0``: nnAudio's ``1 / length`` scale).
    window : str or tuple
        A scipy window (``('gaussian', att_db)`` as nnAudio reads it).
    width : int, optional
        Width to centre the wavelets in (default: next power of two of the longest).

    Returns
    -------
    kernels : np.ndarray [shape=(n_bins, width)], complex128, read-only
    lengths : np.ndarray [shape=(n_bins,)], float64 (what the ``'librosa'`` normalisation uses)
    """
    return _cqt_kernels(
        tuple(float(f) for f in np.atleast_1d(freqs)),
        float(sr),
        float(filter_scale),
        int(bins_per_octave),
        None if not norm else float(norm),
        _hashable(window),
        float(gamma),
        q_mode,
        width,
    )


@functools.lru_cache(maxsize=32)
def _cqt_kernels(
    freqs: tuple[float, ...],
    sr: float,
    filter_scale: float,
    bins_per_octave: int,
    norm: float | None,
    window: Any,
    gamma: float,
    q_mode: str,
    width: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(freqs)
    if np.any(f <= 0) or np.any(f >= sr / 2):
        raise ValueError(
            f"CQT bin frequencies must lie in (0, sr/2 = {sr / 2:g}) Hz, got {f.min():g} .. "
            f"{f.max():g} Hz: lower n_bins, fmin or fmax"
        )
    lengths = cqt_lengths(
        f,
        sr,
        filter_scale=filter_scale,
        bins_per_octave=bins_per_octave,
        gamma=gamma,
        q_mode=q_mode,
    )
    longest = math.ceil(lengths.max())
    if width is None:
        width = 1 << max(0, (longest - 1).bit_length())
    if width < longest:
        raise ValueError(f"width {width} is shorter than the longest wavelet ({longest})")
    kernels = np.zeros((len(f), width), dtype=np.complex128)
    for k, (freq, ilen) in enumerate(zip(f, lengths, strict=True)):
        n = np.arange(-ilen // 2, ilen // 2)
        sig = _window(window, len(n)) * np.exp(2j * np.pi * freq / sr * n)
        if norm:
            sig = sig / np.linalg.norm(sig, ord=norm)
        elif q_mode == "nnaudio":
            sig = sig / ilen
        left = (width - len(n)) // 2
        kernels[k, left : left + len(n)] = sig
    if q_mode == "librosa":
        # librosa multiplies the wavelet's FFT with the frame's FFT without conjugating, which is a
        # correlation with the conjugated wavelet reversed about the centre: do the same
        kernels = np.conj(np.roll(kernels[:, ::-1], 1, axis=1))
    kernels.setflags(write=False)
    lengths.setflags(write=False)
    return kernels, lengths


def spectral_kernels(kernels: np.ndarray) -> np.ndarray:
    """Brown & Puckette's spectral kernels: the wavelets' DFT over the non-negative frequencies.

    Shape:
        - Input: ``kernels`` ``(n_bins, width)`` complex (:func:`cqt_kernels`)
        - Output: ``(n_bins, width // 2 + 1)`` complex
    """
    width = kernels.shape[1]
    out: np.ndarray = np.fft.fft(kernels, axis=1)[:, : width // 2 + 1]
    return out


def dft_kernels(width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rectangular-window DFT kernels ``cos`` and ``sin`` of ``2 pi k n / width``, each
    ``(width // 2 + 1, width)`` (``CQT1992``'s trainable STFT)."""
    n = np.arange(width)
    arg = 2 * np.pi * np.outer(np.arange(width // 2 + 1), n) / width
    return np.cos(arg), np.sin(arg)
