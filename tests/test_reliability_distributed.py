"""Two ranks (gloo, ``torch.multiprocessing.spawn``) x two DataLoader workers each: WebDataset
shards split by node and worker, ``torchdata.nodes`` and the iterable wrapper split by rank, and
DDP training with a trainable front end (``examples/ddp_train.py``).

Every scenario runs in one spawn of two ranks (starting ranks is the costly part); each rank writes
what it saw to a JSON file and the test process checks the union. A watchdog kills the ranks and
fails the test if they do not finish: fewer shards than consumers must be an error, never a hang.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.distributed as dist
import webdataset as wds
from torch.utils.data import DataLoader
from torchdata import nodes

from nnaudio_data.pipeline import (
    AudioDataset,
    AudioHandler,
    AudioIterableDataset,
    SkipCounter,
    SplitSampler,
    WaveCollate,
    audio_nodes,
    audio_pipeline,
)

ROOT = Path(__file__).resolve().parent.parent
SR = 8000
WORLD = 2
WORKERS = 2
PER_SHARD = 3
TIMEOUT_S = 240  # generous on a loaded 2-core machine; a hang would never end


def _write_shards(folder: Path, n: int, corrupt: str | None = None) -> list[str]:
    folder.mkdir()
    paths = []
    for s in range(n):
        path = folder / f"shard-{s:02d}.tar"
        with wds.TarWriter(str(path)) as sink:
            for i in range(PER_SHARD):
                key = f"{folder.name}-{s:02d}-{i}"
                audio = 0.1 * np.random.default_rng(s * 10 + i).standard_normal(200 + 30 * i)
                buf = io.BytesIO()
                sf.write(buf, audio, SR, format="WAV", subtype="PCM_16")
                data = b"garbage" * 20 if key == corrupt else buf.getvalue()
                sink.write({"__key__": key, "wav": data, "cls": i})
        paths.append(str(path))
    return paths


def _keys(loader: Any) -> dict[str, Any]:
    counter = SkipCounter()
    keys = [k for b in counter.wrap(loader) for k in b.keys]
    return {
        "keys": keys,
        "skipped": counter.counts,
        "samples": counter.samples,
        "batches": counter.batches,
    }


def _webloader(dataset: Any) -> Any:
    return wds.WebLoader(
        dataset, batch_size=None, num_workers=WORKERS, multiprocessing_context="fork"
    )


def _rank_main(rank: int, store: str, root: str, scenarios: dict[str, list[str]]) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    fork = {"num_workers": WORKERS, "multiprocessing_context": "fork"}
    out: dict[str, Any] = {}
    for name in ("even", "uneven"):  # 4 shards: one per consumer; 5: one consumer reads two
        out[name] = _keys(_webloader(audio_pipeline(scenarios[name], batch_size=2, policy="skip")))
    fluent = (
        wds.WebDataset(scenarios["even"], shardshuffle=False, nodesplitter=wds.split_by_node)
        .decode(AudioHandler("skip"))
        .batched(2, collation_fn=WaveCollate(policy="skip"))
    )
    out["webdataset_splitters"] = _keys(_webloader(fluent))
    try:
        _keys(_webloader(audio_pipeline(scenarios["few"], batch_size=2, policy="skip")))
        out["few"] = "no error"
    except ValueError as error:  # raised in each worker, re-raised here by the DataLoader
        out["few"] = str(error)
    files = scenarios["files"]
    mapped = AudioDataset(files, policy="skip")
    out["nodes"] = _keys(
        nodes.Loader(
            audio_nodes(
                mapped,
                batch_size=2,
                shuffle=True,
                seed=3,
                multiprocessing_context="fork",
                num_workers=WORKERS,
            )
        )
    )
    # the same with SplitSampler(drop_last=True) and a collective per batch, as a DDP step has:
    # every rank must call it equally often or the one with a batch more waits for ever
    sampler = SplitSampler(len(mapped), shuffle=True, seed=3, drop_last=True)
    even = audio_nodes(
        mapped, batch_size=2, sampler=sampler, multiprocessing_context="fork", num_workers=WORKERS
    )
    keys, steps = [], 0
    for batch in nodes.Loader(even):
        dist.all_reduce(torch.ones(1))
        keys += batch.keys
        steps += 1
    out["nodes_drop_last"] = {"keys": keys, "steps": steps}
    stream = AudioIterableDataset(files, policy="skip")
    out["iterable"] = _keys(DataLoader(stream, batch_size=2, collate_fn=stream.collate, **fork))
    dist.barrier()  # both ranks got here: nothing waits on a missing peer
    Path(root, f"rank{rank}.json").write_text(json.dumps(out))
    dist.destroy_process_group()


def _spawn(fn: Any, args: tuple[Any, ...]) -> None:
    context = torch.multiprocessing.start_processes(
        fn, args=args, nprocs=WORLD, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=2):  # raises if a rank failed
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the ranks did not finish within {TIMEOUT_S} s (a hang)")


def test_two_ranks_two_workers_split_every_sample_once(tmp_path: Path) -> None:
    scenarios = {
        "even": _write_shards(tmp_path / "even", 4, corrupt="even-02-1"),
        "uneven": _write_shards(tmp_path / "uneven", 5),
        "few": _write_shards(tmp_path / "few", 3),
    }
    files = []
    for i in range(9):
        path = tmp_path / f"f{i}.wav"
        sf.write(path, np.full(100 + 10 * i, 0.01 * i), SR, subtype="PCM_16")
        files.append(str(path))
    scenarios["files"] = files
    _spawn(_rank_main, (str(tmp_path / "store"), str(tmp_path), scenarios))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]

    def union(name: str) -> list[str]:
        keys = [k for r in ranks for k in r[name]["keys"]]
        assert len(keys) == len(set(keys)), f"{name}: a key was read twice"
        return sorted(keys)

    even = [f"even-{s:02d}-{i}" for s in range(4) for i in range(PER_SHARD)]
    for name in ("even", "webdataset_splitters"):
        assert union(name) == sorted(set(even) - {"even-02-1"}), name
        # 4 shards over 2 x 2 consumers: each rank reads two whole shards
        assert [r[name]["samples"] + sum(r[name]["skipped"].values()) for r in ranks] == [6, 6]
        assert sum(r[name]["skipped"].get("decode_error", 0) for r in ranks) == 1
    uneven = [f"uneven-{s:02d}-{i}" for s in range(5) for i in range(PER_SHARD)]
    assert union("uneven") == sorted(uneven)
    assert sorted(len(r["uneven"]["keys"]) for r in ranks) == [6, 9]  # shards 0,1,4 | 2,3
    for r in ranks:
        # the DataLoader re-raises the worker's ValueError with its traceback around the message
        assert "3 shard(s) cannot feed 2 rank(s) x 2 worker(s) = 4 consumers" in r["few"]
    for name in ("nodes", "iterable"):  # split by rank (and by worker for the iterable)
        assert union(name) == sorted(files), name
        assert sorted(len(r[name]["keys"]) for r in ranks) == [4, 5], name
    # 9 items, batches of 2: 5 items (3 batches) on one rank, 4 (2 batches) on the other - under
    # DDP the rank with the third batch would wait for ever; drop_last=True evens them out
    assert sorted(r["nodes"]["batches"] for r in ranks) == [2, 3]
    assert [r["nodes_drop_last"]["steps"] for r in ranks] == [2, 2]
    even = [k for r in ranks for k in r["nodes_drop_last"]["keys"]]
    assert len(even) == len(set(even)) == 8 and set(even) < set(files)


def test_split_sampler_drop_last_evens_the_ranks() -> None:
    def shares(epoch: int) -> list[list[int]]:
        out = []
        for rank in range(3):
            sampler = SplitSampler(
                10, shuffle=True, seed=1, rank=rank, world_size=3, drop_last=True
            )
            sampler.set_epoch(epoch)
            assert len(sampler) == 3
            out.append(list(sampler))
        return out

    left_out = []
    for epoch in range(4):
        ranks = shares(epoch)
        flat = [i for r in ranks for i in r]
        assert [len(r) for r in ranks] == [3, 3, 3] and len(set(flat)) == 9  # no repeats
        left_out += sorted(set(range(10)) - set(flat))
    assert len(set(left_out)) > 1  # shuffled: a different item is left out across epochs
    assert [len(SplitSampler(10, rank=r, world_size=3)) for r in range(3)] == [4, 3, 3]


def test_ddp_example_keeps_front_end_identical_across_ranks(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "ddp_train.py"),
            "--world-size",
            "2",
            "--steps",
            "3",
            "--workers",
            "1",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 ranks, 3 steps" in proc.stdout
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    initial = torch.load(tmp_path / "initial.pt", weights_only=True)
    assert "mel_basis" in states[0] and set(states[0]) == set(states[1])
    for name in states[0]:
        # DDP averages the gradients and every rank applies the same Adam step: bit-identical
        assert torch.equal(states[0][name], states[1][name]), name
    assert not torch.equal(states[0]["mel_basis"], initial["mel_basis"])  # it was trained
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["filters_max_difference_across_ranks"] == 0.0
    assert len(summary["losses"]) == 3 and all(np.isfinite(summary["losses"]))
    seen = [summary["keys"][str(r)] for r in range(2)]
    # DistributedSampler gives the two ranks disjoint halves of each epoch
    assert len(seen[0]) == len(seen[1]) == 3 * 4 and not set(seen[0]) & set(seen[1])
