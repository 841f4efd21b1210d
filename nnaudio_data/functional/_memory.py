"""Large CPU outputs on memory this process has already touched, or on transparent huge pages.

A transform's output is new memory on every call (the caller keeps it), and the first write to new
memory costs a page fault per 4 KiB page: on the 2-core EPYC VMs these benchmarks run on, the first
fill of a 24.6 MB tensor (Whisper's 30 s of 128 bands for 16 clips) took 11-13 ms, against
1.1-1.6 ms when the range was advised ``MADV_HUGEPAGE`` before it was touched (one fault per
2 MiB). Where the host backs guest memory lazily (the Xeon VM of the README's front-end table:
~350 MB/s on first touch), even huge pages cost: whether a fresh block comes from glibc's heap
(touched before) or from the kernel depends on glibc's state, which other libraries move, and
Whisper's 16 ms log-mel took 50 ms in the processes where it came from the kernel.

So :func:`empty` keeps a few of the large blocks it handed out (their storages) and hands one out
again once nobody else holds it: its last user has dropped every tensor, view, numpy array and
DLPack capsule on it (the storage's use count is the pool's own), and it was never moved to shared
memory (a DataLoader worker's sent batch, ``share_memory_()``: the receiver still reads it). A
block is reused only for a request of exactly its size, so a tensor's storage is never larger than
the tensor. At most :data:`MAX_BLOCKS` blocks are kept and at most :data:`IDLE_BYTES` of them idle
(held by the pool alone): older idle ones are let go at the next call. New blocks are
``torch.empty`` plus the huge-page advice (Linux, transparent huge pages in ``madvise`` or
``always`` mode); the advice changes nothing else.

What a caller sees is ``torch.empty``'s contract (shape, dtype, contiguous strides, unspecified
values): with ``torch.use_deterministic_algorithms(True)`` and
``torch.utils.deterministic.fill_uninitialized_memory`` (torch fills ``empty`` with NaN) blocks are
not reused, so that mode's filling holds. ``NNAUDIO_DATA_REUSE=0`` turns reuse off,
``NNAUDIO_DATA_HUGEPAGES=0`` the advice; :func:`release` lets the idle blocks go now.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
from collections.abc import Callable, Sequence

import torch
import torch.utils.deterministic

__all__ = ["IDLE_BYTES", "MAX_BLOCKS", "MIN_BYTES", "empty", "release"]

#: smaller tensors are left alone (a huge page is 2 MiB; glibc serves small blocks from its heap)
MIN_BYTES = 4 << 20
#: blocks the pool keeps, in use or idle
MAX_BLOCKS = 16
#: idle memory the pool keeps at most (each block must fit in it)
IDLE_BYTES = 256 << 20
_MADV_HUGEPAGE = 14  # linux/mman.h
_PAGE = 4096

_lock = threading.Lock()
_blocks: list[torch.UntypedStorage] = []  # oldest first


@functools.lru_cache(maxsize=1)
def _madvise() -> Callable[[int, int, int], int] | None:
    """libc's ``madvise``, or ``None`` where the advice cannot apply."""
    if not sys.platform.startswith("linux") or os.environ.get("NNAUDIO_DATA_HUGEPAGES") == "0":
        return None
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            if "[never]" in f.read():
                return None
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    advise: Callable[[int, int, int], int] = fn
    return advise


def _reuses() -> bool:
    if os.environ.get("NNAUDIO_DATA_REUSE") == "0":
        return False
    fills = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    return not (torch.are_deterministic_algorithms_enabled() and fills)


def _idle(block: torch.UntypedStorage) -> bool:
    """Nobody but the pool holds ``block`` (no tensor, view, numpy array or capsule)."""
    return torch._C._storage_Use_Count(block._cdata) == 1


def _take(nbytes: int) -> torch.UntypedStorage | None:
    """An idle private block of ``nbytes`` from the pool; the pool trimmed to its limits."""
    with _lock:
        found = None
        for i, block in enumerate(_blocks):
            if _idle(block) and not block.is_shared() and block.nbytes() == nbytes:
                found = _blocks.pop(i)
                break
        _trim(0)
        return found


def _keep(block: torch.UntypedStorage) -> None:
    with _lock:
        _trim(1)
        _blocks.append(block)


def _trim(room: int) -> None:
    """Let go the blocks that can no longer be reused, then the oldest idle ones over the limits,
    leaving ``room`` places."""
    _blocks[:] = [b for b in _blocks if not b.is_shared()]
    idle = sum(b.nbytes() for b in _blocks if _idle(b))
    i = 0
    while i < len(_blocks) and (idle > IDLE_BYTES or len(_blocks) + room > MAX_BLOCKS):
        block = _blocks[i]
        if _idle(block):
            idle -= block.nbytes()
            del _blocks[i]
        elif len(_blocks) + room > MAX_BLOCKS:  # a block in use is only forgotten, not freed
            del _blocks[i]
        else:
            i += 1


def release() -> None:
    """Let go every block the pool keeps (the idle ones return to the allocator)."""
    with _lock:
        _blocks.clear()


def empty(shape: Sequence[int], *, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """``torch.empty(shape)``; a large CPU tensor's memory is reused or advised huge (see above)."""
    shape = tuple(shape)
    device = torch.device(device)
    nbytes = dtype.itemsize
    for size in shape:
        nbytes *= size
    if device.type != "cpu" or nbytes < MIN_BYTES:
        return torch.empty(shape, dtype=dtype, device=device)
    reuse = _reuses() and nbytes <= IDLE_BYTES
    block = _take(nbytes) if reuse else None
    if block is not None:
        strides: list[int] = []
        step = 1
        for size in reversed(shape):
            strides.insert(0, step)
            step *= max(size, 1)
        return torch.empty(0, dtype=dtype).set_(block, 0, shape, strides)
    out = torch.empty(shape, dtype=dtype, device=device)
    advise = _madvise()
    if advise is not None:
        start = -(-out.data_ptr() // _PAGE) * _PAGE
        end = (out.data_ptr() + nbytes) // _PAGE * _PAGE
        advise(start, end - start, _MADV_HUGEPAGE)  # advice only: a refusal changes nothing
    if reuse:
        _keep(out.untyped_storage())
    return out
