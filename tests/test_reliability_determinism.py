"""The same seeds give the same batches - order, random crops, time and frequency masks - through
DataLoader workers, WebDataset shards and torchdata nodes; other seeds give other batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
import webdataset as wds
from torch.utils.data import DataLoader
from torchdata import nodes

from nnaudio_data.compose import Compose
from nnaudio_data.features.stft import STFT
from nnaudio_data.ops import FrequencyMasking, RandomCrop, TimeMasking
from nnaudio_data.pipeline import AudioDataset, audio_nodes, audio_pipeline

SR = 8000
CROP = 2000
FORK = {"num_workers": 2, "multiprocessing_context": "fork"}


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("det")
    out = []
    for i in range(12):
        path = root / f"c{i:02d}.wav"
        n = 1500 + 250 * i  # some shorter than the crop: padded, never cropped into padding
        sf.write(path, 0.2 * np.random.default_rng(i).standard_normal(n), SR, subtype="PCM_16")
        out.append(str(path))
    return out


def _front(seed: int) -> Compose:
    return Compose(
        RandomCrop(CROP, seed=seed),
        STFT(n_fft=256, hop_length=64, output_format="Magnitude"),
        TimeMasking(6, num_masks=2, seed=seed + 1),
        FrequencyMasking(12, num_masks=2, seed=seed + 2),
    )


Run = list[tuple[list[str], torch.Tensor, list[int]]]


def _run(loader: Any) -> Run:
    return [(list(b.keys), b.spec.clone(), b.lengths.tolist()) for b in loader]


def _same(a: Run, b: Run) -> bool:
    return len(a) == len(b) and all(
        x[0] == y[0] and x[2] == y[2] and torch.equal(x[1], y[1]) for x, y in zip(a, b)
    )


def _check_augmented(run: Run) -> None:
    """Crops shorten the long clips; masks set whole bands and spans to 0."""
    frames = 1 + CROP // 64
    assert max(n for _, _, lengths in run for n in lengths) == frames
    zero_rows = sum(int((s == 0).all(-1).sum()) for _, spec, _ in run for s in spec)
    assert zero_rows > 0  # frequency masks: whole bins at 0 (a magnitude STFT of noise is not)


def test_dataloader_workers_same_seed_same_batches(paths: list[str]) -> None:
    def run(order_seed: int, op_seed: int) -> Run:
        dataset = AudioDataset(paths, transform=_front(op_seed))
        loader = DataLoader(
            dataset,
            batch_size=4,
            shuffle=True,
            generator=torch.Generator().manual_seed(order_seed),
            collate_fn=dataset.collate,
            **FORK,
        )
        return _run(loader)

    first = run(0, 10)
    _check_augmented(first)
    assert _same(first, run(0, 10))  # same seeds, new worker processes: the same batches
    other_ops = run(0, 20)
    assert [k for k, _, _ in other_ops] == [k for k, _, _ in first]  # same order
    assert not _same(other_ops, first)  # other crops and masks
    assert [k for k, _, _ in run(1, 10)] != [k for k, _, _ in first]  # another order


def test_webdataset_same_seed_same_batches(paths: list[str], tmp_path: Path) -> None:
    for s in range(2):
        with wds.TarWriter(str(tmp_path / f"s{s}.tar")) as sink:
            for p in paths[s::2]:
                sink.write({"__key__": Path(p).stem, "wav": Path(p).read_bytes()})
    urls = [str(tmp_path / "s0.tar"), str(tmp_path / "s1.tar")]

    def run(shuffle_seed: int, op_seed: int) -> Run:
        pipeline = audio_pipeline(
            urls, batch_size=3, transform=_front(op_seed), shuffle=6, seed=shuffle_seed
        )
        return _run(wds.WebLoader(pipeline, batch_size=None, **FORK))

    first = run(3, 10)
    _check_augmented(first)
    assert _same(first, run(3, 10))
    assert not _same(run(3, 20), first)
    keys = sorted(k for b, _, _ in first for k in b)
    other = [k for b, _, _ in run(4, 10) for k in b]
    assert sorted(other) == keys and other != [k for b, _, _ in first for k in b]


def test_nodes_same_seed_same_batches(paths: list[str]) -> None:
    def run(seed: int, op_seed: int, workers: int) -> Run:
        graph = audio_nodes(
            paths,
            batch_size=4,
            shuffle=True,
            seed=seed,
            transform=_front(op_seed),
            num_workers=workers,
            multiprocessing_context="fork",
        )
        return _run(nodes.Loader(graph))

    first = run(5, 10, 0)  # the transform in the loading process
    _check_augmented(first)
    assert _same(first, run(5, 10, 0)) and not _same(first, run(5, 20, 0))
    # with worker processes the order (SplitSampler) is the same for the same seed
    order = [k for k, _, _ in run(5, 10, 2)]
    assert order == [k for k, _, _ in first] == [k for k, _, _ in run(5, 10, 2)]
    assert order != [k for k, _, _ in run(6, 10, 2)]
