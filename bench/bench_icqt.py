"""Inverse CQT: ours (``iCQT``, FFT-domain forward and adjoint) against ``librosa.icqt`` and
against our conv-kernel passes, in time and reconstruction error (a script, not a test).

Three 2 s clips at 22.05 kHz inside the band of 84 bins from 32.7 Hz (a sweep 60 Hz - 3 kHz, a
chord, band-passed noise), ``librosa.cqt`` / our ``CQT1992v2(q_mode='librosa')`` as input, 2
threads, interleaved rounds with a pause before each call (``bench/_common.py``). The table gives
the median ms (min-max), the cost of one conjugate-gradient iteration (``(t(n) - t(0)) / n``)
against a forward CQT of the same clips, and the relative error of each clip away from the edges.
Target: an iteration costs about what a forward CQT costs.

Run from the repository root: ``python -m bench.bench_icqt [--rounds 3]``.
"""

from __future__ import annotations

from bench._common import set_threads

set_threads(2)  # before numpy / librosa are imported

import argparse  # noqa: E402

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import scipy.signal  # noqa: E402
import torch  # noqa: E402

from bench._common import Case, machine_details, markdown_table, time_cases  # noqa: E402
from nnaudio_data.features.cqt import CQT1992v2, iCQT  # noqa: E402

SR, SECONDS = 22050, 2.0


def clips() -> np.ndarray:
    """``(3, 2 s)`` float64: a log sweep, a chord and band-passed noise, all inside the band."""
    n = int(SR * SECONDS)
    t = np.arange(n) / SR
    sweep = scipy.signal.chirp(t, f0=60, f1=3000, t1=t[-1], method="logarithmic")
    chord = sum(np.sin(2 * np.pi * f * t + p) for f, p in ((220, 0.1), (277.2, 1), (329.6, 2)))
    b, a = scipy.signal.butter(4, [80 / (SR / 2), 3000 / (SR / 2)], "band")
    noise = scipy.signal.lfilter(b, a, np.random.default_rng(0).standard_normal(n))
    return np.stack([0.5 * sweep, chord / 3, noise / (3 * noise.std())])


def errors(y: np.ndarray, ref: np.ndarray) -> str:
    """Relative error of each clip away from the edges (4096 samples each side)."""
    sl = slice(4096, -4096)
    es = [np.linalg.norm(a[sl] - b[sl]) / np.linalg.norm(b[sl]) for a, b in zip(y, ref)]
    return " / ".join(f"{e:.3f}" for e in es)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    x = clips()
    n = x.shape[-1]
    lib_c = librosa.cqt(x, sr=SR, fmin=32.7, n_bins=84, tuning=0.0)
    xt = torch.tensor(x, dtype=torch.float32)
    cqt = CQT1992v2(sr=SR, fmin=32.7, q_mode="librosa", output_format="Complex")
    with torch.no_grad():
        c = cqt(xt)
    cases: list[tuple[str, int | None, object]] = [
        ("librosa.icqt", None, lambda: librosa.icqt(lib_c, sr=SR, fmin=32.7, tuning=0.0, length=n))
    ]
    for backend, iters in (("auto", (0, 4, 16)), ("conv", (0, 4))):
        for k in iters:
            inv = iCQT(sr=SR, fmin=32.7, q_mode="librosa", n_iter=k, backend=backend)
            name = f"ours iCQT n_iter={k} ({'FFT domain' if backend == 'auto' else 'conv kernels'})"
            cases.append((name, k, lambda inv=inv: inv(c, n)))
    cases.append(("ours CQT1992v2 forward (the unit)", None, lambda: cqt(xt)))

    def run(fn: object) -> object:
        with torch.no_grad():
            return fn()  # type: ignore[operator]

    outputs = {name: run(fn) for name, _, fn in cases}
    timings = time_cases(
        [Case(name, lambda fn=fn: run(fn)) for name, _, fn in cases],
        rounds=args.rounds,
        warmup=1,
    )
    forward = timings["ours CQT1992v2 forward (the unit)"].median
    base = {
        "FFT domain": timings["ours iCQT n_iter=0 (FFT domain)"].median,
        "conv kernels": timings["ours iCQT n_iter=0 (conv kernels)"].median,
    }
    rows = []
    for name, k, _ in cases:
        t = timings[name]
        per_iter = ""
        if k:
            kind = "FFT domain" if "FFT" in name else "conv kernels"
            it = (t.median - base[kind]) / k
            per_iter = f"{it:.0f} ms = {it / forward:.1f}x a forward CQT"
        out = outputs[name]
        err = "" if "forward" in name else errors(np.asarray(torch.as_tensor(out)), x)
        rows.append([name, t.fmt(), per_iter, err])
    print(
        f"Three {SECONDS:g} s clips at {SR} Hz (sweep / chord / noise), 84 bins from 32.7 Hz, hop "
        f"512; median (min-max) of {args.rounds} interleaved rounds. Machine: {machine_details()}\n"
    )
    header = ["inverse", "ms", "one iteration", "rel. error (sweep / chord / noise)"]
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
