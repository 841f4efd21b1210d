"""Cropping or padding the time axis to a fixed length, at a fixed place or at random."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nnaudio_data._checks import check_choice, check_positive_int
from nnaudio_data._transform import Transform
from nnaudio_data.ops._common import (
    _RandomOp,
    check_batched,
    randint_upto,
    time_mask,
    valid_lengths,
)

__all__ = ["CropOrPad", "RandomCrop"]

_SHAPES = "(time,), (batch, time), (batch, channels, time) or (batch, freq, frames)"


def crop_at(
    x: torch.Tensor, lengths: torch.Tensor, starts: torch.Tensor, size: int
) -> torch.Tensor:
    """Each item's ``[start, start + size)`` of the last axis, zero past its new valid length.

    ``starts`` is ``(batch,)``; positions past ``lengths - starts`` become 0, so the output holds
    only each item's valid samples followed by zeros.
    """
    need = int((starts + size).max()) if x.shape[0] else 0
    if need > x.shape[-1]:
        x = F.pad(x, (0, need - x.shape[-1]))
    index = starts.to(x.device).reshape(-1, 1) + torch.arange(size, device=x.device)
    index = index.reshape(index.shape[0], *([1] * (x.ndim - 2)), size).expand(*x.shape[:-1], size)
    out = torch.gather(x, -1, index)
    new_lengths = (lengths - starts.to(lengths.device)).clamp(0, size)
    return out * time_mask(new_lengths, out).to(out.dtype)


class _FixedLength(Transform):
    """Shared checks and length rule of the two crops (``min(length, size)``)."""

    size: int

    def _prepare(
        self, x: torch.Tensor, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        check_batched(x, "x", 1, _SHAPES)
        single = x.ndim == 1
        if single:
            x = x.unsqueeze(0)
        return x, valid_lengths(lengths, x), single

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(lengths).clamp(max=self.size)


class CropOrPad(_FixedLength):
    """Crop or zero-pad every item's time axis to ``size``.

    An item longer than ``size`` is cropped within its own valid part: from its start
    (``position="start"``), around its centre (``"center"``) or to its last ``size`` samples
    (``"end"``). A shorter item keeps all its valid samples, followed by zeros.

    Args:
        size: the output length along the last axis (samples, or frames for a spectrogram).
        position: ``"start"``, ``"center"`` or ``"end"``.

    Shape:
        - Input: ``(time,)``, ``(batch, time)``, ``(batch, channels, time)`` or a spectrogram
          ``(batch, freq, frames)``; time is the last axis. ``forward(x, lengths)`` takes the valid
          lengths ``(batch,)``.
        - Output: the same with the last axis ``size``; valid lengths ``min(lengths, size)``.
    """

    def __init__(self, size: int, position: str = "start") -> None:
        super().__init__()
        self.size = check_positive_int("size", size)
        self.position = check_choice("position", position, ["start", "center", "end"])

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x, lengths, single = self._prepare(x, lengths)
        excess = (lengths - self.size).clamp_min(0)
        if self.position == "start":
            starts = torch.zeros_like(excess)
        elif self.position == "center":
            starts = excess // 2
        else:
            starts = excess
        out = crop_at(x, lengths, starts, self.size)
        return out[0] if single else out

    def extra_repr(self) -> str:
        return f"size={self.size}, position={self.position!r}"


class RandomCrop(_FixedLength, _RandomOp):
    """Crop every item to ``size`` at a random offset within its valid part (pad if shorter).

    The offset of an item of valid length ``n`` is uniform in ``[0, max(0, n - size)]``, drawn
    from the op's generator (see ``seed``), so the crop never includes padding that a longer crop
    could have avoided. A shorter item keeps all its samples, followed by zeros.

    Args:
        size: the output length along the last axis.
        seed: ``None`` draws from torch's global generator, or from the salt inside
            :func:`~nnaudio_data.ops.random_context` (as in ``audio_nodes``); an integer makes the
            crops reproducible (see the :mod:`nnaudio_data.ops` docstring: per batch inside a
            context, else one stream per process, each ``DataLoader`` worker its own).

    Shape:
        - Input: as :class:`CropOrPad`; ``forward(x, lengths)`` takes the valid lengths.
        - Output: the last axis ``size``; valid lengths ``min(lengths, size)``.
    """

    def __init__(self, size: int, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.size = check_positive_int("size", size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x, lengths, single = self._prepare(x, lengths)
        excess = (lengths - self.size).clamp_min(0).cpu()
        starts = randint_upto(self.uniform(x.shape[0]), excess).to(x.device)
        out = crop_at(x, lengths, starts, self.size)
        return out[0] if single else out

    def extra_repr(self) -> str:
        return f"size={self.size}, seed={self.seed}"
