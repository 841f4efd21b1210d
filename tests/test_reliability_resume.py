"""Exact resume with shuffling on, over two epochs, with ``torchdata.nodes.Loader`` and
``StatefulDataLoader`` (two worker processes each): a checkpoint taken mid-epoch, at the end of an
epoch and in the next epoch, saved with ``torch.save`` and read back with
``torch.load(weights_only=True)``, resumes so that the keys seen across the interrupted run equal
those of an uninterrupted one, in the same order, none lost, none repeated; the skip counts add up
the same way. (``test_pipeline_nodes.py`` covers a checkpoint at the start of each epoch's second
half; this file covers every position of the epoch boundary with one helper for both loaders.)"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from torchdata import nodes
from torchdata.stateful_dataloader import StatefulDataLoader

from nnaudio_data.pipeline import AudioDataset, SkipCounter, audio_nodes

SR = 8000
N_ITEMS = 10  # 9 good + 1 corrupt; batch 3: 4 batches per epoch, the last one of 1 or 0 items
EPOCHS = 2
BATCHES = -(-N_ITEMS // 3)


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("resume")
    out = []
    for i in range(N_ITEMS):
        path = root / f"k{i:02d}.wav"
        if i == 6:
            path.write_bytes(b"RIFF\x00\x01\x00\x00WAVEdata" + bytes(64))  # corrupt
        else:
            sf.write(path, 0.1 * np.random.default_rng(i).standard_normal(300 + 40 * i), SR)
        out.append(str(path))
    return out


def _checkpoint(state: dict[str, Any]) -> dict[str, Any]:
    """Through bytes as a training script would save it; loading runs no pickled code."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


END = None  # "consumed = END": the checkpoint is taken once the epoch's loop has ended


def _batches(loader: Any, counter: SkipCounter, epochs: int) -> list[list[str]]:
    """The keys of every batch of ``epochs`` epochs (one ``for`` loop per epoch)."""
    return [list(b.keys) for _ in range(epochs) for b in counter.wrap(loader)]


def _check_resume(make: Callable[[], Any]) -> dict[str, int]:
    """For each checkpoint position, compare the interrupted run with the uninterrupted one."""
    counter = SkipCounter()
    reference = _batches(make(), counter, EPOCHS)
    flat = [k for b in reference for k in b]
    per_epoch = N_ITEMS - 1
    assert len(flat) == EPOCHS * per_epoch
    assert all(
        sorted(flat[e * per_epoch : (e + 1) * per_epoch]) == sorted(set(flat))
        for e in range(EPOCHS)
    )  # every good item once per epoch
    assert flat[:per_epoch] != flat[per_epoch:]  # shuffled: a new order each epoch
    assert counter.counts == {"decode_error": EPOCHS}
    assert counter.samples + counter.total == EPOCHS * N_ITEMS  # nothing dropped uncounted
    # (epoch, batches consumed in it) at the checkpoint: mid-epoch, end of epoch, next epoch
    positions: list[tuple[int, int | None]] = [(0, 2), (0, END), (1, 1)]
    results = {}
    for epoch, consumed in positions:
        loader, before = make(), SkipCounter()
        run = _batches(loader, before, epoch)
        it = iter(before.wrap(loader))
        if consumed is END:
            run += [list(b.keys) for b in it]
        else:
            run += [list(next(it).keys) for _ in range(consumed)]
        state = _checkpoint(loader.state_dict())
        resumed, after = make(), SkipCounter()
        resumed.load_state_dict(state)
        # the rest of the interrupted epoch, then the epochs still to run; a checkpoint taken
        # after an epoch's loop ended resumes with the next epoch
        run += _batches(resumed, after, EPOCHS - epoch - (1 if consumed is END else 0))
        assert run == reference, (epoch, consumed)  # same keys, same order, none lost or repeated
        assert (
            _batches(resumed, after, 1)
            == _batches(make(), SkipCounter(), EPOCHS + 1)[len(reference) :]
        ), (epoch, consumed)  # and the epoch after that is the one an uninterrupted run has
        total = dict(before.counts)
        for reason, n in after.counts.items():
            total[reason] = total.get(reason, 0) + n
        # each skip counted once: up to the checkpoint before it, after it on resume
        assert total == {"decode_error": EPOCHS + 1}, (epoch, consumed)
        results[f"{epoch}:{consumed}"] = sum(len(b) for b in run)
    return results


def test_nodes_loader_resumes_at_every_position(paths: list[str]) -> None:
    def make() -> nodes.Loader:
        graph = audio_nodes(
            paths,
            batch_size=3,
            shuffle=True,
            seed=11,
            num_workers=2,
            multiprocessing_context="fork",
            policy="skip",
        )
        return nodes.Loader(graph)

    counts = _check_resume(make)
    assert set(counts.values()) == {EPOCHS * (N_ITEMS - 1)}


@pytest.mark.filterwarnings("ignore:.set_vital. is deprecated:UserWarning")
def test_stateful_dataloader_resumes_at_every_position(paths: list[str]) -> None:
    dataset = AudioDataset(paths, policy="skip")

    def make() -> StatefulDataLoader:
        return StatefulDataLoader(
            dataset,
            batch_size=3,
            shuffle=True,
            generator=torch.Generator().manual_seed(5),
            num_workers=2,
            multiprocessing_context="fork",
            collate_fn=dataset.collate,
        )

    counts = _check_resume(make)
    assert set(counts.values()) == {EPOCHS * (N_ITEMS - 1)}


def test_checkpoint_path_is_plain_data(paths: list[str], tmp_path: Path) -> None:
    """A Loader's state holds only plain values: it loads with weights_only=True from a file."""
    loader = nodes.Loader(audio_nodes(paths, batch_size=4, shuffle=True, seed=1, policy="skip"))
    it = iter(loader)
    first = next(it).keys
    torch.save({"loader": loader.state_dict()}, tmp_path / "ckpt.pt")
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)["loader"]
    resumed = nodes.Loader(audio_nodes(paths, batch_size=4, shuffle=True, seed=1, policy="skip"))
    resumed.load_state_dict(state)
    rest = [k for b in resumed for k in b.keys]
    assert sorted(first + rest) == sorted(p for i, p in enumerate(paths) if i != 6)
    assert not set(first) & set(rest)
