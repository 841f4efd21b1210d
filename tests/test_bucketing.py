"""DurationBatchSampler: every item once per epoch, the budget kept, less padding than plain
batches, seeded, resumable mid-epoch, split by rank; with a real DataLoader (2 workers),
torchdata.nodes and StatefulDataLoader over real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader
from torchdata import nodes
from torchdata.stateful_dataloader import StatefulDataLoader

from nnaudio_data.pipeline import AudioDataset, LoadBatch
from nnaudio_data.pipeline.bucketing import DurationBatchSampler, audio_durations

SR = 8000


def _lognormal(n: int, seed: int = 0) -> np.ndarray:
    """A realistic spread: log-normal durations clipped to 1-20 s."""
    return np.clip(np.random.default_rng(seed).lognormal(np.log(4.0), 0.7, n), 1.0, 20.0)


def _padding(batches: list[list[int]], durations: np.ndarray) -> float:
    padded = sum(len(b) * durations[b].max() for b in batches)
    return 1 - sum(durations[b].sum() for b in batches) / padded


def test_every_item_once_within_budget_and_less_padding() -> None:
    durations = _lognormal(500)
    sampler = DurationBatchSampler(durations, max_seconds=60.0, seed=1)
    batches = list(sampler)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(500))  # each once
    assert all(len(b) * durations[b].max() <= 60.0 for b in batches)
    # plain shuffled batches holding the same mean number of clips
    size = round(500 / len(batches))
    order = np.random.default_rng(1).permutation(500)
    plain = [order[i : i + size].tolist() for i in range(0, 500, size)]
    bucketed, unbucketed = _padding(batches, durations), _padding(plain, durations)
    assert bucketed < 0.15 and unbucketed > 0.4, (bucketed, unbucketed)
    capped = DurationBatchSampler(durations, max_seconds=60.0, max_batch_size=4)
    assert max(len(b) for b in capped) == 4


def test_seeded_shuffled_per_epoch_and_frames_budget() -> None:
    durations = _lognormal(200)
    a, b = DurationBatchSampler(durations, max_seconds=40, seed=3), None
    b = DurationBatchSampler(durations, max_seconds=40, seed=3)
    first = list(a)
    assert first == list(b)  # same seed, same batches
    second = list(a)  # the epoch counted up after the full pass
    assert second != first and sorted(map(sorted, second)) != sorted(map(sorted, first))
    a.set_epoch(0)
    assert list(a) == first
    assert list(DurationBatchSampler(durations, max_seconds=40, seed=4)) != first
    frames = (durations * 100).astype(int)  # the same in frames (10 ms hop)
    in_frames = list(DurationBatchSampler(frames, max_frames=4000, seed=3))
    assert all(len(b) * frames[b].max() <= 4000 for b in in_frames)


def test_resume_mid_epoch_and_split_by_rank() -> None:
    durations = _lognormal(300)
    sampler = DurationBatchSampler(durations, max_seconds=50, seed=2)
    sampler.set_epoch(5)
    full = list(sampler)
    sampler.set_epoch(5)
    it = iter(sampler)
    before = [next(it) for _ in range(7)]
    state = sampler.state_dict()
    resumed = DurationBatchSampler(durations, max_seconds=50, seed=2)
    resumed.load_state_dict(state)
    assert before + list(resumed) == full  # nothing lost, nothing repeated
    for drop_last in (False, True):
        ranks = [
            list(
                DurationBatchSampler(
                    durations, max_seconds=50, seed=2, rank=r, world_size=3, drop_last=drop_last
                )
            )
            for r in range(3)
        ]
        flat = [i for r in ranks for b in r for i in b]
        assert len(flat) == len(set(flat))  # disjoint
        if drop_last:
            assert len({len(r) for r in ranks}) == 1  # the same number of steps on every rank
        else:
            assert sorted(flat) == list(range(300))  # and covering


def test_bad_arguments_name_the_value() -> None:
    with pytest.raises(ValueError, match="give exactly one budget"):
        DurationBatchSampler([1.0], max_seconds=1, max_frames=10)
    with pytest.raises(ValueError, match="max_seconds must be a positive number, got -1"):
        DurationBatchSampler([1.0], max_seconds=-1)
    with pytest.raises(ValueError, match="item 1 has nan"):
        DurationBatchSampler([1.0, float("nan")], max_seconds=10)
    with pytest.warns(UserWarning, match="1 item"):
        assert list(DurationBatchSampler([1.0, 30.0], max_seconds=10, shuffle=False)) == [
            [0],
            [1],
        ]


def _files(tmp_path: Path, n: int = 24) -> tuple[list[str], np.ndarray]:
    seconds = np.clip(np.random.default_rng(5).lognormal(np.log(0.1), 0.6, n), 0.02, 0.5)
    paths = []
    for i, s in enumerate(seconds):
        path = tmp_path / f"clip{i:02d}.wav"
        sf.write(path, 0.1 * np.random.default_rng(i).standard_normal(int(s * SR)), SR)
        paths.append(str(path))
    return paths, seconds


def test_with_dataloader_workers_nodes_and_stateful_loader(tmp_path: Path) -> None:
    paths, seconds = _files(tmp_path)
    durations = audio_durations(paths)
    np.testing.assert_allclose(durations, np.floor(seconds * SR) / SR)
    dataset = AudioDataset(paths)
    sampler = DurationBatchSampler(durations, max_seconds=0.8, seed=0)
    expected = [[paths[i] for i in b] for b in sampler]
    sampler.set_epoch(0)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=2,
        multiprocessing_context="fork",
        collate_fn=dataset.collate,
    )
    got = [b.keys for b in loader]
    assert got == expected and sorted(k for b in got for k in b) == sorted(paths)
    for b in loader:  # epoch 1: the budget holds on the padded audio itself
        assert b.audio.shape[0] * b.audio.shape[1] <= 0.8 * SR

    # torchdata.nodes: the sampler's state resumes a Loader mid-epoch
    def graph() -> nodes.Loader:
        source = nodes.SamplerWrapper(DurationBatchSampler(durations, max_seconds=0.8, seed=0))
        return nodes.Loader(
            nodes.ParallelMapper(
                source,
                LoadBatch(dataset),
                num_workers=2,
                in_order=True,
                method="process",
                multiprocessing_context="fork",
            )
        )

    first = graph()
    it = iter(first)
    before = [next(it).keys for _ in range(3)]
    state = first.state_dict()
    again = graph()
    again.load_state_dict(state)
    after = [b.keys for b in again]
    assert before + after == expected

    # StatefulDataLoader: the same through the batch sampler's state_dict
    def stateful() -> StatefulDataLoader:
        return StatefulDataLoader(
            dataset,
            batch_sampler=DurationBatchSampler(durations, max_seconds=0.8, seed=0),
            num_workers=2,
            multiprocessing_context="fork",
            collate_fn=dataset.collate,
        )

    interrupted = stateful()
    it = iter(interrupted)
    before = [next(it).keys for _ in range(2)]
    state = interrupted.state_dict()
    resumed = stateful()
    resumed.load_state_dict(state)
    assert before + [b.keys for b in resumed] == expected
    assert torch.is_tensor(next(iter(resumed)).lengths)
