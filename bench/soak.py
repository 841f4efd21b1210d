"""Soak: stream many batches through the CPU pipeline and watch resident memory.

The pipeline is the one the CLI runs on the CPU: an ``AudioDataset`` of encoded clips (FLAC and
WAV bytes held in memory, lengths 0.2-0.9 s, one in 50 corrupt so the skip path runs too), a
``DataLoader`` with worker processes, and a log-mel front end inside the workers
(``SpecCollate``). The main process counts skips with a ``SkipCounter`` and reads its resident
memory (``VmRSS`` in ``/proc/self/status``) and its workers' (``/proc/<pid>/status`` of its child
processes) every ``--every`` batches. After ``--warmup`` batches the memory should stay flat:
the script reports the growth after warm-up (largest value seen minus the value at the end of
warm-up) and the least-squares slope in MB per 1,000 batches.

Run from the repository root::

    python -m bench.soak                          # 10,000 batches, a table of RSS over time
    python -m bench.soak --batches 400 --json     # what the test runs

Linux only (it reads ``/proc``).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from nnaudio_data.compose import Compose
from nnaudio_data.features.mel import MelSpectrogram
from nnaudio_data.ops import Log
from nnaudio_data.pipeline import AudioDataset, SkipCounter

SR = 16000
N_CLIPS = 64
CORRUPT_EVERY = 50


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process in MB (``VmRSS``), 0 if it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def children() -> list[int]:
    """Process ids of this process's children (the DataLoader workers)."""
    pids: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return pids


def make_clips(n: int = N_CLIPS, seed: int = 0) -> list[bytes]:
    """``n`` encoded clips of 0.2-0.9 s (FLAC and int16 WAV, noise and tones)."""
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        length = int(SR * rng.uniform(0.2, 0.9))
        t = np.arange(length) / SR
        audio = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 3000) * t)
        audio += 0.05 * rng.standard_normal(length)
        buf = io.BytesIO()
        fmt = "FLAC" if i % 2 else "WAV"
        sf.write(buf, audio, SR, format=fmt, subtype="PCM_16")
        clips.append(buf.getvalue())
    return clips


class Cycle:
    """``size`` items cycling over ``clips``; every ``CORRUPT_EVERY``-th item is corrupt."""

    def __init__(self, clips: list[bytes], size: int) -> None:
        self.clips = clips
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Any]:
        data = (
            b"RIFF-not-audio" * 8
            if index % CORRUPT_EVERY == 7
            else self.clips[index % len(self.clips)]
        )
        return {"key": str(index), "audio": data}


def soak(batches: int, batch_size: int, workers: int, every: int, warmup: int) -> dict[str, Any]:
    front = Compose(MelSpectrogram(sr=SR, n_fft=400, hop_length=160, n_mels=80), Log())
    dataset = AudioDataset(
        Cycle(make_clips(), batches * batch_size), transform=front, policy="skip", sample_rate=SR
    )
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=dataset.collate,
        multiprocessing_context="fork" if workers else None,
    )
    counter = SkipCounter()
    samples: list[dict[str, float]] = []
    start = time.perf_counter()
    frames = 0
    for i, batch in enumerate(counter.wrap(loader), 1):
        frames += int(batch.lengths.sum())  # touch the batch as a training step would
        if i % every == 0 or i == batches:
            samples.append(
                {
                    "batch": i,
                    "seconds": round(time.perf_counter() - start, 2),
                    "main_mb": round(rss_mb(), 1),
                    "workers_mb": round(sum(rss_mb(p) for p in children()), 1),
                }
            )
    elapsed = time.perf_counter() - start
    after = [s for s in samples if s["batch"] >= warmup]
    summary: dict[str, Any] = {
        "batches": counter.batches,
        "batch_size": batch_size,
        "workers": workers,
        "delivered": counter.samples,
        "skipped": counter.counts,
        "items": batches * batch_size,
        "elapsed_seconds": round(elapsed, 1),
        "batches_per_second": round(counter.batches / elapsed, 1),
        "warmup_batches": warmup,
        "samples": samples,
    }
    for part in ("main_mb", "workers_mb"):
        values = np.array([s[part] for s in after])
        x = np.array([s["batch"] for s in after], dtype=float)
        slope = float(np.polyfit(x, values, 1)[0]) * 1000 if len(after) > 2 else 0.0
        summary[part] = {
            "at_warmup": float(values[0]) if len(values) else None,
            "max_after_warmup": float(values.max()) if len(values) else None,
            "final": float(values[-1]) if len(values) else None,
            "growth": round(float(values.max() - values[0]), 1) if len(values) else None,
            "slope_per_1000_batches": round(slope, 2),
        }
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--every", type=int, default=500, help="batches between RSS readings")
    parser.add_argument("--warmup", type=int, default=1000, help="batches before memory counts")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON only")
    args = parser.parse_args(argv)
    # the skips are counted and reported; a warning for each of hundreds would flood the output
    logging.getLogger("nnaudio_data.pipeline").setLevel(logging.ERROR)
    torch.set_num_threads(1 if args.workers else 2)  # the workers use the two cores
    summary = soak(args.batches, args.batch_size, args.workers, args.every, args.warmup)
    if args.json:
        print(json.dumps(summary))
        return summary
    print(
        f"{summary['batches']} batches of {args.batch_size}, {args.workers} workers, "
        f"{summary['elapsed_seconds']} s ({summary['batches_per_second']} batches/s); "
        f"delivered {summary['delivered']}, skipped {summary['skipped']} of {summary['items']}"
    )
    print("| batch | s | main RSS (MB) | workers RSS (MB) |\n|---|---|---|---|")
    for s in summary["samples"]:
        print(f"| {s['batch']} | {s['seconds']} | {s['main_mb']} | {s['workers_mb']} |")
    for part in ("main_mb", "workers_mb"):
        p = summary[part]
        print(
            f"{part}: {p['at_warmup']} at warm-up, max {p['max_after_warmup']}, final "
            f"{p['final']}: growth {p['growth']} MB, slope {p['slope_per_1000_batches']} MB "
            "per 1000 batches"
        )
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
