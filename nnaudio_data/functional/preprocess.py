"""Signal conditioning before the transform: per-frame DC removal, pre-emphasis (per frame as
Kaldi does, or over the whole signal) and seeded dither."""

from __future__ import annotations

import torch

__all__ = ["dither", "preemphasis", "remove_dc"]


def remove_dc(frames: torch.Tensor) -> torch.Tensor:
    """Subtract each frame's mean (Kaldi's ``remove_dc_offset``).

    Shape:
        - Input: ``(..., frame_length)``
        - Output: the same shape.
    """
    return frames - frames.mean(dim=-1, keepdim=True)


def preemphasis(x: torch.Tensor, coefficient: float, *, per_frame: bool = True) -> torch.Tensor:
    """``y[i] = x[i] - coefficient * x[i - 1]`` along the last axis.

    ``per_frame=True`` is Kaldi's rule for frames: the first sample becomes
    ``x[0] * (1 - coefficient)``. ``per_frame=False`` is the rule over a whole signal (NeMo,
    SpeechBrain): the first sample is kept.

    Shape:
        - Input: ``(..., time)``
        - Output: the same shape (a new tensor).
    """
    first = x[..., :1] * (1.0 - coefficient) if per_frame else x[..., :1]
    return torch.cat([first, x[..., 1:] - coefficient * x[..., :-1]], dim=-1)


def dither(x: torch.Tensor, scale: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x + scale * N(0, 1)`` (Kaldi's dither), drawn from ``generator`` (``None``: torch's
    global one). ``scale == 0`` returns ``x`` itself.

    Shape:
        - Input: any tensor.
        - Output: the same shape.
    """
    if scale == 0:
        return x
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu")
    return x + scale * noise.to(x.device)
