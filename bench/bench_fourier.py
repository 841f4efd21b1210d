"""Fourier-family benchmark: our STFT / MelSpectrogram against torch.stft (what torchaudio
computes), nnAudio 0.3.4 and librosa, side by side in one process, in each of four scenarios.

Workload: a batch of 16 clips of 4 s at 22.05 and 44.1 kHz, n_fft 2048, hop 512, 128 mels. How
a ratio is measured moves it more than most code changes (``../shared/PERF_NOTES.md``), so each
scenario of ``bench._common.SCENARIOS`` runs in a fresh process of its own and gets its own table:
(a) a DataLoader worker's loop (1 thread, 16 WAV files decoded before each call), (b) the main
process with 2 threads after a 0.2 s pause (threads asleep), (c) back to back on 2 threads,
(d) as (c) with the allocator tuned so that neither side page-faults. Every case runs once per
round, interleaved; the table gives the median ms with min-max, the ratio of medians against the
reference of each group, the ratio of minima, and for our frozen transforms the ratio against the
floor ``torch.fft.rfft(frames * window)`` (the FFT of the same windowed frames, nothing else).

Targets, in every scenario:

- STFT magnitude (frozen): reference ``torch.stft(...).abs()``: ours <= 0.6x, and <= 1.4x the floor.
- Mel (frozen, power 2): reference ``mel @ torch.stft(...).abs().pow(2)``: ours <= 0.6x.
- Trainable STFT forward + backward: reference nnAudio ``STFT(trainable=True)``: ours <= 0.75x.
  Its group also times the GEMM floor: the four bare matrix products of that shape that both
  nnAudio's conv1d and our matmul must do (kernels times frames, gradient times frames), so
  the table shows how far each is from the work itself.

Scenario (b) also times nnAudio's frozen transforms and librosa's. Before timing, every result is
checked against the reference (relative error printed on stderr), so the table only compares
computations that give the same numbers. Each table is printed with the machine it ran on.

Run from the repository root::

    .venv/bin/python -m bench.bench_fourier                  # all four scenarios, both rates
    .venv/bin/python -m bench.bench_fourier --scenario b     # one scenario, in this process
    .venv/bin/python -m bench.bench_fourier --quick          # 22.05 kHz, 5 rounds
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass

import librosa
import numpy as np
import torch

from bench._common import (
    SCENARIOS,
    Case,
    Timing,
    machine_details,
    make_batch,
    markdown_table,
    scenario_process,
    set_threads,
    time_scenario,
    tune_allocator,
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
    #: compare with the FFT floor (our frozen transforms), and the most that ratio may be
    floor_target: float | None = None
    floor: bool = False
    #: compared with the group's reference before timing (False: a floor of other numbers)
    check: bool = True


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


def _gemm_floor(x: torch.Tensor) -> Callable[[], object]:
    """The four matrix products a trainable STFT's forward + backward needs at least, on bare
    tensors: ``[wcos; wsin] @ frames`` and, for the kernels' gradient, ``grad @ frames.T`` (for
    the real and the imaginary kernel: ``n_fft // 2 + 1`` rows each). nnAudio's conv1d and our
    matmul both do this work; neither can go below it."""
    bins = N_FFT // 2 + 1
    padded = torch.nn.functional.pad(x[:, None], (N_FFT // 2, N_FFT // 2), mode="reflect")[:, 0]
    flat = padded.unfold(-1, N_FFT, HOP).reshape(-1, N_FFT).t().contiguous()
    gen = torch.Generator().manual_seed(0)
    wcos, wsin = (torch.randn(bins, N_FFT, generator=gen) for _ in range(2))
    grad = torch.randn(bins, flat.shape[1], generator=gen)

    def step() -> object:
        re, im = wcos @ flat, wsin @ flat
        return re, im, grad @ flat.t(), grad @ flat.t()

    return step


def _rel(a: object, b: object) -> float:
    a64 = np.asarray(torch.as_tensor(a).detach(), dtype=np.float64)
    b64 = np.asarray(torch.as_tensor(b).detach(), dtype=np.float64)
    return float(np.linalg.norm(a64 - b64) / np.linalg.norm(b64))


def build_rows(sr: int, batch: int, seconds: float, fwd_bwd: bool, peers: bool) -> list[Row]:
    """All timed cases for one sample rate, checked against their group's reference; ``peers``:
    nnAudio's frozen transforms and librosa too."""
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

    frames = torch.nn.functional.pad(x[:, None], (N_FFT // 2, N_FFT // 2), mode="reflect")
    frames = frames[:, 0].unfold(-1, N_FFT, HOP)

    rows = [
        Row(
            "FFT floor",
            "torch.fft.rfft(frames * window)",
            lambda: torch.fft.rfft(frames * w, dim=-1),
            ref=True,
            floor=True,
        ),
        Row("STFT magnitude", "torch.stft(...).abs()", lambda: torch_stft(x).abs(), ref=True),
        Row("STFT magnitude", ours_stft_name, lambda: ours_stft(x), target=0.6, floor_target=1.4),
        Row(
            "Mel (power 2)",
            "mel @ torch.stft(...).abs().pow(2)",
            lambda: mel @ torch_stft(x).abs().pow(2),
            ref=True,
        ),
        Row("Mel (power 2)", ours_mel_name, lambda: ours_mel(x), target=0.6, floor_target=0.0),
    ]
    if peers:
        rows[3:3] = [
            Row("STFT magnitude", "nnAudio 0.3.4 STFT", lambda: nna_stft(x)),
            Row("STFT magnitude", "librosa stft (batched)", lib_stft),
        ]
        rows += [
            Row("Mel (power 2)", "nnAudio 0.3.4 MelSpectrogram", lambda: nna_mel(x)),
            Row("Mel (power 2)", "librosa melspectrogram (batched)", lib_mel),
        ]
    # frozen cases run without autograd, as in a data pipeline
    rows = [dataclasses.replace(r, fn=_no_grad(r.fn)) for r in rows]
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
                Row(
                    "Trainable STFT fwd+bwd",
                    "GEMM floor: 2 kernel products + 2 kernel gradients",
                    _gemm_floor(x),
                    check=False,
                ),
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
        if not r.ref and r.check:
            err = _rel(r.fn(), refs[r.group])
            print(
                f"  check {r.group:24s} {r.name:36s} rel. error vs reference {err:.1e}",
                file=sys.stderr,
            )


def _table(rows: list[Row], timings: dict[str, Timing], sr: int) -> list[list[str]]:
    ref_ms = {r.group: timings[r.name].median for r in rows if r.ref}
    ref_min = {r.group: timings[r.name].min for r in rows if r.ref}
    floor = next(timings[r.name].median for r in rows if r.floor)
    table = []
    for r in rows:
        t = timings[r.name]
        ratio = t.median / ref_ms[r.group]
        verdict = (
            ""
            if r.target is None
            else f" (target <= {r.target:.2f}x: {'met' if ratio <= r.target else 'missed'})"
        )
        over_floor = ""
        if r.floor_target is not None:
            f = t.median / floor
            over_floor = f"{f:.2f}x"
            if r.floor_target:
                met = "met" if f <= r.floor_target else "missed"
                over_floor += f" (target <= {r.floor_target:.1f}x: {met})"
        table.append(
            [
                r.group,
                f"{sr / 1000:g} kHz",
                r.name,
                t.fmt(),
                f"{ratio:.2f}x{verdict}",
                f"{t.min / ref_min[r.group]:.2f}x",
                over_floor,
            ]
        )
    return table


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="22.05 kHz only, 5 rounds")
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), nargs="+", default=sorted(SCENARIOS))
    ap.add_argument("--sr", type=int, nargs="+", default=[22050, 44100])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--no-backward", action="store_true", help="skip the trainable fwd+bwd group")
    args = ap.parse_args(argv)
    if args.quick:
        args.sr, args.rounds = [22050], 5
    if len(args.scenario) > 1:  # each in a fresh process
        rest = ["--sr", *map(str, args.sr), "--rounds", str(args.rounds)]
        rest += ["--batch", str(args.batch), "--seconds", str(args.seconds)]
        rest += ["--no-backward"] if args.no_backward else []
        for sc in args.scenario:
            if scenario_process("bench.bench_fourier", sc, rest):
                raise SystemExit(f"scenario {sc} failed")
        return
    (scenario,) = args.scenario
    threads, description = SCENARIOS[scenario]
    set_threads(threads)
    if scenario == "d":
        tune_allocator()
    table = []
    for sr in args.sr:
        print(f"{description}, {sr} Hz: building and checking ...", file=sys.stderr)
        rows = build_rows(sr, args.batch, args.seconds, not args.no_backward, scenario == "b")
        timings = time_scenario([Case(r.name, r.fn) for r in rows], scenario, rounds=args.rounds)
        table += _table(rows, timings, sr)
    print(
        f"\n#### {description}\n\nBatch {args.batch} x {args.seconds:g} s, n_fft {N_FFT}, hop "
        f"{HOP}, {N_MELS} mels; median (min-max) of {args.rounds} interleaved rounds; ratios to "
        f"the group's first row. Machine: {machine_details()}\n"
    )
    header = ["transform", "rate", "implementation", "ms", "ratio of medians", "ratio of minima"]
    print(markdown_table([*header, "x FFT floor"], table), flush=True)


if __name__ == "__main__":
    main()
