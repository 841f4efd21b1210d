"""``MelSpectrogram`` and ``MFCC`` with nnAudio 0.3.4's names, arguments, defaults and outputs.

A mel spectrogram is ``mel_basis @ |STFT(x)| ** power`` (:class:`~nnaudio_data.features.stft.STFT`
held as ``self.stft``, the filterbank of :func:`nnaudio_data.kernels.mel.mel_filterbank` as
``self.mel_basis``); MFCCs are the type-II DCT of its power in dB. ``norm=1`` is nnAudio's area
normalisation (librosa 0.11's ``norm='slaney'``); see :mod:`nnaudio_data.kernels.mel` for the
others. A frozen STFT part takes the FFT path (``backend``), a trainable one the conv kernels.
"""

from __future__ import annotations

from typing import Any

import torch

from nnaudio_data._checks import (
    check_choice,
    check_positive_float,
    check_positive_int,
    check_range,
)
from nnaudio_data._transform import Transform, nnaudio_keys
from nnaudio_data.features._common import check_bool
from nnaudio_data.features._filterbank import _FilterbankSpectrogram
from nnaudio_data.functional.filterbank import apply_filterbank
from nnaudio_data.functional.level import power_to_db
from nnaudio_data.kernels.dct import dct_matrix
from nnaudio_data.kernels.mel import mel_filterbank
from nnaudio_data.kernels.windows import WindowSpec

__all__ = ["MFCC", "MelSpectrogram"]


class MelSpectrogram(_FilterbankSpectrogram):
    """Mel spectrogram by Fourier kernels and a mel filterbank (nnAudio 0.3.4's
    ``MelSpectrogram``).

    Args:
        sr (float > 0): Sampling rate. Default 22050.
        n_fft, win_length, hop_length, window, center, pad_mode: As
            :class:`~nnaudio_data.features.stft.STFT` (``hop_length`` defaults to 512 here).
        n_mels (int > 0): Mel bands. Default 128.
        power (float > 0): Exponent of the magnitude (2: power, 1: magnitude).
        htk (bool): HTK's mel scale instead of Slaney's.
        fmin (float >= 0): Lowest frequency (Hz).
        fmax (float > fmin or None): Highest frequency (Hz); ``None``: ``sr / 2``.
        norm (None, 1, 'slaney', np.inf or a number > 0): Filter normalisation; ``1`` (default) is
            nnAudio's area normalisation == librosa's ``'slaney'``.
        trainable_mel (bool): ``mel_basis`` as an ``nn.Parameter``.
        trainable_STFT (bool): The STFT kernels as parameters (``stft.wcos`` / ``stft.wsin``).
        verbose (bool): Accepted for compatibility; nothing is printed.
        dtype (torch.dtype or str): Kernel dtype.
        backend ({'auto', 'fft', 'conv'}): STFT path, as :class:`~nnaudio_data.features.stft.STFT`.
        **kwargs: ``iSTFT`` is passed to the STFT, as nnAudio does; anything else is a
            ``ValueError``.

    Shape:
        - Input: ``(time,)``, ``(batch, time)``, ``(batch, 1, time)`` or ``(batch, channels, time)``.
        - Output: ``(batch, n_mels, frames)`` (``(batch, channels, n_mels, frames)``), ``frames``
          as :meth:`num_frames`.
    """

    basis_name = "mel_basis"
    mel_basis: torch.Tensor

    def __init__(
        self,
        sr: float = 22050,
        n_fft: int = 2048,
        win_length: int | None = None,
        n_mels: int = 128,
        hop_length: int = 512,
        window: WindowSpec = "hann",
        center: bool = True,
        pad_mode: str = "reflect",
        power: float = 2.0,
        htk: bool = False,
        fmin: float = 0.0,
        fmax: float | None = None,
        norm: Any = 1,
        trainable_mel: bool = False,
        trainable_STFT: bool = False,
        verbose: bool = True,
        *,
        dtype: torch.dtype | str = torch.float32,
        backend: str = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.trainable_mel = check_bool("trainable_mel", trainable_mel)
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
        self.n_mels = check_positive_int("n_mels", n_mels)
        self.fmin, self.fmax, self.htk, self.norm = fmin, fmax, htk, norm
        basis = mel_filterbank(self.sr, self.n_fft, self.n_mels, fmin, fmax, htk, norm)
        self._set_basis(torch.tensor(basis, dtype=kernel_dtype), self.trainable_mel)

    def extra_repr(self) -> str:
        return (
            f"n_mels={self.n_mels}, power={self.power}, htk={self.htk}, norm={self.norm!r}, "
            f"trainable_mel={self.trainable_mel}, trainable_STFT={self.trainable_STFT}"
        )


class MFCC(Transform):
    """Mel-frequency cepstral coefficients (nnAudio 0.3.4's ``MFCC``): the type-II DCT of the
    mel power spectrogram in dB, ``10 log10(max(S, amin) / max(amin, |ref|))`` floored at
    ``top_db`` below each item's maximum (librosa's ``power_to_db`` applied per item).

    Args:
        sr (float > 0):
        n_mfcc (int in [1, n_mels]): Coefficients kept. Default 20.
        norm ({'ortho', None}): DCT normalisation (nnAudio always uses ``'ortho'``; ``None`` is
            scipy's unnormalised DCT).
        verbose (bool): Accepted for compatibility; nothing is printed.
        ref (float): Reference power (its absolute value is used). Default 1.0.
        amin (float > 0): Floor of the power. Default 1e-10.
        top_db (float >= 0 or None): Dynamic range kept below each item's maximum; ``None``: no
            floor.
        **kwargs: :class:`MelSpectrogram` arguments (``n_mels``, ``n_fft``, ``hop_length``,
            ``dtype``, ...).

    Shape:
        - Input: as :class:`MelSpectrogram`.
        - Output: ``(batch, n_mfcc, frames)`` (``(batch, channels, n_mfcc, frames)``).
    """

    output_kind = "spectrogram"
    nnaudio_buffers = nnaudio_keys("amin", "ref")
    time_dim = -1
    dct_basis: torch.Tensor

    def __init__(
        self,
        sr: float = 22050,
        n_mfcc: int = 20,
        norm: str | None = "ortho",
        verbose: bool = True,
        ref: float = 1.0,
        amin: float = 1e-10,
        top_db: float | None = 80.0,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.melspec_layer = MelSpectrogram(sr=sr, verbose=verbose, **kwargs)
        self.n_mfcc = check_positive_int("n_mfcc", n_mfcc)
        self.norm = check_choice("norm", norm, ("ortho", None))
        self.amin = check_positive_float("amin", amin)
        self.ref = abs(check_range("ref", ref))
        self.top_db = (
            None if top_db is None else check_positive_float("top_db", top_db, allow_zero=True)
        )
        basis = dct_matrix(self.n_mfcc, self.melspec_layer.n_mels, norm)
        self.register_buffer(
            "dct_basis",
            torch.tensor(basis, dtype=self.melspec_layer.mel_basis.dtype),
            persistent=False,
        )

    def num_frames(self, n_samples: int) -> int:
        """Frames for a signal of ``n_samples`` samples."""
        return self.melspec_layer.num_frames(n_samples)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid frames for valid sample ``lengths``."""
        return self.melspec_layer.output_lengths(lengths)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """MFCCs of ``x`` (see the class docstring for shapes); ``lengths`` ``(batch,)`` valid
        samples per item: each item padded at its own end, ``top_db`` over its valid frames."""
        mel = self.melspec_layer(x, lengths=lengths)
        frames = None if lengths is None else self.output_lengths(lengths)
        db = power_to_db(mel, ref=self.ref, amin=self.amin, top_db=self.top_db, lengths=frames)
        return apply_filterbank(db, self.dct_basis)

    def extra_repr(self) -> str:
        return f"n_mfcc={self.n_mfcc}, norm={self.norm!r}, top_db={self.top_db}"
