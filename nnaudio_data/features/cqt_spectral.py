"""Brown & Puckette's spectral-kernel constant-Q transforms: ``CQT1992`` (one STFT of the kernel
width per frame times the wavelets' spectra) and ``CQT2010`` (the same per octave of the multirate
transform). The kernels are built by :func:`nnaudio_data.kernels.cqt.spectral_kernels` and
:func:`~nnaudio_data.kernels.cqt.dft_kernels`."""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import torch

from nnaudio_data._checks import (
    check_float_dtype,
)
from nnaudio_data._transform import nnaudio_keys
from nnaudio_data.features._common import register_kernel
from nnaudio_data.features._cqt_common import _check_nyquist, _ConstantQ
from nnaudio_data.features.cqt1992 import CQT1992v2
from nnaudio_data.features.cqt2010 import _Multirate
from nnaudio_data.kernels.cqt import (
    cqt_frequencies,
    cqt_kernels,
    dft_kernels,
    spectral_kernels,
)

__all__ = ["CQT1992", "CQT2010"]


def _spectral_kernels(
    module: torch.nn.Module, suffix: str, kernels: np.ndarray, trainable: bool, dtype: torch.dtype
) -> None:
    """The wavelets' DFT over the non-negative frequencies, ``(n_bins, width // 2 + 1)``."""
    spec = spectral_kernels(kernels)
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
    cos, sin = dft_kernels(width)
    register_kernel(module, "wcos" + suffix, torch.tensor(cos, dtype=dtype), True)
    register_kernel(module, "wsin" + suffix, torch.tensor(sin, dtype=dtype), True)


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

    nnaudio_buffers = nnaudio_keys(
        "cqt_kernels_real", "cqt_kernels_imag", "wcos", "wsin", ignored=("lenghts",)
    )

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
        grid = (sr, hop_length, fmin, fmax, n_bins, bins_per_octave, pad_mode, q_mode)
        sr, fmin = self._init_grid(*grid, trainable=trainable_STFT or trainable_CQT)
        self.center = bool(center)
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

    nnaudio_buffers = nnaudio_keys(
        "cqt_kernels_real",
        "cqt_kernels_imag",
        "lowpass_filter",
        "early_downsample_filter",
        "wcos",
        "wsin",
        ignored=("lenghts",),
    )

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
        if self._trainable_stft and not suffix:  # nnAudio's one DFT: wcos / wsin
            table = {**type(self).nnaudio_buffers, "wcos": f"wcos_{width}", "wsin": f"wsin_{width}"}
            self.nnaudio_buffers = types.MappingProxyType(table)

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
