"""Single-threaded torch workers (the caller and a pool of helpers), so that a blocked loop costs
one wake-up per helper, not one parallel region per operation.

Each torch operation on more than ~32k elements is an OpenMP parallel region, and each region ends
when its slowest thread does: on a busy machine that is when a descheduled thread runs again, and
after a pause it is when sleeping threads have woken. A cache-blocked loop of five operations per
block had 20-200 regions per call. Here the caller's ``n`` threads become the caller and ``n - 1``
pool threads (each with torch's intra-op threads set to 1), each taking the next block from a
shared queue, so a slow or late thread only delays the blocks it holds (16 x 4 s, 22.05 kHz, 2
threads at a load average of 7 on 2 cores: 25-38 ms median against 100-260 ms with the parallel
operations).

The pool is per process (a forked DataLoader worker makes its own, if it uses more than one
thread) and per thread count.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

__all__ = ["run_shared"]

T = TypeVar("T")

_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


_LOCAL = threading.local()


def _single_threaded(barrier: threading.Barrier) -> None:
    # torch sets up a thread's OpenMP count from the process default on the thread's first use:
    # do that first, so that restoring the default afterwards does not undo the 1 set here
    torch.get_num_threads()
    torch.set_num_threads(1)  # this thread's OpenMP and MKL settings (and, for now, the default)
    _LOCAL.worker = True
    barrier.wait()


def _pool(n: int) -> ThreadPoolExecutor:
    key = (os.getpid(), n)
    with _LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = ThreadPoolExecutor(n, thread_name_prefix="nnaudio-data")
            before = torch.get_num_threads()
            barrier = threading.Barrier(n + 1)
            started = [pool.submit(_single_threaded, barrier) for _ in range(n)]
            barrier.wait()  # all n threads exist and run torch on one thread each
            for f in started:
                f.result()
            torch.set_num_threads(before)  # the caller's (and the process default) as it was
            _POOLS[key] = pool
    return pool


def run_shared(items: Iterable[T], work: Callable[[Iterator[T]], None], threads: int) -> None:
    """Call ``work(shared)`` in the caller and ``threads - 1`` single-threaded helpers, where
    ``shared`` hands each item of ``items`` to exactly one of them (the next free one takes the
    next item), and wait for all.

    The caller works too, with torch on one thread for the call (its setting is restored after,
    as is the process default, which ``torch.set_num_threads`` also sets meanwhile): a helper that
    is slow to wake (a busy machine's scheduler can take milliseconds) only leaves more items to
    the caller, and one item costs no hand-off at all. Called from a worker (nested), ``work``
    runs in that worker. The helpers run with the caller's grad and inference modes. Exceptions
    propagate."""
    threads = max(1, threads)
    if getattr(_LOCAL, "worker", False):
        work(iter(items))
        return
    source = iter(items)
    lock = threading.Lock()

    def shared() -> Iterator[T]:
        while True:
            with lock:
                item = next(source, None)
            if item is None:
                return
            yield item

    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    def run() -> None:
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            work(shared())

    futures = [_pool(threads - 1).submit(run) for _ in range(threads - 1)] if threads > 1 else []
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    _LOCAL.worker = True
    try:
        work(shared())
    finally:
        _LOCAL.worker = False
        if before != 1:
            torch.set_num_threads(before)
        for f in futures:
            f.result()
