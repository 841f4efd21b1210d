"""Every bad (or merely unusual) input of ``tests/_faults.py`` through every adapter, with real
files, real tar shards, real worker processes and the real command.

Under ``FaultPolicy("skip")`` each adapter must deliver exactly the valid inputs and count each bad
one under its reason, so that delivered + counted == given; under ``"raise"`` the error names the
sample. Expectations come from ``_faults.py`` (what each input is), the frame rule
``1 + n // hop`` and soundfile's own reading of each file.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import _faults
import numpy as np
import pytest
import soundfile as sf
import torch
import webdataset as wds
from _faults import SR, Case
from torch.utils.data import DataLoader
from torchdata import nodes

from nnaudio_data.batch import SpecBatch, WaveBatch
from nnaudio_data.features.cqt import CQT1992v2
from nnaudio_data.features.stft import STFT
from nnaudio_data.io import SampleError
from nnaudio_data.pipeline import (
    AudioDataset,
    AudioIterableDataset,
    DeviceStage,
    SkipCounter,
    SpecCollate,
    WaveCollate,
    audio_nodes,
    audio_pipeline,
)

N_FFT, HOP = 512, 256
COLLATE = {"sample_rate": SR, "mono": True, "resample": False}
FORK = {"num_workers": 2, "multiprocessing_context": "fork"}


def _stft() -> STFT:
    return STFT(n_fft=N_FFT, hop_length=HOP, output_format="Magnitude")


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return _faults.cases()


@pytest.fixture(scope="module")
def files(cases: list[Case], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _faults.write_files(tmp_path_factory.mktemp("faults"), cases)


def _stem(key: str) -> str:
    return Path(key).name.rsplit(".", 1)[0]


def _drain(batches: Iterable[Any], cases: list[Case]) -> tuple[list[str], SkipCounter]:
    """Count every batch, check every delivered item against its source, return the keys."""
    by_key = {c.key: c for c in cases}
    counter = SkipCounter()
    keys = []
    for batch in counter.wrap(batches):
        assert isinstance(batch, SpecBatch)
        assert batch.spec.shape[:2] == (len(batch), N_FFT // 2 + 1)
        for spec, key, frames in zip(batch.spec, batch.keys, batch.lengths.tolist()):
            n = len(_faults.reference_audio(by_key[_stem(key)]))
            assert frames == 1 + n // HOP  # center=True frame rule of the item's own length
            assert bool(torch.isfinite(spec[:, :frames]).all())
            keys.append(_stem(key))
    return keys, counter


def _check_accounting(keys: list[str], counter: SkipCounter, cases: list[Case]) -> None:
    assert sorted(keys) == _faults.expected_keys(cases)  # each valid input once
    assert counter.counts == _faults.expected_counts(cases)  # each bad one, by its reason
    assert counter.samples + counter.total == len(cases)  # nothing dropped uncounted


def test_collate_fn_in_workers_skips_and_counts(
    cases: list[Case], files: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    stft = _stft()
    paths = [files[c.key] for c in cases]
    loader = DataLoader(
        paths, batch_size=4, collate_fn=SpecCollate(stft, policy="skip", **COLLATE), **FORK
    )
    keys, counter = _drain(loader, cases)
    _check_accounting(keys, counter, cases)
    # the same in the main process, where the log can be read: one warning per skip, naming it
    short_cases = [c for c in cases if c.key != "ten-minutes"]  # keeps the padded batch small
    with caplog.at_level(logging.WARNING, logger="nnaudio_data.pipeline"):
        batch = SpecCollate(stft, policy="skip", **COLLATE)([files[c.key] for c in short_cases])
    for c in short_cases:
        assert (files[c.key] in caplog.text) == (c.reason is not None)
    assert sorted(map(_stem, batch.keys)) == _faults.expected_keys(short_cases)
    # numbers: each delivered item equals its own STFT on the frames padding cannot reach
    by_key = {c.key: c for c in cases}
    for spec, key in zip(batch.spec, batch.keys):
        audio = torch.from_numpy(_faults.reference_audio(by_key[_stem(key)]))
        ref = stft(audio)[0]
        k = max(0, (len(audio) - N_FFT // 2) // HOP + 1)
        # the same float32 FFT path on the same samples, batched or not: rounding only
        torch.testing.assert_close(spec[:, :k], ref[:, :k], rtol=1e-5, atol=1e-5)
        if _stem(key) == "zeros":
            assert not spec.any()  # silence is delivered as silence, not as a fault


def test_collate_fn_raises_naming_each_bad_sample(cases: list[Case], files: dict[str, str]) -> None:
    collate = WaveCollate(**COLLATE)  # policy "raise" by default
    for c in cases:
        if c.reason is None:
            continue
        with pytest.raises(SampleError) as info:
            collate([files["good-a"], files[c.key]])
        assert info.value.reason == c.reason and files[c.key] in str(info.value)
    # across the process boundary: the worker's error reaches the loop, naming the file
    loader = DataLoader(
        [files["good-a"], files["corrupt"]], batch_size=2, collate_fn=collate, **FORK
    )
    with pytest.raises(SampleError, match=r"corrupt\.wav"):
        list(loader)


def test_dataset_wrappers_skip_and_count(cases: list[Case], files: dict[str, str]) -> None:
    stft = _stft()
    mapped = AudioDataset([files[c.key] for c in cases], transform=stft, policy="skip", **COLLATE)
    loader = DataLoader(mapped, batch_size=3, collate_fn=mapped.collate, **FORK)
    keys, counter = _drain(loader, cases)
    _check_accounting(keys, counter, cases)
    # an iterable of in-memory records (encoded bytes), split over two workers
    records = [{"key": c.key, "audio": c.data} for c in cases]
    stream = AudioIterableDataset(records, transform=stft, policy="skip", **COLLATE)
    loader = DataLoader(stream, batch_size=3, collate_fn=stream.collate, **FORK)
    keys, counter = _drain(loader, cases)
    _check_accounting(keys, counter, cases)
    with pytest.raises(SampleError, match="truncated") as info:
        AudioDataset([files["truncated"]])[0]
    assert info.value.reason == "decode_error"


def test_torchdata_nodes_skip_and_count(cases: list[Case], files: dict[str, str]) -> None:
    graph = audio_nodes(
        [files[c.key] for c in cases],
        batch_size=4,
        transform=_stft(),
        policy="skip",
        multiprocessing_context="fork",
        num_workers=2,
        **COLLATE,
    )
    keys, counter = _drain(nodes.Loader(graph), cases)
    _check_accounting(keys, counter, cases)
    strict = audio_nodes([files["good-a"], files["nan"]], batch_size=2, **COLLATE)
    with pytest.raises(SampleError, match=r"nan\.wav") as info:
        list(nodes.Loader(strict))
    assert info.value.reason == "non_finite"


def _truncated_tar(path: Path, cases: list[Case]) -> list[str]:
    """A shard cut in the middle of its third member's data: returns the keys before the cut."""
    full = path.with_suffix(".full")
    with wds.TarWriter(str(full)) as sink:
        for c in cases:
            sink.write({"__key__": c.key, c.ext: c.data})
    with tarfile.open(full) as tar:
        third = tar.getmembers()[2]
    path.write_bytes(full.read_bytes()[: third.offset_data + third.size // 2])
    full.unlink()
    return [c.key for c in cases[:2]]


def test_webdataset_shards_skip_and_count(cases: list[Case], tmp_path: Path) -> None:
    shards = _faults.write_shards(tmp_path, cases, n_shards=2)
    extra = [Case(f"tail-{i}", cases[0].data, "wav", None, "") for i in range(3)]
    broken = tmp_path / "shard-002.tar"
    before_cut = _truncated_tar(broken, extra)
    no_audio = tmp_path / "shard-003.tar"
    with wds.TarWriter(str(no_audio)) as sink:  # a sample whose only field is not audio
        sink.write({"__key__": "video-only", "mp4": b"\x00\x00\x00\x18ftypmp42"})
    pipeline = audio_pipeline(
        [*shards, str(broken), str(no_audio)],
        batch_size=4,
        transform=_stft(),
        policy="skip",
        **COLLATE,
    )
    loader = wds.WebLoader(pipeline, batch_size=None, **FORK)
    everything = [*cases, *extra[:2]]
    keys, counter = _drain(loader, everything)
    assert sorted(keys) == sorted([*_faults.expected_keys(cases), *before_cut])
    expected = _faults.expected_counts(cases)
    expected["decode_error"] += 1  # video-only: no audio field
    # the cut shard: the clips before the cut are delivered; the clip the cut falls in is lost
    # with the rest of the shard (webdataset reads on from the next shard). webdataset reports
    # that one break twice (the member's read fails, then the tar iterator's next header read):
    # two stream errors, so a break is never uncounted but counts errors, not samples
    expected["stream_error"] = 2
    assert counter.counts == expected
    # given: the cases, the three clips of the cut shard and video-only; the lost clip is
    # counted twice (the stream errors)
    assert counter.samples + counter.total == len(cases) + len(extra) + 1 + 1
    strict = audio_pipeline(shards, batch_size=4, **COLLATE)
    with pytest.raises(SampleError) as info:
        list(strict)
    assert info.value.key in {c.key for c in cases if c.reason}  # the first bad one, by name


def test_batch_of_one_through_each_adapter(
    cases: list[Case], files: dict[str, str], tmp_path: Path
) -> None:
    stft = _stft()
    by_key = {c.key: c for c in cases}
    paths = [files["stereo"], files["short"], files["good-a"]]
    expected_frames = [1 + 2200 // HOP, 1 + 300 // HOP, 1 + 3000 // HOP]
    dataset = AudioDataset(paths, **COLLATE)
    loaders: dict[str, Iterable[Any]] = {
        "collate_fn": DataLoader(paths, batch_size=1, collate_fn=WaveCollate(**COLLATE), **FORK),
        "dataset": DataLoader(dataset, batch_size=1, collate_fn=dataset.collate, **FORK),
        "nodes": nodes.Loader(audio_nodes(dataset, batch_size=1, num_workers=2)),
        "webdataset": wds.WebLoader(
            audio_pipeline(
                _faults.write_shards(
                    tmp_path, [by_key[k] for k in ("stereo", "short", "good-a")], 1
                ),
                batch_size=1,
                **COLLATE,
            ),
            batch_size=None,
            num_workers=1,
        ),
    }
    for name, loader in loaders.items():
        stage = DeviceStage(loader, stft)  # the transform in the main process
        out = list(stage)
        assert [len(b) for b in out] == [1, 1, 1], name
        assert all(isinstance(b, SpecBatch) and b.spec.ndim == 3 for b in out), name
        assert [int(b.lengths[0]) for b in out] == expected_frames, name
        assert [b.spec.shape[-1] for b in out] == expected_frames, name
        assert stage.skipped == {}, name
    # a batch of one waveform keeps its batch axis
    (one,) = list(DataLoader(paths[:1], batch_size=1, collate_fn=WaveCollate(**COLLATE)))
    assert isinstance(one, WaveBatch) and one.audio.shape == (1, 2200)


def test_integer_and_float_arrays_scaled_in_workers() -> None:
    rng = np.random.default_rng(0)
    arrays = [
        rng.integers(-128, 128, 500).astype(np.int8),
        rng.integers(0, 256, 500).astype(np.uint8),
        rng.integers(-32768, 32768, 500).astype(np.int16),
        rng.integers(-(2**31), 2**31, 500).astype(np.int32),
        rng.uniform(-1, 1, 500),  # float64
    ]
    expected = [
        arrays[0] / 128.0,
        (arrays[1].astype(np.float64) - 128) / 128.0,
        arrays[2] / 32768.0,
        arrays[3] / 2.0**31,
        arrays[4],
    ]
    loader = DataLoader(
        [(a, SR) for a in arrays],
        batch_size=5,
        collate_fn=WaveCollate(dtype="float64"),
        **FORK,
    )
    (batch,) = list(loader)
    for row, ref in zip(batch.audio.numpy(), expected):
        # integer PCM / 2 ** (bits - 1) is exact in float64
        np.testing.assert_array_equal(row, ref)
    assert float(batch.audio.abs().max()) <= 1.0


def test_mixed_channels_without_mono_are_counted() -> None:
    stereo = (torch.full((2, 400), 0.5), SR)
    mono = (torch.full((1, 300), 0.25), SR)
    six = (torch.full((6, 200), 0.1), SR)
    loader = DataLoader(
        [stereo, mono, six, stereo], batch_size=4, collate_fn=WaveCollate(policy="skip"), **FORK
    )
    counter = SkipCounter()
    (batch,) = list(counter.wrap(loader))
    # the first item sets the batch's channels; the others that differ are counted, not dropped
    assert batch.audio.shape == (2, 2, 400) and counter.counts == {"channels": 2}
    assert counter.samples + counter.total == 4


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nnaudio_data.cli", "run", "--recipe", "stft-1024", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_skips_counts_and_raises(tmp_path: Path) -> None:
    rate = 22050  # the stft-1024 recipe's rate; the wrong-rate clip is at 2.75x that
    cases = _faults.cases(rate, short=600)  # the recipe's n_fft is 1024: 512 < 600 < 1024
    _faults.write_files(tmp_path / "in", cases)
    # resampling on (the default): the two clips at other rates (60637 and 44101 Hz, both
    # coprime with 22050) are refused as too costly to resample, not resampled into an OOM kill
    proc = _run_cli(str(tmp_path / "in"), "--json", "--batch-size", "2", "-q")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["clips"] == len(_faults.expected_keys(cases))
    assert summary["skipped"] == dict(sorted(_faults.expected_counts(cases).items()))
    assert summary["clips"] + summary["skipped_total"] == len(cases)
    seconds = sum(len(_faults.reference_audio(c)) for c in cases if c.reason is None) / rate
    assert summary["audio_seconds"] == pytest.approx(seconds, rel=1e-9)
    assert summary["output"]["frames_max"] == 1 + _faults.LONG_SECONDS * rate // 256
    for c in cases:  # each skip is logged on stderr, naming the file
        assert (f"{c.key}.{c.ext}" in proc.stderr) == (c.reason is not None), c.key
    strict = _run_cli(str(tmp_path / "in"), "--on-error", "raise", "-q")
    assert strict.returncode == 1 and strict.stdout == ""
    assert "corrupt-flac.flac" in strict.stderr  # the first bad file in sorted order, by name


def test_shorter_than_the_transform_needs(files: dict[str, str], tmp_path: Path) -> None:
    stft = _stft()  # n_fft 512: a 100-sample clip gives 1 frame of a repeated reflection
    tiny = tmp_path / "tiny.wav"
    sf.write(tiny, np.full(100, 0.1), SR, subtype="PCM_16")
    # min_length makes "too short to be useful" a fault of the sample, counted in the worker
    collate = SpecCollate(stft, policy="skip", min_length=N_FFT // 2 + 1, **COLLATE)
    loader = DataLoader(
        [str(tiny), files["short"], str(tiny)], batch_size=1, collate_fn=collate, **FORK
    )
    counter = SkipCounter()
    (batch,) = list(counter.wrap(loader))
    assert batch.keys == [files["short"]] and batch.lengths.tolist() == [1 + 300 // HOP]
    assert counter.counts == {"too_short": 2} and counter.samples + counter.total == 3
    with pytest.raises(SampleError, match=r"tiny\.wav.*min_length") as info:
        SpecCollate(stft, min_length=N_FFT // 2 + 1, **COLLATE)([str(tiny)])
    assert info.value.reason == "too_short"
    # the constant-Q transform takes clips shorter than its longest kernel as they are
    cqt = CQT1992v2(sr=SR, fmin=55, n_bins=48, bins_per_octave=12, hop_length=128)
    assert cqt.kernel_width > 300
    loader = DataLoader(
        [files["short"], str(tiny)], batch_size=1, collate_fn=SpecCollate(cqt, **COLLATE), **FORK
    )
    out = list(loader)
    assert [b.lengths.tolist() for b in out] == [[1 + 300 // 128], [1 + 100 // 128]]
    assert all(b.spec.shape == (1, 48, int(b.lengths[0])) for b in out)
    assert all(bool(torch.isfinite(b.spec).all()) and b.spec.abs().sum() > 0 for b in out)


def test_skipping_never_sleeps(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # a tripwire on every sleep in this process
    with pytest.warns(UserWarning):
        wds.warn_and_continue(RuntimeError("x"))
    assert slept == [0.5]  # control: webdataset's own warning handler sleeps half a second
    slept.clear()
    small = _faults.cases(long=False)
    shards = _faults.write_shards(tmp_path / "s", small, n_shards=2)
    broken = tmp_path / "broken.tar"
    _truncated_tar(broken, small[:3])
    counter = SkipCounter()
    pipeline = audio_pipeline([*shards, str(broken)], batch_size=4, policy="skip", **COLLATE)
    keys = [k for b in counter.wrap(pipeline) for k in b.keys]  # in this process: no workers
    paths = _faults.write_files(tmp_path / "f", small)
    batch = WaveCollate(policy="skip", **COLLATE)(list(paths.values()))
    assert sorted(keys) == sorted([*_faults.expected_keys(small), *(c.key for c in small[:2])])
    # + the break of the cut shard, reported twice by webdataset (see above)
    assert counter.total == sum(_faults.expected_counts(small).values()) + 2
    assert sum(batch.skipped.values()) == sum(_faults.expected_counts(small).values())
    assert slept == []  # 9 skips, no sleep


def test_resampling_refuses_ratios_that_would_exhaust_memory(
    cases: list[Case], files: dict[str, str]
) -> None:
    by_key = {c.key: c for c in cases}
    keys = ["good-a", "wrong-rate", "odd-rate", "stereo"]
    collate = WaveCollate(sample_rate=SR, resample=True, mono=True, policy="skip")
    loader = DataLoader([files[k] for k in keys], batch_size=4, collate_fn=collate, **FORK)
    counter = SkipCounter()
    (batch,) = list(counter.wrap(loader))
    # 22000 Hz reduces to 4/11 of 8000 Hz: resampled to ceil(2750 * 4 / 11) samples; 44101 Hz
    # reduces to 8000/44101 (3.5e8 filter coefficients): refused, counted, the worker alive
    assert [_stem(k) for k in batch.keys] == ["good-a", "wrong-rate", "stereo"]
    assert batch.lengths.tolist() == [3000, 1000, 2200]
    assert counter.counts == {"sample_rate": 1} and counter.samples + counter.total == 4
    with pytest.raises(SampleError, match=r"odd-rate\.wav.*44101 Hz to 8000 Hz") as info:
        WaveCollate(sample_rate=SR, resample=True)([files["odd-rate"]])
    assert info.value.reason == "sample_rate"
    assert len(_faults.reference_audio(by_key["odd-rate"])) == 4410  # a valid file otherwise
