"""Helpers shared by the ops: valid-length masks and seeded random draws."""

from __future__ import annotations

import os
from typing import Any

import torch

from nnaudio_data._checks import check_non_negative_int
from nnaudio_data._transform import Transform
from nnaudio_data.batch import length_mask

__all__ = ["check_batched", "randint_upto", "time_mask", "valid_lengths"]


def check_batched(x: Any, name: str, min_ndim: int, what: str) -> None:
    """Raise ``ValueError`` unless ``x`` is a floating tensor with at least ``min_ndim`` dims."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape {what}, got {type(x).__name__}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected {what}")
    if not x.is_floating_point():
        raise ValueError(f"{name} has dtype {x.dtype}; expected a floating dtype")


def valid_lengths(lengths: Any, x: torch.Tensor) -> torch.Tensor:
    """``lengths`` as an int64 ``(batch,)`` tensor on ``x``'s device, checked against ``x``.

    ``None`` means every item is valid over the whole last (time) axis of ``x``. A length larger
    than the time axis is a ``ValueError`` (it usually means sample lengths were given where frame
    lengths were expected).
    """
    batch, size = x.shape[0], x.shape[-1]
    if lengths is None:
        return torch.full((batch,), size, dtype=torch.long, device=x.device)
    lengths = torch.as_tensor(lengths, device=x.device)
    if lengths.ndim != 1 or lengths.shape[0] != batch or lengths.is_floating_point():
        raise ValueError(
            f"lengths must be a 1-D integer tensor with one entry per item ({batch}), "
            f"got {tuple(lengths.shape)} {lengths.dtype}"
        )
    if batch and (int(lengths.min()) < 0 or int(lengths.max()) > size):
        raise ValueError(
            f"lengths must lie in [0, {size}] (the last axis of x), got values "
            f"{int(lengths.min())}..{int(lengths.max())}"
        )
    return lengths.long()


def time_mask(lengths: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Boolean mask broadcastable to ``x`` (``(batch, 1, ..., 1, time)``), true on valid steps."""
    mask = length_mask(lengths, x.shape[-1])
    return mask.reshape(mask.shape[0], *([1] * (x.ndim - 2)), mask.shape[1])


class _RandomOp(Transform):
    """Base of the random ops: a ``torch.Generator`` seeded from ``seed``.

    With ``seed=None`` draws come from torch's global generator (which ``DataLoader`` seeds
    differently in every worker). With a seed, the op owns a CPU generator created on first use;
    in a process other than the one that created it (a forked ``DataLoader`` worker) it is
    re-created from ``seed + worker id``, so workers do not repeat each other's draws while runs
    stay reproducible.
    """

    def __init__(self, seed: int | None = None) -> None:
        super().__init__()
        self.seed = None if seed is None else check_non_negative_int("seed", seed)
        self._generator: torch.Generator | None = None
        self._generator_pid = -1

    def generator(self) -> torch.Generator | None:
        """The generator the next draw uses (``None``: torch's global one)."""
        if self.seed is None:
            return None
        pid = os.getpid()
        if self._generator is None or pid != self._generator_pid:
            info = torch.utils.data.get_worker_info()
            offset = 0 if info is None else 1_000_003 * (info.id + 1)
            self._generator = torch.Generator().manual_seed(self.seed + offset)
            self._generator_pid = pid
        return self._generator

    def uniform(self, *shape: int) -> torch.Tensor:
        """Float64 uniform draws in ``[0, 1)`` on the CPU, from :meth:`generator`."""
        return torch.rand(*shape, generator=self.generator(), dtype=torch.float64)


def randint_upto(u: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Integers uniform in ``[0, high]`` (inclusive) from uniform draws ``u`` in ``[0, 1)``."""
    return torch.minimum((u * (high + 1).to(u.dtype)).floor().long(), high)
