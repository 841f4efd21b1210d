"""Constant-Q and variable-Q transforms with nnAudio 0.3.4's names, parameters and outputs.

* :class:`CQT1992v2` (alias :class:`CQT`): every wavelet applied to the full-rate signal.
* :class:`CQT2010v2`: multirate (one octave of wavelets, the signal halved per octave).
* :class:`VQT`: the multirate transform with a bandwidth offset ``gamma`` (``gamma=0`` is
  :class:`CQT2010v2`).

What differs from nnAudio 0.3.4 (each one a bug there):

* early downsampling keeps the scale (nnAudio's ``CQT2010v2`` is 1.4x - 2.8x too large and its
  ``VQT`` one octave too high when it downsamples early, e.g. at 44.1 kHz);
* any ``hop_length`` works in the multirate classes (octaves whose hop cannot be halved any more
  are computed at the last rate that divides it), and inputs shorter than the kernels work
  (``'reflect'`` padding repeats the reflection);
* ``q_mode='librosa'`` uses librosa 0.11's Q and fractional wavelet lengths, so that magnitudes
  match ``librosa.cqt`` / ``librosa.vqt``; the default ``'nnaudio'`` gives nnAudio's numbers;
* ``VQT`` honours ``trainable``; nothing prints.

Frozen kernels (``trainable=False``) of :class:`CQT1992v2` take the folded-spectrum path
(see :mod:`nnaudio_data.features._cqt_common`), which agrees with the conv kernels to ~1e-5;
``backend='conv'`` forces the conv kernels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nnaudio_data._checks import (
    check_choice,
    check_float_dtype,
    check_non_negative_int,
    check_positive_float,
    check_positive_int,
)
from nnaudio_data._transform import Transform
from nnaudio_data.features._common import register_kernel
from nnaudio_data.features._cqt_common import (
    BACKENDS,
    NORMALIZATION_TYPES,
    _ConstantQ,
    _PlanCache,
    _smooth,
    apply_fold_plan,
    make_fold_plan,
    normalization_scale,
)
from nnaudio_data.functional.framing import PAD_MODES, pad_signal
from nnaudio_data.kernels.cqt import (
    Q_MODES,
    cqt_frequencies,
    cqt_kernels,
    cqt_lengths,
    cqt_q,
    n_bins_from_fmax,
)
from nnaudio_data.kernels.lowpass import early_downsample_count, lowpass_filter

__all__ = ["CQT", "CQT1992", "CQT2010", "VQT", "CQT1992v2", "CQT2010v2", "iCQT"]


def _bins(fmin: Any, fmax: Any, n_bins: Any, bins_per_octave: Any) -> tuple[float, int, int]:
    fmin = check_positive_float("fmin", fmin)
    bins_per_octave = check_positive_int("bins_per_octave", bins_per_octave)
    if fmax is not None:
        n_bins = n_bins_from_fmax(fmin, fmax, bins_per_octave)
    n_bins = check_positive_int("n_bins", n_bins)
    return fmin, n_bins, bins_per_octave


def _check_nyquist(freqs: np.ndarray, sr: float) -> None:
    if freqs[-1] >= sr / 2:
        raise ValueError(
            f"the top CQT bin ({freqs[-1]:.1f} Hz) is at or above the Nyquist frequency "
            f"({sr / 2:g} Hz) for sr={sr:g}: reduce n_bins or fmin, or give fmax"
        )


def _kernel_pair(
    module: torch.nn.Module,
    suffix: str,
    kernels: np.ndarray,
    trainable: bool,
    dtype: torch.dtype,
) -> None:
    real = torch.as_tensor(kernels.real.copy(), dtype=dtype).unsqueeze(1)
    imag = torch.as_tensor(kernels.imag.copy(), dtype=dtype).unsqueeze(1)
    register_kernel(module, "cqt_kernels_real" + suffix, real, trainable)
    register_kernel(module, "cqt_kernels_imag" + suffix, imag, trainable)


def _conv_response(
    x: torch.Tensor, real: torch.Tensor, imag: torch.Tensor, hop: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``sum_n x[t*hop + n] * conj(k[n])`` for kernels ``(K, 1, W)``: real and imaginary parts."""
    x = x.unsqueeze(1)
    return F.conv1d(x, real.to(x.dtype), stride=hop), -F.conv1d(x, imag.to(x.dtype), stride=hop)


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
        sr = check_positive_float("sr", sr)
        self.hop_length = check_positive_int("hop_length", hop_length)
        fmin, self.n_bins, self.bins_per_octave = _bins(fmin, fmax, n_bins, bins_per_octave)
        self.center = bool(center)
        self.pad_mode = check_choice("pad_mode", pad_mode, PAD_MODES)
        self.trainable = bool(trainable)
        self.q_mode = check_choice("q_mode", q_mode, Q_MODES)
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
        self._plans = _PlanCache()

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

        def build() -> Any:
            k = np.zeros((self.n_bins, self.kernel_width), dtype=np.complex128)
            cols = slice(self._kernel_offset, self._kernel_offset + real_k.shape[-1])
            k[:, cols] = real_k[:, 0].detach().double().cpu().numpy()
            k[:, cols] += 1j * imag_k[:, 0].detach().double().cpu().numpy()
            return make_fold_plan(k, padded, self.hop_length, device=x.device, dtype=x.dtype)

        plan = self._plans.get((padded, x.device, x.dtype), build)
        left = self.kernel_width // 2 if self.center else 0
        return apply_fold_plan(x, plan, left, self.pad_mode)


#: nnAudio's alias of :class:`CQT1992v2`
CQT = CQT1992v2


def _two_factors(n: int) -> int:
    return (n & -n).bit_length() - 1


class _Multirate(_ConstantQ):
    """The multirate transform shared by :class:`CQT2010v2` and :class:`VQT`."""

    def _setup(
        self,
        *,
        sr: Any,
        hop_length: Any,
        fmin: Any,
        fmax: Any,
        n_bins: Any,
        filter_scale: Any,
        bins_per_octave: Any,
        norm: Any,
        basis_norm: Any,
        gamma: Any,
        window: Any,
        pad_mode: Any,
        earlydownsample: Any,
        trainable: Any,
        output_format: Any,
        q_mode: Any,
        dtype: Any,
    ) -> None:
        sr = check_positive_float("sr", sr)
        self.hop_length = check_positive_int("hop_length", hop_length)
        fmin, self.n_bins, bpo = _bins(fmin, fmax, n_bins, bins_per_octave)
        self.bins_per_octave = bpo
        if not norm:
            raise ValueError(
                f"norm={norm!r} is not supported (nnAudio ignores it); pass "
                "normalization_type='convolutional' to forward for unscaled output"
            )
        gamma = check_positive_float("gamma", gamma, allow_zero=True)
        self.gamma = gamma
        self.pad_mode = check_choice("pad_mode", pad_mode, PAD_MODES)
        self.trainable = bool(trainable)
        self.q_mode = check_choice("q_mode", q_mode, Q_MODES)
        self._init_format(output_format)
        kdtype = check_float_dtype("dtype", dtype)
        freqs = cqt_frequencies(self.n_bins, fmin, bpo)
        _check_nyquist(freqs, sr)
        self.frequencies = freqs
        n_filters = min(bpo, self.n_bins)
        n_octaves = math.ceil(self.n_bins / bpo)
        self.n_octaves = n_octaves
        kw: dict[str, Any] = dict(
            filter_scale=filter_scale,
            bins_per_octave=bpo,
            norm=basis_norm,
            window=window,
            gamma=gamma,
            q_mode=self.q_mode,
        )
        lengths = cqt_lengths(
            freqs,
            sr,
            filter_scale=filter_scale,
            bins_per_octave=bpo,
            gamma=gamma,
            q_mode=self.q_mode,
        )
        self.register_buffer(
            "lengths", torch.tensor(np.array(lengths), dtype=kdtype), persistent=False
        )

        # early downsampling: as far as the top octave's band and the hop allow
        q = cqt_q(filter_scale, bpo, self.q_mode)
        cutoff = float(freqs[-1] * (1 + 0.5 * 1.5 / q) + 0.5 * gamma)
        count = 0
        if earlydownsample:
            count = early_downsample_count(sr / 2, cutoff, self.hop_length, n_octaves)
        self.downsample_factor = 1 << count
        self._hop_e = self.hop_length >> count
        sr_e = sr / self.downsample_factor
        if count:
            early = lowpass_filter(1.0 / self.downsample_factor, 256, 0.03)
            self.register_buffer(
                "early_downsample_filter",
                torch.tensor(np.array(early), dtype=kdtype).view(1, 1, -1),
                persistent=False,
            )
        low = lowpass_filter(0.5, 256, 0.001)
        self.register_buffer(
            "lowpass_filter",
            torch.tensor(np.array(low), dtype=kdtype).view(1, 1, -1),
            persistent=False,
        )
        # octave i (0 = top) at rate sr_e / 2**level_i, level_i limited by the hop's factors of 2
        max_level = _two_factors(self._hop_e)
        top_freqs = freqs[-n_filters:]
        # (kernel suffix, first kept row, level) per octave, top octave first
        self._octaves: list[tuple[str, int, int]] = []
        self._widths: dict[str, int] = {}
        shared_done = False
        for i in range(n_octaves):
            level = min(i, max_level)
            n_keep = min(n_filters, self.n_bins - i * n_filters)
            if gamma == 0 and level == i:
                if not shared_done:
                    kernels, _ = cqt_kernels(top_freqs, sr_e, **kw)
                    self._register_bank("", kernels, kdtype)
                    shared_done = True
                self._octaves.append(("", n_filters - n_keep, level))
                continue
            hi = self.n_bins - i * n_filters
            oct_freqs = freqs[hi - n_keep : hi]
            kernels, _ = cqt_kernels(oct_freqs, sr_e / (1 << level), **kw)
            self._register_bank(f"_{i}", kernels, kdtype)
            self._octaves.append((f"_{i}", 0, level))
        self.kernel_width = self._widths[self._octaves[0][0]]
        self.n_levels = max(level for _, _, level in self._octaves)

    early_downsample_filter: torch.Tensor
    lowpass_filter: torch.Tensor

    def _register_bank(self, suffix: str, kernels: np.ndarray, dtype: torch.dtype) -> None:
        """Hold one octave's wavelets (time-domain conv kernels here)."""
        self._widths[suffix] = int(kernels.shape[1])
        _kernel_pair(self, suffix, kernels, self.trainable, dtype)

    def _octave(
        self, xp: torch.Tensor, suffix: str, first: int, hop: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Response of one octave's wavelets (rows from ``first``) to padded ``xp``."""
        real_k = getattr(self, "cqt_kernels_real" + suffix)
        imag_k = getattr(self, "cqt_kernels_imag" + suffix)
        return _conv_response(xp, real_k[first:], imag_k[first:], hop)

    def _frame_width(self) -> int:
        return 2 * (self.kernel_width // 2)

    def _downsample(self, x: torch.Tensor, kernel: torch.Tensor, factor: int) -> torch.Tensor:
        """``conv1d(x, kernel, stride=factor, padding=(taps - 1) // 2)`` (nnAudio's low-pass and
        decimation), computed as a correlation by FFT: a single-channel 256-tap conv1d is slow
        on the CPU (4x the FFT's time)."""
        taps = kernel.shape[-1]
        pad = (taps - 1) // 2
        n = max(x.shape[-1], taps - 2 * pad)
        out_len = (n + 2 * pad - taps) // factor + 1
        size = _smooth(n + pad + taps)
        spec = (
            torch.fft.rfft(x, n=size) * torch.fft.rfft(kernel.view(-1).to(x.dtype), n=size).conj()
        )
        corr = torch.fft.irfft(spec, n=size)  # corr[k] = sum_j h[j] x[k + j] (circular)
        corr = torch.cat((corr[:, size - pad :], corr[:, : size - pad]), 1)  # index k - pad
        return corr[:, : factor * (out_len - 1) + 1 : factor]

    def _response(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n_frames = 1 + x.shape[-1] // self.hop_length
        if self.downsample_factor > 1:
            x = self._downsample(x, self.early_downsample_filter, self.downsample_factor)
        levels = [x]
        for _ in range(self.n_levels):
            levels.append(self._downsample(levels[-1], self.lowpass_filter, 2))
        reals, imags = [], []
        for suffix, first, level in self._octaves:
            half = self._widths[suffix] // 2
            xp = pad_signal(levels[level], half, half, self.pad_mode)
            re, im = self._octave(xp, suffix, first, self._hop_e >> level)
            reals.append(re[..., :n_frames])
            imags.append(im[..., :n_frames])
        return torch.cat(reals[::-1], 1), torch.cat(imags[::-1], 1)


class CQT2010v2(_Multirate):
    """Multirate constant-Q transform (Schörkhuber & Klapuri 2010): one octave of wavelets, the
    signal low-passed and halved for each octave below; nnAudio 0.3.4's ``CQT2010v2``.

    Args:
        sr, hop_length, fmin, fmax, n_bins, filter_scale, bins_per_octave, window, pad_mode,
        trainable, output_format, verbose, q_mode: as :class:`CQT1992v2`.
        norm: must be true (nnAudio accepts and ignores it); use ``normalization_type`` in
            :meth:`forward`.
        basis_norm: norm each wavelet is divided by (1: L1).
        earlydownsample: halve the input before the top octave as often as the top octave's
            band and the hop allow (the output keeps its scale).
        dtype: dtype of the kernels and filters.

    Shape:
        - Input: ``(time,)``, ``(batch, time)``, ``(batch, 1, time)`` or ``(batch, channels, time)``
        - Output: ``(batch, n_bins, 1 + time // hop_length)`` (``(batch, channels, ...)`` for several
          channels; a trailing ``2`` for ``'Complex'`` / ``'Phase'``).
    """

    def __init__(
        self,
        sr: float = 22050,
        hop_length: int = 512,
        fmin: float = 32.70,
        fmax: float | None = None,
        n_bins: int = 84,
        filter_scale: float = 1,
        bins_per_octave: int = 12,
        norm: bool = True,
        basis_norm: float | None = 1,
        window: Any = "hann",
        pad_mode: str = "reflect",
        earlydownsample: bool = True,
        trainable: bool = False,
        output_format: str = "Magnitude",
        verbose: bool = True,
        *,
        q_mode: str = "nnaudio",
        dtype: Any = "float32",
    ) -> None:
        super().__init__()
        self._setup(
            sr=sr,
            hop_length=hop_length,
            fmin=fmin,
            fmax=fmax,
            n_bins=n_bins,
            filter_scale=filter_scale,
            bins_per_octave=bins_per_octave,
            norm=norm,
            basis_norm=basis_norm,
            gamma=0.0,
            window=window,
            pad_mode=pad_mode,
            earlydownsample=earlydownsample,
            trainable=trainable,
            output_format=output_format,
            q_mode=q_mode,
            dtype=dtype,
        )


class VQT(_Multirate):
    """Variable-Q transform: the multirate transform with wavelet lengths
    ``Q * sr / (f + gamma / alpha)`` (``gamma=0`` is :class:`CQT2010v2`); nnAudio 0.3.4's ``VQT``.

    Args:
        gamma: bandwidth offset in Hz (>= 0).
        others: as :class:`CQT2010v2`; ``trainable`` is honoured (nnAudio ignores it).

    Shape:
        as :class:`CQT2010v2`.
    """

    def __init__(
        self,
        sr: float = 22050,
        hop_length: int = 512,
        fmin: float = 32.70,
        fmax: float | None = None,
        n_bins: int = 84,
        filter_scale: float = 1,
        bins_per_octave: int = 12,
        norm: bool = True,
        basis_norm: float | None = 1,
        gamma: float = 0,
        window: Any = "hann",
        pad_mode: str = "reflect",
        earlydownsample: bool = True,
        trainable: bool = False,
        output_format: str = "Magnitude",
        verbose: bool = True,
        *,
        q_mode: str = "nnaudio",
        dtype: Any = "float32",
    ) -> None:
        super().__init__()
        self._setup(
            sr=sr,
            hop_length=hop_length,
            fmin=fmin,
            fmax=fmax,
            n_bins=n_bins,
            filter_scale=filter_scale,
            bins_per_octave=bins_per_octave,
            norm=norm,
            basis_norm=basis_norm,
            gamma=gamma,
            window=window,
            pad_mode=pad_mode,
            earlydownsample=earlydownsample,
            trainable=trainable,
            output_format=output_format,
            q_mode=q_mode,
            dtype=dtype,
        )


def _spectral_kernels(
    module: torch.nn.Module, suffix: str, kernels: np.ndarray, trainable: bool, dtype: torch.dtype
) -> None:
    """The wavelets' DFT over the non-negative frequencies, ``(n_bins, width // 2 + 1)``."""
    width = kernels.shape[1]
    spec = np.fft.fft(kernels, axis=1)[:, : width // 2 + 1]
    register_kernel(
        module, "cqt_kernels_real" + suffix, torch.tensor(spec.real, dtype=dtype), trainable
    )
    register_kernel(
        module, "cqt_kernels_imag" + suffix, torch.tensor(spec.imag, dtype=dtype), trainable
    )


def _fourier_kernels(
    module: torch.nn.Module, suffix: str, width: int, trainable: bool, dtype: torch.dtype
) -> None:
    """Rectangular-window DFT kernels ``(width // 2 + 1, width)`` (only when trainable: a frozen
    DFT is an FFT)."""
    if not trainable or hasattr(module, "wcos" + suffix):
        return
    n = np.arange(width)
    arg = 2 * np.pi * np.outer(np.arange(width // 2 + 1), n) / width
    register_kernel(module, "wcos" + suffix, torch.tensor(np.cos(arg), dtype=dtype), True)
    register_kernel(module, "wsin" + suffix, torch.tensor(np.sin(arg), dtype=dtype), True)


def _spectral_response(
    xp: torch.Tensor,
    spec_real: torch.Tensor,
    spec_imag: torch.Tensor,
    hop: int,
    wcos: torch.Tensor | None = None,
    wsin: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Brown & Puckette: a rectangular-window DFT of each frame times the wavelets' DFT, summed
    over the non-negative frequencies and divided by the width (so that the scale is the
    time-domain correlation's): ``sum_f conj(K[f]) X[f] / width``."""
    width = 2 * (spec_real.shape[-1] - 1)
    frames = xp.unfold(-1, width, hop)  # (rows, frames, width)
    if wcos is None or wsin is None:
        spec = torch.fft.rfft(frames, dim=-1)
        xr, xi = spec.real, spec.imag
    else:
        xr, xi = frames @ wcos.to(xp.dtype).T, -(frames @ wsin.to(xp.dtype).T)
    kr, ki = spec_real.to(xp.dtype), spec_imag.to(xp.dtype)
    real = (xr @ kr.T + xi @ ki.T) / width
    imag = (xi @ kr.T - xr @ ki.T) / width
    return real.transpose(1, 2), imag.transpose(1, 2)


class CQT1992(_ConstantQ):
    """Constant-Q transform by Brown & Puckette's spectral kernels: a rectangular-window STFT of
    ``kernel_width`` points, then a product with the wavelets' spectra; nnAudio 0.3.4's ``CQT1992``.

    Equal to :class:`CQT1992v2` up to the wavelets' negative-frequency leakage (the product runs
    over the non-negative frequencies, as nnAudio's). What differs from nnAudio: ``fmin``
    defaults to 32.70 Hz as nnAudio documents (its code's 220 Hz puts the 84th bin above the
    Nyquist frequency at 22.05 kHz, so its defaults raise); ``'convolutional'`` has the scale of
    the rest of the family (nnAudio's is ``kernel_width`` times larger); nothing prints.

    Args:
        sr, hop_length, fmin, fmax, n_bins, bins_per_octave, filter_scale, output_format, norm,
        window, center, pad_mode, q_mode, dtype: as :class:`CQT1992v2`.
        trainable_STFT: hold the DFT as trainable kernels ``wcos`` / ``wsin``
            ``(kernel_width // 2 + 1, kernel_width)`` (large: 0.5 GB each at fmin 32.7 Hz and
            22.05 kHz); frozen, the DFT is an FFT.
        trainable_CQT: hold the spectral kernels ``cqt_kernels_real`` / ``cqt_kernels_imag``
            ``(n_bins, kernel_width // 2 + 1)`` as parameters.

    Shape:
        as :class:`CQT1992v2`.
    """

    def __init__(
        self,
        sr: float = 22050,
        hop_length: int = 512,
        fmin: float = 32.70,
        fmax: float | None = None,
        n_bins: int = 84,
        trainable_STFT: bool = False,
        trainable_CQT: bool = False,
        bins_per_octave: int = 12,
        filter_scale: float = 1,
        output_format: str = "Magnitude",
        norm: float | None = 1,
        window: Any = "hann",
        center: bool = True,
        pad_mode: str = "reflect",
        verbose: bool = True,
        *,
        q_mode: str = "nnaudio",
        dtype: Any = "float32",
    ) -> None:
        super().__init__()
        sr = check_positive_float("sr", sr)
        self.hop_length = check_positive_int("hop_length", hop_length)
        fmin, self.n_bins, self.bins_per_octave = _bins(fmin, fmax, n_bins, bins_per_octave)
        self.center = bool(center)
        self.pad_mode = check_choice("pad_mode", pad_mode, PAD_MODES)
        self.trainable = bool(trainable_STFT or trainable_CQT)
        self.q_mode = check_choice("q_mode", q_mode, Q_MODES)
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
        self.register_buffer("lengths", torch.tensor(np.array(lengths), dtype=kdtype), False)
        _spectral_kernels(self, "", kernels, bool(trainable_CQT), kdtype)
        _fourier_kernels(self, "", self.kernel_width, bool(trainable_STFT), kdtype)

    def _frame_width(self) -> int:
        return self.kernel_width

    def _frame_center(self) -> bool:
        return self.center

    def _response(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xp = CQT1992v2._padded(self, x)  # type: ignore[arg-type]
        return _spectral_response(
            xp,
            self.cqt_kernels_real,  # type: ignore[arg-type]
            self.cqt_kernels_imag,  # type: ignore[arg-type]
            self.hop_length,
            getattr(self, "wcos", None),
            getattr(self, "wsin", None),
        )


class CQT2010(_Multirate):
    """Multirate constant-Q transform with Brown & Puckette's spectral kernels per octave;
    nnAudio 0.3.4's ``CQT2010``. Its early downsampling keeps the scale (nnAudio's output is
    0.35x - 0.70x too small then), any hop works, nothing prints.

    Args:
        as :class:`CQT2010v2`, with ``trainable_STFT`` / ``trainable_CQT`` as :class:`CQT1992`.

    Shape:
        as :class:`CQT2010v2`.
    """

    def __init__(
        self,
        sr: float = 22050,
        hop_length: int = 512,
        fmin: float = 32.70,
        fmax: float | None = None,
        n_bins: int = 84,
        bins_per_octave: int = 12,
        norm: bool = True,
        basis_norm: float | None = 1,
        window: Any = "hann",
        pad_mode: str = "reflect",
        trainable_STFT: bool = False,
        filter_scale: float = 1,
        trainable_CQT: bool = False,
        output_format: str = "Magnitude",
        earlydownsample: bool = True,
        verbose: bool = True,
        *,
        q_mode: str = "nnaudio",
        dtype: Any = "float32",
    ) -> None:
        super().__init__()
        self._trainable_stft = bool(trainable_STFT)
        self._trainable_cqt = bool(trainable_CQT)
        self._setup(
            sr=sr,
            hop_length=hop_length,
            fmin=fmin,
            fmax=fmax,
            n_bins=n_bins,
            filter_scale=filter_scale,
            bins_per_octave=bins_per_octave,
            norm=norm,
            basis_norm=basis_norm,
            gamma=0.0,
            window=window,
            pad_mode=pad_mode,
            earlydownsample=earlydownsample,
            trainable=bool(trainable_STFT or trainable_CQT),
            output_format=output_format,
            q_mode=q_mode,
            dtype=dtype,
        )

    def _register_bank(self, suffix: str, kernels: np.ndarray, dtype: torch.dtype) -> None:
        width = int(kernels.shape[1])
        self._widths[suffix] = width
        _spectral_kernels(self, suffix, kernels, self._trainable_cqt, dtype)
        _fourier_kernels(self, f"_{width}", width, self._trainable_stft, dtype)

    def _octave(
        self, xp: torch.Tensor, suffix: str, first: int, hop: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        width = self._widths[suffix]
        return _spectral_response(
            xp,
            getattr(self, "cqt_kernels_real" + suffix)[first:],
            getattr(self, "cqt_kernels_imag" + suffix)[first:],
            hop,
            getattr(self, f"wcos_{width}", None),
            getattr(self, f"wsin_{width}", None),
        )


class iCQT(Transform):
    """Inverse of :class:`CQT1992v2`: the least-squares waveform whose CQT is closest to the given
    complex CQT, by preconditioned conjugate gradients on the normal equations.

    The start is the kernels' adjoint (transposed convolution) divided, per frequency, by the
    filter bank's power ``sum_k |K_k(f)|^2 / hop`` (the frequency-domain diagonal that
    ``librosa.icqt`` also divides by); each of ``n_iter`` iterations then costs one forward and one
    adjoint pass and lowers the error further. Content outside the bank's band (below ``fmin``,
    above the top bin) cannot come back.

    Args:
        sr, hop_length, fmin, fmax, n_bins, bins_per_octave, filter_scale, norm, window, q_mode,
        dtype: those of the :class:`CQT1992v2` whose output is inverted (``center=True``).
        n_iter: conjugate-gradient iterations (0: the diagonal inverse only).
        normalization_type: the one the CQT was computed with.
        trainable: hold the wavelets as parameters.

    Shape:
        - Input: ``(batch, n_bins, frames, 2)`` (``output_format='Complex'``) or complex
          ``(batch, n_bins, frames)``; ``(batch, channels, ...)`` too.
        - Output: ``(batch, length)`` with ``length = (frames - 1) * hop_length`` unless given.
    """

    output_kind = "waveform"

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
        n_iter: int = 16,
        normalization_type: str = "librosa",
        trainable: bool = False,
        *,
        q_mode: str = "nnaudio",
        dtype: Any = "float32",
    ) -> None:
        super().__init__()
        self.n_iter = check_non_negative_int("n_iter", n_iter)
        self.normalization_type = check_choice(
            "normalization_type", normalization_type, NORMALIZATION_TYPES
        )
        self.cqt = CQT1992v2(
            sr,
            hop_length,
            fmin,
            fmax,
            n_bins,
            bins_per_octave,
            filter_scale,
            norm,
            window,
            trainable=trainable,
            q_mode=q_mode,
            backend="conv",
            dtype=dtype,
            output_format="Complex",
        )
        self.hop_length = self.cqt.hop_length
        self.time_dim = -1

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Samples for ``lengths`` frames: ``(frames - 1) * hop_length``."""
        return (torch.as_tensor(lengths) - 1).clamp_min(0) * self.hop_length

    def _forward_op(self, xp: torch.Tensor) -> torch.Tensor:
        """The CQT's real-linear operator on the padded signal: ``(rows, 2 * bins, frames)``."""
        frames = 1 + (xp.shape[-1] - self.cqt.kernel_width) // self.hop_length
        re, im = _conv_response(
            xp[:, self.cqt._kernel_offset :],
            self.cqt.cqt_kernels_real,  # type: ignore[arg-type]
            self.cqt.cqt_kernels_imag,  # type: ignore[arg-type]
            self.hop_length,
        )
        return torch.cat((re[..., :frames], im[..., :frames]), 1)

    def _adjoint(self, c: torch.Tensor) -> torch.Tensor:
        """The transpose of :meth:`_forward_op`: ``(rows, (frames - 1) * hop + kernel_width)``."""
        k = c.shape[1] // 2
        real_k: torch.Tensor = self.cqt.cqt_kernels_real  # type: ignore[assignment]
        imag_k: torch.Tensor = self.cqt.cqt_kernels_imag  # type: ignore[assignment]
        weight = torch.cat((real_k, imag_k)).to(c.dtype)
        signed = torch.cat((c[:, :k], -c[:, k:]), 1)
        y = F.conv_transpose1d(signed, weight, stride=self.hop_length)[:, 0]
        n_pad = (c.shape[-1] - 1) * self.hop_length + self.cqt.kernel_width
        offset = self.cqt._kernel_offset
        return F.pad(y, (offset, n_pad - offset - y.shape[-1]))

    def _preconditioner(self, n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        real_k: torch.Tensor = self.cqt.cqt_kernels_real  # type: ignore[assignment]
        imag_k: torch.Tensor = self.cqt.cqt_kernels_imag  # type: ignore[assignment]
        k = torch.complex(real_k[:, 0].detach(), imag_k[:, 0].detach()).to(device)
        # (the trimmed frozen kernels' offset only shifts the phase: the power is the same)
        k = k.to(torch.complex128 if dtype == torch.float64 else torch.complex64)
        spec = torch.fft.fft(k, n=n)
        power = spec.abs().pow(2)
        # a real signal sees each wavelet at f and -f
        power = 0.5 * (power + power.roll(-1, -1).flip(-1)).sum(0)[: n // 2 + 1]
        power = power / self.hop_length
        # regularised: where the bank is weak the diagonal is a poor inverse (aliasing of
        # the decimated bins); 0.1 of the peak converged fastest on tones and noise
        return 1.0 / (power + 0.1 * power.max())

    def forward(self, x: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Waveforms ``(batch, length)`` from complex CQTs (see the class docstring)."""
        if x.is_complex():
            x = torch.view_as_real(x)
        if x.ndim not in (4, 5) or x.shape[-1] != 2 or x.shape[-3] != self.cqt.n_bins:
            raise ValueError(
                f"x has shape {tuple(x.shape)}; expected (batch, {self.cqt.n_bins}, frames, 2) "
                "or (batch, channels, ...) (a CQT1992v2 output with output_format='Complex')"
            )
        lead = x.shape[:-3]
        x = x.reshape(-1, *x.shape[-3:])
        scale = normalization_scale(self.cqt.lengths, self.normalization_type, x.dtype)
        c = x if scale is None else x / scale.unsqueeze(-1)
        c = torch.cat((c[..., 0], c[..., 1]), 1)  # (rows, 2 * bins, frames)
        frames = c.shape[-1]
        n = (frames - 1) * self.hop_length if length is None else int(length)
        n_pad = (frames - 1) * self.hop_length + self.cqt.kernel_width
        precond = self._preconditioner(n_pad, x.device, x.dtype)

        def apply_p(r: torch.Tensor) -> torch.Tensor:
            return torch.fft.irfft(torch.fft.rfft(r, n=n_pad) * precond, n=n_pad)

        def normal(v: torch.Tensor) -> torch.Tensor:
            return self._adjoint(self._forward_op(v))

        b = self._adjoint(c)
        xp = apply_p(b)
        if self.n_iter:
            r = b - normal(xp)
            z = apply_p(r)
            p = z
            rz = (r * z).sum(-1, keepdim=True)
            for _ in range(self.n_iter):
                q = normal(p)
                alpha = rz / (p * q).sum(-1, keepdim=True).clamp_min(1e-30)
                xp = xp + alpha * p
                r = r - alpha * q
                z = apply_p(r)
                rz_new = (r * z).sum(-1, keepdim=True)
                p = z + rz_new / rz.clamp_min(1e-30) * p
                rz = rz_new
        half = self.cqt.kernel_width // 2
        out = xp[:, half : half + n]
        if out.shape[-1] < n:
            out = F.pad(out, (0, n - out.shape[-1]))
        return out.reshape(*lead, n)
