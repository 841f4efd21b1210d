"""Shared helpers for the ``bench/`` scripts (scripts, not tests).

How a fair side-by-side timing is taken on a small shared machine (see ``../shared/PERF_NOTES.md``):

- :func:`set_threads` pins torch, and OpenBLAS / MKL / OpenMP as used by numpy and librosa (through
  ``threadpoolctl`` for libraries already loaded, and the environment for those loaded later), to
  the same thread count.
- :func:`time_cases` runs every case once per round, round after round (interleaved), so a drift
  of the machine hits all cases alike; it sleeps ``pause`` seconds before every call so that
  OpenBLAS threads left spinning by a numpy call do not slow the next torch call (2.3x measured).
- :class:`Timing` keeps every sample; report the median with the min-max range, and ratios of
  medians measured in the same process (absolute times drift up to 2x between runs).
- :func:`markdown_table` formats rows for the README's Performance section.
- :func:`machine_details` names the CPU model, vector ISA, caches, threads and load, to print
  beside a table.
- :func:`peak_memory`: peak temporary memory of one call (torch's allocator or tracemalloc).
- :func:`make_batch` makes a deterministic ``(batch, n)`` float32 batch (sweep + tones + noise).
- :data:`SCENARIOS` and :func:`time_scenario`: the conditions a ratio depends on more than on most
  code changes (``../shared/PERF_NOTES.md``), each named and measured on its own:
  (a) a DataLoader worker's loop (1 thread, 16 WAV files decoded between calls), (b) the main
  process after a pause (2 threads asleep), (c) back to back (2 threads, each call repeated at
  once), (d) the allocator tuned so that no call page-faults (as (c)). :func:`scenario_process`
  runs one scenario in a fresh process (its own allocator state and threads).

Run the scripts from the repository root as modules, e.g. ``python -m bench.bench_fourier``, so
that ``from bench._common import ...`` resolves.

Example::

    from bench._common import Case, set_threads, time_cases, markdown_table
    set_threads(2)
    timings = time_cases([Case("torch.stft", lambda: f(x)), Case("ours", lambda: g(x))],
                         rounds=15, warmup=2)
    print(timings["ours"].median / timings["torch.stft"].median)
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.profiler import profile

__all__ = [
    "SCENARIOS",
    "Case",
    "Timing",
    "machine_details",
    "make_batch",
    "markdown_table",
    "peak_memory",
    "scenario_process",
    "set_threads",
    "time_cases",
    "time_scenario",
]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


_LIMITS: list[object] = []  # keeps the threadpoolctl limiter alive for the process


def set_threads(n: int = 2) -> None:
    """Use ``n`` threads in torch and in the BLAS / OpenMP pools numpy and librosa use."""
    for var in _THREAD_VARS:
        os.environ[var] = str(n)
    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with librosa's scikit-learn
        return
    _LIMITS.append(threadpool_limits(limits=n))


@dataclass(frozen=True)
class Case:
    """One thing to time: ``fn()`` does the whole work once (and returns its result).

    ``sync`` is called after ``fn`` inside the timed region (e.g. ``torch.cuda.synchronize``).
    """

    name: str
    fn: Callable[[], object]
    sync: Callable[[], None] | None = None


@dataclass
class Timing:
    """Samples of one case in milliseconds."""

    samples_ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def min(self) -> float:
        return min(self.samples_ms)

    @property
    def max(self) -> float:
        return max(self.samples_ms)

    def fmt(self) -> str:
        """``'12.3 (11.9-14.0)'``: median (min-max) in ms."""
        return f"{self.median:.1f} ({self.min:.1f}-{self.max:.1f})"


def time_cases(
    cases: Sequence[Case], *, rounds: int = 15, warmup: int = 2, pause: float = 0.2
) -> dict[str, Timing]:
    """Time each case ``rounds`` times, interleaved, after ``warmup`` untimed rounds.

    Before every call the process sleeps ``pause`` seconds (thread spin of the previous library).
    Returns ``{case.name: Timing}``.
    """
    out = {c.name: Timing() for c in cases}
    for r in range(warmup + rounds):
        for c in cases:
            if pause > 0:
                time.sleep(pause)
            t0 = time.perf_counter()
            c.fn()
            if c.sync is not None:
                c.sync()
            dt = (time.perf_counter() - t0) * 1e3
            if r >= warmup:
                out[c.name].samples_ms.append(dt)
    return out


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub markdown table (cells converted with ``str``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _cpu_model_and_flags() -> tuple[str, set[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("", platform.machine()):
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:  # not Linux
        pass
    return model, flags


def _cache_sizes() -> str:
    """``'L1d 32K, L1i 32K, L2 1024K, L3 32768K'`` per core (of cpu0), from /sys (Linux)."""
    root = "/sys/devices/system/cpu/cpu0/cache"
    parts = []
    try:
        for index in sorted(os.listdir(root)):
            if not index.startswith("index"):
                continue
            with open(f"{root}/{index}/level") as f:
                level = f.read().strip()
            with open(f"{root}/{index}/type") as f:
                kind = f.read().strip()
            with open(f"{root}/{index}/size") as f:
                size = f.read().strip()
            suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
            parts.append(f"L{level}{suffix} {size}")
    except OSError:
        return "cache sizes unknown"
    return ", ".join(parts) or "cache sizes unknown"


def machine_details() -> str:
    """The machine beside a table: CPU model, the widest vector ISA (AVX-512 / AVX2 / neither),
    cache sizes of cpu0, CPU count, torch threads and the 1-, 5- and 15-minute load averages."""
    model, flags = _cpu_model_and_flags()
    if "avx512f" in flags:
        isa = "AVX-512" + (" (+BF16)" if "avx512_bf16" in flags else "")
    elif "avx2" in flags:
        isa = "AVX2"
    else:
        isa = "no AVX2"
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (
        f"{model}; {isa}; {_cache_sizes()}; {os.cpu_count()} CPUs; Python "
        f"{platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} torch "
        f"threads; load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"
    )


def make_batch(batch: int, seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """``(batch, round(seconds * sr))`` float32: per row a log sweep, two tones and noise, with
    row-dependent frequencies (deterministic)."""
    n = round(seconds * sr)
    t = np.arange(n) / sr
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(batch):
        f0, f1 = 40.0 * (1 + i % 4), sr / (2.5 + i % 3)
        k = np.log(f1 / f0) / seconds
        sweep = np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)
        tones = np.sin(2 * np.pi * (220.0 + 30 * i) * t) + 0.5 * np.sin(2 * np.pi * 1250.0 * t)
        rows.append(0.4 * sweep + 0.2 * tones + 0.05 * rng.standard_normal(n))
    return np.stack(rows).astype(np.float32)


#: scenario -> (threads, description); see :func:`time_scenario`
SCENARIOS: dict[str, tuple[int, str]] = {
    "a": (1, "(a) worker loop: 1 thread, 16 WAV files decoded before each call"),
    "b": (2, "(b) main process: 2 threads, 0.2 s pause before each call (threads asleep)"),
    "c": (2, "(c) back to back: 2 threads, each call repeated 4 times at once"),
    "d": (2, "(d) allocator tuned (glibc mmap / trim thresholds 1 GiB: no page faults), as (c)"),
}


def _wav_decoder(n: int = 16, seconds: float = 4.0, sr: int = 22050) -> Callable[[], object]:
    """Decode ``n`` in-memory 16-bit WAV files (a worker's work between two transforms)."""
    import io

    import soundfile as sf

    blobs = []
    for row in make_batch(n, seconds, sr, seed=1):
        buf = io.BytesIO()
        sf.write(buf, row, sr, format="WAV", subtype="PCM_16")
        blobs.append(buf.getvalue())

    def decode() -> object:
        return [sf.read(io.BytesIO(b), dtype="float32")[0] for b in blobs]

    return decode


def tune_allocator() -> None:
    """glibc: serve every block from the heap and never trim it (no page faults after the first
    call), as ``MALLOC_MMAP_THRESHOLD_=1000000000`` does; no-op elsewhere."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 1 << 30)
    libc.mallopt(m_trim_threshold, 1 << 30)


def time_scenario(
    cases: Sequence[Case], scenario: str, *, rounds: int = 10, warmup: int = 2
) -> dict[str, Timing]:
    """Time ``cases`` interleaved, round after round, under ``scenario`` (see :data:`SCENARIOS`;
    the caller has set its threads and, for ``'d'``, :func:`tune_allocator`). (a) decodes 16 WAV
    files before each call; (b) sleeps 0.2 s before each call; (c) and (d) call each case 4 times
    in a row (each call one sample)."""
    if scenario == "a":
        decode = _wav_decoder()
        out = {c.name: Timing() for c in cases}
        for r in range(warmup + rounds):
            for c in cases:
                decode()
                t0 = time.perf_counter()
                c.fn()
                if r >= warmup:
                    out[c.name].samples_ms.append((time.perf_counter() - t0) * 1e3)
        return out
    if scenario == "b":
        return time_cases(cases, rounds=rounds, warmup=warmup, pause=0.2)
    out = {c.name: Timing() for c in cases}
    for r in range(warmup + rounds):
        for c in cases:
            for _ in range(4):
                t0 = time.perf_counter()
                c.fn()
                if r >= warmup:
                    out[c.name].samples_ms.append((time.perf_counter() - t0) * 1e3)
    return out


def scenario_process(module: str, scenario: str, argv: Sequence[str]) -> int:
    """Run ``python -m module --scenario scenario *argv`` in a fresh process (its own allocator
    state, thread pools and caches); returns its exit status. Its output goes to ours."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", module, "--scenario", scenario, *argv]
    return subprocess.call(cmd)


def peak_memory(fn: Callable[[np.ndarray], object], x: np.ndarray, torch_case: bool) -> float:
    """Peak temporary memory of one call in MiB: the torch CPU allocator's running total from the
    profiler for torch cases, ``tracemalloc``'s peak (numpy allocations) for librosa."""
    if not torch_case:
        tracemalloc.start()
        fn(x)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak / 2**20
    with profile(profile_memory=True) as prof:
        fn(x)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.json")
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    totals = [e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]"]
    return (max(totals) - totals[0]) / 2**20 if totals else 0.0
