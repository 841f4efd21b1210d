"""Low-pass filtering and decimation by FFT correlation (the multirate constant-Q transforms'
octave step), with nnAudio's ``conv1d(x, kernel, stride=factor, padding=(taps - 1) // 2)``
numbers."""

from __future__ import annotations

import torch

from nnaudio_data.functional._folded import smooth_size

__all__ = ["lowpass_decimate"]


def lowpass_decimate(x: torch.Tensor, kernel: torch.Tensor, factor: int) -> torch.Tensor:
    """``conv1d(x, kernel, stride=factor, padding=(taps - 1) // 2)`` for ``(rows, time)`` ``x``,
    computed as a correlation by FFT: a single-channel 256-tap conv1d is slow on the CPU (4x the
    FFT's time).

    Shape:
        - Input: ``x`` ``(rows, time)``, ``kernel`` ``(taps,)`` or ``(1, 1, taps)``
        - Output: ``(rows, (time + 2 * ((taps - 1) // 2) - taps) // factor + 1)``
    """
    taps = kernel.shape[-1]
    pad = (taps - 1) // 2
    n = max(x.shape[-1], taps - 2 * pad)
    out_len = (n + 2 * pad - taps) // factor + 1
    size = smooth_size(n + pad + taps)
    spec = torch.fft.rfft(x, n=size) * torch.fft.rfft(kernel.view(-1).to(x.dtype), n=size).conj()
    corr = torch.fft.irfft(spec, n=size)  # corr[k] = sum_j h[j] x[k + j] (circular)
    corr = torch.cat((corr[:, size - pad :], corr[:, : size - pad]), 1)  # index k - pad
    return corr[:, : factor * (out_len - 1) + 1 : factor]
