"""Input shapes accepted by every transform, and the frame rule.

A waveform may be ``(time,)``, ``(batch, time)``, ``(batch, 1, time)`` (as nnAudio accepts) or
``(batch, channels, time)``. Transforms work on a flat ``(rows, time)`` view and put the leading
dimensions back on the output: ``(time,)`` -> ``(1, ...)`` (as nnAudio), ``(batch, time)`` and
``(batch, 1, time)`` -> ``(batch, ...)``, ``(batch, channels, time)`` with channels > 1 ->
``(batch, channels, ...)``. float16 and bfloat16 input is computed (and returned) in float32 by
every transform, float64 input in float64.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = [
    "check_lengths",
    "check_waveform",
    "flatten_waveform",
    "frame_count",
    "frame_lengths",
    "row_lengths_of",
    "unflatten",
]

ACCEPTED = "(time,), (batch, time), (batch, 1, time) or (batch, channels, time)"


def check_waveform(x: torch.Tensor, name: str = "x") -> None:
    """Raise ``ValueError`` unless ``x`` is a floating tensor of 1 to 3 dimensions."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor of shape {ACCEPTED}, got {type(x).__name__}"
        )
    if x.ndim not in (1, 2, 3):
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected {ACCEPTED}")
    if not x.is_floating_point():
        raise ValueError(
            f"{name} has dtype {x.dtype}; expected a floating dtype (convert integer PCM first, "
            "e.g. with nnaudio_data.io which scales it to [-1, 1])"
        )


def flatten_waveform(x: torch.Tensor, name: str = "x") -> tuple[torch.Tensor, tuple[int, ...]]:
    """Return ``(rows, time)`` and the leading shape that :func:`unflatten` puts back."""
    check_waveform(x, name)
    if x.dtype in (torch.float16, torch.bfloat16):  # every transform computes those in float32
        x = x.float()
    if x.ndim == 1:
        return x.unsqueeze(0), (1,)
    if x.ndim == 2:
        return x, (x.shape[0],)
    if x.shape[1] == 1:
        return x[:, 0], (x.shape[0],)
    return x.reshape(-1, x.shape[-1]), (x.shape[0], x.shape[1])


def unflatten(y: torch.Tensor, lead: tuple[int, ...]) -> torch.Tensor:
    """Put back the leading shape taken off by :func:`flatten_waveform` (``y`` is ``(rows, ...)``)."""
    return y.reshape(*lead, *y.shape[1:])


def frame_count(n_samples: int, n_fft: int, hop_length: int, center: bool) -> int:
    """Frames a ``(time,)`` signal of ``n_samples`` gives: ``1 + (n + 2 * (n_fft // 2) - n_fft) // hop``
    with ``center`` (librosa's and torch.stft's rule), ``1 + (n - n_fft) // hop`` without
    (0 when the signal is shorter than ``n_fft``)."""
    padded = n_samples + 2 * (n_fft // 2) if center else n_samples
    if padded < n_fft:
        return 0
    return 1 + (padded - n_fft) // hop_length


def frame_lengths(lengths: torch.Tensor, n_fft: int, hop_length: int, center: bool) -> torch.Tensor:
    """:func:`frame_count` for a tensor of sample lengths (any shape, integer)."""
    lengths = check_lengths(lengths)
    padded = lengths + 2 * (n_fft // 2) if center else lengths
    frames = torch.div(padded - n_fft, hop_length, rounding_mode="floor") + 1
    # a clip of 0 samples has no frame (its forward raises), whatever the padding
    return torch.where(lengths > 0, frames.clamp_min(0), 0).to(torch.long)


def check_lengths(lengths: Any) -> torch.Tensor:
    """``lengths`` as an integer tensor, or ``ValueError`` for fractional or negative values."""
    lengths = torch.as_tensor(lengths)
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        if not lengths.is_floating_point() or not bool((lengths == lengths.round()).all()):
            raise ValueError(f"lengths must be whole numbers of samples, got {lengths.tolist()}")
        lengths = lengths.long()
    if lengths.numel() and int(lengths.min()) < 0:
        raise ValueError(f"lengths must be >= 0, got {lengths.tolist()}")
    return lengths


def row_lengths_of(
    lengths: torch.Tensor | None, lead: tuple[int, ...], rows: torch.Tensor
) -> torch.Tensor | None:
    """The valid lengths of each flat row of :func:`flatten_waveform`, from one per item.

    Raises:
        ValueError: ``lengths`` is not a 1-D integer tensor with one entry per item in
            ``[0, time]``.
    """
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths, device=rows.device)
    batch, time = lead[0], rows.shape[-1]
    if lengths.ndim != 1 or lengths.shape[0] != batch or lengths.is_floating_point():
        raise ValueError(
            f"lengths must be a 1-D integer tensor with one entry per item ({batch}), got "
            f"shape {tuple(lengths.shape)} dtype {lengths.dtype}"
        )
    if batch and (int(lengths.min()) < 0 or int(lengths.max()) > time):
        raise ValueError(
            f"lengths must lie in [0, {time}] (the samples of the input), got "
            f"{int(lengths.min())}..{int(lengths.max())}"
        )
    lengths = lengths.long()
    return lengths.repeat_interleave(lead[1]) if len(lead) == 2 else lengths
