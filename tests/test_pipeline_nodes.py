"""torchdata.nodes graphs and the resumable iterable wrapper (resuming Loader and
StatefulDataLoader at every position, with shuffling, is in test_reliability_resume.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import write_noise_wavs
from test_pipeline_collate import TorchStft, check_against_items, make_files
from torchdata import nodes
from torchdata.stateful_dataloader import StatefulDataLoader

from nnaudio_data.batch import SpecBatch
from nnaudio_data.pipeline import (
    AudioIterableDataset,
    BatchTransform,
    SplitSampler,
    audio_nodes,
)

SR = 16000
N_ITEMS = 11  # with batch 3: 4 batches per epoch, the last one partial


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """11 int16 WAV files of different lengths, the fifth one corrupt."""
    root = tmp_path_factory.mktemp("nodes")
    return write_noise_wavs(root, N_ITEMS, SR, level=0.2, base=700, step=113, corrupt=4)


def _keys(batches: Any, n: int | None = None) -> list[list[str]]:
    out = []
    for i, batch in enumerate(batches):
        out.append(list(batch.keys))
        if n is not None and i + 1 == n:
            break
    return out


def test_nodes_batches_are_spectrograms_with_frame_lengths(items: list[str]) -> None:
    stft = TorchStft()
    graph = audio_nodes(items[:4], batch_size=4, transform=stft, policy="skip")
    (batch,) = list(nodes.Loader(graph))
    assert isinstance(batch, SpecBatch) and batch.skipped == {}
    assert check_against_items(batch, stft) == items[:4]
    # a Mapper stage applying the transform in the main process gives the same numbers
    waves = audio_nodes(items[:4], batch_size=4)
    (same,) = list(nodes.Loader(nodes.Mapper(waves, BatchTransform(stft))))
    assert torch.equal(same.spec, batch.spec) and same.keys == batch.keys


def test_split_sampler() -> None:
    ranks = [list(SplitSampler(10, shuffle=True, seed=1, rank=r, world_size=3)) for r in range(3)]
    assert sorted(i for r in ranks for i in r) == list(range(10))  # no padding, no repeats
    assert [len(SplitSampler(10, rank=r, world_size=3)) for r in range(3)] == [4, 3, 3]
    sampler = SplitSampler(10, shuffle=True, seed=1)
    order0 = list(sampler)
    assert order0 == list(sampler)  # the same epoch replays
    sampler.set_epoch(1)
    assert order0 != list(sampler) and sorted(sampler) == list(range(10))
    with pytest.raises(ValueError, match="rank"):
        SplitSampler(4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        audio_nodes(["a.wav"], batch_size=0)


@pytest.mark.filterwarnings("ignore:.set_vital. is deprecated:UserWarning")
@pytest.mark.parametrize("stop_after", [1, 3])
def test_stateful_dataloader_resumes_iterable_wrapper(tmp_path: Path, stop_after: int) -> None:
    paths = [str(p) for p in make_files(tmp_path, 11)]
    dataset = AudioIterableDataset(paths)  # policy "raise": any unreadable file fails the test

    def loader() -> StatefulDataLoader:
        return StatefulDataLoader(
            dataset,
            batch_size=2,
            num_workers=2,
            multiprocessing_context="fork",
            collate_fn=dataset.collate,
        )

    reference = _keys(loader())
    assert sorted(k for b in reference for k in b) == sorted(paths)
    first = loader()
    head = _keys(first, stop_after)
    state = first.state_dict()
    for key in (k for b in head for k in b):
        Path(key).unlink()  # a resume that decoded the delivered items again would fail here
    resumed = loader()
    resumed.load_state_dict(state)
    assert head + _keys(resumed) == reference  # nothing lost, nothing repeated
