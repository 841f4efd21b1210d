"""Down-mixing to one channel."""

from __future__ import annotations

import torch

from nnaudio_data._checks import check_non_negative_int
from nnaudio_data._transform import Transform
from nnaudio_data.ops._common import check_batched

__all__ = ["ToMono"]


class ToMono(Transform):
    """Average the channels, or pick one.

    Args:
        channel: ``None`` (default) averages the channels; an index picks that channel.

    Shape:
        - Input: ``(batch, channels, time)`` (or ``(batch, channels, freq, frames)``); the channel
          axis is axis 1. ``(time,)`` and ``(batch, time)`` are mono already and pass through.
        - Output: ``(batch, time)`` (or ``(batch, freq, frames)``). Valid lengths are unchanged.
    """

    def __init__(self, channel: int | None = None) -> None:
        super().__init__()
        self.channel = None if channel is None else check_non_negative_int("channel", channel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_batched(x, "x", 1, "(batch, channels, time)")
        if x.ndim <= 2:
            return x
        if self.channel is None:
            return x.mean(dim=1)
        if self.channel >= x.shape[1]:
            raise ValueError(f"channel={self.channel} but x has {x.shape[1]} channels")
        return x[:, self.channel]

    def extra_repr(self) -> str:
        return "mean" if self.channel is None else f"channel={self.channel}"
