"""Gammatonegram: gammatone filterbank energies of an STFT (nnAudio 0.3.4's ``Gammatonegram``).

``gammatone_basis @ |STFT(x)| ** power`` with :class:`~nnaudio_data.features.stft.STFT` held as
``self.stft`` and the weights of :func:`nnaudio_data.kernels.gammatone.gammatone_filterbank`.
"""

from __future__ import annotations

from typing import Any

import torch

from nnaudio_data._checks import check_positive_float, check_positive_int
from nnaudio_data.features._filterbank import _FilterbankSpectrogram
from nnaudio_data.features.stft import STFT
from nnaudio_data.kernels.gammatone import gammatone_filterbank
from nnaudio_data.kernels.windows import WindowSpec

__all__ = ["Gammatonegram"]


class Gammatonegram(_FilterbankSpectrogram):
    """Gammatonegram (nnAudio 0.3.4's ``Gammatonegram``).

    Args:
        sr: sample rate in Hz.
        n_fft, win_length, hop_length, window, center, pad_mode: the STFT's.
        n_bins: gammatone bands (default 64).
        power: exponent of the STFT magnitude (2: power).
        htk: accepted for nnAudio compatibility, must be ``False`` (nnAudio ignores it; the
            gammatone bands have no HTK variant).
        fmin, fmax: band range in Hz (``fmax`` defaults to ``sr / 2``).
        norm: must be 1 (nnAudio ignores it; the filters are gain-normalised).
        trainable_bins: hold the weights as a parameter ``gammatone_basis``.
        trainable_STFT: hold the STFT kernels as parameters.
        verbose: accepted for compatibility; nothing is printed.
        dtype, backend, **kwargs: passed to :class:`~nnaudio_data.features.stft.STFT`.

    Shape:
        - Input: ``(time,)``, ``(batch, time)``, ``(batch, 1, time)`` or ``(batch, channels, time)``
        - Output: ``(batch, n_bins, frames)`` (``(batch, channels, n_bins, frames)``)
    """

    basis_name = "gammatone_basis"
    gammatone_basis: torch.Tensor

    def __init__(
        self,
        sr: float = 22050,
        n_fft: int = 2048,
        win_length: int | None = None,
        n_bins: int = 64,
        hop_length: int = 512,
        window: WindowSpec = "hann",
        center: bool = True,
        pad_mode: str = "reflect",
        power: float = 2.0,
        htk: bool = False,
        fmin: float = 0.0,
        fmax: float | None = None,
        norm: Any = 1,
        trainable_bins: bool = False,
        trainable_STFT: bool = False,
        verbose: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if htk:
            raise ValueError("htk=True has no meaning for gammatone bands (nnAudio ignores it)")
        if norm != 1:
            raise ValueError(
                f"norm={norm!r} is not supported: the gammatone filters are gain-normalised "
                "(nnAudio ignores norm); leave it at 1"
            )
        self.power = check_positive_float("power", power)
        self.n_bins = check_positive_int("n_bins", n_bins)
        self.trainable_bins = bool(trainable_bins)
        self.stft = STFT(
            n_fft=n_fft,
            win_length=win_length,
            hop_length=hop_length,
            window=window,
            freq_scale="no",
            center=center,
            pad_mode=pad_mode,
            sr=sr,
            trainable=bool(trainable_STFT),
            output_format="Magnitude",
            **kwargs,
        )
        self.n_fft, self.hop_length, self.center = n_fft, self.stft.hop_length, center
        basis = gammatone_filterbank(float(sr), n_fft, self.n_bins, fmin, fmax)
        self._set_basis(torch.tensor(basis, dtype=self.stft.window_mask.dtype), self.trainable_bins)
