"""The type-II DCT as a matrix, for MFCCs (``mfcc = dct_matrix(...) @ log_mel``).

Row ``k`` is ``2 cos(pi k (2 n + 1) / (2 N))``, ``n = 0 .. N - 1``: ``scipy.fft.dct(x, type=2)``
with ``norm=None``; ``norm='ortho'`` scales row 0 by ``sqrt(1 / (4 N))`` and the others by
``sqrt(1 / (2 N))`` (an orthonormal basis, librosa's default for MFCCs).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from nnaudio_data._checks import check_choice, check_positive_int

__all__ = ["dct_matrix"]


@functools.lru_cache(maxsize=32)
def _dct(n_out: int, n_in: int, norm: str | None) -> np.ndarray:
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    # exact integer phase reduction: k (2n + 1) mod 4N, in units of pi / (2N)
    m = (k * (2 * n + 1)) % (4 * n_in)
    basis = 2.0 * np.cos(m * (np.pi / (2 * n_in)))
    if norm == "ortho":
        basis[0] *= np.sqrt(1.0 / (4 * n_in))
        basis[1:] *= np.sqrt(1.0 / (2 * n_in))
    basis.setflags(write=False)
    return basis


def dct_matrix(
    n_out: int, n_in: int, norm: str | None = "ortho", *, dtype: Any = np.float64
) -> np.ndarray:
    """The first ``n_out`` rows of the ``n_in``-point type-II DCT.

    Args:
        n_out (int in [1, n_in]): Number of coefficients (``n_mfcc``).
        n_in (int > 0): Input length (``n_mels``).
        norm ({'ortho', None}):
        dtype (numpy floating dtype):

    Returns:
        np.ndarray [shape=(n_out, n_in)]; read-only in float64 (cached), else a new array.
    """
    n_out = check_positive_int("n_mfcc", n_out)
    n_in = check_positive_int("n_mels", n_in)
    if n_out > n_in:
        raise ValueError(f"n_mfcc must be <= n_mels={n_in}, got {n_out!r}")
    check_choice("norm", norm, ("ortho", None))
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a numpy floating dtype, got {dtype!r}")
    basis = _dct(n_out, n_in, norm)
    return basis if dt == basis.dtype else basis.astype(dt)
