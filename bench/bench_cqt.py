"""Constant-Q transforms side by side: ours (fast frozen path and conv kernels), nnAudio 0.3.4 and
librosa 0.11's batched ``cqt``.

Batch 16 x 4 s, 84 bins, fmin 32.7 Hz, 12 bins per octave, hop 512, at 22.05 and 44.1 kHz, 2 threads.
Prints median ms (min-max) per transform, the ratio to librosa's batched ``cqt`` and to nnAudio's
CQT1992v2 (of the medians and of the minima of one interleaved run: on a shared machine the minima
are the less disturbed figure), the kernel memory each holds (parameters, buffers and cached
fold plans) and its peak temporary memory per call (the torch CPU allocator's running total from
the profiler; ``tracemalloc`` for librosa's numpy arrays).

Run from the repository root: ``python -m bench.bench_cqt [--rounds 9] [--rates 22050,44100]``;
``--threads 1 --clock cpu`` times process CPU time on one thread, which other processes on a
shared machine disturb far less than wall time on two.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable

from bench._common import (
    Case,
    Timing,
    machine_line,
    make_batch,
    markdown_table,
    set_threads,
    time_cases,
)

# before numpy / librosa load their thread pools: --threads N (default 2)
THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
set_threads(THREADS)

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.profiler import profile  # noqa: E402

from nnaudio_data.features.cqt import CQT1992v2, CQT2010v2  # noqa: E402

BATCH, SECONDS, N_BINS, FMIN, HOP = 16, 4.0, 84, 32.7, 512


def _nnaudio(name: str, sr: int) -> torch.nn.Module:
    warnings.filterwarnings("ignore")
    import nnAudio.features as nnaudio

    return getattr(nnaudio, name)(sr=sr, fmin=FMIN, n_bins=N_BINS, hop_length=HOP, verbose=False)


def _makers(sr: int) -> dict[str, Callable[[], Callable[[np.ndarray], object]]]:
    """Name -> a factory of ``f(batch)`` (built once, outside the timing)."""

    def torch_fn(module: torch.nn.Module) -> Callable[[np.ndarray], object]:
        def run(x: np.ndarray) -> object:
            with torch.inference_mode():
                return module(torch.from_numpy(x))

        return run

    def ours(cls: type, **kw: object) -> Callable[[], Callable[[np.ndarray], object]]:
        return lambda: torch_fn(cls(sr=sr, fmin=FMIN, n_bins=N_BINS, hop_length=HOP, **kw))

    def lib() -> Callable[[np.ndarray], object]:
        return lambda x: np.abs(
            librosa.cqt(x, sr=sr, fmin=FMIN, n_bins=N_BINS, hop_length=HOP, tuning=0.0)
        )

    return {
        "ours CQT1992v2 (fast, frozen)": ours(CQT1992v2),
        "ours CQT1992v2 (conv kernels)": ours(CQT1992v2, backend="conv"),
        "ours CQT2010v2": ours(CQT2010v2),
        "nnAudio CQT1992v2": lambda: torch_fn(_nnaudio("CQT1992v2", sr)),
        "nnAudio CQT2010v2": lambda: torch_fn(_nnaudio("CQT2010v2", sr)),
        "librosa cqt (batched)": lib,
    }


def _kernel_bytes(fn: Callable[[np.ndarray], object]) -> int:
    """Bytes of the kernels (parameters, buffers, cached fold plans) of a torch case's module."""
    cells = [c.cell_contents for c in (getattr(fn, "__closure__", None) or ())]
    modules = [c for c in cells if isinstance(c, torch.nn.Module)]
    if not modules:
        return 0
    module = modules[0]
    tensors = list(module.parameters()) + list(module.buffers())
    total = sum(t.numel() * t.element_size() for t in tensors)
    for plan in getattr(getattr(module, "_plans", None), "plans", {}).values():
        for t in vars(plan).values():
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
        total += sum(g.kernel.numel() * g.kernel.element_size() for g in plan.groups)
    return total


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


def _cpu_times(cases: list[Case], rounds: int) -> dict[str, Timing]:
    """Interleaved like ``time_cases``, but in process CPU time."""
    out = {c.name: Timing() for c in cases}
    for _ in range(rounds):
        for c in cases:
            time.sleep(0.2)
            t0 = time.process_time()
            c.fn()
            out[c.name].samples_ms.append((time.process_time() - t0) * 1e3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--rates", default="22050,44100")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: process CPU time (use with --threads 1; less disturbed by other processes)",
    )
    args = parser.parse_args()
    print(machine_line())
    for sr in (int(r) for r in args.rates.split(",")):
        x = make_batch(BATCH, SECONDS, sr)
        fns = {name: make() for name, make in _makers(sr).items()}
        for fn in fns.values():
            fn(x)
        cases = [Case(name, (lambda f=fn, x=x: f(x))) for name, fn in fns.items()]
        if args.clock == "wall":
            timings = time_cases(cases, rounds=args.rounds, warmup=1)
        else:
            timings = _cpu_times(cases, args.rounds)
        lib, nn = timings["librosa cqt (batched)"], timings["nnAudio CQT1992v2"]
        rows = []
        for name, t in timings.items():
            mem = ["-", "-"]
            if not args.no_memory:
                torch_case = not name.startswith("librosa")
                mem = [
                    f"{_kernel_bytes(fns[name]) / 2**20:.1f}",
                    f"{peak_memory(fns[name], x, torch_case):.1f}",
                ]
            rows.append(
                [
                    name,
                    t.fmt(),
                    f"{t.median / lib.median:.2f} / {t.min / lib.min:.2f}",
                    f"{t.median / nn.median:.2f} / {t.min / nn.min:.2f}",
                    *mem,
                ]
            )
        print(f"\nsr {sr} Hz, batch {BATCH} x {SECONDS:g} s, {N_BINS} bins, hop {HOP}")
        header = ["transform", "ms median (min-max)", "x librosa (median / min)"]
        header += ["x nnAudio 1992v2 (median / min)", "kernel MiB", "peak temp MiB"]
        print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
