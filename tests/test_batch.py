"""WaveBatch / SpecBatch: the skip counts travel with a batch (moves, copies, pickling)."""

from __future__ import annotations

import dataclasses
import pickle

import torch

from nnaudio_data.batch import SpecBatch, WaveBatch


def _batch() -> WaveBatch:
    return WaveBatch(
        audio=torch.randn(2, 100),
        lengths=torch.tensor([100, 60]),
        sample_rate=16000,
        keys=["a", "b"],
        labels=torch.tensor([1, 0]),
        skipped={"decode_error": 2, "empty": 1},
    )


def test_skipped_defaults_to_empty_dict_per_batch() -> None:
    a = WaveBatch(audio=torch.zeros(1, 4), lengths=torch.tensor([4]), sample_rate=8000)
    b = WaveBatch(audio=torch.zeros(1, 4), lengths=torch.tensor([4]), sample_rate=8000)
    assert a.skipped == {}
    a.skipped["empty"] = 1
    assert b.skipped == {}  # no shared mutable default


def test_skipped_survives_to_and_replace_and_pickle() -> None:
    batch = _batch()
    moved = batch.to("cpu", torch.float64)
    assert moved.audio.dtype == torch.float64 and moved.lengths.dtype == torch.int64
    assert moved.skipped == {"decode_error": 2, "empty": 1}
    back = pickle.loads(pickle.dumps(batch))
    assert back.skipped == batch.skipped and back.keys == ["a", "b"]
    assert torch.equal(back.audio, batch.audio)
    spec = SpecBatch(
        spec=torch.ones(2, 5, 7), lengths=torch.tensor([7, 4]), sample_rate=16000, skipped={"x": 3}
    )
    assert dataclasses.replace(spec, spec=spec.spec * 2).skipped == {"x": 3}
    assert spec.mask.sum(dim=1).tolist() == [7, 4]


def test_empty_batch_is_valid() -> None:
    empty = WaveBatch(
        audio=torch.zeros(0, 0),
        lengths=torch.zeros(0, dtype=torch.long),
        sample_rate=16000,
        skipped={"decode_error": 4},
    )
    assert len(empty) == 0 and empty.skipped == {"decode_error": 4}


def test_batches_unpack_as_data_and_lengths() -> None:
    wave = _batch()
    audio, lengths = wave  # lhotse's (features, lengths) pair
    assert audio is wave.audio and lengths is wave.lengths and len(wave) == 2
    spec = SpecBatch(spec=torch.randn(2, 5, 7), lengths=torch.tensor([7, 3]), sample_rate=16000)
    features, frames = spec
    assert features is spec.spec and frames.tolist() == [7, 3]


def test_small_tensors_pickle_by_value_and_large_ones_by_torch() -> None:
    # through torch's ForkingPickler (a DataLoader worker's queue): the spectrogram is moved to
    # shared memory, the lengths and labels travel in the pickle itself; every value, dtype and
    # shape comes back, and a dtype numpy lacks (bfloat16) falls back to torch's reduction
    from multiprocessing.reduction import ForkingPickler

    import torch.multiprocessing  # registers torch's reductions

    from nnaudio_data.batch import BY_VALUE_BYTES

    spec = torch.randn(4, 64, 100)  # 100 KiB: above the by-value limit
    assert spec.numel() * spec.element_size() > BY_VALUE_BYTES
    batch = SpecBatch(
        spec=spec,
        lengths=torch.tensor([100, 90, 3, 0]),
        sample_rate=16000,
        keys=list("abcd"),
        labels=torch.tensor([[0.5], [1.0], [0.0], [2.0]], dtype=torch.bfloat16),
    )
    back = pickle.loads(ForkingPickler.dumps(batch))
    assert back.spec.is_shared() and torch.equal(back.spec, spec)
    assert not back.lengths.is_shared() and back.lengths.dtype == torch.long
    assert torch.equal(back.lengths, batch.lengths) and back.keys == batch.keys
    assert isinstance(back.labels, torch.Tensor) and back.labels.dtype == torch.bfloat16
    assert torch.equal(back.labels, batch.labels)  # type: ignore[arg-type]
    # a strided small tensor keeps its values; plain pickle gives the same batch
    batch.lengths = torch.arange(8)[::2]
    again = pickle.loads(pickle.dumps(batch))
    assert torch.equal(again.lengths, torch.tensor([0, 2, 4, 6])) and again.sample_rate == 16000
