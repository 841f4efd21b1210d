"""A short soak: ``bench/soak.py`` (400 batches instead of 10,000) in its own process, so that its
resident memory is the pipeline's alone, not the test runner's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCHES, BATCH_SIZE, WARMUP = 400, 8, 100


def test_short_soak_memory_stays_flat_and_every_item_is_accounted_for() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--batches",
            str(BATCHES),
            "--batch-size",
            str(BATCH_SIZE),
            "--every",
            "25",
            "--warmup",
            str(WARMUP),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    items = BATCHES * BATCH_SIZE
    corrupt = len(range(7, items, 50))  # bench.soak makes every 50th item (from 7) corrupt
    assert summary["items"] == items and summary["batches"] == BATCHES
    assert summary["skipped"] == {"decode_error": corrupt}
    assert summary["delivered"] + corrupt == items  # nothing dropped uncounted
    assert [s["batch"] for s in summary["samples"]] == list(range(25, BATCHES + 1, 25))
    # Bounds on growth after warm-up (300 batches). Keeping one batch per step alive would add
    # about 8 x 0.55 s x 16 kHz x 4 B = 280 KB of audio in a worker and 140 KB of log-mel in the
    # main process per batch: 40+ MB in the main process and 80+ MB over the two workers after
    # 300 batches. Allocator noise seen here is 0-6 MB. So a bound of 25 MB (main) and 40 MB
    # (workers) catches a per-batch leak and leaves room for the noise.
    assert summary["main_mb"]["growth"] < 25, summary["main_mb"]
    assert summary["workers_mb"]["growth"] < 40, summary["workers_mb"]
    assert summary["main_mb"]["at_warmup"] > 0 and summary["workers_mb"]["at_warmup"] > 0
