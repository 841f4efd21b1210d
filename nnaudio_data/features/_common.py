"""What the spectrogram modules share beyond :mod:`nnaudio_data.functional`: kernels held as
trainable parameters or as non-persistent buffers, the compute dtype, and a bool check."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from nnaudio_data._checks import check_bool, check_positive_int

__all__ = [
    "check_bool",
    "check_not_transposed",
    "compute_dtype",
    "frame_params",
    "full_precision",
    "register_kernel",
]


def register_kernel(module: nn.Module, name: str, kernel: torch.Tensor, trainable: bool) -> None:
    """Hold ``kernel`` on ``module`` as an ``nn.Parameter`` (trainable) or as a non-persistent
    buffer (frozen: moves with ``.to()`` but stays out of ``state_dict``)."""
    if trainable:
        module.register_parameter(name, nn.Parameter(kernel))
    else:
        module.register_buffer(name, kernel, persistent=False)


def compute_dtype(x: torch.Tensor, kernel: torch.Tensor) -> torch.dtype:
    """The dtype a transform computes in: the promotion of the input's and the kernel's (float64
    input through a float32 transform gives float64, float16 input gives float32)."""
    return torch.promote_types(x.dtype, kernel.dtype)


def frame_params(
    n_fft: Any, win_length: Any, hop_length: Any, hop_default: str = "win_length"
) -> tuple[int, int, int]:
    """Validated ``(n_fft, win_length, hop_length)`` with nnAudio's defaults (``win_length =
    n_fft``; ``hop_length = win_length // 4``, or ``n_fft // 4`` for ``hop_default='n_fft'``)."""
    n_fft = check_positive_int("n_fft", n_fft)
    win_length = n_fft if win_length is None else check_positive_int("win_length", win_length)
    if win_length > n_fft:
        raise ValueError(f"win_length must be <= n_fft={n_fft}, got {win_length!r}")
    if hop_length is None:
        base = win_length if hop_default == "win_length" else n_fft
        if base // 4 < 1:
            raise ValueError(
                f"hop_length defaults to {hop_default} // 4 = 0 for {hop_default}={base}; "
                "give hop_length"
            )
        return n_fft, win_length, base // 4
    return n_fft, win_length, check_positive_int("hop_length", hop_length)


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """On CUDA, run the block with TF32 off for matmuls and cuDNN convolutions (restored after):
    the exact front ends must not depend on the user's TF32 setting (a TF32 conv DFT misses
    Whisper's tolerance 20-270x). Elsewhere a no-op."""
    if device.type != "cuda":
        yield
        return
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def check_not_transposed(x: torch.Tensor, n_fft: int) -> None:
    """Refuse a ``(time, channels)`` array passed as ``(batch, time)``: ``(8000, 2)`` would be 8000
    spectrograms of 2 samples each (nnAudio raises there too)."""
    if (
        isinstance(x, torch.Tensor)
        and x.ndim == 2
        and x.shape[-1] <= 8
        and x.shape[-1] < n_fft <= x.shape[0]
    ):
        raise ValueError(
            f"x has shape {tuple(x.shape)}: {x.shape[0]} clips of {x.shape[-1]} samples each, "
            f"shorter than n_fft={n_fft}. Is it a (time, channels) array? Pass x.T, "
            "(channels, time), or (batch, channels, time)"
        )
