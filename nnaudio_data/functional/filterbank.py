"""Applying a filterbank (mel, gammatone, ...) to a spectrogram.

Mel-like filterbanks are banded: each filter is non-zero over a few neighbouring bins. On the
CPU the product then runs per group of neighbouring filters over only the bins they touch (the
support is read from the filterbank's values on each call). The numbers are the dense
product's: only exact zeros are skipped. A filterbank that is being trained (``requires_grad``
with autograd on) takes the dense product, so that its zeros get their gradient too.
"""

from __future__ import annotations

import torch

from nnaudio_data.functional._memory import empty

__all__ = ["apply_filterbank"]

#: filters per group of the banded product
_GROUP = 8
#: the banded product is used when the groups touch at most this fraction of the dense work
_BANDED_MAX_FRACTION = 0.6


def band_groups(filterbank: torch.Tensor) -> list[tuple[int, int, int, int]] | None:
    """``[(first filter, end filter, first bin, end bin), ...]`` covering every non-zero, or
    ``None`` when the dense product is as cheap (or the filterbank is not banded). (Also used by
    the blocked FFT path, which applies the filterbank block by block.)"""
    bands, bins = filterbank.shape
    if bands < 2 * _GROUP:
        return None
    nonzero = (filterbank != 0).detach()
    any_bin = nonzero.any(dim=1)
    first = torch.where(any_bin, nonzero.to(torch.int8).argmax(dim=1), bins)
    last = torch.where(any_bin, bins - nonzero.flip(1).to(torch.int8).argmax(dim=1), 0)
    groups, work = [], 0
    for g in range(0, bands, _GROUP):
        lo, hi = int(first[g : g + _GROUP].min()), int(last[g : g + _GROUP].max())
        lo, hi = (0, 0) if hi <= lo else (lo, hi)
        groups.append((g, min(g + _GROUP, bands), lo, hi))
        work += (min(g + _GROUP, bands) - g) * (hi - lo)
    return groups if work <= _BANDED_MAX_FRACTION * bands * bins else None


def apply_filterbank(spec: torch.Tensor, filterbank: torch.Tensor) -> torch.Tensor:
    """``filterbank @ spec`` over the frequency axis, in the promotion of both dtypes.

    ``spec`` may be a transposed view of ``(..., frames, bins)`` storage: the banded product
    reads its slices in place.

    Raises:
        ValueError: the filterbank's bins and the spectrogram's do not match.

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
    fb, spec = filterbank.to(dtype), spec.to(dtype)
    # a trainable filterbank takes the dense product: its zeros must get their gradient too
    learns = torch.is_grad_enabled() and fb.requires_grad
    banded = spec.device.type == "cpu" and not learns and not torch.compiler.is_compiling()
    groups = band_groups(fb) if banded else None
    if groups is None:
        return torch.matmul(fb, spec)
    parts = [torch.matmul(fb[a:b, lo:hi], spec[..., lo:hi, :]) for a, b, lo, hi in groups]
    shape = (*spec.shape[:-2], fb.shape[0], spec.shape[-1])
    if spec.requires_grad and torch.is_grad_enabled():
        return torch.cat(parts, dim=-2)
    return torch.cat(parts, dim=-2, out=empty(shape, dtype=dtype, device=spec.device))
