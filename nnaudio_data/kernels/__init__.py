"""Pure kernel builders: parameters -> numpy arrays. No modules, no state; cached.

* :mod:`~nnaudio_data.kernels.windows` - ``get_window`` (scipy names and tuples), ``pad_center``.
* :mod:`~nnaudio_data.kernels.fourier` - Fourier kernels for ``freq_scale`` 'no', 'linear', 'log',
  'log2', and their inverse basis.
* :mod:`~nnaudio_data.kernels.mel` - mel filterbanks (HTK and Slaney scales, every ``norm``).
* :mod:`~nnaudio_data.kernels.dct` - the DCT matrix used by MFCC.
* :mod:`~nnaudio_data.kernels.cqt` - constant-Q / variable-Q kernels, frequencies, lengths, Q.
* :mod:`~nnaudio_data.kernels.lowpass` - the anti-aliasing low-pass of the multirate CQT.
* :mod:`~nnaudio_data.kernels.gammatone` - gammatone centre frequencies and filterbank.
"""

from nnaudio_data.kernels.cqt import (
    cqt_alpha,
    cqt_frequencies,
    cqt_kernels,
    cqt_lengths,
    cqt_q,
    n_bins_from_fmax,
)
from nnaudio_data.kernels.dct import dct_matrix
from nnaudio_data.kernels.fourier import (
    fourier_basis,
    fourier_bins,
    fourier_kernels,
    fourier_window,
    inverse_fourier_basis,
)
from nnaudio_data.kernels.gammatone import gammatone_center_frequencies, gammatone_filterbank
from nnaudio_data.kernels.lowpass import early_downsample_count, lowpass_filter
from nnaudio_data.kernels.mel import (
    fft_frequencies,
    hz_to_mel,
    mel_filterbank,
    mel_frequencies,
    mel_to_hz,
)
from nnaudio_data.kernels.windows import get_window, pad_center

__all__ = [
    "cqt_alpha",
    "cqt_frequencies",
    "cqt_kernels",
    "cqt_lengths",
    "cqt_q",
    "dct_matrix",
    "early_downsample_count",
    "fft_frequencies",
    "fourier_basis",
    "fourier_bins",
    "fourier_kernels",
    "fourier_window",
    "gammatone_center_frequencies",
    "gammatone_filterbank",
    "get_window",
    "hz_to_mel",
    "inverse_fourier_basis",
    "lowpass_filter",
    "mel_filterbank",
    "mel_frequencies",
    "mel_to_hz",
    "n_bins_from_fmax",
    "pad_center",
]
