"""Duration bucketing against plain batches: the fraction of padded frames and clips/s (a script,
not a test).

512 clips with log-normal durations (median 4 s, clipped to 1-20 s) at 16 kHz as int16 arrays in
memory, the ``log-mel-80`` recipe computed in 2 DataLoader workers (``AudioDataset``), one epoch
per timing:

- ``plain`` - ``DataLoader(batch_size=16, shuffle=True)``;
- ``bucketed`` - ``DataLoader(batch_sampler=DurationBatchSampler(durations, max_seconds=B))``
  with ``B = 16 x`` the mean duration (about the same audio per batch), 10 buckets.

Padded fraction: padded frames / all frames of the spectrogram batches. Clips/s: median (min-max)
over the rounds, the cases interleaved with a pause before each (``bench/_common.py``). The
machine (CPU model, threads, load average) is printed beside the table.

Run from the repository root: ``python -m bench.bench_bucketing [--rounds 5] [--clips 512]``.
"""

from __future__ import annotations

from bench._common import set_threads

set_threads(2)  # before numpy is used

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from bench._common import machine_details, markdown_table  # noqa: E402
from nnaudio_data.pipeline import AudioDataset, DurationBatchSampler  # noqa: E402
from nnaudio_data.recipes import load_recipe  # noqa: E402

SR = 16000
BATCH = 16


def make_clips(n: int, seed: int = 0) -> tuple[list[tuple[np.ndarray, int]], np.ndarray]:
    rng = np.random.default_rng(seed)
    seconds = np.clip(rng.lognormal(np.log(4.0), 0.7, n), 1.0, 20.0)
    clips = [
        ((rng.standard_normal(int(s * SR)) * 3000).astype(np.int16), SR) for s in seconds.tolist()
    ]
    return clips, np.array([len(c[0]) / SR for c in clips])


def epoch(loader: Any) -> dict[str, float]:
    valid = total = clips = batches = 0
    start = time.perf_counter()
    for batch in loader:
        valid += int(batch.lengths.sum())
        total += batch.spec.shape[0] * batch.spec.shape[-1]
        clips += len(batch)
        batches += 1
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "clips": clips,
        "batches": batches,
        "padded": 1 - valid / total,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    clips, durations = make_clips(args.clips)
    dataset = AudioDataset(clips, transform=load_recipe("log-mel-80"))
    common = {"num_workers": args.workers, "collate_fn": dataset.collate}
    if args.workers:
        common["multiprocessing_context"] = "fork"
    budget = BATCH * float(durations.mean())
    sampler = DurationBatchSampler(durations, max_seconds=budget, seed=0)
    loaders = {
        "plain (batch 16, shuffled)": DataLoader(
            dataset,
            batch_size=BATCH,
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
            **common,
        ),
        f"bucketed (budget {budget:.0f} s, 10 buckets)": DataLoader(
            dataset, batch_sampler=sampler, **common
        ),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in loaders}
    for _ in range(1 + args.rounds):  # the first round warms up (fork, kernels)
        for name, loader in loaders.items():
            time.sleep(0.2)
            runs[name].append(epoch(loader))
    rows = []
    speeds = {}
    for name, results in runs.items():
        timed = results[1:]
        rates = [r["clips"] / r["seconds"] for r in timed]
        speeds[name] = statistics.median(rates)
        rows.append(
            [
                name,
                f"{statistics.mean(r['batches'] for r in timed):.0f}",
                f"{statistics.mean(r['clips'] / r['batches'] for r in timed):.1f}",
                f"{100 * statistics.mean(r['padded'] for r in timed):.1f} %",
                f"{speeds[name]:.0f} ({min(rates):.0f}-{max(rates):.0f})",
            ]
        )
    plain, bucketed = speeds.values()
    print(f"machine: {machine_details()}")
    print(
        f"{args.clips} clips, {durations.sum():.0f} s of audio, durations {durations.min():.1f}-"
        f"{durations.max():.1f} s (median {np.median(durations):.1f} s), log-mel-80, "
        f"{args.workers} workers, {args.rounds} rounds"
    )
    print(
        markdown_table(
            [
                "case",
                "batches per epoch",
                "clips per batch",
                "padded frames",
                "clips/s median (min-max)",
            ],
            rows,
        )
    )
    print(f"speed-up of bucketing: {bucketed / plain:.2f}x")


if __name__ == "__main__":
    main()
