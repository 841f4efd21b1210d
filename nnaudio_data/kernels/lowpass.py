"""Low-pass FIR filters for the multirate constant-Q transforms (nnAudio 0.3.4's design)."""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.signal

from nnaudio_data._checks import check_positive_int, check_range

__all__ = ["early_downsample_count", "lowpass_filter"]


def lowpass_filter(
    band_center: float = 0.5, kernel_length: int = 256, transition_bandwidth: float = 0.03
) -> np.ndarray:
    """A linear-phase FIR low-pass (``scipy.signal.firwin2``) with unit gain at DC.

    Parameters
    ----------
    band_center : float in (0, 1)
        Cut-off as a fraction of the Nyquist frequency (0.5 halves the band).
    kernel_length : int > 0
    transition_bandwidth : float in (0, 1)
        The pass band ends at ``band_center / (1 + tb)`` and the stop band starts at
        ``band_center * (1 + tb)``.

    Returns
    -------
    np.ndarray [shape=(kernel_length,)], float64, read-only
    """
    band_center = check_range("band_center", band_center, 0.0, 1.0)
    kernel_length = check_positive_int("kernel_length", kernel_length)
    transition_bandwidth = check_range("transition_bandwidth", transition_bandwidth, 0.0, 1.0)
    return _lowpass(band_center, kernel_length, transition_bandwidth)


@functools.lru_cache(maxsize=16)
def _lowpass(band_center: float, kernel_length: int, tb: float) -> np.ndarray:
    stop = min(band_center * (1 + tb), 1.0)
    h = scipy.signal.firwin2(kernel_length, [0.0, band_center / (1 + tb), stop, 1.0], [1, 1, 0, 0])
    h = np.asarray(h, dtype=np.float64)
    h.setflags(write=False)
    return h


def early_downsample_count(
    nyquist: float, filter_cutoff: float, hop_length: int, n_octaves: int
) -> int:
    """How many times the input may be halved before the top octave (nnAudio's rule, which
    keeps 15 % more headroom than librosa's): limited by the highest frequency the kernels pass
    and by the factors of two of ``hop_length`` that the octaves below still need."""
    count1 = max(0, int(math.ceil(math.log2(0.85 * nyquist / filter_cutoff)) - 1) - 1)
    twos = (hop_length & -hop_length).bit_length() - 1
    count2 = max(0, twos - n_octaves + 1)
    return min(count1, count2)
