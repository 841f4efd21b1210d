"""The multirate constant-Q transforms: ``CQT2010v2`` and ``VQT`` (one octave of wavelets, the
signal low-passed and halved per octave below; :func:`~nnaudio_data.functional._decimate.
lowpass_decimate`)."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import torch

from nnaudio_data._checks import (
    check_float_dtype,
    check_positive_float,
)
from nnaudio_data._transform import nnaudio_keys
from nnaudio_data.features._cqt_common import (
    _check_nyquist,
    _ConstantQ,
    _conv_response,
    _kernel_pair,
)
from nnaudio_data.functional._decimate import lowpass_decimate
from nnaudio_data.functional.framing import pad_signal
from nnaudio_data.kernels.cqt import cqt_frequencies, cqt_kernels, cqt_lengths, cqt_q
from nnaudio_data.kernels.lowpass import early_downsample_count, lowpass_filter

__all__ = ["VQT", "CQT2010v2"]


def _two_factors(n: int) -> int:
    return (n & -n).bit_length() - 1


class _Multirate(_ConstantQ):
    """The multirate transform shared by :class:`CQT2010v2` and :class:`VQT`."""

    nnaudio_buffers = nnaudio_keys(
        "cqt_kernels_real",
        "cqt_kernels_imag",
        "lowpass_filter",
        "early_downsample_filter",
        ignored=("lenghts",),
    )

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
        grid = (sr, hop_length, fmin, fmax, n_bins, bins_per_octave, pad_mode, q_mode)
        sr, fmin = self._init_grid(*grid, trainable=trainable)
        bpo = self.bins_per_octave
        if not norm:
            raise ValueError(
                f"norm={norm!r} is not supported (nnAudio ignores it); pass "
                "normalization_type='convolutional' to forward for unscaled output"
            )
        gamma = check_positive_float("gamma", gamma, allow_zero=True)
        self.gamma = gamma
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

    def _response(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n_frames = 1 + x.shape[-1] // self.hop_length
        if self.downsample_factor > 1:
            x = lowpass_decimate(x, self.early_downsample_filter, self.downsample_factor)
        levels = [x]
        for _ in range(self.n_levels):
            levels.append(lowpass_decimate(levels[-1], self.lowpass_filter, 2))
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

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # nnAudio's VQT stores one padded kernel bank per octave (cqt_kernels_real_0, ...); they
        # are frozen there (no trainable option) and rebuilt here from the same arguments
        pattern = re.compile(re.escape(prefix) + r"cqt_kernels_(real|imag)_\d+")
        for key in [k for k in state_dict if pattern.fullmatch(k)]:
            del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args)

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
