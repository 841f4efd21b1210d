"""Helpers shared by the ops: valid-length masks and seeded random draws."""

from __future__ import annotations

import contextlib
import contextvars
import operator
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from nnaudio_data._checks import check_non_negative_int
from nnaudio_data._transform import Transform
from nnaudio_data.batch import length_mask

__all__ = ["check_batched", "randint_upto", "random_context", "time_mask", "valid_lengths"]


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


class _Draws:
    """The state of one :func:`random_context`: its salt and how many draws it has given."""

    def __init__(self, salt: tuple[int, ...]) -> None:
        self.salt = salt
        self.count = 0


_CONTEXT: contextvars.ContextVar[_Draws | None] = contextvars.ContextVar(
    "nnaudio_data_random_context", default=None
)


@contextlib.contextmanager
def random_context(*salt: int) -> Iterator[None]:
    """Make the random ops' draws a function of ``salt`` (and their seeds) only, inside the block.

    Inside, the ``k``-th draw of the block (one per call of a random op: ``RandomCrop``,
    ``TimeMasking``, ``FrequencyMasking``, in call order) comes from a new generator seeded from
    ``(salt, k, op seed)`` - not from a process's generator - so the same salt gives the same
    crops and masks in any process or thread, and other salts give independent ones. An op with
    ``seed=None`` draws from the salt alone. Pipeline stages give each batch its own salt (e.g.
    ``(seed, rank, epoch, batch number)``, see :func:`nnaudio_data.pipeline.audio_nodes`).

    Args:
        *salt: non-negative integers naming the batch.
    """
    values = tuple(operator.index(v) for v in salt)
    if any(v < 0 for v in values):
        raise ValueError(f"random_context salt must be non-negative integers, got {salt}")
    token = _CONTEXT.set(_Draws(values))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def _seeded(*entropy: int) -> torch.Generator:
    """A CPU generator seeded from non-negative integers, mixed by numpy's ``SeedSequence``."""
    (state,) = np.random.SeedSequence(list(entropy)).generate_state(1, np.uint64)
    return torch.Generator().manual_seed(int(state))


class GeneratorMemo:
    """The per-process generator of a seeded random op, an explicit memo: created on first use
    in each process (seeded from ``seed`` in the process that built the op, from ``(seed, rank,
    worker id)`` in a ``DataLoader`` worker, re-created in every new worker), so the op's own
    attributes never change in ``forward``. Any other process (e.g. a ``torchdata.nodes``
    process worker) has no reproducible identity: it warns once and seeds from ``(seed, process
    id)``, so at least the processes do not repeat each other's draws."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.home_pid = os.getpid()
        self._generator: torch.Generator | None = None
        self._owner: tuple[int, int] | None = None

    def get(self, op_name: str) -> torch.Generator:
        """The generator for this process (and DataLoader worker)."""
        pid = os.getpid()
        info = torch.utils.data.get_worker_info()
        owner = (pid, -1 if info is None else info.id)
        if self._generator is None or owner != self._owner:
            if info is not None:
                rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
                self._generator = _seeded(self.seed, rank, info.id + 1)
            elif pid == self.home_pid:
                self._generator = torch.Generator().manual_seed(self.seed)
            else:
                warnings.warn(
                    f"{op_name}(seed={self.seed}) draws in process {pid}, which is neither the "
                    "one that built it nor a DataLoader worker, outside "
                    "nnaudio_data.ops.random_context: its draws are not reproducible (seeded by "
                    "the process id). Give each batch a salt with random_context, as "
                    "nnaudio_data.pipeline.audio_nodes does",
                    stacklevel=3,
                )
                self._generator = _seeded(self.seed, 0, 0, pid)
            self._owner = owner
        return self._generator


class _RandomOp(Transform):
    """Base of the random ops: where their draws come from (see the :mod:`nnaudio_data.ops`
    docstring).

    Inside :func:`random_context`: from the context's salt, the draw's position in it and
    ``seed``. Outside: with ``seed=None`` from torch's global generator; with a seed from the
    op's :class:`GeneratorMemo` (one generator per process and worker).
    """

    def __init__(self, seed: int | None = None) -> None:
        super().__init__()
        self.seed = None if seed is None else check_non_negative_int("seed", seed)
        self._memo = None if self.seed is None else GeneratorMemo(self.seed)

    def generator(self) -> torch.Generator | None:
        """The generator the next draw uses (``None``: torch's global one)."""
        draws = _CONTEXT.get()
        if draws is not None:
            draws.count += 1
            seed = () if self.seed is None else (self.seed,)
            return _seeded(len(draws.salt), *draws.salt, draws.count, *seed)
        return None if self._memo is None else self._memo.get(type(self).__name__)

    def uniform(self, *shape: int) -> torch.Tensor:
        """Float64 uniform draws in ``[0, 1)`` on the CPU, from :meth:`generator`."""
        return torch.rand(*shape, generator=self.generator(), dtype=torch.float64)


def randint_upto(u: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Integers uniform in ``[0, high]`` (inclusive) from uniform draws ``u`` in ``[0, 1)``."""
    return torch.minimum((u * (high + 1).to(u.dtype)).floor().long(), high)
