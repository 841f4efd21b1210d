"""Per-item normalisation with statistics over the valid frames only."""

from __future__ import annotations

import torch

from nnaudio_data._checks import check_choice, check_positive_float
from nnaudio_data._transform import Transform
from nnaudio_data.functional.normalization import normalize_per_item
from nnaudio_data.ops._common import check_batched, valid_lengths

__all__ = ["Normalize"]


class Normalize(Transform):
    """Subtract the mean and divide by the standard deviation of each item, over its valid frames.

    ``mode="per_feature"`` takes one mean and one standard deviation per frequency row (and
    channel) of each item; ``mode="global"`` one pair per item over all its rows. Only the first
    ``lengths[i]`` frames enter item ``i``'s statistics; its padded frames come out as 0. The
    standard deviation is the population one (``ddof=0``) and the output is
    ``(x - mean) / (std + eps)``.

    Args:
        mode: ``"per_feature"`` or ``"global"``.
        eps: added to the standard deviation (a constant row becomes 0, not NaN).

    Shape:
        - Input: ``(batch, freq, frames)`` or ``(batch, channels, freq, frames)``;
          ``forward(x, lengths)`` takes the valid frames per item ``(batch,)``.
        - Output: the same shape. Valid lengths are unchanged.
    """

    def __init__(self, mode: str = "per_feature", eps: float = 1e-5) -> None:
        super().__init__()
        self.mode = check_choice("mode", mode, ["per_feature", "global"])
        self.eps = check_positive_float("eps", eps)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        check_batched(x, "x", 2, "(batch, freq, frames) or (batch, channels, freq, frames)")
        return normalize_per_item(
            x,
            valid_lengths(lengths, x),
            per_feature=self.mode == "per_feature",
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, eps={self.eps}"
