"""Offline extraction (``nnaudio-data extract`` / ``nnaudio_data.extract``): real files and tar
shards in, real WebDataset shards out, read back through webdataset with worker processes;
an interrupted run resumed; two ranks under a real ``torchrun`` splitting the inputs exactly.

The reference for every clip is the on-the-fly path: ``SpecCollate(recipe)`` on that clip alone
(soundfile decoding, resampling and mono as ``nnaudio-data run`` does them).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
import webdataset as wds

from nnaudio_data._version import __version__
from nnaudio_data.cli import main
from nnaudio_data.extract import FeatureCollate, extract, feature_pipeline
from nnaudio_data.pipeline import SpecCollate
from nnaudio_data.recipes import get_recipe

RECIPE = get_recipe("log-mel-80")
TIMEOUT_S = 240


def _folder(root: Path, n: int = 10) -> list[Path]:
    """Clips at 16 / 8 / 22.05 kHz, mono and stereo, 0.1-0.3 s."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        sr = (16000, 8000, 22050)[i % 3]
        data = 0.2 * np.random.default_rng(i).standard_normal((sr // 10 + 211 * i, 1 + i % 2))
        path = root / f"clip.{i:02d}.{'flac' if i % 2 else 'wav'}"  # a dot inside the name
        sf.write(path, data, sr, subtype="PCM_16")
        paths.append(path)
    return paths


def _shard(path: Path, n: int = 3) -> dict[str, Any]:
    """A WebDataset shard of FLAC clips with ``cls`` labels; returns {key: (bytes, label)}."""
    clips = {}
    with wds.TarWriter(str(path)) as sink:
        for i in range(n):
            buf = io.BytesIO()
            audio = 0.2 * np.random.default_rng(100 + i).standard_normal(1600 + 300 * i)
            sf.write(buf, audio, 16000, format="FLAC", subtype="PCM_16")
            clips[f"word{i}"] = (buf.getvalue(), i + 1)
            sink.write({"__key__": f"word{i}", "flac": buf.getvalue(), "cls": i + 1})
    return clips


def _on_the_fly(source: Any) -> torch.Tensor:
    collate = SpecCollate(RECIPE.build(), sample_rate=16000, resample=True, mono=True)
    batch = collate([source])
    return batch.spec[0, :, : int(batch.lengths[0])]


def _read_all(out: Path) -> dict[str, tuple[np.ndarray, dict]]:
    """Every sample of every output shard, read with tarfile and numpy (allow_pickle=False)."""
    samples: dict[str, dict[str, bytes]] = {}
    for shard in sorted(out.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                key, ext = member.name.split(".", 1)
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                assert ext not in samples.setdefault(key, {}), f"{key} twice"
                samples[key][ext] = data
    return {
        k: (np.load(io.BytesIO(v["npy"]), allow_pickle=False), json.loads(v["json"]))
        for k, v in samples.items()
    }


def test_round_trip_equals_on_the_fly_and_reads_back(tmp_path: Path) -> None:
    paths = _folder(tmp_path / "clips")
    (tmp_path / "clips" / "broken.wav").write_bytes(b"RIFF not audio at all" * 5)
    (tmp_path / "clips" / "zero.wav").write_bytes(b"")
    files = [*map(str, paths), str(tmp_path / "clips" / "broken.wav"), str(tmp_path / "clips" / "zero.wav")]  # fmt: skip
    shard = tmp_path / "words.tar"
    clips = _shard(shard)
    out = tmp_path / "features"
    status = main(["extract", *files, str(shard), "--out", str(out), "--shard-size", "3",
                   "--workers", "2", "--json", "-q"])  # fmt: skip
    assert status == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["samples"] == len(paths) + len(clips) == 13
    assert manifest["skipped"] == {"decode_error": 1, "empty": 1}
    assert manifest["skipped_files"] == {"decode_error": [files[-2]], "empty": [files[-1]]}
    assert manifest["version"] == __version__ and manifest["recipe"] == "log-mel-80"
    assert manifest["recipe_config"]["transforms"] == RECIPE.transforms
    assert [s["name"] for s in manifest["shards"]] == [
        "files-000000.tar", "files-000001.tar", "files-000002.tar", "files-000003.tar",
        "shards-000000.tar",
    ]  # fmt: skip
    stored = _read_all(out)
    assert len(stored) == 13
    by_source = {meta["source"]: (features, meta) for features, meta in stored.values()}
    for path in paths:
        features, meta = by_source[str(path)]
        reference = _on_the_fly(str(path))
        assert features.dtype == np.float32 and features.shape == tuple(reference.shape)
        assert meta["frames"] == reference.shape[-1] and meta["sample_rate"] == 16000
        # the same clip through the same float32 chain: equal to rounding
        np.testing.assert_allclose(features, reference.numpy(), rtol=1e-6, atol=1e-6)
    for name, (data, label) in clips.items():
        features, meta = by_source[f"{shard}#{name}"]
        assert meta["label"] == label and meta["recipe"] == "log-mel-80"
        np.testing.assert_allclose(features, _on_the_fly(data).numpy(), rtol=1e-6, atol=1e-6)

    # read back for training: batches of features with valid lengths, 2 workers
    urls = [str(p) for p in sorted(out.glob("*.tar"))]
    loader = wds.WebLoader(
        feature_pipeline(urls, batch_size=4, shuffle=8, seed=1),
        batch_size=None,
        num_workers=2,
        multiprocessing_context="fork",
    )
    seen = {}
    for batch in loader:
        assert batch.spec.shape[:2] == (len(batch), 80)
        for spec, n, key in zip(batch.spec, batch.lengths.tolist(), batch.keys):
            features, _ = stored[key]
            assert n == features.shape[-1]
            assert torch.equal(spec[:, :n], torch.from_numpy(features))
            assert not spec[:, n:].any()  # zero padding after the valid frames
            seen[key] = n
    assert sorted(seen) == sorted(stored)
    # the same collate in a plain DataLoader over samples read by webdataset
    samples = list(wds.DataPipeline(wds.SimpleShardList(urls[-1:]), wds.tarfile_to_samples()))
    batch = torch.utils.data.DataLoader(samples, batch_size=3, collate_fn=FeatureCollate())
    labels = next(iter(batch)).labels
    assert labels.dtype == torch.int64 and sorted(labels.tolist()) == [1, 2, 3]

    half = tmp_path / "half"
    extract(paths[:2], transform=RECIPE.build(), sample_rate=16000, out_dir=half, dtype="float16")
    for features, meta in _read_all(half).values():
        assert features.dtype == np.float16 and meta["dtype"] == "float16"
        # float16 keeps 11 significant bits: relative error below 2**-11 (log-mel values)
        full = by_source[meta["source"]][0]
        np.testing.assert_allclose(features.astype(np.float32), full, rtol=2**-11, atol=1e-3)


def test_interrupted_run_resumes_without_recomputing(tmp_path: Path) -> None:
    paths = [str(p) for p in _folder(tmp_path / "clips", 8)]
    good = Path(paths[5]).read_bytes()
    Path(paths[5]).write_bytes(b"fLaC" + b"\x01" * 300)  # breaks the run in unit 2 (files 4, 5)
    out = tmp_path / "features"
    kwargs: dict[str, Any] = {"transform": RECIPE.build(), "sample_rate": 16000, "out_dir": out}
    with pytest.raises(ValueError, match=r"clip\.05\.flac"):  # a SampleError naming the file
        extract(paths, shard_size=2, policy="raise", **kwargs)
    complete = sorted(p.name for p in out.glob("*.tar"))
    assert complete == ["files-000000.tar", "files-000001.tar"]
    partial = list(out.glob("files-000002.tar.tmp-*"))
    assert len(partial) == 1  # unit 2 was being written: never under its final name
    before = {name: os.stat(out / name).st_mtime_ns for name in complete}
    Path(paths[5]).write_bytes(good)  # the input repaired; the run started again
    part = extract(paths, shard_size=2, policy="raise", **kwargs)
    assert part["resumed_shards"] == 2 and part["samples"] == 8
    assert [s["resumed"] for s in part["shards"]] == [True, True, False, False]
    assert {name: os.stat(out / name).st_mtime_ns for name in complete} == before  # untouched
    assert not list(out.glob("*.tmp-*"))
    stored = _read_all(out)
    assert sorted(m["source"] for _, m in stored.values()) == sorted(paths)
    for features, meta in stored.values():
        np.testing.assert_allclose(
            features, _on_the_fly(meta["source"]).numpy(), rtol=1e-6, atol=1e-6
        )
    # another dtype is other features: nothing is kept
    again = extract(paths, shard_size=2, dtype="float16", **kwargs)
    assert again["resumed_shards"] == 0


def test_two_ranks_under_torchrun_split_exactly(tmp_path: Path) -> None:
    paths = [str(p) for p in _folder(tmp_path / "clips", 11)]
    shards = []
    for j in range(3):
        _shard(tmp_path / f"words-{j}.tar")
        shards.append(str(tmp_path / f"words-{j}.tar"))
    out = tmp_path / "features"
    args = [*paths, *shards, "--out", str(out), "--shard-size", "2", "--workers", "2", "-q"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
               "2", "-m", "nnaudio_data.cli", "extract", *args]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["samples"] == 11 + 3 * 3
    parts = [json.loads(p.read_text()) for p in sorted(out.glob("manifest-rank*-of-00002.json"))]
    assert [p["rank"] for p in parts] == [0, 1]
    names = [{s["name"] for s in p["shards"]} for p in parts]
    assert not names[0] & names[1]  # each output shard written by one rank
    # units 0..8 (6 of files, 3 of shards): rank 0 takes the even ones, rank 1 the odd ones
    assert len(names[0]) == 5 and len(names[1]) == 4
    stored = _read_all(out)
    sources = sorted(m["source"] for _, m in stored.values())
    expected = sorted([*paths, *(f"{s}#word{i}" for s in shards for i in range(3))])
    assert sources == expected  # the union is the input set, each exactly once
    # the same extraction in one process gives the same keys and the same features
    single = tmp_path / "single"
    extract(paths, shards, transform=RECIPE.build(), sample_rate=16000, out_dir=single,
            shard_size=2, rank=0, world_size=1)  # fmt: skip
    alone = _read_all(single)
    assert sorted(alone) == sorted(stored)
    for key, (features, _) in alone.items():
        # computed here with 2 threads, there in 1-thread workers: equal to float32 rounding
        np.testing.assert_allclose(features, stored[key][0], rtol=1e-6, atol=1e-6)


def test_cli_extract_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    assert main(["extract", "--out", str(tmp_path / "file"), "-q"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.wav").write_bytes(b"not audio" * 9)
    assert main(["extract", str(bad), "--out", str(tmp_path / "o"), "-q", "--workers", "0"]) == 1
    assert "no clip made it through (1 skipped)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["extract", "--out", str(tmp_path / "o"), "--dtype", "int8"])
