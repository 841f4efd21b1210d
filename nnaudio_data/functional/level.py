"""Logarithms and decibels with floors, and a per-item dynamic-range clamp over valid frames.

"Per item" statistics (a peak) are taken over the item's valid frames only: the first
``lengths[i]`` steps of the last axis of item ``i``; ``lengths=None`` means every frame.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch

from nnaudio_data.batch import length_mask

__all__ = ["dynamic_range_clamp", "fill_past_end", "log", "masked_amax", "power_to_db"]


def fill_past_end(
    x: torch.Tensor,
    lengths: torch.Tensor | None,
    value: float | torch.Tensor,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``x`` with the frames of item ``i`` from ``lengths[i]`` on set to ``value`` (a number, or
    a tensor that broadcasts against ``x``, e.g. a per-item floor). ``x`` itself (no copy) when
    ``lengths`` is ``None`` or, on the CPU, when every item fills the frames. ``out``: write the
    result there (``x`` itself: in place, only the frames past each end are written; not while a
    gradient is recorded).

    Shape:
        - Input: ``(batch, ..., frames)``, ``lengths`` ``(batch,)``
        - Output: the same shape.
    """
    frames = x.shape[-1]
    on_cpu = x.device.type == "cpu"
    if lengths is None or (on_cpu and bool((lengths >= frames).all())):
        return x if out is None or out is x else out.copy_(x)
    lengths = lengths.to(x.device)
    if not isinstance(value, torch.Tensor):
        value = torch.tensor(value, dtype=x.dtype, device=x.device)
    if on_cpu and out is x:  # only the tails: a whole-tensor select was a pass over all of x
        # a per-item value (batch, 1, ..., 1) gives item i its own; any other broadcasts as is
        items = value.ndim == x.ndim
        for i, n in enumerate(lengths.tolist()):
            if n < frames:
                x[i, ..., max(n, 0) :] = value[i if value.shape[0] > 1 else 0] if items else value
        return x
    mask = length_mask(lengths, frames)
    mask = mask.reshape(mask.shape[0], *([1] * (x.ndim - 2)), mask.shape[1])
    return torch.where(mask, x, value) if out is None else torch.where(mask, x, value, out=out)


def masked_amax(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Each item's maximum over its valid frames (``-inf`` for an item without one).

    Shape:
        - Input: ``(batch, ..., frames)``, ``lengths`` ``(batch,)``
        - Output: ``(batch, 1, ..., 1)`` (broadcasts against ``x``)
    """
    shape = (x.shape[0], *([1] * (x.ndim - 1)))
    if x.shape[0] == 0 or x[0].numel() == 0:
        return x.new_full(shape, float("-inf"))
    dims = tuple(range(1, x.ndim))
    if lengths is not None and x.device.type == "cpu":
        # each item over its own valid frames, read in place (no filled copy of x)
        lengths = lengths.clamp_max(x.shape[-1])
        if bool((lengths < x.shape[-1]).any()):
            peaks = [
                x[i, ..., :n].amax() if n > 0 else x.new_tensor(float("-inf"))
                for i, n in enumerate(lengths.tolist())
            ]
            return torch.stack(peaks).reshape(shape)
        lengths = None
    return fill_past_end(x, lengths, float("-inf")).amax(dim=dims, keepdim=True)


def log(
    x: torch.Tensor,
    *,
    offset: float = 0.0,
    floor: float | None = None,
    base: float | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``log_base(max(x + offset, floor))``: natural (``base=None``) or in any base.

    Kaldi's ``ln(max(x, FLT_EPSILON))`` is ``floor=1.1920929e-07``, Whisper's
    ``log10(max(x, 1e-10))`` is ``floor=1e-10, base=10``, VGGish's ``ln(x + 0.01)`` is
    ``offset=0.01``. ``out``: write the result there (``x`` itself: in place; not while a
    gradient is recorded). Without ``out`` the steps after the first run in place on the
    function's own temporary, so one new tensor is made, not three.

    Shape:
        - Input: any non-negative tensor.
        - Output: the same shape.
    """
    y = x
    if offset:
        y = y + offset if out is None else torch.add(y, offset, out=out)
    if floor is not None:
        if out is not None:
            y = torch.clamp_min(y, floor, out=out)
        elif y is not x and writable(y):
            y = y.clamp_min_(floor)
        else:
            y = y.clamp_min(floor)
    if out is None and y is not x and writable(y):
        out = y  # the function's own temporary
    y = _log(y, 10 if base == 10 else 2 if base == 2 else None, out)
    if base is None or base in (10, 2):
        return y
    scale = math.log(base)
    return y.div_(scale) if writable(y) else y / scale


#: ``base -> (torch's logarithm, numpy's)`` (``None``: natural)
_LOGS: dict[int | None, tuple[Callable[..., torch.Tensor], np.ufunc]] = {
    None: (torch.log, np.log),
    10: (torch.log10, np.log10),
    2: (torch.log2, np.log2),
}
#: tensors smaller than this take torch's logarithm (numpy's call costs about a microsecond)
_NUMPY_MIN = 1 << 14


def _log(y: torch.Tensor, base: int | None, out: torch.Tensor | None) -> torch.Tensor:
    """``log_base(y)`` (``base`` 10, 2 or ``None``: natural) into ``out`` (or a new tensor), by
    numpy's logarithm where numpy has its AVX-512 SIMD one (:func:`numpy_log_is_simd`), else by
    torch's.

    On a 2-core AVX-512 EPYC VM, float32, one thread: torch's ``log10`` 0.98 ns a value (in the
    cache or not: it is the arithmetic), numpy's 0.19, so torch's was 2.1 ms of Whisper-128's
    17 ms for 16 x 10 s; numpy's natural log 0.35 against 0.88. Both are within a few ulp of
    float64's (tested). The choice is a property of the machine, not a measurement, so every
    process and every thread count gives the same bits. numpy takes CPU tensors of float32 /
    float64 of at least :data:`_NUMPY_MIN` contiguous values with no gradient to record,
    outside ``torch.compile``."""
    torch_log, numpy_log = _LOGS[base]
    dest = y if out is None else out
    usable = (
        y.device.type == "cpu"
        and y.dtype in (torch.float32, torch.float64)
        and y.numel() >= _NUMPY_MIN
        and y.is_contiguous()
        and dest.dtype == y.dtype
        and dest.shape == y.shape
        and dest.is_contiguous()
        and writable(y)
        and writable(dest)
        and not torch.compiler.is_compiling()
        and not torch.jit.is_scripting()
    )
    if not (usable and numpy_log_is_simd()):
        return torch_log(y) if out is None else torch_log(y, out=out)
    if out is None:
        out = torch.empty_like(y, memory_format=torch.contiguous_format)
    with np.errstate(divide="ignore", invalid="ignore"):  # -inf / nan, silently, as torch's
        numpy_log(y.detach().numpy(), out=out.detach().numpy())
    return out


@functools.lru_cache(maxsize=1)
def numpy_log_is_simd() -> bool:
    """Whether numpy's logarithms run its AVX-512 (SKX) SIMD code on this CPU (numpy's own CPU
    feature table); without it numpy's ``log10`` is scalar and torch's is the faster."""
    import importlib

    for name in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):  # 2.x, 1.x
        try:
            features = importlib.import_module(name).__cpu_features__
        except (ImportError, AttributeError):
            continue
        return bool(features.get("AVX512_SKX", False))
    return False


def writable(x: torch.Tensor) -> bool:
    """Whether ``x`` (a temporary its caller made) may be overwritten in place: no gradient is
    being recorded through it."""
    return not (torch.is_grad_enabled() and x.requires_grad)


def dynamic_range_clamp(
    x: torch.Tensor, dynamic_range: float, lengths: torch.Tensor | None = None
) -> torch.Tensor:
    """``max(x, peak - dynamic_range)`` with each item's peak over its valid frames (Whisper's
    ``max(x, x.max() - 8)`` per clip, librosa's ``top_db``). An item without a valid frame is
    returned unchanged.

    Shape:
        - Input: ``(batch, ..., frames)``, ``lengths`` ``(batch,)``
        - Output: the same shape.
    """
    peak = masked_amax(x, lengths)
    return torch.maximum(x, peak - dynamic_range)


def power_to_db(
    S: torch.Tensor,
    *,
    multiplier: float = 10.0,
    ref: float | str = 1.0,
    amin: float = 1e-10,
    top_db: float | None = None,
    lengths: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``multiplier * log10(max(amin, S) / max(amin, ref))`` floored at ``top_db`` below each
    item's peak over its valid frames: ``librosa.power_to_db`` per item (``multiplier=20`` with a
    magnitude ``S`` is ``amplitude_to_db``). ``ref='max'`` takes each item's peak as reference.
    ``out``: write the result there (``S`` itself: in place; not while a gradient is recorded);
    without it one new tensor is made and every later step runs in place on it (while no
    gradient is recorded).

    Shape:
        - Input: ``(batch, ..., frames)`` non-negative, ``lengths`` ``(batch,)``
        - Output: the same shape.
    """
    db = log(S, floor=amin, base=10, out=out)  # the clamp's new tensor, or out
    own = writable(db)  # db (this call's temporary or the caller's out) may be overwritten
    db = db.mul_(multiplier) if own else multiplier * db
    if ref == "max" or top_db is not None:
        # an item with no valid frame has peak -inf: give it the floor (finite output)
        peak = masked_amax(db, lengths).clamp_min(multiplier * math.log10(amin))
    if ref == "max":
        db = db.sub_(peak) if own else db - peak
        peak = torch.zeros_like(peak)
    else:
        offset = multiplier * math.log10(max(amin, float(ref)))
        if offset:
            db = db.sub_(offset) if own else db - offset
        if top_db is not None:
            peak = peak - offset
    if top_db is not None:
        db = torch.maximum(db, peak - top_db, out=db) if own else torch.maximum(db, peak - top_db)
    return db
