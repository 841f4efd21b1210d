"""The FFT-domain path for frozen Fourier kernels.

A frozen ``STFT`` / ``MelSpectrogram`` computes the same numbers as its conv kernels with one real
FFT per frame. These functions are pure (no module state) and differentiable with respect to the
input; they run on any device and under ``torch.compile``.
"""

from __future__ import annotations

import torch

from nnaudio_data.features._common import center_pad

__all__ = ["stft_fft", "stft_fft_power"]


def _frames(
    x: torch.Tensor, n_fft: int, hop_length: int, center: bool, pad_mode: str
) -> torch.Tensor:
    """``(rows, frames, n_fft)`` strided view of the (centre-padded) signal."""
    if center:
        x = center_pad(x, n_fft // 2, pad_mode)
    if x.shape[-1] < n_fft:
        raise ValueError(
            f"input has {x.shape[-1]} samples but center=False needs at least n_fft={n_fft}"
        )
    return x.unfold(-1, n_fft, hop_length)


def stft_fft(
    x: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    window: torch.Tensor,
    center: bool,
    pad_mode: str,
) -> torch.Tensor:
    """Complex STFT of ``x`` by a real FFT of each windowed frame (``librosa.stft``'s numbers).

    Args:
        x: ``(rows, time)`` float32 or float64.
        n_fft: FFT size.
        hop_length: samples between frames.
        window: ``(n_fft,)`` analysis window, already centre-padded to ``n_fft``.
        center: pad ``n_fft // 2`` on both sides first (``pad_mode``).
        pad_mode: ``'reflect'``, ``'constant'``, ``'replicate'`` or ``'circular'``.

    Shape:
        - Input: ``(rows, time)``
        - Output: ``(rows, n_fft // 2 + 1, frames)`` complex.
    """
    frames = _frames(x, n_fft, hop_length, center, pad_mode)
    return torch.fft.rfft(frames * window.to(x.dtype), dim=-1).transpose(1, 2)


def stft_fft_power(
    x: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    window: torch.Tensor,
    center: bool,
    pad_mode: str,
    power: float,
) -> torch.Tensor:
    """``|STFT(x)| ** power`` (1.0: magnitude, 2.0: power spectrogram), real.

    Arguments as :func:`stft_fft`, plus ``power`` (any float > 0).

    Shape:
        - Input: ``(rows, time)``
        - Output: ``(rows, n_fft // 2 + 1, frames)`` real.
    """
    spec = stft_fft(
        x, n_fft=n_fft, hop_length=hop_length, window=window, center=center, pad_mode=pad_mode
    )
    if power != 2.0 and x.requires_grad and torch.is_grad_enabled():
        # complex abs has a zero gradient at 0, where sqrt(re^2 + im^2) would give NaN
        mag = spec.abs()
        return mag if power == 1.0 else mag.pow(power)
    ri = torch.view_as_real(spec)
    sq = ri[..., 0].square() + ri[..., 1].square()
    if power == 2.0:
        return sq
    if power == 1.0:
        return sq.sqrt()
    return sq.pow(power / 2)
