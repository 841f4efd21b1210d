"""Signal conditioning before the transform: per-frame DC removal, pre-emphasis (per frame as
Kaldi does, or over the whole signal) and seeded dither."""

from __future__ import annotations

import torch

__all__ = ["condition_frames", "dither", "preemphasis", "remove_dc"]


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


def condition_frames(
    frames: torch.Tensor,
    *,
    window: torch.Tensor,
    n_fft: int,
    remove_dc_offset: bool = True,
    preemphasis_coefficient: float = 0.0,
    out: torch.Tensor | None = None,
    padding_zeroed: bool = False,
) -> torch.Tensor:
    """Kaldi's frame conditioning in one pass into a zero-padded FFT buffer:
    ``window * preemphasis(remove_dc(frames))`` (per frame), left-aligned in ``n_fft`` samples,
    written into ``out`` when given (without gradient; e.g. a reused workspace).
    ``padding_zeroed``: ``out[..., frame_length:]`` is zero already (a workspace whose padding
    was zeroed once), so it is not written again.

    The same numbers as :func:`remove_dc`, :func:`preemphasis` and the window applied in turn
    (the DC term folds into the pre-emphasis: ``(x_i - m) - c (x_{i-1} - m) = x_i - c x_{i-1} -
    (1 - c) m``), without their three temporaries.

    Shape:
        - Input: ``frames`` ``(..., frame_length)``, ``window`` ``(frame_length,)``
        - Output: ``(..., n_fft)``, a new contiguous tensor (or ``out``)
    """
    length = frames.shape[-1]
    if out is None and torch.is_grad_enabled() and (frames.requires_grad or window.requires_grad):
        steps = remove_dc(frames) if remove_dc_offset else frames
        if preemphasis_coefficient:
            steps = preemphasis(steps, preemphasis_coefficient)
        return torch.nn.functional.pad(steps * window, (0, n_fft - length))
    if out is None:
        out = frames.new_empty((*frames.shape[:-1], n_fft))
    if not padding_zeroed:  # (a fill: assigning 0 copies from a broadcast scalar, 3x slower)
        out[..., length:].zero_()
    body = out[..., :length]
    c = preemphasis_coefficient
    if c:
        torch.sub(frames[..., 1:], frames[..., :-1], alpha=c, out=body[..., 1:])
        torch.mul(frames[..., 0], 1.0 - c, out=body[..., 0])
        body.mul_(window)
    else:
        torch.mul(frames, window, out=body)
    if remove_dc_offset:  # - (1 - c) m w, fused (a broadcast subtraction took twice as long)
        body.addcmul_(frames.mean(dim=-1, keepdim=True), window, value=-(1.0 - c))
    return out
