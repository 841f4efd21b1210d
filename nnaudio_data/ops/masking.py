"""SpecAugment-style time and frequency masking, drawn per item, on the tensor's device."""

from __future__ import annotations

import torch

from nnaudio_data._checks import check_non_negative_int, check_positive_int, check_range
from nnaudio_data.ops._common import (
    _RandomOp,
    check_batched,
    randint_upto,
    time_mask,
    valid_lengths,
)

__all__ = ["FrequencyMasking", "TimeMasking"]

_SHAPES = "(batch, freq, frames) or (batch, channels, freq, frames)"


class _Masking(_RandomOp):
    """Shared parameters: ``num_masks`` bands per item of width uniform in ``[0, max_width]``."""

    def __init__(self, max_width: int, num_masks: int, mask_value: float, seed: int | None) -> None:
        super().__init__(seed=seed)
        self.max_width = check_positive_int("max_width", max_width)
        self.num_masks = check_non_negative_int("num_masks", num_masks)
        self.mask_value = check_range("mask_value", mask_value)

    def _bands(self, extent: torch.Tensor, max_width: torch.Tensor) -> torch.Tensor:
        """``(batch, num_masks, 2)`` int64 ``[start, stop)`` inside ``[0, extent)`` per item."""
        draws = self.uniform(extent.shape[0], self.num_masks, 2)
        extent = extent.cpu().reshape(-1, 1)
        width = randint_upto(draws[..., 0], torch.minimum(max_width.cpu().reshape(-1, 1), extent))
        start = randint_upto(draws[..., 1], extent - width)
        return torch.stack([start, start + width], dim=-1)

    @staticmethod
    def _inside(bands: torch.Tensor, size: int, device: torch.device) -> torch.Tensor:
        """``(batch, size)`` boolean: positions inside any of the item's bands."""
        bands = bands.to(device)
        pos = torch.arange(size, device=device).reshape(1, 1, size)
        hit = (pos >= bands[..., :1]) & (pos < bands[..., 1:])
        return hit.any(dim=1)

    def extra_repr(self) -> str:
        return (
            f"max_width={self.max_width}, num_masks={self.num_masks}, "
            f"mask_value={self.mask_value}, seed={self.seed}"
        )


class TimeMasking(_Masking):
    """Set ``num_masks`` random spans of frames to ``mask_value``, inside each item's valid frames.

    Each span's width is uniform in ``[0, min(max_width, floor(max_proportion * n))]`` for an
    item of ``n`` valid frames and its start uniform over the places where it fits within those
    ``n`` frames: padded frames are never touched. The random numbers are drawn on the CPU
    (a few per item) and the mask is built and applied on ``x``'s device. The same spans apply to
    every channel of an item.

    Args:
        max_width: the widest span, in frames.
        num_masks: spans per item.
        mask_value: the value written into the spans.
        max_proportion: the widest span as a fraction of the item's valid length (``1.0``: no
            extra limit).
        seed: ``None`` draws from torch's global generator; an integer makes the masks
            reproducible (see :class:`RandomCrop`).

    Shape:
        - Input: ``(batch, freq, frames)`` or ``(batch, channels, freq, frames)``;
          ``forward(x, lengths)`` takes the valid frames per item ``(batch,)``.
        - Output: the same shape. Valid lengths are unchanged.
    """

    def __init__(
        self,
        max_width: int,
        num_masks: int = 1,
        mask_value: float = 0.0,
        max_proportion: float = 1.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(max_width, num_masks, mask_value, seed)
        self.max_proportion = check_range("max_proportion", max_proportion, 0.0, 1.0)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        check_batched(x, "x", 2, _SHAPES)
        lengths = valid_lengths(lengths, x)
        limit = (lengths.double() * self.max_proportion).floor().long().clamp(max=self.max_width)
        inside = self._inside(self._bands(lengths, limit), x.shape[-1], x.device)
        inside = inside.reshape(inside.shape[0], *([1] * (x.ndim - 2)), inside.shape[1])
        return x.masked_fill(inside, self.mask_value)


class FrequencyMasking(_Masking):
    """Set ``num_masks`` random bands of frequency rows to ``mask_value``, on valid frames only.

    Each band's width is uniform in ``[0, min(max_width, freq)]`` and its start uniform over the
    places where it fits; the band is applied to the item's valid frames only, so padded frames
    keep their values. Drawn per item (the same bands for every channel of an item).

    Args:
        max_width: the widest band, in frequency rows.
        num_masks: bands per item.
        mask_value: the value written into the bands.
        seed: as :class:`TimeMasking`.

    Shape:
        As :class:`TimeMasking` (``forward(x, lengths)``; the frequency axis is ``-2``).
    """

    def __init__(
        self,
        max_width: int,
        num_masks: int = 1,
        mask_value: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(max_width, num_masks, mask_value, seed)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        check_batched(x, "x", 3, _SHAPES)
        valid = time_mask(valid_lengths(lengths, x), x)
        n_freq = x.shape[-2]
        extent = torch.full((x.shape[0],), n_freq, dtype=torch.long)
        limit = torch.full_like(extent, self.max_width)
        inside = self._inside(self._bands(extent, limit), n_freq, x.device)
        inside = inside.reshape(inside.shape[0], *([1] * (x.ndim - 3)), n_freq, 1)
        return x.masked_fill(inside & valid, self.mask_value)
