"""DeviceStage: batches from real worker processes moved to the device and transformed there;
nothing touches CUDA in a worker."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from test_pipeline_collate import TorchStft, check_against_items, make_files
from torch.utils.data import DataLoader

from nnaudio_data.batch import SpecBatch, WaveBatch
from nnaudio_data.features import MelSpectrogram
from nnaudio_data.pipeline import AudioDataset, DeviceStage, WaveCollate


class FlagCollate(WaveCollate):
    """WaveCollate that records, per item, whether CUDA was initialised in the collating process."""

    def __call__(self, samples: Sequence[Any]) -> WaveBatch:
        batch = super().__call__(samples)
        for meta in batch.meta:
            meta["cuda_initialized"] = torch.cuda.is_initialized()
            meta["pid"] = os.getpid()
        return batch


def test_device_stage_with_fork_workers(tmp_path: Path, device: str) -> None:
    paths = [str(p) for p in make_files(tmp_path, 7)]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + b"\x01" * 300)
    paths.insert(2, str(bad))
    dataset = AudioDataset(paths, policy="skip")
    loader = DataLoader(
        dataset,
        batch_size=3,
        num_workers=2,
        multiprocessing_context="fork",
        collate_fn=FlagCollate(policy="skip"),
        pin_memory=device == "cuda",
    )
    stft = TorchStft()
    stage = DeviceStage(loader, stft, device=device)  # on CUDA, CUDA is initialised before fork
    if device == "cuda":
        assert torch.cuda.is_initialized()
    seen = []
    for batch in stage:
        assert isinstance(batch, SpecBatch) and batch.spec.device.type == device
        for meta in batch.meta:
            assert meta["cuda_initialized"] is False  # reported back from the worker
            assert meta["pid"] != os.getpid()  # made in a real worker process
        seen += check_against_items(batch, stft)
    assert sorted(seen) == sorted(p for p in paths if p != str(bad))
    assert stage.skipped == {"decode_error": 1} and stage.counter.samples == 7


def test_device_stage_plain_move_and_empty_batches() -> None:
    batches = [
        WaveBatch(audio=torch.ones(2, 5), lengths=torch.tensor([5, 3]), sample_rate=8000),
        WaveBatch(
            audio=torch.zeros(0, 0),
            lengths=torch.zeros(0, dtype=torch.long),
            sample_rate=8000,
            skipped={"empty": 2},
        ),
        WaveBatch(
            audio=torch.ones(1, 4), lengths=torch.tensor([4]), sample_rate=8000, skipped={"x": 1}
        ),
    ]
    stage = DeviceStage(batches, device="cpu")
    out = list(stage)
    assert [len(b) for b in out] == [2, 1]  # the empty batch was counted, not passed on
    assert stage.skipped == {"empty": 2, "x": 1} and stage.counter.batches == 3
    assert len(stage) == 3
    with pytest.raises(ValueError, match="transform"):
        DeviceStage(batches, transform="mel")  # type: ignore[arg-type]


def test_trainable_front_end_gets_gradients(device: str) -> None:
    stft = TorchStft(trainable=True)
    batch = WaveBatch(
        audio=torch.randn(2, 1000), lengths=torch.tensor([1000, 700]), sample_rate=8000
    )
    stage = DeviceStage([batch], stft, device=device)
    assert stft.window.device.type == device  # the stage moved the transform
    (out,) = list(stage)
    assert out.spec.requires_grad
    out.spec.sum().backward()
    assert stft.window.grad is not None and torch.isfinite(stft.window.grad).all()
    with torch.no_grad():
        (frozen,) = list(DeviceStage([batch], stft, device=device))
    assert not frozen.spec.requires_grad  # the caller's grad mode decides


def test_device_stage_clear_errors(tmp_path: Path) -> None:
    paths = [str(p) for p in make_files(tmp_path, 4)]
    plain = DataLoader(paths, batch_size=2)  # default_collate: lists of paths
    with pytest.raises(ValueError, match="the loader gave a list; give the DataLoader collate_fn"):
        next(iter(DeviceStage(plain)))
    if torch.cuda.is_available():
        assert DeviceStage(plain, None, "cuda").device.type == "cuda"
    else:  # a CPU-only torch: a ValueError, not torch's AssertionError on first use
        with pytest.raises(ValueError, match=r"device='cuda': this torch has no CUDA device"):
            DeviceStage(plain, TorchStft(), "cuda")
    with pytest.raises(ValueError, match="device must name a torch device, got 'gpu0'"):
        DeviceStage(plain, None, "gpu0")


def test_device_stage_checks_the_output_by_its_policy() -> None:
    audio = torch.randn(3, 4000) * 0.1
    audio[1] *= 1e30  # finite audio whose power overflows float32: a non-finite spectrogram
    batch = WaveBatch(audio=audio, lengths=torch.tensor([4000, 4000, 3000]), sample_rate=16000,
                  keys=["a", "b", "c"])  # fmt: skip
    mel = MelSpectrogram(sr=16000, n_fft=256, hop_length=128, n_mels=20)
    stage = DeviceStage([batch], mel, policy="skip")
    (out,) = list(stage)
    assert out.keys == ["a", "c"] and out.spec.shape[0] == 2 and torch.isfinite(out.spec).all()
    assert stage.skipped == {"non_finite": 1}
    with pytest.raises(ValueError, match="'b'"):
        list(DeviceStage([batch], mel, policy="raise"))
    (unchecked,) = list(DeviceStage([batch], mel))  # no policy: the batch as it comes
    assert unchecked.spec.shape[0] == 3
