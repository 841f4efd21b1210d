"""The constant-Q family through the pipeline: valid lengths through ``apply_to_batch`` and a real
DataLoader with worker processes and ``SpecCollate``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_signals

from nnaudio_data.batch import SpecBatch, WaveBatch
from nnaudio_data.compose import apply_to_batch
from nnaudio_data.features.cfp import CFP
from nnaudio_data.features.cqt import CQT1992, CQT2010, VQT, CQT1992v2, CQT2010v2
from nnaudio_data.features.gammatone import Gammatonegram
from nnaudio_data.pipeline.collate import SpecCollate

SR = 16000
LENGTHS = [32000, 26000, 3001]


def _batch() -> WaveBatch:
    sig = make_signals(SR, 2.0).astype(np.float32)
    audio = torch.zeros(3, LENGTHS[0])
    for i, n in enumerate(LENGTHS):
        audio[i, :n] = torch.from_numpy(sig[i, :n])
    return WaveBatch(audio=audio, lengths=torch.tensor(LENGTHS), sample_rate=SR)


TRANSFORMS = [
    lambda: CQT1992v2(sr=SR, fmin=55.0, n_bins=60, hop_length=160),
    lambda: CQT1992v2(sr=SR, fmin=55.0, n_bins=60, hop_length=160, output_format="Complex"),
    lambda: CQT2010v2(sr=SR, fmin=55.0, n_bins=60, hop_length=160),
    lambda: VQT(sr=SR, fmin=55.0, n_bins=60, hop_length=160, gamma=10.0),
    lambda: CQT1992(sr=SR, fmin=110.0, n_bins=48, hop_length=160),
    lambda: CQT2010(sr=SR, fmin=110.0, n_bins=48, hop_length=160),
    lambda: Gammatonegram(sr=SR, n_fft=512, hop_length=160, n_bins=40),
    lambda: CFP(fs=SR, hop_length=160),
]


@pytest.mark.parametrize("make", TRANSFORMS)
def test_valid_lengths_through_apply_to_batch(make: object) -> None:
    transform = make()  # type: ignore[operator]
    out = apply_to_batch(transform, _batch())
    assert isinstance(out, SpecBatch)
    assert out.time_dim == transform.time_dim
    expected = [1 + n // 160 for n in LENGTHS]
    assert out.lengths.tolist() == expected
    assert out.spec.shape[out.time_dim] == expected[0]
    # the second item's valid frames whose kernels stay clear of its end (where the batch has
    # zeros and the item alone its reflection) equal the transform of the unpadded item
    sig = make_signals(SR, 2.0).astype(np.float32)
    n = LENGTHS[1]
    reach = getattr(transform, "kernel_width", None) or getattr(transform, "n_fft", None)
    reach = reach or transform.N
    reach <<= getattr(transform, "n_levels", 0)  # multirate: the lowest octave's span
    reach += 256 << getattr(transform, "n_levels", 0) if hasattr(transform, "n_levels") else 0
    keep = (n - reach // 2) // 160
    assert keep >= 10
    alone = transform(torch.from_numpy(sig[1, :n]))[0]
    axis = -2 if out.time_dim == -2 else -1
    # the two lengths get different fold plans: 3e-5 truncation each, so 1e-4 of the peak
    atol = 1e-4 * float(alone.abs().max())
    torch.testing.assert_close(
        out.spec[1].narrow(axis, 0, keep), alone.narrow(axis, 0, keep), rtol=1e-4, atol=atol
    )


def test_dataloader_workers_with_spec_collate() -> None:
    """A real DataLoader with 2 worker processes computing the CQT in the workers."""
    sig = make_signals(SR, 2.0).astype(np.float32)
    items = [(sig[i % 3, : LENGTHS[i % 3]], SR) for i in range(6)]
    collate = SpecCollate(CQT1992v2(sr=SR, fmin=55.0, n_bins=60, hop_length=160))
    loader = torch.utils.data.DataLoader(
        items, batch_size=3, num_workers=2, collate_fn=collate, multiprocessing_context="spawn"
    )
    batches = list(loader)
    assert len(batches) == 2
    for b in batches:
        assert isinstance(b, SpecBatch)
        assert b.lengths.tolist() == [1 + n // 160 for n in LENGTHS]
        assert b.spec.shape == (3, 60, 201)
    torch.testing.assert_close(batches[0].spec, batches[1].spec)


@pytest.mark.parametrize("make", TRANSFORMS)
def test_empty_batch_has_the_shape_of_a_full_one(make: object) -> None:
    transform = make()  # type: ignore[operator]
    full = transform(torch.zeros(2, 4000))
    empty = transform(torch.zeros(0, 4000))
    assert empty.shape == (0, *full.shape[1:])
