"""Gammatonegram: gammatone filterbank energies of an STFT (nnAudio 0.3.4's ``Gammatonegram``).

``gammatone_basis @ |STFT(x)| ** power`` with :class:`~nnaudio_data.features.stft.STFT` held as
``self.stft`` and the weights of :func:`nnaudio_data.kernels.gammatone.gammatone_filterbank`.
"""

from __future__ import annotations

from typing import Any

import torch

from nnaudio_data._checks import check_positive_int
from nnaudio_data.features._common import check_bool
from nnaudio_data.features._filterbank import _FilterbankSpectrogram
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
        dtype, backend: the kernels' dtype and the STFT's path, as
            :class:`~nnaudio_data.features.stft.STFT`.
        **kwargs: ``iSTFT`` is passed to the STFT, as nnAudio does; anything else is a
            ``ValueError``.

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
        *,
        dtype: torch.dtype | str = torch.float32,
        backend: str = "auto",
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
        self.n_bins = check_positive_int("n_bins", n_bins)
        self.trainable_bins = check_bool("trainable_bins", trainable_bins)
        kernel_dtype = self._build_stft(
            sr=sr,
            n_fft=n_fft,
            win_length=win_length,
            hop_length=hop_length,
            window=window,
            center=center,
            pad_mode=pad_mode,
            power=power,
            trainable_STFT=trainable_STFT,
            verbose=verbose,
            dtype=dtype,
            backend=backend,
            kwargs=kwargs,
        )
        basis = gammatone_filterbank(self.sr, self.n_fft, self.n_bins, fmin, fmax)
        self._set_basis(torch.tensor(basis, dtype=kernel_dtype), self.trainable_bins)
