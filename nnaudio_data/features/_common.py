"""Parts every spectrogram transform shares: padding (numpy's rules, for any input length),
kernels held as trainable parameters or as non-persistent buffers, a magnitude whose gradient is
finite at zero, and small parameter checks."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nnaudio_data._checks import check_choice

__all__ = [
    "PAD_MODES",
    "center_pad",
    "check_bool",
    "compute_dtype",
    "magnitude_power",
    "pad_signal",
    "register_kernel",
    "safe_magnitude",
]

PAD_MODES = ("reflect", "constant", "replicate", "circular")


def pad_signal(x: torch.Tensor, left: int, right: int, pad_mode: str) -> torch.Tensor:
    """Pad the last axis of ``(rows, time)`` by ``left`` and ``right`` samples.

    ``'reflect'``, ``'replicate'`` and ``'circular'`` work for any input length: when the input is
    shorter than the padding, the reflection repeats, exactly as ``numpy.pad`` (which librosa uses)
    does, so a clip shorter than ``n_fft // 2`` gives librosa's numbers instead of an error. A
    0-sample input is a ``ValueError``.
    """
    check_choice("pad_mode", pad_mode, PAD_MODES)
    n = x.shape[-1]
    if n == 0:
        raise ValueError("input has 0 samples; a spectrogram needs at least one")
    if left == 0 and right == 0:
        return x
    if pad_mode == "constant":
        return F.pad(x, (left, right))
    if n > max(left, right):  # the common case: one reflection is enough
        return F.pad(x.unsqueeze(1), (left, right), mode=pad_mode).squeeze(1)
    idx = torch.arange(-left, n + right, device=x.device)
    if pad_mode == "reflect":
        period = max(2 * (n - 1), 1)
        idx = idx.remainder(period)
        idx = torch.where(idx >= n, period - idx, idx)
    elif pad_mode == "replicate":
        idx = idx.clamp(0, n - 1)
    else:  # circular
        idx = idx.remainder(n)
    return x[..., idx]


def center_pad(x: torch.Tensor, pad: int, pad_mode: str) -> torch.Tensor:
    """:func:`pad_signal` with ``pad`` samples on both sides (``center=True`` framing)."""
    return pad_signal(x, pad, pad, pad_mode)


def register_kernel(module: nn.Module, name: str, kernel: torch.Tensor, trainable: bool) -> None:
    """Hold ``kernel`` on ``module`` as an ``nn.Parameter`` (trainable) or as a non-persistent
    buffer (frozen: moves with ``.to()`` but stays out of ``state_dict``)."""
    if trainable:
        module.register_parameter(name, nn.Parameter(kernel))
    else:
        module.register_buffer(name, kernel, persistent=False)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool (numpy bools too), else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {value!r}")


def compute_dtype(x: torch.Tensor, kernel: torch.Tensor) -> torch.dtype:
    """The dtype a transform computes in: the promotion of the input's and the kernel's (float64
    input through a float32 transform gives float64, float16 input gives float32)."""
    return torch.promote_types(x.dtype, kernel.dtype)


class _SafeMagnitude(torch.autograd.Function):
    """``hypot(re, im)`` whose gradient at ``re = im = 0`` is 0 instead of NaN (nnAudio #138)."""

    @staticmethod
    def forward(ctx: Any, re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
        mag = torch.hypot(re, im)
        ctx.save_for_backward(re, im, mag)
        return mag

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        re, im, mag = ctx.saved_tensors
        scale = torch.where(mag > 0, grad / mag, torch.zeros_like(mag))
        return scale * re, scale * im


def safe_magnitude(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    """``sqrt(re**2 + im**2)`` with a zero (not NaN) gradient where both are zero; the exact
    value everywhere (no epsilon is added)."""
    if torch.is_grad_enabled() and (re.requires_grad or im.requires_grad):
        out: torch.Tensor = _SafeMagnitude.apply(re, im)
        return out
    return torch.hypot(re, im)


def magnitude_power(re: torch.Tensor, im: torch.Tensor, power: float) -> torch.Tensor:
    """``|re + i im| ** power``: ``re**2 + im**2`` for 2, :func:`safe_magnitude` for 1, else
    the safe magnitude raised to ``power`` (gradients finite at zero for every ``power > 0``)."""
    if power == 2.0:
        return re * re + im * im
    mag = safe_magnitude(re, im)
    return mag if power == 1.0 else mag.pow(power)
