"""Applying a filterbank (mel, gammatone, ...) to a spectrogram."""

from __future__ import annotations

import torch

__all__ = ["apply_filterbank"]


def apply_filterbank(spec: torch.Tensor, filterbank: torch.Tensor) -> torch.Tensor:
    """``filterbank @ spec`` over the frequency axis, in the promotion of both dtypes.

    Shape:
        - Input: ``spec`` ``(..., bins, frames)``, ``filterbank`` ``(bands, bins)``
        - Output: ``(..., bands, frames)``
    """
    if filterbank.shape[-1] != spec.shape[-2]:
        raise ValueError(
            f"filterbank has shape {tuple(filterbank.shape)} but the spectrogram has "
            f"{spec.shape[-2]} frequency bins"
        )
    dtype = torch.promote_types(spec.dtype, filterbank.dtype)
    return torch.matmul(filterbank.to(dtype), spec.to(dtype))
