"""The adapters the hostile-input tests put every input through, and the accounting they check.

``loaders(...)`` builds, for one policy, each adapter over the same inputs: the collate function
in a ``DataLoader`` with 0 and 2 worker processes, the map-style and iterable dataset wrappers
(2 workers), ``audio_nodes`` in a ``torchdata.nodes.Loader`` (0 and 2 worker processes) and
``audio_pipeline`` in a ``WebLoader`` (0 and 2 workers). An STFT runs on each batch in the worker.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import _faults
import torch
import webdataset as wds
from torch.utils.data import DataLoader
from torchdata import nodes

from nnaudio_data.batch import SpecBatch
from nnaudio_data.features.stft import STFT
from nnaudio_data.pipeline import (
    AudioDataset,
    AudioIterableDataset,
    SkipCounter,
    SpecCollate,
    audio_nodes,
    audio_pipeline,
)

SR = _faults.SR
N_FFT, HOP = 512, 256
COLLATE = {"sample_rate": SR, "mono": True, "resample": True}
FORK = "fork"


def stft() -> STFT:
    return STFT(n_fft=N_FFT, hop_length=HOP, output_format="Magnitude")


def stem(key: str) -> str:
    """``'/x/gzipped.wav.gz'`` -> ``'gzipped'`` (a shard's keys are already stems)."""
    return Path(key).name.split(".")[0]


Build = Callable[[str], Iterable[Any]]


def file_adapters(paths: Sequence[str]) -> dict[str, Build]:
    """Adapters over files (paths), by name; each takes the policy."""

    def collate(workers: int) -> Build:
        return lambda policy: DataLoader(
            list(paths),
            batch_size=3,
            collate_fn=SpecCollate(stft(), policy=policy, **COLLATE),
            num_workers=workers,
            multiprocessing_context=FORK if workers else None,
        )

    def dataset(policy: str) -> Iterable[Any]:
        ds = AudioDataset(list(paths), transform=stft(), policy=policy, **COLLATE)
        return DataLoader(
            ds, batch_size=3, collate_fn=ds.collate, num_workers=2, multiprocessing_context=FORK
        )

    def graph(workers: int) -> Build:
        return lambda policy: nodes.Loader(
            audio_nodes(
                list(paths),
                batch_size=3,
                transform=stft(),
                policy=policy,
                num_workers=workers,
                multiprocessing_context=FORK if workers else None,
                **COLLATE,
            )
        )

    return {
        "collate_fn/0": collate(0),
        "collate_fn/2": collate(2),
        "AudioDataset/2": dataset,
        "audio_nodes/0": graph(0),
        "audio_nodes/2": graph(2),
    }


def record_adapters(records: Sequence[dict[str, Any]]) -> dict[str, Build]:
    """The iterable dataset wrapper over in-memory records (2 workers)."""

    def iterable(policy: str) -> Iterable[Any]:
        ds = AudioIterableDataset(list(records), transform=stft(), policy=policy, **COLLATE)
        return DataLoader(
            ds, batch_size=3, collate_fn=ds.collate, num_workers=2, multiprocessing_context=FORK
        )

    return {"AudioIterableDataset/2": iterable}


def shard_adapters(shards: Sequence[str]) -> dict[str, Build]:
    """``audio_pipeline`` in a ``WebLoader`` with 0 and 2 workers (2 needs 2 shards or more)."""

    def web(workers: int) -> Build:
        return lambda policy: wds.WebLoader(
            audio_pipeline(list(shards), batch_size=3, transform=stft(), policy=policy, **COLLATE),
            batch_size=None,
            num_workers=workers,
            multiprocessing_context=FORK if workers else None,
        )

    return {"WebLoader/0": web(0), "WebLoader/2": web(2)}


def drain(batches: Iterable[Any]) -> tuple[dict[str, SpecBatch], SkipCounter]:
    """Every delivered item as a one-item view ``{stem: (spec, frames)}``, and the counts."""
    counter = SkipCounter()
    out: dict[str, Any] = {}
    for batch in counter.wrap(batches):
        assert isinstance(batch, SpecBatch)
        for i, key in enumerate(batch.keys):
            frames = int(batch.lengths[i])
            assert stem(key) not in out, f"{key} delivered twice"
            out[stem(key)] = batch.spec[i, :, :frames].clone()
    return out, counter


def check_accounting(
    delivered: dict[str, torch.Tensor],
    counter: SkipCounter,
    expected: dict[str, str | None],
    where: str,
) -> None:
    """Delivered keys and counts by reason are what each input is; delivered + counted = given."""
    want_keys = sorted(k for k, r in expected.items() if r is None)
    want_counts: dict[str, int] = {}
    for reason in expected.values():
        if reason is not None:
            want_counts[reason] = want_counts.get(reason, 0) + 1
    assert sorted(delivered) == want_keys, where
    assert counter.counts == want_counts, where
    assert counter.samples + counter.total == len(expected), where
    for key, spec in delivered.items():
        assert bool(torch.isfinite(spec).all()), (where, key)


def children() -> list[tuple[int, str]]:
    """``(pid, state)`` of this process's child processes (``Z``: a zombie), from ``/proc``."""
    me = os.getpid()
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            out.append((int(entry), fields[0]))
    return out
