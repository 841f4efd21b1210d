"""``CQT1992v2`` (alias ``CQT``): every wavelet applied to the full-rate signal, as conv kernels
or, frozen, on the folded-spectrum path (:mod:`nnaudio_data.functional._folded`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nnaudio_data._checks import (
    check_choice,
    check_float_dtype,
)
from nnaudio_data.features._cqt_common import (
    BACKENDS,
    _check_nyquist,
    _ConstantQ,
    _conv_response,
    _kernel_pair,
    apply_fold_plan,
    make_fold_plan,
    new_bank_token,
)
from nnaudio_data.functional._folded import FoldPlan, fold_plan
from nnaudio_data.functional.framing import pad_signal
from nnaudio_data.kernels.cqt import cqt_frequencies, cqt_kernels

__all__ = ["CQT", "CQT1992v2"]


class CQT1992v2(_ConstantQ):
    """Constant-Q transform with time-domain wavelets applied as 1-D convolution kernels
    (Brown & Puckette 1992, nnAudio's "version 2"); nnAudio 0.3.4's ``CQT1992v2``.

    Args:
        sr: sample rate in Hz.
        hop_length: samples between frames (any positive integer).
        fmin: frequency of the lowest bin in Hz.
        fmax: if given, ``n_bins = ceil(bins_per_octave * log2(fmax / fmin))`` and ``n_bins`` is
            ignored (as nnAudio).
        n_bins: number of bins.
        bins_per_octave: bins per octave.
        filter_scale: scales every wavelet's length (Q).
        norm: norm each wavelet is divided by (1: L1, librosa's and nnAudio's default; 2: L2).
        window: window of each wavelet (scipy name or tuple; ``('gaussian', att_db)`` as nnAudio).
        center: centre the wavelets on the frames (pads ``kernel_width // 2`` on both sides).
        pad_mode: ``'reflect'`` (any input length) or ``'constant'``.
        trainable: hold the wavelets as ``nn.Parameter``\\ s (``cqt_kernels_real`` /
            ``cqt_kernels_imag``, shape ``(n_bins, 1, kernel_width)``).
        output_format: ``'Magnitude'``, ``'Complex'`` (real, imag) or ``'Phase'`` (cos, sin).
        verbose: accepted for nnAudio compatibility; nothing is printed.
        q_mode: ``'nnaudio'`` (default: nnAudio's Q and integer lengths) or ``'librosa'``
            (librosa 0.11's Q and fractional lengths: magnitudes match ``librosa.cqt`` with
            ``tuning=0``; nnAudio's are 0.985x of them at 12 bins per octave).
        backend: ``'auto'`` (the folded-spectrum path for frozen kernels, conv kernels when
            trainable), ``'conv'`` or ``'fft'`` (frozen kernels only).
        dtype: dtype of the kernels (``'float32'`` or ``'float64'``); inputs of the other dtype
            are computed with the kernels cast to theirs.

    Shape:
        - Input: ``(time,)``, ``(batch, time)``, ``(batch, 1, time)`` or ``(batch, channels, time)``
        - Output: ``(batch, n_bins, frames)`` (``(batch, channels, n_bins, frames)`` for several
          channels; a trailing ``2`` for ``'Complex'`` / ``'Phase'``), ``frames = 1 + time //
          hop_length`` with ``center=True``, ``1 + (time - kernel_width) // hop_length`` without.
    """

    def __init__(
        self,
        sr: float = 22050,
        hop_length: int = 512,
        fmin: float = 32.70,
        fmax: float | None = None,
        n_bins: int = 84,
        bins_per_octave: int = 12,
        filter_scale: float = 1,
        norm: float | None = 1,
        window: Any = "hann",
        center: bool = True,
        pad_mode: str = "reflect",
        trainable: bool = False,
        output_format: str = "Magnitude",
        verbose: bool = True,
        *,
        q_mode: str = "nnaudio",
        backend: str = "auto",
        dtype: Any = "float32",
    ) -> None:
        super().__init__()
        grid = (sr, hop_length, fmin, fmax, n_bins, bins_per_octave, pad_mode, q_mode)
        sr, fmin = self._init_grid(*grid, trainable=trainable)
        self.center = bool(center)
        self.backend = check_choice("backend", backend, BACKENDS)
        if self.backend == "fft" and self.trainable:
            raise ValueError("backend='fft' needs frozen kernels; use trainable=False or 'conv'")
        self._init_format(output_format)
        kdtype = check_float_dtype("dtype", dtype)
        freqs = cqt_frequencies(self.n_bins, fmin, self.bins_per_octave)
        _check_nyquist(freqs, sr)
        kernels, lengths = cqt_kernels(
            freqs,
            sr,
            filter_scale=filter_scale,
            bins_per_octave=self.bins_per_octave,
            norm=norm,
            window=window,
            q_mode=self.q_mode,
        )
        self.frequencies = freqs
        self.kernel_width = int(kernels.shape[1])
        self.register_buffer(
            "lengths", torch.tensor(np.array(lengths), dtype=kdtype), persistent=False
        )
        #: frozen kernels keep only the columns some wavelet touches (from this offset)
        self._kernel_offset = 0
        if not self.trainable:
            touched = np.flatnonzero(np.abs(kernels).max(0) > 0)
            self._kernel_offset = int(touched[0])
            kernels = kernels[:, touched[0] : touched[-1] + 1]
        _kernel_pair(self, "", kernels, self.trainable, kdtype)
        #: names this frozen bank in the fold-plan memo (forward stores nothing)
        self._bank = new_bank_token()

    def _frame_width(self) -> int:
        return self.kernel_width

    def _frame_center(self) -> bool:
        return self.center

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        if self.center:
            half = self.kernel_width // 2
            return pad_signal(x, half, half, self.pad_mode)
        if x.shape[-1] < self.kernel_width:
            raise ValueError(
                f"input has {x.shape[-1]} samples but center=False needs at least kernel_width="
                f"{self.kernel_width}; use center=True"
            )
        return x

    @property
    def uses_fft_path(self) -> bool:
        """Whether forward takes the folded-spectrum path (frozen kernels, backend not 'conv')."""
        return self.backend == "fft" or (self.backend == "auto" and not self.trainable)

    def _response(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        real_k: torch.Tensor = self.cqt_kernels_real  # type: ignore[assignment]
        imag_k: torch.Tensor = self.cqt_kernels_imag  # type: ignore[assignment]
        if not self.uses_fft_path:
            xp = self._padded(x)
            n_frames = 1 + (xp.shape[-1] - self.kernel_width) // self.hop_length
            re, im = _conv_response(xp[:, self._kernel_offset :], real_k, imag_k, self.hop_length)
            return re[..., :n_frames], im[..., :n_frames]
        padded = x.shape[-1] + 2 * (self.kernel_width // 2) if self.center else x.shape[-1]
        if padded < self.kernel_width:
            self._padded(x)  # raises the error for center=False
        plan = self.fold_plan(padded, x.device, x.dtype)
        left = self.kernel_width // 2 if self.center else 0
        return apply_fold_plan(x, plan, left, self.pad_mode)

    def fold_plan(self, padded: int, device: torch.device, dtype: torch.dtype) -> FoldPlan:
        """The folded-spectrum plan of these (frozen) wavelets for padded inputs of ``padded``
        samples, from the memo (:func:`~nnaudio_data.functional._folded.fold_plan`)."""
        real_k: torch.Tensor = self.cqt_kernels_real  # type: ignore[assignment]
        imag_k: torch.Tensor = self.cqt_kernels_imag  # type: ignore[assignment]

        def build() -> FoldPlan:
            k = np.zeros((self.n_bins, self.kernel_width), dtype=np.complex128)
            cols = slice(self._kernel_offset, self._kernel_offset + real_k.shape[-1])
            k[:, cols] = real_k[:, 0].detach().double().cpu().numpy()
            k[:, cols] += 1j * imag_k[:, 0].detach().double().cpu().numpy()
            return make_fold_plan(k, padded, self.hop_length, device=device, dtype=dtype)

        return fold_plan((self._bank, padded, self.hop_length, device, dtype), build)


#: nnAudio's alias of :class:`CQT1992v2`
CQT = CQT1992v2
