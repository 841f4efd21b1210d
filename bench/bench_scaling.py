"""Scaling: time per second of audio and peak memory against clip length (1 s - 10 min) and batch
size (1 - 64), for our STFT magnitude, MelSpectrogram (128), CQT1992v2 (84 bins, folded spectrum)
and a front end (the ``kaldi-fbank-80`` recipe at 16 kHz). A script, not a test.

Cost should grow linearly with the work: the time per second of audio should stay flat along
each axis, with no step. Each point is the median of a few calls after a warm-up call (the
warm-up's time is printed too: the CQT plans its folded spectrum once per padded length, which
costs about 0.1 s per second of audio the first time that length is seen). Peak memory is the
torch allocator's peak of one call (``bench._common.peak_memory``), also per second of audio.
Threads: 2 (``--threads``).

Run from the repository root: ``python -m bench.bench_scaling [--long]`` (``--long`` adds 10 min
clips for the CQT too: its first call then plans for about a minute).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from bench._common import machine_details, make_batch, markdown_table, peak_memory, set_threads
from nnaudio_data.features.cqt import CQT1992v2
from nnaudio_data.features.mel import MelSpectrogram
from nnaudio_data.features.stft import STFT
from nnaudio_data.recipes import load_recipe

#: (clip seconds, batch): the length axis at batch 1, the batch axis at 4 s
GRID = [(1.0, 1), (10.0, 1), (60.0, 1), (600.0, 1), (4.0, 1), (4.0, 4), (4.0, 16), (4.0, 64)]


def transforms(long: bool) -> dict[str, tuple[int, Callable[[torch.Tensor], object], float]]:
    """name -> (sample rate, transform, longest clip in s)."""
    front = load_recipe("kaldi-fbank-80")
    return {
        "STFT magnitude (n_fft 2048)": (
            22050,
            STFT(n_fft=2048, hop_length=512, output_format="Magnitude"),
            600.0,
        ),
        "MelSpectrogram 128": (22050, MelSpectrogram(sr=22050, n_fft=2048, n_mels=128), 600.0),
        "CQT1992v2 84 bins": (22050, CQT1992v2(sr=22050), 600.0 if long else 60.0),
        "kaldi-fbank-80 (recipe)": (16000, front, 600.0),
    }


def _time(fn: Callable[[], object], reps: int) -> float:
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--long", action="store_true", help="10 min clips for the CQT too")
    args = ap.parse_args()
    set_threads(args.threads)
    rows = []
    with torch.no_grad():
        for name, (sr, module, longest) in transforms(args.long).items():
            for seconds, batch in GRID:
                if seconds > longest:
                    continue
                x = torch.from_numpy(make_batch(batch, seconds, sr))
                audio = batch * seconds
                t0 = time.perf_counter()
                module(x)
                first = (time.perf_counter() - t0) * 1e3
                reps = 5 if audio <= 64 else 2
                ms = _time(lambda x=x, module=module: module(x), reps)
                peak = peak_memory(
                    lambda a, module=module: module(torch.from_numpy(a)), x.numpy(), True
                )
                rows.append(
                    [
                        name,
                        f"{seconds:g} s x {batch}",
                        f"{ms:.1f}",
                        f"{ms / audio:.2f}",
                        f"{first:.0f}",
                        f"{peak:.0f}",
                        f"{peak / audio:.2f}",
                    ]
                )
                print(" | ".join(rows[-1]), flush=True)
    print(f"\nMachine: {machine_details()}\n")
    header = [
        "transform",
        "clip x batch",
        "ms per call",
        "ms per s of audio",
        "first call ms",
        "peak MiB",
        "peak MiB per s",
    ]
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
