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

On a quiet machine the pool loses to torch's own threads: a helper thread needs the GIL between
operations and a wake-up that the scheduler may first place on the caller's CPU (3-5 ms before it
ran, seen on a 2-core VM), while OpenMP threads keep spinning between regions and need no GIL.
So :func:`by_operations` chooses: when other processes leave a CPU for each thread (their CPU
time on our CPUs over the last half second, from ``/proc/stat``) a loop runs in the caller with
every operation parallel over larger blocks; otherwise on the pool. 16 x 4 s at 22.05 kHz,
log-mel 128, 2 threads, 2-core AVX-512 VM, best / median ms: quiet, back to back 6.5 / 6.7 by
operations against 9.1 / 16.1 on the pool, after a 0.2 s pause 7.8 / 9.3 against 10.7 / 17.0;
with two busy processes on the two cores 26 / 32 by operations (and 26-121 after a pause or
beside torch.stft) against 12 / 17 (and 15-29) on the pool. ``NNAUDIO_DATA_PARALLEL``
(``auto``, ``pool`` or ``operations``) or :func:`set_parallel` fixes the choice.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

__all__ = ["by_operations", "run_shared", "set_parallel"]

T = TypeVar("T")

_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


_LOCAL = threading.local()
_MODES = ("auto", "pool", "operations")
_MODE = os.environ.get("NNAUDIO_DATA_PARALLEL", "auto") or "auto"
if _MODE not in _MODES:
    warnings.warn(
        f"NNAUDIO_DATA_PARALLEL must be one of {_MODES}, got {_MODE!r}: using 'auto'",
        stacklevel=1,
    )
    _MODE = "auto"


def set_parallel(mode: str) -> None:
    """How a blocked loop uses more than one thread: ``'auto'`` (by the load, the default),
    ``'pool'`` (single-threaded workers) or ``'operations'`` (torch's parallel operations)."""
    global _MODE
    if mode not in _MODES:
        raise ValueError(f"parallel mode must be one of {_MODES}, got {mode!r}")
    _MODE = mode


def by_operations(threads: int) -> bool:
    """Whether a loop on ``threads`` threads runs in the caller with each torch operation parallel
    (a quiet machine: other processes leave a CPU for each thread) rather than on the pool. Never
    in a pool worker or on one thread."""
    if threads <= 1 or getattr(_LOCAL, "worker", False):
        return False
    if _MODE != "auto":
        return _MODE == "operations"
    try:
        usable = os.sched_getaffinity(0)
    except (AttributeError, OSError):  # not Linux: nothing to go by
        return False
    return len(usable) - _others_busy(usable) >= threads - 0.5


#: the CPU time other processes took on our CPUs is measured over at least this many seconds
_SAMPLE_S = 0.5
_SAMPLE: dict[str, float] = {}


def _others_busy(cpus: set[int]) -> float:
    """How many of ``cpus`` other processes (and the hypervisor: steal time) kept busy over the
    last half second or more, from ``/proc/stat`` less this process's own CPU time (``os.times``),
    so that this process's own threads do not count as load. Until a first interval has passed,
    the 1-minute load average less one (the caller)."""
    now = time.monotonic()
    with _LOCK:
        if _SAMPLE.get("pid") != os.getpid():  # a forked child: its own CPU time starts at 0
            _SAMPLE.clear()
            _SAMPLE["pid"] = os.getpid()
        last = _SAMPLE.get("time")
        if last is not None and now - last < _SAMPLE_S:
            return _SAMPLE["others"]
        busy, own = _busy_seconds(cpus), _own_seconds()
        if last is None or busy is None or "busy" not in _SAMPLE:
            others = max(0.0, os.getloadavg()[0] - 1.0)
        else:
            spent = (busy - _SAMPLE["busy"]) - (own - _SAMPLE["own"])
            others = max(0.0, spent / (now - last))
        _SAMPLE.update(time=now, own=own, others=others)
        if busy is not None:
            _SAMPLE["busy"] = busy
        return others


def _busy_seconds(cpus: set[int]) -> float | None:
    """Seconds ``cpus`` have not been idle since boot (``/proc/stat``); ``None`` if unreadable."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                if not (line.startswith("cpu") and line[3:4].isdigit()):
                    continue
                name, *fields = line.split()
                if int(name[3:]) in cpus:
                    values = [int(v) for v in fields[:8]]  # user .. steal
                    total += sum(values) - values[3] - values[4]  # less idle and iowait
    except (OSError, ValueError, IndexError):
        return None
    return total / tick


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


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
