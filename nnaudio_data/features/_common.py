"""Parts every spectrogram transform shares: centre padding with a clear error for short inputs,
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
    "register_kernel",
    "safe_magnitude",
]

PAD_MODES = ("reflect", "constant", "replicate", "circular")


def center_pad(x: torch.Tensor, pad: int, pad_mode: str) -> torch.Tensor:
    """Pad the last axis of ``(rows, time)`` by ``pad`` samples on both sides.

    ``'reflect'`` needs more than ``pad`` samples; a shorter input is a ``ValueError`` that says
    how long it must be (use ``pad_mode='constant'`` for very short clips).
    """
    check_choice("pad_mode", pad_mode, PAD_MODES)
    if pad == 0:
        return x
    n = x.shape[-1]
    if pad_mode in ("reflect", "circular") and n <= pad:
        raise ValueError(
            f"input has {n} samples but pad_mode={pad_mode!r} with center=True needs more than "
            f"{pad} (n_fft // 2); pad the input or use pad_mode='constant'"
        )
    if pad_mode == "constant":
        return F.pad(x, (pad, pad))
    return F.pad(x.unsqueeze(1), (pad, pad), mode=pad_mode).squeeze(1)


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
