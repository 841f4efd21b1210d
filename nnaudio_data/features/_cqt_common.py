"""What every constant-Q transform shares: argument checks, padding, normalisation, output format,
frame rule, and the time-domain wavelets as conv kernels.

One implementation for the whole family (``CQT1992v2``, ``CQT2010v2``, ``CQT1992``, ``CQT2010``,
``VQT``): a class computes the complex response ``(rows, n_bins, frames)`` as a real and an
imaginary part (nnAudio's sign: ``sum_n x[t + n] * conj(kernel[n])``) and :class:`_ConstantQ`
does the rest. The FFT-domain ("folded spectrum") path for frozen kernels is
:mod:`nnaudio_data.functional._folded` (its names are re-exported here).
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from nnaudio_data._checks import check_choice, check_positive_float, check_positive_int
from nnaudio_data._shapes import flatten_waveform, frame_lengths, unflatten
from nnaudio_data._transform import Transform, nnaudio_keys
from nnaudio_data.features._common import register_kernel
from nnaudio_data.functional._folded import (
    FoldPlan,
    TimeGroup,
    apply_fold_plan,
    make_fold_plan,
)
from nnaudio_data.functional.framing import PAD_MODES
from nnaudio_data.kernels.cqt import Q_MODES, n_bins_from_fmax

__all__ = [
    "BACKENDS",
    "NORMALIZATION_TYPES",
    "OUTPUT_FORMATS",
    "FoldPlan",
    "TimeGroup",
    "apply_fold_plan",
    "format_output",
    "make_fold_plan",
    "normalization_scale",
]

OUTPUT_FORMATS = ("Magnitude", "Complex", "Phase")
NORMALIZATION_TYPES = ("librosa", "convolutional", "wrap")
BACKENDS = ("auto", "conv", "fft")

#: tokens naming a frozen kernel bank in :func:`~nnaudio_data.functional._folded.fold_plan`'s memo
_BANK_TOKENS = itertools.count()


def new_bank_token() -> int:
    """A process-unique token for a kernel bank made at construction (the memo's key)."""
    return next(_BANK_TOKENS)


def normalization_scale(
    lengths: torch.Tensor, normalization_type: str, dtype: torch.dtype
) -> torch.Tensor | None:
    """Per-bin output scale: ``sqrt(lengths)`` (``'librosa'``), 2 (``'wrap'``: a unit sine gives 1
    in its bin with L1-normalised kernels) or none (``'convolutional'``)."""
    check_choice("normalization_type", normalization_type, NORMALIZATION_TYPES)
    if normalization_type == "librosa":
        return lengths.to(dtype).sqrt().view(-1, 1)
    if normalization_type == "wrap":
        return torch.full_like(lengths, 2.0, dtype=dtype).view(-1, 1)
    return None


def format_output(
    real: torch.Tensor, imag: torch.Tensor, output_format: str, eps: float = 0.0
) -> torch.Tensor:
    """``'Magnitude'`` ``(..., F, T)``; ``'Complex'`` and ``'Phase'`` (cos, sin of the phase)
    ``(..., F, T, 2)``. ``eps`` is added under the square root (nnAudio adds 1e-8 when trainable so
    that the gradient at zero is finite)."""
    check_choice("output_format", output_format, OUTPUT_FORMATS)
    if output_format == "Magnitude":
        if not eps:
            return torch.hypot(real, imag)
        return (real.pow(2) + imag.pow(2) + eps).sqrt()
    if output_format == "Complex":
        return torch.stack((real, imag), -1)
    phase = torch.atan2(imag, real)
    return torch.stack((phase.cos(), phase.sin()), -1)


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


class _ConstantQ(Transform):
    """Shared forward of the family: flatten, respond, normalise, format, unflatten.

    Subclasses set ``n_bins``, ``hop_length``, ``output_format``, ``trainable``, register a
    ``lengths`` buffer (for ``'librosa'`` normalisation) and implement :meth:`_response`,
    :meth:`_frame_width` and :meth:`_frame_center`.
    """

    output_kind = "spectrogram"
    nnaudio_buffers = nnaudio_keys("cqt_kernels_real", "cqt_kernels_imag", ignored=("lenghts",))

    _config_exclude: ClassVar[frozenset[str]] = frozenset({"verbose", "device"})
    lengths: torch.Tensor
    n_bins: int
    output_format: str
    trainable: bool
    hop_length: int
    bins_per_octave: int
    pad_mode: str
    q_mode: str

    def _init_grid(
        self,
        sr: Any,
        hop_length: Any,
        fmin: Any,
        fmax: Any,
        n_bins: Any,
        bins_per_octave: Any,
        pad_mode: Any,
        q_mode: Any,
        *,
        trainable: Any,
    ) -> tuple[float, float]:
        """Check and set what every member of the family shares (``hop_length``, ``n_bins``,
        ``bins_per_octave``, ``pad_mode``, ``q_mode``, ``trainable``): ``(sr, fmin)``."""
        sr = check_positive_float("sr", sr)
        self.hop_length = check_positive_int("hop_length", hop_length)
        fmin, self.n_bins, self.bins_per_octave = _bins(fmin, fmax, n_bins, bins_per_octave)
        self.pad_mode = check_choice("pad_mode", pad_mode, PAD_MODES)
        self.q_mode = check_choice("q_mode", q_mode, Q_MODES)
        self.trainable = bool(trainable)
        return sr, fmin

    def _init_format(self, output_format: str) -> None:
        self.output_format = check_choice("output_format", output_format, OUTPUT_FORMATS)
        #: the output's time axis: -2 for (..., F, T, 2) outputs, -1 for magnitudes
        self.time_dim = -1 if output_format == "Magnitude" else -2

    def _response(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _frame_width(self) -> int:
        """The ``n_fft`` of the frame rule ``1 + (n + 2 * (w // 2) - w) // hop``."""
        raise NotImplementedError

    def _frame_center(self) -> bool:
        return True

    def forward(
        self,
        x: torch.Tensor,
        output_format: str | None = None,
        normalization_type: str = "librosa",
    ) -> torch.Tensor:
        """Constant-Q transform of a batch of waveforms.

        Args:
            x: ``(time,)``, ``(batch, time)``, ``(batch, 1, time)`` or ``(batch, channels, time)``.
            output_format: overrides the constructor's ``'Magnitude'``, ``'Complex'`` or
                ``'Phase'`` for this call.
            normalization_type: ``'librosa'`` (times ``sqrt(length)`` of each wavelet, as
                ``librosa.cqt``), ``'convolutional'`` (the plain correlation with L1-normalised
                wavelets: a unit sine gives 0.5) or ``'wrap'`` (times 2: a unit sine gives 1).
        """
        fmt = self.output_format if output_format is None else output_format
        check_choice("output_format", fmt, OUTPUT_FORMATS)
        flat, lead = flatten_waveform(x)
        scale = normalization_scale(self.lengths, normalization_type, flat.dtype)
        if flat.shape[0] == 0:  # an empty batch: the shape it would have
            frames = int(self.output_lengths(torch.tensor(x.shape[-1])))
            shape = (0, self.n_bins, frames) + (() if fmt == "Magnitude" else (2,))
            return unflatten(flat.new_zeros(shape), lead)
        real, imag = self._response(flat)
        if scale is not None:
            real, imag = real * scale, imag * scale
        eps = 1e-8 if self.trainable else 0.0
        return unflatten(format_output(real, imag, fmt, eps), lead)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames for inputs of ``lengths`` samples: ``1 + n // hop_length`` (centred frames)."""
        return frame_lengths(
            torch.as_tensor(lengths), self._frame_width(), self.hop_length, self._frame_center()
        )
