"""WaveCollate / SpecCollate and the fault policy, in the main process and in real workers.

``TorchStft``, ``make_files`` and ``check_against_items`` are shared with the other
``test_pipeline_*`` files (imported from here)."""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn
from torch.utils.data import DataLoader

from nnaudio_data._shapes import frame_lengths
from nnaudio_data.batch import SpecBatch, WaveBatch
from nnaudio_data.features.stft import STFT
from nnaudio_data.io import DecodeError, SampleError
from nnaudio_data.pipeline import FaultPolicy, SkipCounter, Skipped, SpecCollate, WaveCollate
from nnaudio_data.pipeline.policy import take_pending

SR = 16000


class TorchStft(nn.Module):
    """|torch.stft| with center=True and its frame rule: the reference front end of these tests."""

    output_kind = "spectrogram"  # tells apply_to_batch that the output is a SpecBatch

    def __init__(self, n_fft: int = 256, hop: int = 64, trainable: bool = False) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        if trainable:
            self.window = nn.Parameter(torch.hann_window(n_fft))
        else:
            self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        spec = torch.stft(
            x.reshape(-1, x.shape[-1]),
            self.n_fft,
            self.hop,
            window=self.window,
            center=True,
            return_complex=True,
        ).abs()
        return spec.reshape(*lead, *spec.shape[-2:])

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return frame_lengths(lengths, self.n_fft, self.hop, center=True)


def _noise(n: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return 0.3 * np.random.default_rng(seed).standard_normal((channels, n))


def make_files(tmp_path: Path, n: int = 6) -> list[Path]:
    """Real files: int16 mono WAV, FLAC, float64 WAV; lengths differ."""
    paths = []
    for i in range(n):
        data = _noise(1000 + 350 * i, seed=i)[0]
        kind = i % 3
        path = tmp_path / f"clip{i}.{'flac' if kind == 1 else 'wav'}"
        subtype = "DOUBLE" if kind == 2 else "PCM_16"
        sf.write(path, data, SR, subtype=subtype)
        paths.append(path)
    return paths


def test_pads_tuples_with_lengths_and_labels() -> None:
    items = [(torch.from_numpy(_noise(n, seed=n)[0]).float(), SR, n % 3) for n in (500, 900, 700)]
    batch = WaveCollate()(items)
    assert isinstance(batch, WaveBatch)
    assert batch.audio.shape == (3, 900) and batch.lengths.tolist() == [500, 900, 700]
    assert batch.sample_rate == SR and batch.skipped == {}
    assert batch.labels is not None and torch.equal(
        torch.as_tensor(batch.labels), torch.tensor([2, 0, 1])
    )
    for row, (audio, _, _) in zip(batch.audio, items):
        n = audio.shape[-1]
        assert torch.equal(row[:n], audio)
        assert not row[n:].any()  # zero padding after the end


def test_stereo_dicts_and_int16_arrays() -> None:
    stereo = [
        {"audio": torch.from_numpy(_noise(n, 2, seed=n)), "sample_rate": SR, "key": f"k{n}"}
        for n in (300, 400)
    ]
    batch = WaveCollate()(stereo)
    assert batch.audio.shape == (2, 2, 400) and batch.audio.dtype == torch.float32
    assert batch.keys == ["k300", "k400"] and batch.labels is None
    pcm = np.array([[0, 16384, -32768, 32767]], dtype=np.int16)
    ints = WaveCollate(dtype="float64")([(pcm, SR)])
    np.testing.assert_array_equal(ints.audio[0].numpy(), pcm[0] / 32768.0)  # exact scaling


def test_mixed_channels_raise_skip_or_mono() -> None:
    items = [(torch.zeros(2, 100) + 0.5, SR), (torch.zeros(1, 120) + 0.25, SR)]
    with pytest.raises(SampleError, match="channels") as info:
        WaveCollate()(items)
    assert info.value.reason == "channels"
    skipped = WaveCollate(policy="skip")(items)
    assert len(skipped) == 1 and skipped.skipped == {"channels": 1}
    mono = WaveCollate(mono=True)([(torch.stack([torch.ones(100), -torch.ones(100) * 0.5]), SR)])
    assert mono.audio.shape == (1, 100) and torch.allclose(mono.audio, torch.full((1, 100), 0.25))


def test_real_files_int16_flac_float64(tmp_path: Path) -> None:
    paths = make_files(tmp_path)
    batch = WaveCollate()([str(p) for p in paths])
    assert batch.lengths.tolist() == [1000 + 350 * i for i in range(6)]
    assert batch.keys == [str(p) for p in paths]
    for row, path, n in zip(batch.audio, paths, batch.lengths.tolist()):
        ref, sr = sf.read(path, dtype="float32")
        assert sr == SR and torch.equal(row[:n], torch.from_numpy(ref))


def test_mixed_sample_rates_rejected_by_policy() -> None:
    items = [(torch.zeros(100), SR), (torch.zeros(100), 22050), (torch.zeros(50), SR)]
    with pytest.raises(SampleError, match="22050") as info:
        WaveCollate()(items)
    assert info.value.reason == "sample_rate" and info.value.key == "1"
    batch = WaveCollate(policy=FaultPolicy("skip"))(items)
    assert batch.lengths.tolist() == [100, 50] and batch.skipped == {"sample_rate": 1}
    # a fixed target rejects even a batch that agrees with itself
    fixed = WaveCollate(sample_rate=8000, policy="skip")(items)
    assert len(fixed) == 0 and fixed.skipped == {"sample_rate": 3}


def test_mixed_sample_rates_resampled() -> None:
    f = 440.0
    items = []
    for sr in (16000, 22050, 44100):
        t = np.arange(int(0.25 * sr)) / sr
        items.append((torch.from_numpy(np.sin(2 * np.pi * f * t)), sr))
    batch = WaveCollate(sample_rate=22050, resample=True, dtype="float64")(items)
    assert batch.sample_rate == 22050
    expected_lengths = [math.ceil(len(a) * 22050 / sr) for a, sr in items]
    assert batch.lengths.tolist() == expected_lengths
    t = np.arange(batch.audio.shape[-1]) / 22050
    ref = np.sin(2 * np.pi * f * t)
    for row, n in zip(batch.audio.numpy(), expected_lengths):
        # away from the edges (filter transients), a band-limited resampler reproduces the tone;
        # ops.Resample's kernel is float32 (about 1e-7) and its 16-zero-crossing windowed sinc
        # passes 440 Hz with a ripple near 3e-5 of the amplitude: 1e-4 leaves a margin
        interior = slice(200, n - 200)
        assert np.max(np.abs(row[interior] - ref[interior])) < 1e-4
    with pytest.raises(ValueError, match="sample_rate"):
        WaveCollate(resample=True)


def test_corrupt_empty_and_non_finite(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    paths = make_files(tmp_path, 3)
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage" * 20)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), SR, subtype="PCM_16")
    samples = [
        str(paths[0]),
        str(bad),
        str(paths[1]),
        str(empty),
        (torch.tensor([0.0, math.nan]), SR),
    ]
    with pytest.raises(DecodeError, match=r"corrupt\.wav"):
        WaveCollate()(samples)
    with caplog.at_level(logging.WARNING, logger="nnaudio_data.pipeline"):
        batch = WaveCollate(policy="skip")(samples)
    assert batch.keys == [str(paths[0]), str(paths[1])]
    assert batch.skipped == {"decode_error": 1, "empty": 1, "non_finite": 1}
    assert "corrupt.wav" in caplog.text and "empty.wav" in caplog.text  # logged, naming the file
    with pytest.raises(SampleError, match="NaN") as info:
        WaveCollate()([(torch.tensor([0.0, math.inf]), SR)])
    assert info.value.reason == "non_finite"
    # huge but finite float32 values whose sum overflows to inf are still delivered
    huge = WaveCollate()([(torch.tensor([3e38, 3e38, -1.0]), SR)])
    assert len(huge) == 1 and huge.skipped == {}
    assert len(WaveCollate(policy="skip")([(torch.tensor([math.inf, -math.inf]), SR)])) == 0


def test_min_length_rejects_short_items_after_resampling() -> None:
    items = [(torch.ones(300), 8000), (torch.ones(256), SR), (torch.ones(255), SR)]
    # 300 samples at 8 kHz become 600 at 16 kHz: long enough; 255 < 256 is not
    batch = WaveCollate(sample_rate=SR, resample=True, min_length=256, policy="skip")(items)
    assert batch.lengths.tolist() == [600, 256] and batch.skipped == {"too_short": 1}
    with pytest.raises(SampleError, match="min_length=256") as info:
        WaveCollate(min_length=256)(items[1:])
    assert info.value.reason == "too_short" and info.value.key == "1"
    with pytest.raises(ValueError, match="min_length"):
        WaveCollate(min_length=0)


def test_all_skipped_gives_empty_batch_with_counts() -> None:
    batch = WaveCollate(policy="skip")(
        [Skipped("a", "decode_error"), b"junk", (torch.zeros(0), SR)]
    )
    assert len(batch) == 0 and batch.audio.shape[0] == 0
    assert batch.skipped == {"decode_error": 2, "empty": 1}
    counter = SkipCounter()
    assert list(counter.wrap([batch])) == []  # counted, not passed on
    assert counter.counts == {"decode_error": 2, "empty": 1} and counter.total == 3


def test_stream_errors_reach_the_next_batch() -> None:
    policy = FaultPolicy("skip")
    take_pending()
    assert policy(RuntimeError("broken tar")) is True
    batch = WaveCollate(policy=policy)([(torch.ones(10), SR)])
    assert batch.skipped == {"stream_error": 1}
    assert WaveCollate(policy=policy)([(torch.ones(10), SR)]).skipped == {}
    with pytest.raises(RuntimeError, match="broken"):
        FaultPolicy("raise")(RuntimeError("broken tar"))
    error = SampleError("x is empty", key="x", reason="empty")
    with pytest.raises(SampleError) as info:
        FaultPolicy("raise")(error)
    assert info.value is error and info.value.__cause__ is None
    assert policy(error) is True
    assert take_pending() == {"empty": 1}


def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="on_error"):
        FaultPolicy("ignore")
    with pytest.raises(ValueError, match="sample_rate"):
        WaveCollate(sample_rate=0)
    with pytest.raises(ValueError, match="cannot collate"):
        WaveCollate()([3.5])
    with pytest.raises(ValueError, match="CPU"):
        SpecCollate(TorchStft().to("meta"))


def test_collates_pickle() -> None:
    collate = SpecCollate(TorchStft(), sample_rate=SR, policy="skip")
    back = pickle.loads(pickle.dumps(collate))
    items = [(torch.randn(800), SR), (torch.randn(500), SR)]
    a, b = collate(items), back(items)
    assert torch.equal(a.spec, b.spec) and back.policy == FaultPolicy("skip")


def interior_frames(length: int, n_fft: int, hop: int) -> int:
    """Frames (center=True) whose window ends inside the valid samples: padding cannot reach them."""
    return max(0, (length - n_fft // 2) // hop + 1)


def read_file(key: str) -> np.ndarray:
    """The item behind a file key, read by soundfile directly (float32, mono)."""
    return sf.read(key, dtype="float32")[0]


def check_against_items(
    batch: SpecBatch,
    transform: nn.Module,
    audio_of: Callable[[str], np.ndarray] = read_file,
    n_fft: int = 256,
    hop: int = 64,
) -> list[str]:
    """Every item of ``batch``: its frame length is the frame count of the item transformed
    alone, and its interior frames equal that item's. Returns the keys."""
    for spec, key, frames in zip(batch.spec, batch.keys, batch.lengths.tolist()):
        audio = torch.from_numpy(audio_of(key)).to(spec.device)
        ref = transform(audio[None])[0]  # the item alone, unpadded
        assert frames == ref.shape[-1]  # frame length = per-item frame count
        k = interior_frames(audio.shape[-1], n_fft, hop)
        assert k > 0
        # the same float32 transform of the same samples, batched or alone: equal up to
        # rounding (summation order may differ with the batch size)
        torch.testing.assert_close(spec[:, :k], ref[:, :k], rtol=1e-5, atol=1e-5)
    return list(batch.keys)


class _Files(torch.utils.data.Dataset):
    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> str:
        return self.paths[i]


@pytest.mark.parametrize("front_end", ["torch.stft", "features.STFT"])
def test_workers_spec_collate_matches_per_item(tmp_path: Path, front_end: str) -> None:
    paths = [str(p) for p in make_files(tmp_path, 8)]
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"fLaC" + bytes(range(256)))
    paths.insert(3, str(bad))
    n_fft, hop = 256, 64
    stft: nn.Module = (
        TorchStft(n_fft, hop)
        if front_end == "torch.stft"
        else STFT(n_fft=n_fft, hop_length=hop, output_format="Magnitude", sr=SR)
    )
    loader = DataLoader(
        _Files(paths),
        batch_size=3,
        num_workers=2,
        multiprocessing_context="fork",
        collate_fn=SpecCollate(stft, policy="skip"),
    )
    counter = SkipCounter()
    seen = []
    for batch in counter.wrap(loader):
        assert isinstance(batch, SpecBatch)
        seen += check_against_items(batch, stft, n_fft=n_fft, hop=hop)
    assert sorted(seen) == sorted(p for p in paths if p != str(bad))
    assert counter.counts == {"decode_error": 1} and counter.samples == 8


def test_workers_pad_into_shared_memory(tmp_path: Path) -> None:
    """In a DataLoader worker, WaveCollate pads straight into shared memory (sent without a copy,
    as default_collate does); the samples are soundfile's own float reads, stereo ones averaged."""
    paths = [str(p) for p in make_files(tmp_path, 4)]
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, _noise(900, channels=2, seed=9).T, SR, subtype="PCM_24")
    loader = DataLoader(
        [*paths, str(stereo)],
        batch_size=5,
        num_workers=1,
        multiprocessing_context="fork",
        collate_fn=WaveCollate(mono=True),
    )
    (batch,) = list(loader)
    assert batch.audio.is_shared() and batch.audio.shape == (5, 2050)
    for row, key, n in zip(batch.audio, batch.keys, batch.lengths.tolist()):
        ref = sf.read(key, dtype="float32", always_2d=True)[0].mean(axis=1, dtype=np.float32)
        assert n == ref.size and not row[n:].any()
        # mono files exactly; the stereo mean up to float32 rounding of the sum
        torch.testing.assert_close(row[:n], torch.from_numpy(ref), rtol=0, atol=1e-7)
    in_main = WaveCollate(mono=True)([*paths, str(stereo)])
    assert not in_main.audio.is_shared() and torch.equal(in_main.audio, batch.audio)


@pytest.mark.parametrize(
    ("labels", "dtype", "expected"),
    [
        ([0.5, 1.0, 0.25], torch.float32, [0.5, 1.0, 0.25]),
        ([1, 0.5, 2], torch.float32, [1.0, 0.5, 2.0]),  # ints and floats: regression targets
        ([np.int64(3), np.int32(1), 2], torch.int64, [3, 1, 2]),
        ([np.array(3), np.array(1), np.array(0)], torch.int64, [3, 1, 0]),  # 0-d arrays
        ([[0, 1, 1], [1, 0, 0], [0, 0, 1]], torch.int64, [[0, 1, 1], [1, 0, 0], [0, 0, 1]]),
        ([np.array([0.0, 1.0])] * 3, torch.float32, [[0.0, 1.0]] * 3),
        ([True, False, True], torch.int64, [1, 0, 1]),
    ],
)
def test_labels_become_tensors(labels: list, dtype: torch.dtype, expected: list) -> None:
    items = [(torch.zeros(100 + i), SR, label) for i, label in enumerate(labels)]
    batch = WaveCollate()(items)
    assert isinstance(batch.labels, torch.Tensor) and batch.labels.dtype == dtype
    assert batch.labels.tolist() == expected


def test_labels_that_are_not_numbers_stay_lists() -> None:
    for labels in (["cat", "dog"], [[0, 1], [1, 0, 1]], [1, None]):
        items = [(torch.zeros(100), SR, label) for label in labels]
        assert WaveCollate()(items).labels == labels


def test_readme_pipelines_snippet_keeps_every_clip_of_an_ordinary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's Pipelines code, run as written on a folder of 22 WAV files at 8, 16, 22.05
    and 44.1 kHz, mono and stereo: every clip comes through both loaders, none skipped."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Pipelines") :]
    code = section[section.index("```python\n") + 10 : section.index("```\n", 12)]
    folder = tmp_path / "clips" / "nested"
    folder.mkdir(parents=True)
    expected = {}
    for i in range(22):
        sr = (8000, 16000, 22050, 44100)[i % 4]
        channels = 1 + (i % 3 == 0)
        path = folder / f"clip{i:02d}.wav"
        sf.write(path, _noise(sr // 10 + 37 * i, channels, seed=i).T, sr, subtype="PCM_16")
        samples = -(-(sr // 10 + 37 * i) * 16000 // sr)  # resampled: ceil(n * 16000 / sr)
        expected[str(path.relative_to(tmp_path))] = 1 + samples // 160  # log-mel-80, center
    monkeypatch.chdir(tmp_path)
    seen: dict[str, int] = {}

    def model(spec: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        assert spec.shape[:2] == (mask.shape[0], 80) and mask.shape[1] == spec.shape[-1]
        return spec.mean()

    namespace: dict[str, Any] = {"model": model}
    exec(compile(code, "README.md", "exec"), namespace)
    batch = namespace["batch"]
    assert namespace["spec"] is batch.spec and namespace["lengths"] is batch.lengths
    staged = namespace["DeviceStage"](namespace["loader"], namespace["front_end"], "cpu")
    for loader in (namespace["cpu_loader"], staged):
        seen = {}
        for b in loader:
            assert b.skipped == {}
            seen.update(zip(b.keys, b.lengths.tolist()))
        assert seen == expected
