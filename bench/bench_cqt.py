"""Constant-Q transforms side by side: ours (fast frozen path and conv kernels), nnAudio 0.3.4 and
librosa 0.11's batched ``cqt``.

Batch 16 x 4 s, 84 bins, fmin 32.7 Hz, 12 bins per octave, hop 512, at 22.05 and 44.1 kHz, 2 threads.
Prints median ms (min-max) per transform, the ratio to librosa's batched ``cqt`` and to nnAudio's
CQT1992v2 (of the medians and of the minima of one interleaved run: on a shared machine the minima
are the less disturbed figure), the kernel memory each holds (parameters, buffers and cached
fold plans) and its peak temporary memory per call (the torch CPU allocator's running total from
the profiler; ``tracemalloc`` for librosa's numpy arrays).

Run from the repository root: ``python -m bench.bench_cqt [--rounds 9] [--rates 22050,44100]``;
``--accuracy`` prints the worst errors against nnAudio and librosa instead of timings;
``--threads 1 --clock cpu`` times process CPU time on one thread, which other processes on a
shared machine disturb far less than wall time on two.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable

from bench._common import (
    Case,
    Timing,
    machine_details,
    make_batch,
    markdown_table,
    peak_memory,
    set_threads,
    time_cases,
)

# before numpy / librosa load their thread pools: --threads N (default 2)
THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
set_threads(THREADS)

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from nnaudio_data.features.cqt import CQT1992v2, CQT2010v2  # noqa: E402
from nnaudio_data.functional._folded import memo_plans  # noqa: E402

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
    bank = getattr(module, "_bank", None)
    for plan in memo_plans(bank) if bank is not None else []:
        for t in vars(plan).values():
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
        total += sum(g.kernel.numel() * g.kernel.element_size() for g in plan.groups)
        total += sum(f.weights.numel() * f.weights.element_size() for f in plan.folds)
    return total


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


def _rel(a: object, b: object) -> float:
    a_ = np.asarray(torch.as_tensor(a).detach(), dtype=np.complex128)
    b_ = np.asarray(torch.as_tensor(b).detach(), dtype=np.complex128)
    return float(np.linalg.norm(a_ - b_) / np.linalg.norm(b_))


def accuracy() -> None:
    """Worst relative errors against nnAudio 0.3.4 (where it is right) and librosa 0.11 (the
    whole sr x fmin x bins-per-octave grid), and nnAudio's early-downsampling scale bug."""
    import nnAudio.features as nnaudio
    import nnAudio.features.cfp as nn_cfp
    import scipy.signal.windows

    from nnaudio_data.features.cfp import CFP
    from nnaudio_data.features.cqt import CQT1992, CQT2010, VQT
    from nnaudio_data.features.gammatone import Gammatonegram

    warnings.filterwarnings("ignore")
    nn_cfp.scipy.signal.blackmanharris = scipy.signal.windows.blackmanharris  # scipy >= 1.13
    x = torch.from_numpy(make_batch(3, 1.0, 22050))
    x16 = torch.from_numpy(make_batch(3, 1.0, 16000))
    print("\nagainst nnAudio 0.3.4 (Complex where it has one; all normalization types)")
    rows = []
    worst = max(
        _rel(
            CQT1992v2(output_format="Complex", backend=b)(x, normalization_type=n),
            _nnaudio_complex("CQT1992v2", x, n),
        )
        for b in ("conv", "auto")
        for n in ("librosa", "convolutional", "wrap")
    )
    rows.append(["CQT1992v2 (conv and fast)", f"{worst:.1e}"])
    worst = max(
        _rel(
            CQT2010v2(output_format="Complex")(x, normalization_type=n),
            _nnaudio_complex("CQT2010v2", x, n),
        )
        for n in ("librosa", "convolutional", "wrap")
    )
    rows.append(["CQT2010v2 (22.05 kHz, 84 bins: no early downsampling)", f"{worst:.1e}"])
    ref = nnaudio.VQT(gamma=5.0, verbose=False, output_format="Complex")(x)
    rows.append(["VQT (gamma 5)", f"{_rel(VQT(gamma=5.0, output_format='Complex')(x), ref):.1e}"])
    kw: dict = dict(fmin=220.0, n_bins=48, output_format="Complex")
    ref = nnaudio.CQT1992(**kw)(x)
    rows.append(["CQT1992 (fmin 220, 48 bins)", f"{_rel(CQT1992(**kw)(x), ref):.1e}"])
    ref = nnaudio.CQT2010(verbose=False, output_format="Complex")(x)
    ref = ref * torch.tensor([1.0, -1.0])  # nnAudio's CQT2010 is conjugated
    rows.append(
        [
            "CQT2010 (vs nnAudio's conjugate)",
            f"{_rel(CQT2010(output_format='Complex')(x), ref):.1e}",
        ]
    )
    ref = nnaudio.Gammatonegram(verbose=False)(x)
    rows.append(["Gammatonegram", f"{_rel(Gammatonegram()(x), ref):.1e}"])
    rows.append(["CFP (nnAudio patched for scipy)", f"{_rel(CFP()(x16), nn_cfp.CFP()(x16)):.1e}"])
    print(markdown_table(["class", "worst relative error"], rows))
    print("\nagainst librosa.cqt (q_mode='librosa', sparsity 0, interior frames, 2 s clips)")
    rows = []
    for sr in (22050, 44100):
        y = make_batch(3, 2.0, sr).astype(np.float64)
        for fmin in (32.7, 55.0):
            for bpo, nb in ((12, 84), (24, 150), (36, 200)):
                ref = np.abs(
                    librosa.cqt(
                        y,
                        sr=sr,
                        fmin=fmin,
                        n_bins=nb,
                        bins_per_octave=bpo,
                        tuning=0.0,
                        sparsity=0.0,
                        pad_mode="constant",
                    )
                )
                row = [f"{sr}", f"{fmin:g}", f"{bpo}"]
                for cls in (CQT1992v2, CQT2010v2, CQT1992, CQT2010):
                    m = cls(
                        sr=sr,
                        fmin=fmin,
                        n_bins=nb,
                        bins_per_octave=bpo,
                        q_mode="librosa",
                        pad_mode="constant",
                    )
                    got = m(torch.from_numpy(y).float()).numpy()
                    edge = (m.kernel_width << getattr(m, "n_levels", 0)) // 2 // HOP + 1
                    edge = min(edge, ref.shape[-1] // 2 - 2)
                    sl = slice(edge, -edge)
                    row.append(f"{_rel(got[..., sl], ref[..., sl]):.4f}")
                rows.append(row)
    print(
        markdown_table(["sr", "fmin", "bpo", "CQT1992v2", "CQT2010v2", "CQT1992", "CQT2010"], rows)
    )
    print("\nearly downsampling: norm of the multirate output / CQT1992v2's (1 is right)")
    rows = []
    for sr, nb in ((44100, 84), (22050, 60), (22050, 48)):
        y = torch.from_numpy(make_batch(3, 1.0, sr))
        spec = CQT1992v2(sr=sr, n_bins=nb)(y)
        full = spec[..., 20:-20].norm()
        ratio = [
            float(t(sr=sr, n_bins=nb)(y)[..., 20:-20].norm() / full) for t in (CQT2010v2, CQT2010)
        ]
        theirs = []
        for name in ("CQT2010v2", "CQT2010"):
            out = getattr(nnaudio, name)(sr=sr, n_bins=nb, verbose=False)(y)
            n = min(out.shape[-1], spec.shape[-1])
            theirs.append(float(out[..., 20 : n - 20].norm() / spec[..., 20 : n - 20].norm()))
        rows.append([f"{sr}", f"{nb}", *(f"{r:.3f}" for r in ratio + theirs)])
    header = [
        "sr",
        "n_bins",
        "ours CQT2010v2",
        "ours CQT2010",
        "nnAudio CQT2010v2",
        "nnAudio CQT2010",
    ]
    print(markdown_table(header, rows))


def _nnaudio_complex(name: str, x: torch.Tensor, norm: str) -> torch.Tensor:
    import nnAudio.features as nnaudio

    return getattr(nnaudio, name)(verbose=False, output_format="Complex")(
        x, normalization_type=norm
    )


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
    parser.add_argument("--accuracy", action="store_true", help="print accuracy figures instead")
    args = parser.parse_args()
    print(machine_details())
    if args.accuracy:
        accuracy()
        return
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
