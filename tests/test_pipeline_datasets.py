"""AudioDataset / AudioIterableDataset with real DataLoader workers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from test_pipeline_collate import TorchStft, check_against_items, make_files
from torch.utils.data import DataLoader

from nnaudio_data.batch import SpecBatch, WaveBatch
from nnaudio_data.pipeline import AudioDataset, AudioIterableDataset, SkipCounter, Skipped

SR = 16000


class _Tuples(torch.utils.data.Dataset):
    """A user's map-style dataset of (audio, sample_rate, label): int16 arrays at two rates."""

    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int) -> tuple[np.ndarray, int, int]:
        sr = 8000 if i % 2 else SR
        pcm = (np.random.default_rng(i).standard_normal(sr // 4 + 10 * i) * 3000).astype(np.int16)
        return pcm, sr, i % 3


def test_map_style_paths_with_transform_in_workers(tmp_path: Path) -> None:
    paths = [str(p) for p in make_files(tmp_path, 7)]
    stft = TorchStft()
    dataset = AudioDataset(paths, transform=stft)
    loader = DataLoader(
        dataset,
        batch_size=3,
        num_workers=2,
        multiprocessing_context="fork",
        collate_fn=dataset.collate,
    )
    seen = []
    for batch in loader:
        assert isinstance(batch, SpecBatch)
        seen += check_against_items(batch, stft)
    assert seen == paths  # in order, each once


def test_map_style_tuples_resampled_with_labels() -> None:
    dataset = AudioDataset(_Tuples(), sample_rate=SR, resample=True)
    loader = DataLoader(
        dataset,
        batch_size=6,
        num_workers=2,
        multiprocessing_context="fork",
        collate_fn=dataset.collate,
    )
    (batch,) = list(loader)
    assert isinstance(batch, WaveBatch) and batch.sample_rate == SR
    assert batch.keys == [str(i) for i in range(6)]  # unkeyed items: their index
    assert torch.equal(torch.as_tensor(batch.labels), torch.tensor([0, 1, 2, 0, 1, 2]))
    src = _Tuples()
    expected = [math.ceil(len(src[i][0]) * SR / src[i][1]) for i in range(6)]
    assert batch.lengths.tolist() == expected
    # items already at the target rate are the int16 values / 32768, exactly
    np.testing.assert_array_equal(batch.audio[0, : expected[0]].numpy(), src[0][0] / 32768.0)
    rejecting = AudioDataset(_Tuples(), sample_rate=SR, policy="skip")
    out = rejecting.collate([rejecting[i] for i in range(6)])
    assert len(out) == 3 and out.skipped == {"sample_rate": 3}


def test_iterable_splits_by_worker_and_counts_skips(tmp_path: Path) -> None:
    paths = [str(p) for p in make_files(tmp_path, 9)]
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, 0.1 * np.ones((500, 2)), SR, subtype="PCM_16")
    source = [*paths[:4], b"not audio at all", *paths[4:], str(stereo)]
    dataset = AudioIterableDataset(source, policy="skip", mono=True)
    loader = DataLoader(
        dataset,
        batch_size=2,
        num_workers=2,
        multiprocessing_context="fork",
        collate_fn=dataset.collate,
    )
    counter = SkipCounter()
    keys = [k for batch in counter.wrap(loader) for k in batch.keys]
    assert sorted(keys) == sorted([*paths, str(stereo)])  # each item once across 2 workers
    assert counter.counts == {"decode_error": 1}


def test_getitem_returns_marker_or_raises(tmp_path: Path) -> None:
    bad = tmp_path / "x.flac"
    bad.write_bytes(b"junk")
    marker = AudioDataset([str(bad)], policy="skip")[0]
    assert isinstance(marker, Skipped) and marker.reason == "decode_error"
    with pytest.raises(ValueError, match=r"x\.flac"):
        AudioDataset([str(bad)])[0]
    with pytest.raises(ValueError, match="AudioIterableDataset"):
        AudioDataset(iter([str(bad)]))
    with pytest.raises(ValueError, match="iterable"):
        AudioIterableDataset(3)  # type: ignore[arg-type]
