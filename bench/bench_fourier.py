"""Fourier-family benchmark: our STFT / MelSpectrogram against torch.stft (what torchaudio
computes), nnAudio 0.3.4 and librosa, side by side in one process.

Workload (issue 2): a batch of 16 clips of 4 s at 22.05 kHz (and optionally 44.1 kHz), n_fft 2048,
hop 512, 128 mels, 2 threads. Every case runs once per round, interleaved, with a pause before each
call (OpenBLAS thread spin after numpy calls, see ``../shared/PERF_NOTES.md``); the table gives the
median ms with min-max, the ratio of medians against the reference of each group, and the ratio
of minima (on a machine shared with other work the minimum is the best estimate of the
uncontended time; the median also shows how each implementation copes with contention):

- STFT magnitude (frozen): reference ``torch.stft(...).abs()``; target ours <= 0.6x.
- Mel (frozen, power 2): reference ``mel @ torch.stft(...).abs().pow(2)``; target ours <= 0.7x.
- Trainable STFT forward + backward: reference nnAudio ``STFT(trainable=True)``; target <= 0.75x.

Before timing, every result is checked against the reference (relative error printed), so the
table only compares computations that give the same numbers.

Run from the repository root::

    .venv/bin/python -m bench.bench_fourier           # 22.05 and 44.1 kHz, 15 rounds
    .venv/bin/python -m bench.bench_fourier --quick   # 22.05 kHz, 5 rounds
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass

import librosa
import numpy as np
import torch

from bench._common import (
    Case,
    Timing,
    machine_line,
    make_batch,
    markdown_table,
    set_threads,
    time_cases,
)
from nnaudio_data.functional._blocked import stft_fft_power

N_FFT, HOP, N_MELS = 2048, 512, 128


@dataclass(frozen=True)
class Row:
    """One timed implementation in a group; ``ref`` marks the group's reference."""

    group: str
    name: str
    fn: Callable[[], object]
    ref: bool = False
    target: float | None = None


def _quiet(make: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Build an nnAudio module without its prints on stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        return make()


def _ours_stft(sr: int, trainable: bool) -> tuple[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Our STFT magnitude transform, or the FFT path alone before ``features.stft`` exists."""
    try:
        from nnaudio_data.features.stft import STFT
    except ImportError:
        STFT = None
    if STFT is not None:
        m = STFT(n_fft=N_FFT, hop_length=HOP, sr=sr, trainable=trainable, output_format="Magnitude")
        return "nnaudio_data STFT", m
    if trainable:
        raise ImportError("nnaudio_data.features.STFT is not there yet")
    w = torch.hann_window(N_FFT)
    return "nnaudio_data stft_fft_power", lambda x: stft_fft_power(
        x, n_fft=N_FFT, hop_length=HOP, window=w, center=True, pad_mode="reflect", power=1.0
    )


def _ours_mel(sr: int, mel: torch.Tensor) -> tuple[str, Callable[[torch.Tensor], torch.Tensor]]:
    try:
        from nnaudio_data.features.mel import MelSpectrogram
    except ImportError:
        MelSpectrogram = None
    if MelSpectrogram is not None:
        m = MelSpectrogram(sr=sr, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, verbose=False)
        return "nnaudio_data MelSpectrogram", m
    w = torch.hann_window(N_FFT)
    return (
        "nnaudio_data stft_fft_power + mel",
        lambda x: (
            mel
            @ stft_fft_power(
                x, n_fft=N_FFT, hop_length=HOP, window=w, center=True, pad_mode="reflect", power=2.0
            )
        ),
    )


def _fwd_bwd(module: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    params = [p for p in module.parameters() if p.requires_grad]

    def step() -> object:
        for p in params:
            p.grad = None
        y = module(x)
        y.sum().backward()
        return y

    return step


def _rel(a: object, b: object) -> float:
    a64 = np.asarray(torch.as_tensor(a).detach(), dtype=np.float64)
    b64 = np.asarray(torch.as_tensor(b).detach(), dtype=np.float64)
    return float(np.linalg.norm(a64 - b64) / np.linalg.norm(b64))


def build_rows(sr: int, batch: int, seconds: float, fwd_bwd: bool) -> list[Row]:
    """All timed cases for one sample rate, checked against their group's reference."""
    from nnAudio import features as nna

    xn = make_batch(batch, seconds, sr)
    x = torch.from_numpy(xn)
    w = torch.hann_window(N_FFT)
    mel = torch.from_numpy(librosa.filters.mel(sr=sr, n_fft=N_FFT, n_mels=N_MELS)).float()

    def torch_stft(x: torch.Tensor) -> torch.Tensor:
        return torch.stft(
            x, N_FFT, HOP, window=w, center=True, pad_mode="reflect", return_complex=True
        )

    ours_stft_name, ours_stft = _ours_stft(sr, trainable=False)
    ours_mel_name, ours_mel = _ours_mel(sr, mel)
    nna_stft = _quiet(
        lambda: nna.STFT(
            n_fft=N_FFT, hop_length=HOP, sr=sr, output_format="Magnitude", verbose=False
        )
    )
    nna_mel = _quiet(
        lambda: nna.MelSpectrogram(sr=sr, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, verbose=False)
    )

    def lib_stft() -> np.ndarray:
        return np.abs(librosa.stft(xn, n_fft=N_FFT, hop_length=HOP, pad_mode="reflect"))

    def lib_mel() -> np.ndarray:
        return librosa.feature.melspectrogram(
            y=xn, sr=sr, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, pad_mode="reflect"
        )

    rows = [
        Row("STFT magnitude", "torch.stft(...).abs()", lambda: torch_stft(x).abs(), ref=True),
        Row("STFT magnitude", ours_stft_name, lambda: ours_stft(x), target=0.6),
        Row("STFT magnitude", "nnAudio 0.3.4 STFT", lambda: nna_stft(x)),
        Row("STFT magnitude", "librosa stft (batched)", lib_stft),
        Row(
            "Mel (power 2)",
            "mel @ torch.stft(...).abs().pow(2)",
            lambda: mel @ torch_stft(x).abs().pow(2),
            ref=True,
        ),
        Row("Mel (power 2)", ours_mel_name, lambda: ours_mel(x), target=0.7),
        Row("Mel (power 2)", "nnAudio 0.3.4 MelSpectrogram", lambda: nna_mel(x)),
        Row("Mel (power 2)", "librosa melspectrogram (batched)", lib_mel),
    ]
    # frozen cases run without autograd, as in a data pipeline
    rows = [Row(r.group, r.name, _no_grad(r.fn), r.ref, r.target) for r in rows]
    if fwd_bwd:
        nna_tr = _quiet(
            lambda: nna.STFT(
                n_fft=N_FFT,
                hop_length=HOP,
                sr=sr,
                trainable=True,
                output_format="Magnitude",
                verbose=False,
            )
        )
        try:
            name, ours_tr = _ours_stft(sr, trainable=True)
        except ImportError as e:
            print(f"(trainable STFT skipped: {e})", file=sys.stderr)
        else:
            rows += [
                Row(
                    "Trainable STFT fwd+bwd",
                    "nnAudio 0.3.4 STFT(trainable=True)",
                    _fwd_bwd(nna_tr, x),
                    ref=True,
                ),
                Row(
                    "Trainable STFT fwd+bwd",
                    f"{name}(trainable=True)",
                    _fwd_bwd(ours_tr, x),
                    target=0.75,
                ),  # type: ignore[arg-type]
            ]
    _check(rows)
    return rows


def _no_grad(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with torch.no_grad():
            return fn()

    return run


def _check(rows: list[Row]) -> None:
    """Print each result's relative error against its group's reference (same numbers first)."""
    refs = {r.group: r.fn() for r in rows if r.ref}
    for r in rows:
        if not r.ref:
            err = _rel(r.fn(), refs[r.group])
            print(
                f"  check {r.group:24s} {r.name:36s} rel. error vs reference {err:.1e}",
                file=sys.stderr,
            )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="22.05 kHz only, 5 rounds")
    ap.add_argument("--sr", type=int, nargs="+", default=[22050, 44100])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-backward", action="store_true", help="skip the trainable fwd+bwd group")
    args = ap.parse_args(argv)
    if args.quick:
        args.sr, args.rounds = [22050], 5
    set_threads(args.threads)

    table = []
    for sr in args.sr:
        print(f"{sr} Hz: building and checking ...", file=sys.stderr)
        rows = build_rows(sr, args.batch, args.seconds, not args.no_backward)
        timings = time_cases(
            [Case(r.name, r.fn) for r in rows], rounds=args.rounds, warmup=2, pause=0.2
        )
        ref_ms = {r.group: timings[r.name].median for r in rows if r.ref}
        ref_min = {r.group: timings[r.name].min for r in rows if r.ref}
        for r in rows:
            t: Timing = timings[r.name]
            ratio = t.median / ref_ms[r.group]
            ratio_min = t.min / ref_min[r.group]
            verdict = (
                ""
                if r.target is None
                else f" (target <= {r.target:.2f}x: {'met' if ratio <= r.target else 'missed'})"
            )
            table.append(
                [
                    r.group,
                    f"{sr / 1000:g} kHz",
                    r.name,
                    t.fmt(),
                    f"{ratio:.2f}x{verdict}",
                    f"{ratio_min:.2f}x",
                ]
            )
    print(
        f"Batch {args.batch} x {args.seconds:g} s, n_fft {N_FFT}, hop {HOP}, {N_MELS} mels; {machine_line()}; "
        f"median of {args.rounds} interleaved rounds (min-max); ratios to the group's first row.\n"
    )
    print(
        markdown_table(
            ["transform", "rate", "implementation", "ms", "ratio of medians", "ratio of minima"],
            table,
        )
    )


if __name__ == "__main__":
    main()
