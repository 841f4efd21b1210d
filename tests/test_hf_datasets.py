"""Hugging Face ``datasets`` rows through the collate functions, the dataset wrappers and
``set_transform``: a real ``datasets.Dataset`` built from local files (decoded and
``Audio(decode=False)``), real DataLoader workers, and two gloo ranks.

References come from outside the adapters: the same files collated as plain paths (soundfile
decoding, the path already tested against librosa-free reads) and the ``TorchStft`` of each clip
alone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
import soundfile as sf
import torch
import torch.distributed as dist
from datasets.distributed import split_dataset_by_node
from test_pipeline_collate import TorchStft
from torch.utils.data import DataLoader

from nnaudio_data.batch import SpecBatch
from nnaudio_data.pipeline import (
    AudioDataset,
    AudioIterableDataset,
    HFTransform,
    SkipCounter,
    SpecCollate,
    WaveCollate,
)

SR = 16000
N = 12
WORKERS = 2
TIMEOUT_S = 240


def _write(folder: Path, n: int = N) -> list[dict[str, Any]]:
    """Real files: mono int16 WAV at 16 kHz, FLAC at 8 kHz, stereo WAV; lengths differ."""
    folder.mkdir(exist_ok=True)
    rows = []
    for i in range(n):
        sr = 8000 if i % 3 == 1 else SR
        channels = 2 if i % 3 == 2 else 1
        audio = 0.3 * np.random.default_rng(i).standard_normal((1200 + 170 * i, channels))
        path = folder / f"clip{i:02d}.{'flac' if i % 3 == 1 else 'wav'}"
        sf.write(path, audio, sr, subtype="PCM_16")
        rows.append({"id": i, "path": str(path), "label": i % 4, "speaker": f"s{i % 2}"})
    return rows


def _bytes_dataset(rows: list[dict[str, Any]]) -> datasets.Dataset:
    """``Audio(decode=False)``: each row's audio is ``{"bytes", "path"}``."""
    ds = datasets.Dataset.from_dict(
        {
            "audio": [r["path"] for r in rows],
            "id": [r["id"] for r in rows],
            "label": [r["label"] for r in rows],
            "speaker": [r["speaker"] for r in rows],
        }
    )
    return ds.cast_column("audio", datasets.Audio(decode=False))


def _decoded_dataset(rows: list[dict[str, Any]]) -> datasets.Dataset:
    """Decoded rows ``{"array": (channels, time) float32, "sampling_rate"}``, as ``datasets``
    gives them (read here with soundfile, as torchcodec would)."""
    audio = []
    for r in rows:
        data, sr = sf.read(r["path"], dtype="float32", always_2d=True)
        audio.append({"array": data.T, "sampling_rate": sr})  # mono as (1, time)
    return datasets.Dataset.from_dict(
        {"audio": audio, "id": [r["id"] for r in rows], "label": [r["label"] for r in rows]}
    )


def _loader(dataset: Any, batch_size: int = 5, **kwargs: Any) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=WORKERS,
        multiprocessing_context="fork",
        collate_fn=dataset.collate,
        **kwargs,
    )


COLLATE = {"sample_rate": SR, "resample": True, "mono": True}


def test_issue_example_decoded_row_collates() -> None:
    x = np.random.default_rng(0).standard_normal(1600).astype(np.float32)
    batch = WaveCollate()([{"audio": {"array": x, "sampling_rate": SR}, "label": 1}])
    assert batch.sample_rate == SR and batch.lengths.tolist() == [1600]
    assert torch.equal(batch.audio[0], torch.from_numpy(x)) and batch.labels.tolist() == [1]
    with pytest.raises(ValueError, match=r"'array' and 'sampling_rate'.*got keys \['wave'\]"):
        WaveCollate()([{"audio": {"wave": x}, "label": 1}])


def test_map_style_bytes_and_decoded_equal_the_files_in_two_workers(tmp_path: Path) -> None:
    rows = _write(tmp_path / "clips")
    stft = TorchStft()
    paths = [r["path"] for r in rows]
    # the files as paths, in the same batches of 5 (the same padding)
    reference = [SpecCollate(stft, **COLLATE)(paths[i : i + 5]) for i in range(0, N, 5)]
    for ds in (_bytes_dataset(rows), _decoded_dataset(rows)):
        dataset = AudioDataset(ds, transform=stft, **COLLATE)
        batches = list(_loader(dataset))
        assert all(isinstance(b, SpecBatch) for b in batches) and len(batches) == len(reference)
        ids = [m["id"] for b in batches for m in b.meta]
        assert ids == list(range(N))  # every row once, in order
        for b, ref in zip(batches, reference):
            assert b.labels.dtype == torch.int64
            assert b.labels.tolist() == [rows[m["id"]]["label"] for m in b.meta]
            assert torch.equal(b.lengths, ref.lengths)
            # the same samples (soundfile's float read of 16-bit PCM is the integers / 2**15)
            # through the same float32 transform: equal to rounding
            torch.testing.assert_close(b.spec, ref.spec, rtol=1e-6, atol=1e-6)
    keys = [k for b in _loader(AudioDataset(_bytes_dataset(rows), **COLLATE)) for k in b.keys]
    assert keys == [r["path"] for r in rows]  # decode=False rows are named by their path
    speakers = [m["speaker"] for b in _loader(AudioDataset(_bytes_dataset(rows), **COLLATE))
                for m in b.meta]  # fmt: skip
    assert speakers == [r["speaker"] for r in rows]


def test_numpy_and_torch_formats_and_label_column(tmp_path: Path) -> None:
    rows = _write(tmp_path / "clips", 4)
    ds = _decoded_dataset(rows).add_column("target", [[0, 1, 1], [1, 0, 0], [0, 0, 1], [1, 1, 0]])
    plain = WaveCollate(**COLLATE, label_key="target")([ds[i] for i in range(4)])
    for fmt in ("numpy", "torch"):
        formatted = ds.with_format(fmt)
        batch = WaveCollate(**COLLATE, label_key="target")([formatted[i] for i in range(4)])
        assert torch.equal(batch.audio, plain.audio) and torch.equal(batch.lengths, plain.lengths)
        assert torch.equal(batch.labels, plain.labels)
    assert plain.labels.dtype == torch.int64 and plain.labels.shape == (4, 3)  # multi-hot
    assert [m["label"] for m in plain.meta] == [r["label"] for r in rows]  # other columns


def test_streaming_iterable_split_by_workers(tmp_path: Path) -> None:
    rows = _write(tmp_path / "clips")
    for shards in (4, 3):
        stream = _bytes_dataset(rows).to_iterable_dataset(num_shards=shards)
        dataset = AudioIterableDataset(stream, policy="skip", **COLLATE)
        counter = SkipCounter()
        ids = [m["id"] for b in counter.wrap(_loader(dataset, batch_size=2)) for m in b.meta]
        assert sorted(ids) == list(range(N)) and counter.total == 0, shards  # once each


def test_set_transform_batch_function(tmp_path: Path) -> None:
    rows = _write(tmp_path / "clips", 5)
    stft = TorchStft()
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really audio" * 4)
    ds = _bytes_dataset([*rows, {"id": 99, "path": str(broken), "label": 0, "speaker": "s9"}])
    view = ds.with_transform(HFTransform(stft, policy="skip", **COLLATE))
    alone = SpecCollate(stft, **COLLATE)([rows[2]["path"]])
    one = view[2]
    assert one["id"] == 2 and one["label"] == rows[2]["label"] and "audio" not in one
    n = int(alone.lengths[0])
    assert one["length"] == n and one["spec"].shape == (129, n)
    torch.testing.assert_close(one["spec"], alone.spec[0], rtol=1e-6, atol=1e-6)
    many = view[:]  # one batch of 6 rows: the 5 clips padded as the reference batch is
    reference = SpecCollate(stft, **COLLATE)([r["path"] for r in rows])
    assert many["length"][:5] == reference.lengths.tolist()
    for i, n in enumerate(reference.lengths.tolist()):
        torch.testing.assert_close(many["spec"][i], reference.spec[i, :, :n], rtol=1e-6, atol=1e-6)
    assert many["spec"][5] is None and many["length"][5] == 0  # the broken row, skipped
    with pytest.raises(ValueError, match=r"broken\.wav"):  # policy "raise" names it
        ds.with_transform(HFTransform(stft, **COLLATE))[5]


# -- two gloo ranks -----------------------------------------------------------------------------


def _rank_main(rank: int, store: str, root: str, rows: list[dict[str, Any]]) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    out: dict[str, list[int]] = {}
    mine = split_dataset_by_node(_bytes_dataset(rows), rank=rank, world_size=2)
    mapped = AudioDataset(mine, **COLLATE)
    out["map"] = [m["id"] for b in _loader(mapped, batch_size=2) for m in b.meta]
    for shards in (4, 3):  # one shard per consumer; 3 shards: split by rows across ranks
        stream = AudioIterableDataset(
            _bytes_dataset(rows).to_iterable_dataset(num_shards=shards), **COLLATE
        )
        out[f"stream{shards}"] = [m["id"] for b in _loader(stream, batch_size=2) for m in b.meta]
    dist.barrier()
    Path(root, f"rank{rank}.json").write_text(json.dumps(out))
    dist.destroy_process_group()


def test_two_gloo_ranks_two_workers_read_each_row_once(tmp_path: Path) -> None:
    rows = _write(tmp_path / "clips")
    context = torch.multiprocessing.start_processes(
        _rank_main,
        args=(str(tmp_path / "store"), str(tmp_path), rows),
        nprocs=2,
        join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=2):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the ranks did not finish within {TIMEOUT_S} s")
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for name in ("map", "stream4", "stream3"):
        ids = [i for r in ranks for i in r[name]]
        assert sorted(ids) == list(range(N)), name  # disjoint and covering
        assert all(len(r[name]) == N // 2 for r in ranks), name
