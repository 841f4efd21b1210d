"""WebDataset: real tar shards, the audio handler, collation, the transform stage, WebLoader with
two workers, splitting by node and worker, and pickle-bearing fields never unpickled."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import webdataset as wds
from test_pipeline_collate import TorchStft, check_against_items

from nnaudio_data.batch import SpecBatch, WaveBatch
from nnaudio_data.io import DecodeError, SampleError
from nnaudio_data.pipeline import (
    AudioHandler,
    BatchTransform,
    SkipCounter,
    Skipped,
    WaveCollate,
    audio_pipeline,
    split_shards,
)
from nnaudio_data.pipeline.samples import PCM

SR = 16000


def _encode(data: np.ndarray, fmt: str, subtype: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, data, SR, format=fmt, subtype=subtype)
    return buf.getvalue()


def _write_shards(tmp_path: Path, n_shards: int = 4, per_shard: int = 5) -> tuple[str, dict]:
    """Shards of FLAC (int16) and WAV (float64) clips with ``cls`` labels; ``s0007`` is corrupt.

    Returns the brace pattern and ``{key: audio (time,) float32 read by soundfile directly}``.
    """
    rng = np.random.default_rng(0)
    clips = {}
    for s in range(n_shards):
        with wds.TarWriter(str(tmp_path / f"shard-{s:02d}.tar")) as sink:
            for i in range(per_shard):
                index = s * per_shard + i
                key = f"s{index:04d}"
                audio = 0.3 * rng.standard_normal(600 + 97 * index)
                sample = {"__key__": key, "cls": index % 4}
                if key == "s0007":
                    sample["flac"] = b"fLaC-but-not-really" * 10
                else:
                    ext, fmt, subtype = (
                        ("flac", "FLAC", "PCM_16") if index % 2 else ("wav", "WAV", "DOUBLE")
                    )
                    sample[ext] = _encode(audio, fmt, subtype)
                    clips[key] = sf.read(io.BytesIO(sample[ext]), dtype="float32")[0]
                sink.write(sample)
    return str(tmp_path / f"shard-{{00..{n_shards - 1:02d}}}.tar"), clips


def test_webdataset_fluent_pipeline_with_webloader(tmp_path: Path) -> None:
    urls, clips = _write_shards(tmp_path)
    stft = TorchStft()
    dataset = (
        wds.WebDataset(urls, shardshuffle=False, nodesplitter=wds.split_by_node)
        .decode(AudioHandler("skip"))
        .batched(3, collation_fn=WaveCollate(policy="skip"))
        .map(BatchTransform(stft))
    )
    loader = wds.WebLoader(dataset, batch_size=None, num_workers=2, multiprocessing_context="fork")
    counter = SkipCounter()
    keys = []
    for batch in counter.wrap(loader):
        assert isinstance(batch, SpecBatch)
        assert batch.labels is not None
        assert torch.as_tensor(batch.labels).tolist() == [int(k[1:]) % 4 for k in batch.keys]
        check_against_items(batch, stft, clips.__getitem__)
        keys += batch.keys
    assert sorted(keys) == sorted(clips) and len(keys) == len(set(keys))
    assert counter.counts == {"decode_error": 1}


def test_audio_pipeline_raise_and_skip(tmp_path: Path) -> None:
    urls, clips = _write_shards(tmp_path)
    stft = TorchStft()
    pipeline = audio_pipeline(urls, batch_size=4, transform=stft, policy="skip")
    loader = wds.WebLoader(pipeline, batch_size=None, num_workers=2, multiprocessing_context="fork")
    counter = SkipCounter()
    keys = []
    for batch in counter.wrap(loader):
        check_against_items(batch, stft, clips.__getitem__)
        keys += batch.keys
    assert sorted(keys) == sorted(clips) and counter.counts == {"decode_error": 1}
    strict = audio_pipeline(urls, batch_size=4)
    with pytest.raises(DecodeError, match="s0007") as info:
        list(strict)
    assert info.value.reason == "decode_error"


def test_shuffled_pipeline_wave_batches(tmp_path: Path) -> None:
    urls, clips = _write_shards(tmp_path, n_shards=2)
    first = [b.keys for b in audio_pipeline(urls, batch_size=4, policy="skip", shuffle=8, seed=3)]
    again = [b.keys for b in audio_pipeline(urls, batch_size=4, policy="skip", shuffle=8, seed=3)]
    flat = [k for keys in first for k in keys]
    assert first == again  # the same seed gives the same order
    assert flat != sorted(flat) and sorted(flat) == sorted(clips)
    batch = next(iter(audio_pipeline(urls, batch_size=4, policy="skip")))
    assert isinstance(batch, WaveBatch) and batch.audio.shape[0] == 4


@pytest.mark.parametrize("splitter", ["ours", "webdataset"])
def test_split_by_node_and_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, splitter: str
) -> None:
    urls, clips = _write_shards(tmp_path, n_shards=4, per_shard=3)
    per_rank = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))  # what torchrun sets; both splitters read it
        monkeypatch.setenv("WORLD_SIZE", "2")
        if splitter == "ours":
            dataset = audio_pipeline(urls, batch_size=2, policy="skip")
        else:
            dataset = (
                wds.WebDataset(urls, shardshuffle=False, nodesplitter=wds.split_by_node)
                .decode(AudioHandler("skip"))
                .batched(2, collation_fn=WaveCollate(policy="skip"))
            )
        loader = wds.WebLoader(
            dataset, batch_size=None, num_workers=2, multiprocessing_context="fork"
        )
        counter = SkipCounter()
        per_rank.append([k for b in counter.wrap(loader) for k in b.keys])
    # 4 shards over 2 ranks x 2 workers: each rank reads two whole shards
    assert all(len(keys) in (5, 6) for keys in per_rank)
    union = per_rank[0] + per_rank[1]
    assert sorted(union) == sorted(clips) and len(union) == len(set(union))


class _SplitInWorker(torch.utils.data.Dataset):
    """Runs split_shards inside a DataLoader worker and reports what it gave or raised."""

    def __init__(self, shards: list[str]) -> None:
        self.shards = shards

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> tuple[int, list[str] | str]:
        worker = torch.utils.data.get_worker_info()
        try:
            return worker.id, list(split_shards(self.shards))
        except ValueError as error:
            return worker.id, str(error)


def test_split_shards_by_worker_and_too_few_shards() -> None:
    def run(shards: list[str]) -> dict[int, list[str] | str]:
        loader = torch.utils.data.DataLoader(
            _SplitInWorker(shards),
            batch_size=None,
            num_workers=2,
            multiprocessing_context="fork",
        )
        return dict(loader)

    assert run(["a", "b", "c"]) == {0: ["a", "c"], 1: ["b"]}
    (message,) = set(run(["a"]).values())  # both workers refuse: neither would idle silently
    assert message == (
        "1 shard(s) cannot feed 1 rank(s) x 2 worker(s) = 2 consumers: write at least 2 shards "
        "or use fewer workers"
    )
    assert list(split_shards(["a", "b", "c"])) == ["a", "b", "c"]  # one consumer: everything


class _Payload:
    """Unpickling this creates a file: the marker that a pickle was run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


def test_pickle_fields_are_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(str(marker)))
    audio = _encode(np.zeros(400), "WAV", "PCM_16")
    shard = tmp_path / "evil.tar"
    with wds.TarWriter(str(shard)) as sink:
        sink.write({"__key__": "a", "wav": audio, "pyd": payload, "pth": payload})
    # control: webdataset's default handlers would run this payload
    wds.autodecode.basichandlers(".pyd", payload)
    assert marker.exists()
    marker.unlink()
    (sample,) = list(wds.WebDataset(str(shard), shardshuffle=False).decode(AudioHandler()))
    assert not marker.exists()
    assert sample["pyd"] == payload and sample["pth"] == payload  # left as bytes
    assert sample["wav"][0].shape == (1, 400) and sample["wav"][1] == SR
    (batch,) = list(audio_pipeline(str(shard), batch_size=2))
    assert not marker.exists() and batch.keys == ["a"]
    assert not os.path.exists(marker)


def test_handler_contract() -> None:
    handler = AudioHandler("skip")
    assert handler(".txt", b"hello") is None  # left to the next handler
    skipped = handler(".flac", b"junk")
    assert isinstance(skipped, Skipped) and skipped.reason == "decode_error"
    assert "flac" in skipped.message  # the key is logged by the collate function
    with pytest.raises(DecodeError, match=r"x\.wav"):
        AudioHandler()(".x.wav", b"junk")
    with pytest.raises(ValueError, match="on_error"):
        AudioHandler("warn")


def test_native_handler_hands_the_samples_as_stored() -> None:
    # integer PCM and its scale for the collate to convert once, into the batch: the same
    # numbers as the float decode, the same batch bit for bit
    rng = np.random.default_rng(5)
    mono = (rng.standard_normal(700) * 0.3).clip(-1, 1)
    stereo = (rng.standard_normal((500, 2)) * 0.3).clip(-1, 1)
    fields = {
        ".a.wav": _encode(mono, "WAV", "PCM_16"),
        ".b.flac": _encode(mono, "FLAC", "PCM_24"),
        ".c.wav": _encode(stereo, "WAV", "FLOAT"),
    }
    native, floating = AudioHandler(native=True), AudioHandler()
    for key, data in fields.items():
        got, (audio, rate) = native(key, data), floating(key, data)
        assert isinstance(got, PCM) and got.sample_rate == rate == SR
        expected_dtype = {".a.wav": torch.int16, ".b.flac": torch.int32}.get(key, torch.float32)
        assert got.audio.dtype == expected_dtype and got.audio.shape == audio.shape
        torch.testing.assert_close(got.audio.double() * got.scale, audio.double(), rtol=0, atol=0)
    collate = WaveCollate(sample_rate=SR, mono=True)  # the stereo clip averaged: one batch
    as_stored = collate([{"__key__": k, "audio": native(k, d)} for k, d in fields.items()])
    decoded = collate([{"__key__": k, "audio": d} for k, d in fields.items()])  # bytes
    assert torch.equal(as_stored.audio, decoded.audio) and as_stored.keys == decoded.keys
    assert torch.equal(as_stored.lengths, decoded.lengths)
    with pytest.raises(SampleError, match=r"'a'.* 16000 Hz, expected 8000") as info:
        collate([{"__key__": "a", "audio": native(".a.wav", fields[".a.wav"]), "sr": 8000}])
    assert info.value.reason == "sample_rate"
    with pytest.raises(ValueError, match="native must be True or False, got 'yes'"):
        AudioHandler(native="yes")
    assert "native=True" in repr(native)


def test_broken_tar_stream_is_counted_from_the_worker(tmp_path: Path) -> None:
    urls, _ = _write_shards(tmp_path, n_shards=2)
    (tmp_path / "shard-01.tar").write_bytes(b"\x00garbage, not a tar file" * 100)
    loader = wds.WebLoader(
        audio_pipeline(urls, batch_size=2, policy="skip"),
        batch_size=None,
        num_workers=2,
        multiprocessing_context="fork",
    )
    counter = SkipCounter()
    keys = [k for batch in counter.wrap(loader) for k in batch.keys]
    assert sorted(keys) == [f"s{i:04d}" for i in range(5)]  # shard 00, whole
    # worker 1's only shard yields no sample: its skip reaches the main process only through
    # the empty batch that flush_skips adds after the last batch
    assert set(counter.counts) == {"stream_error"} and counter.counts["stream_error"] >= 1
    with pytest.raises(Exception, match="shard-01"):
        list(audio_pipeline(urls, batch_size=2))


def test_shuffle_changes_every_epoch_and_shuffles_shards(tmp_path: Path) -> None:
    urls, clips = _write_shards(tmp_path, n_shards=4, per_shard=3)
    pipeline = audio_pipeline(urls, batch_size=3, policy="skip", shuffle=4, seed=3)
    epochs = [[k for b in pipeline for k in b.keys] for _ in range(4)]  # in-process: counts up
    for keys in epochs:
        assert sorted(keys) == sorted(clips)  # each clip once per epoch
    assert len({tuple(keys) for keys in epochs}) == 4  # a new order every epoch
    # shards are shuffled too: the first sample's shard differs between epochs (keys s0000..
    # s0002 are shard 0, s0003.. shard 1, ...), with a buffer too small to mix all shards
    assert len({int(keys[0][1:]) // 3 for keys in epochs}) > 1
    pipeline.set_epoch(1)
    assert [k for b in pipeline for k in b.keys] == epochs[1]  # seeded: epoch 1 again
    fresh = audio_pipeline(urls, batch_size=3, policy="skip", shuffle=4, seed=3)
    assert [k for b in fresh for k in b.keys] == epochs[0]
    # worker processes iterate a copy: set_epoch picks the epoch, both workers see it
    loader = wds.WebLoader(pipeline, batch_size=None, num_workers=2, multiprocessing_context="fork")
    seen = []
    for epoch in (0, 1):
        pipeline.set_epoch(epoch)
        seen.append([k for b in loader for k in b.keys])
        assert sorted(seen[-1]) == sorted(clips)
    assert seen[0] != seen[1]
