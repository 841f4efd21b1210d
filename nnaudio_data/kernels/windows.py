"""Window functions, as librosa and nnAudio accept them.

``window`` may be a scipy name (``'hann'``), a tuple or list with parameters (``('kaiser', 8.0)``,
``['gaussian', 7]``: a list whose first item is a name is read as such a tuple, so that a config
round-trip through TOML / JSON keeps it), a number (scipy's and librosa's shorthand for a Kaiser
window with that beta), a callable ``f(length) -> array``, or an array of exactly ``length``
values.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import numpy as np
import scipy.signal

__all__ = ["WindowSpec", "get_window", "pad_center", "pad_left"]

WindowSpec: TypeAlias = (
    str | float | tuple[Any, ...] | Sequence[Any] | np.ndarray | Callable[[int], Any]
)


@functools.lru_cache(maxsize=128)
def _scipy_window(spec: str | float | tuple[Any, ...], length: int, fftbins: bool) -> np.ndarray:
    try:
        w = scipy.signal.get_window(spec, length, fftbins=fftbins)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"window {spec!r} is not a window scipy.signal.get_window knows: {e}"
        ) from e
    w = np.asarray(w, dtype=np.float64)
    w.setflags(write=False)
    return w


#: Kaldi's window names (``feature-window.cc``) beside scipy's: ``'povey'`` is ``hann ** 0.85``,
#: ``'hanning'`` a hann window, ``'rectangular'`` ones. Kaldi itself uses the symmetric forms
#: (``fftbins=False``).
_KALDI_WINDOWS = ("povey", "hanning", "rectangular")


def _kaldi_window(name: str, length: int, fftbins: bool) -> np.ndarray:
    if name == "rectangular":
        return np.ones(length)
    hann = _scipy_window("hann", length, fftbins)
    return hann**0.85 if name == "povey" else hann


def get_window(
    window: WindowSpec, length: int, *, fftbins: bool = True, dtype: Any = np.float64
) -> np.ndarray:
    """A window of ``length`` samples.

    Args:
        window (str, tuple, list, number, callable or np.ndarray): See the module docstring;
            Kaldi's ``'povey'``, ``'hanning'`` and ``'rectangular'`` too.
        length (int > 0):
        fftbins (bool): Periodic (``True``, for spectral analysis; librosa's default) or symmetric
            window.
        dtype (numpy float dtype of the result):

    Returns:
        np.ndarray [shape=(length,)], a new writable array.
    """
    if isinstance(length, bool) or not isinstance(length, int | np.integer) or length <= 0:
        raise ValueError(f"window length must be a positive integer, got {length!r}")
    length = int(length)
    if callable(window):
        w = np.asarray(window(length), dtype=np.float64)
    elif isinstance(window, str) and window in _KALDI_WINDOWS:
        w = _kaldi_window(window, length, fftbins)
    elif isinstance(window, str):
        w = _scipy_window(window, length, fftbins)
    elif isinstance(window, numbers.Real) and not isinstance(window, bool):
        w = _scipy_window(float(window), length, fftbins)
    elif isinstance(window, tuple | list) and window and isinstance(window[0], str):
        w = _scipy_window(tuple(window), length, fftbins)
    elif isinstance(window, np.ndarray | list | tuple):
        w = np.asarray(window, dtype=np.float64)
        if w.shape != (length,):
            raise ValueError(
                f"window array has shape {w.shape}; expected ({length},) to match the window length"
            )
    else:
        raise ValueError(
            f"window must be a name, a (name, *params) tuple, a callable or an array, got {window!r}"
        )
    if w.shape != (length,):
        raise ValueError(f"window {window!r} gave shape {w.shape}, expected ({length},)")
    return np.array(w, dtype=dtype)


def pad_center(data: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad the last axis of ``data`` to ``size``, centred (left gets ``(size - n) // 2``),
    as librosa does for a ``win_length`` shorter than ``n_fft``."""
    n = data.shape[-1]
    if size < n:
        raise ValueError(f"cannot centre {n} samples in a size of {size}: size must be >= {n}")
    left = (size - n) // 2
    widths = [(0, 0)] * (data.ndim - 1) + [(left, size - n - left)]
    return np.pad(data, widths)


def pad_left(data: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad the last axis of ``data`` to ``size`` on the right (the window left-aligned in
    ``n_fft`` samples, as Kaldi and VGGish place a 400-sample window in a 512-point FFT)."""
    n = data.shape[-1]
    if size < n:
        raise ValueError(f"cannot place {n} samples in a size of {size}: size must be >= {n}")
    return np.pad(data, [(0, 0)] * (data.ndim - 1) + [(0, size - n)])
