"""Constant-Q transforms side by side: ours (fast frozen path and conv kernels), nnAudio 0.3.4 and
librosa 0.11's batched ``cqt``.

Batch 16 x 4 s, 84 bins, fmin 32.7 Hz, 12 bins per octave, hop 512, at 22.05 and 44.1 kHz, 2 threads.
Prints median ms (min-max) per transform, the ratio to librosa's batched ``cqt`` and to nnAudio's
CQT1992v2 (medians of one interleaved run), the kernel memory each holds, and its peak temporary
memory per call (peak resident set growth during one call, measured in a fresh process).

Run from the repository root: ``python -m bench.bench_cqt [--rounds 9] [--rates 22050,44100]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import warnings
from collections.abc import Callable

from bench._common import Case, machine_line, make_batch, markdown_table, set_threads, time_cases

set_threads(2)

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

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


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def _peak_worker(name: str, sr: int, queue: mp.Queue) -> None:
    set_threads(2)
    x = make_batch(BATCH, SECONDS, sr)
    fn = _makers(sr)[name]()
    fn(x)  # build caches (fold plans) before measuring
    kernel = _kernel_bytes(fn)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak resident set size
    except OSError:
        queue.put((kernel, -1))
        return
    before = _status("VmRSS")
    fn(x)
    queue.put((kernel, _status("VmHWM") - before))


def peak_memory(name: str, sr: int) -> tuple[int, int]:
    """(kernel bytes, peak resident growth in bytes during one call) in a fresh process."""
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    proc = ctx.Process(target=_peak_worker, args=(name, sr, queue))
    proc.start()
    result = queue.get(timeout=600)
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--rates", default="22050,44100")
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args()
    print(machine_line())
    for sr in (int(r) for r in args.rates.split(",")):
        x = make_batch(BATCH, SECONDS, sr)
        fns = {name: make() for name, make in _makers(sr).items()}
        for fn in fns.values():
            fn(x)
        timings = time_cases(
            [Case(name, (lambda f=fn, x=x: f(x))) for name, fn in fns.items()],
            rounds=args.rounds,
            warmup=1,
        )
        ref_lib = timings["librosa cqt (batched)"].median
        ref_nn = timings["nnAudio CQT1992v2"].median
        rows = []
        for name, t in timings.items():
            mem = ("-", "-")
            if not args.no_memory:
                kernel, peak = peak_memory(name, sr)
                mem = (f"{kernel / 2**20:.1f}", f"{peak / 2**20:.0f}" if peak >= 0 else "n/a")
            rows.append(
                [name, t.fmt(), f"{t.median / ref_lib:.2f}", f"{t.median / ref_nn:.2f}", *mem]
            )
        print(f"\nsr {sr} Hz, batch {BATCH} x {SECONDS:g} s, {N_BINS} bins, hop {HOP}")
        header = ["transform", "ms median (min-max)", "x librosa", "x nnAudio 1992v2"]
        header += ["kernel MiB", "peak temp MiB"]
        print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
