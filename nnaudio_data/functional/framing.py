"""Padding and framing: centre padding with numpy's pad modes, each clip padded at its own end in
a batch, and Kaldi's framing (``snip_edges=True`` and ``False`` with mirrored edges).

Every function is pure and works on ``(rows, time)`` signals (the transforms flatten batches and
channels into rows first).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nnaudio_data._checks import check_choice
from nnaudio_data._shapes import check_lengths, frame_count, frame_lengths

__all__ = [
    "PAD_MODES",
    "center_pad",
    "fill_end_padding",
    "frame",
    "frame_count",
    "frame_lengths",
    "kaldi_frame_count",
    "kaldi_frame_lengths",
    "kaldi_frames",
    "pad_signal",
]

#: numpy.pad's names: ``'reflect'`` (``x[1], x[0] | x[0], x[1]``), ``'symmetric'`` (the edge
#: repeated, Kaldi's and lhotse's mirror: ``x[0] | x[0], x[1]``), ``'constant'`` (zeros),
#: ``'replicate'`` (numpy's ``'edge'``) and ``'circular'`` (numpy's ``'wrap'``).
PAD_MODES = ("reflect", "constant", "replicate", "circular", "symmetric")


def _pad_index(idx: torch.Tensor, n: int | torch.Tensor, pad_mode: str) -> torch.Tensor:
    """Map sample positions (any integers) onto ``[0, n)`` by ``pad_mode`` (not ``'constant'``);
    ``n`` may be a tensor broadcasting against ``idx`` (one length per row)."""
    if pad_mode == "reflect":
        period = torch.clamp(torch.as_tensor(2 * (n - 1), device=idx.device), min=1)
        idx = idx.remainder(period)
        return torch.where(idx >= n, period - idx, idx)
    if pad_mode == "symmetric":
        period = torch.as_tensor(2 * n, device=idx.device)
        idx = idx.remainder(period)
        return torch.where(idx >= n, period - 1 - idx, idx)
    if pad_mode == "replicate":
        return torch.minimum(idx.clamp_min(0), torch.as_tensor(n - 1, device=idx.device))
    return idx.remainder(torch.as_tensor(n, device=idx.device))  # circular


def pad_signal(x: torch.Tensor, left: int, right: int, pad_mode: str) -> torch.Tensor:
    """Pad the last axis of ``x`` by ``left`` and ``right`` samples, as ``numpy.pad`` does.

    Every mode works for any input length: when the input is shorter than the padding, the
    reflection repeats exactly as ``numpy.pad`` (which librosa uses) does.

    Args:
        x: ``(..., time)``, at least one sample.
        left, right: samples added before and after.
        pad_mode: one of :data:`PAD_MODES`.

    Raises:
        ValueError: ``x`` has no samples, or an unknown ``pad_mode``.

    Shape:
        - Input: ``(..., time)``
        - Output: ``(..., left + time + right)``
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
        if pad_mode == "symmetric":  # numpy's: the edge sample repeated
            parts = [x[..., :left].flip(-1), x, x[..., n - right :].flip(-1)]
            return torch.cat(parts, dim=-1)
        if x.ndim == 2:
            return F.pad(x.unsqueeze(1), (left, right), mode=pad_mode).squeeze(1)
    idx = _pad_index(torch.arange(-left, n + right, device=x.device), n, pad_mode)
    return x[..., idx]


def center_pad(x: torch.Tensor, pad: int, pad_mode: str) -> torch.Tensor:
    """:func:`pad_signal` with ``pad`` samples on both sides (``center=True`` framing)."""
    return pad_signal(x, pad, pad, pad_mode)


def fill_end_padding(
    x: torch.Tensor, lengths: torch.Tensor | None, width: int, pad_mode: str
) -> torch.Tensor:
    """A batch in which each row is padded at *its own* end, as the row alone would be.

    The ``width`` samples after each shorter row's valid length are replaced by the row's own
    padding (``pad_mode`` of :func:`pad_signal`, applied to its first ``lengths[r]`` samples); the
    time axis grows if a row's padding would run past it. Frames whose windows reach past a clip's
    end then read the clip's reflection, not its neighbours' zero padding. A row that fills the
    batch keeps relying on the padding added at the batch's end (filled here only if the axis
    grows); rows with a length of 0 are left as they are. When every row fills the batch, ``x``
    itself is returned (no copy).

    Args:
        x: ``(rows, time)`` batch, valid samples first in each row.
        lengths: ``(rows,)`` valid samples per row; ``None``: every row is full (``x`` returned).
        width: samples of padding each row needs after its end (``n_fft // 2`` for centred frames).
        pad_mode: one of :data:`PAD_MODES`.

    Shape:
        - Input: ``(rows, time)``
        - Output: ``(rows, time)``, longer when a shorter row's padding runs past ``time``; a new
          tensor unless every row fills the batch.
    """
    check_choice("pad_mode", pad_mode, PAD_MODES)
    if lengths is None or width <= 0 or x.shape[0] == 0:
        return x
    lengths = lengths.to(device=x.device, dtype=torch.long).reshape(-1, 1)
    time = x.shape[-1]
    short = (lengths > 0) & (lengths < time)
    if not bool(short.any()):  # every clip fills the batch: padding at its end is each clip's own
        return x
    out_len = max(time, int(lengths[short].max()) + width)
    # a clip that fills the batch relies on the padding at the batch's end, unless it moves
    fill = short | ((lengths == time) & (out_len > time))
    out_len = max(out_len, int(lengths[fill].max()) + width)  # those need their whole width
    out = F.pad(x, (0, out_len - time)) if out_len > time else x.clone()
    pos = lengths + torch.arange(width, device=x.device)  # (rows, width) positions to fill
    if pad_mode == "constant":
        values = torch.zeros(pos.shape, dtype=x.dtype, device=x.device)
    else:
        values = torch.gather(out, 1, _pad_index(pos, lengths.clamp_min(1), pad_mode))
    pos = pos.clamp_max(out_len - 1)
    values = torch.where(fill, values, torch.gather(out, 1, pos))  # the other rows stay
    return out.scatter_(1, pos, values)


def frame(
    x: torch.Tensor, frame_length: int, hop_length: int, center: bool, pad_mode: str
) -> torch.Tensor:
    """Frames of ``(rows, time)``, librosa's rule: with ``center`` the signal is padded by
    ``frame_length // 2`` on both sides so that frame ``t`` is centred on sample ``t * hop``.

    Raises:
        ValueError: without ``center``, a signal shorter than one frame.

    Shape:
        - Input: ``(rows, time)``
        - Output: ``(rows, frames, frame_length)``, a strided view (of the padded copy with
          ``center``), ``frames`` = :func:`frame_count`.
    """
    if center:
        x = center_pad(x, frame_length // 2, pad_mode)
    if x.shape[-1] < frame_length:
        raise ValueError(
            f"input has {x.shape[-1]} samples but center=False needs at least n_fft={frame_length}"
        )
    return x.unfold(-1, frame_length, hop_length)


def kaldi_frame_count(n_samples: int, frame_length: int, hop_length: int, snip_edges: bool) -> int:
    """Kaldi's number of frames: ``1 + (n - frame_length) // hop`` (0 if shorter) with
    ``snip_edges``, else ``(n + hop // 2) // hop``."""
    if snip_edges:
        return 0 if n_samples < frame_length else 1 + (n_samples - frame_length) // hop_length
    return (n_samples + hop_length // 2) // hop_length


def kaldi_frame_lengths(
    lengths: torch.Tensor, frame_length: int, hop_length: int, snip_edges: bool
) -> torch.Tensor:
    """:func:`kaldi_frame_count` for a tensor of sample lengths."""
    lengths = check_lengths(lengths)
    if snip_edges:
        return frame_lengths(lengths, frame_length, hop_length, center=False)
    return torch.div(lengths + hop_length // 2, hop_length, rounding_mode="floor").to(torch.long)


def kaldi_frames(
    x: torch.Tensor,
    frame_length: int,
    hop_length: int,
    snip_edges: bool,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Kaldi's frames (``feature-window.cc``): with ``snip_edges`` frame ``t`` is samples
    ``[t hop, t hop + frame_length)``; without, it starts at ``t hop + hop // 2 - frame_length //
    2`` and positions outside the signal are mirrored (``-1 -> 0``, ``n -> n - 1``), each row at
    its own end when ``lengths`` are given.

    Shape:
        - Input: ``(rows, time)``
        - Output: ``(rows, frames, frame_length)`` (a view without padding with ``snip_edges``),
          ``frames`` = :func:`kaldi_frame_count` of ``time``.
    """
    n = x.shape[-1]
    n_frames = kaldi_frame_count(n, frame_length, hop_length, snip_edges)
    if n_frames == 0:
        return x.new_zeros(x.shape[0], 0, frame_length)
    if snip_edges:
        return x.unfold(-1, frame_length, hop_length)
    left = frame_length // 2 - hop_length // 2
    if lengths is not None:
        x = fill_end_padding(x, lengths, frame_length, "symmetric")
    end = (n_frames - 1) * hop_length - left + frame_length  # last sample read, plus one
    x = pad_signal(x, max(left, 0), max(0, end - x.shape[-1]), "symmetric")
    if left < 0:
        x = x[:, -left:]
    return x.unfold(-1, frame_length, hop_length)[:, :n_frames]
