"""Magnitude and power of a complex spectrum given as real and imaginary parts: one
implementation, exact values, and a gradient that is finite (zero) where the spectrum is zero."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["magnitude", "power_spectrum"]


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


def magnitude(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    """``sqrt(re**2 + im**2)``, exact (no epsilon added), with a zero gradient where both are 0.

    Shape:
        - Input: ``re`` and ``im`` of one (broadcastable) shape.
        - Output: that shape.
    """
    if torch.is_grad_enabled() and (re.requires_grad or im.requires_grad):
        out: torch.Tensor = _SafeMagnitude.apply(re, im)
        return out
    return torch.hypot(re, im)


def power_spectrum(re: torch.Tensor, im: torch.Tensor, power: float = 2.0) -> torch.Tensor:
    """``|re + i im| ** power``: ``re**2 + im**2`` for 2, :func:`magnitude` for 1, else the
    magnitude raised to ``power`` (gradients finite at zero for every ``power > 0``).

    Shape:
        - Input: ``re`` and ``im`` of one (broadcastable) shape.
        - Output: that shape.
    """
    if power == 2.0:
        return re * re + im * im
    mag = magnitude(re, im)
    return mag if power == 1.0 else mag.pow(power)
