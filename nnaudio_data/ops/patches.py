"""Cutting a spectrogram into non-overlapping patches of frames (VGGish's 96-frame examples)."""

from __future__ import annotations

import torch

from nnaudio_data._checks import check_positive_int
from nnaudio_data._transform import Transform
from nnaudio_data.ops._common import check_batched, valid_lengths

__all__ = ["Patches"]


class Patches(Transform):
    """Non-overlapping patches of ``size`` frames, features last: VGGish's model input
    (``(n, 96, 64)`` per clip, the remainder of a clip's frames dropped).

    Args:
        size: frames per patch (96 for VGGish).

    Shape:
        - Input: ``(batch, features, frames)``; ``forward(x, lengths)`` takes valid frames.
        - Output: ``(batch, patches, size, features)``, ``patches = max(lengths) // size``;
          :meth:`output_lengths` gives each item's whole patches, ``lengths // size``. Patches
          past an item's own are zero.
    """

    output_kind = "spectrogram"
    #: the patch axis is the one that lengths count
    time_dim = 1

    def __init__(self, size: int = 96) -> None:
        super().__init__()
        self.size = check_positive_int("size", size)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Whole patches in ``lengths`` frames."""
        return torch.div(torch.as_tensor(lengths), self.size, rounding_mode="floor").long()

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        check_batched(x, "x", 3, "(batch, features, frames)")
        if x.ndim != 3:
            raise ValueError(f"x has shape {tuple(x.shape)}; expected (batch, features, frames)")
        lengths = valid_lengths(lengths, x)
        counts = self.output_lengths(lengths)
        n = int(counts.max()) if len(counts) else 0
        patches = x[..., : n * self.size].reshape(x.shape[0], x.shape[1], n, self.size)
        patches = patches.permute(0, 2, 3, 1)  # (batch, patches, size, features)
        keep = torch.arange(n, device=x.device) < counts[:, None]
        return torch.where(keep[:, :, None, None], patches, torch.zeros((), dtype=x.dtype))

    def extra_repr(self) -> str:
        return f"size={self.size}"
