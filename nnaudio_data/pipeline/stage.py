"""The transform stage of a pipeline: ``batch -> transform(batch)`` with the skip counts carried
over, the output checked for finiteness on valid frames, and a failing batch retried per item
(:func:`apply_transform`, :class:`BatchTransform`, :func:`check_on_cpu`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from nnaudio_data.batch import SpecBatch, WaveBatch, length_mask
from nnaudio_data.compose import apply_to_batch
from nnaudio_data.io import (
    SampleError,
)
from nnaudio_data.pipeline.policy import (
    FaultPolicy,
    add_counts,
)
from nnaudio_data.pipeline.samples import all_finite, as_sample_error

__all__ = ["BatchTransform", "apply_transform", "check_on_cpu"]


def apply_transform(
    transform: nn.Module, batch: WaveBatch | SpecBatch, policy: FaultPolicy | None = None
) -> SpecBatch | WaveBatch:
    """:func:`nnaudio_data.compose.apply_to_batch`, keeping the batch's skip counts; an empty
    batch (every sample skipped) gives an empty ``SpecBatch`` without calling the transform.

    With a ``policy``, the output is checked as the input was: an item whose valid frames hold
    NaN or Inf (a finite float file of amplitude 1e30 overflows any spectrogram) is raised or
    dropped and counted as ``'non_finite'``; and when the transform raises on the batch, the items
    are tried one by one: if some raise alone and others do not, those are the samples' faults
    (raised naming the sample, or dropped and counted, ``'unexpected_error'``) and the others are
    transformed together; otherwise (all pass alone, or none does) the error is raised as it is."""
    if len(batch) == 0:
        return SpecBatch(
            spec=torch.zeros(0),
            lengths=torch.zeros(0, dtype=torch.long),
            sample_rate=batch.sample_rate,
            skipped=dict(batch.skipped),
            skipped_keys=dict(batch.skipped_keys),
        )
    try:
        out = apply_to_batch(transform, batch)
    except Exception as error:
        if policy is None:
            raise
        batch = _without_failing_items(transform, batch, policy, error)
        out = apply_to_batch(transform, batch)
    out = dataclasses.replace(
        out, skipped=dict(batch.skipped), skipped_keys=dict(batch.skipped_keys)
    )
    return out if policy is None else _finite_items(out, policy)


def _without_failing_items(
    transform: nn.Module, batch: SpecBatch | WaveBatch, policy: FaultPolicy, error: Exception
) -> SpecBatch | WaveBatch:
    """``batch`` without the items on which ``transform`` raises alone while others pass (each
    handled by ``policy``); the batch's own ``error`` again when all pass alone or none does."""
    skipped, keep = _counts(batch), []
    for i in range(len(batch)):
        one = _items(batch, [i], ({}, {}))
        try:
            apply_to_batch(transform, one)
        except Exception as item_error:
            fault = as_sample_error(item_error, {"key": one.keys[0] if one.keys else i}, i)
            fault.args = (f"{fault.args[0]} (in the transform)",)
            _count(skipped, policy.handle(fault).reason, fault.key or str(i))
        else:
            keep.append(i)
    if not 0 < len(keep) < len(batch):
        # every item passes alone, or none does: the transform's error, not a sample's (a broken
        # transform must not turn a whole dataset into counted skips)
        raise error
    return _items(batch, keep, skipped)


def _finite_items(batch: SpecBatch | WaveBatch, policy: FaultPolicy) -> SpecBatch | WaveBatch:
    """``batch`` without the items whose valid frames hold NaN or Inf, each handled by
    ``policy`` as a ``'non_finite'`` :class:`SampleError` (the padding is not looked at)."""
    data = batch.data
    if not (data.is_floating_point() or data.is_complex()):
        return batch
    if data.is_floating_point() and all_finite(data):
        return batch
    values = data.movedim(getattr(batch, "time_dim", -1) % data.ndim, -1)  # (batch, ..., time)
    valid = length_mask(batch.lengths.to(data.device), values.shape[-1])
    valid = valid.reshape(valid.shape[0], *([1] * (values.ndim - 2)), valid.shape[1])
    bad = (~torch.isfinite(values) & valid).flatten(1).any(1).tolist()
    if not any(bad):
        return batch
    skipped, keep = _counts(batch), []
    for i, is_bad in enumerate(bad):
        if not is_bad:
            keep.append(i)
            continue
        key = batch.keys[i] if i < len(batch.keys) else str(i)
        error = SampleError(
            f"sample {key!r}: the transform's output holds NaN or Inf (the input was finite: "
            "e.g. float audio whose amplitude overflows the spectrogram)",
            key=key,
            reason="non_finite",
        )
        _count(skipped, policy.handle(error).reason, key)
    return _items(batch, keep, skipped)


_Counts = tuple[dict[str, int], dict[str, list[str]]]


def _counts(batch: SpecBatch | WaveBatch) -> _Counts:
    """A copy of the batch's ``(skipped, skipped_keys)``."""
    return dict(batch.skipped), {r: list(k) for r, k in batch.skipped_keys.items()}


def _count(counts: _Counts, reason: str, key: str) -> None:
    add_counts(counts[0], {reason: 1})
    counts[1].setdefault(reason, []).append(key)


def _items(batch: SpecBatch | WaveBatch, keep: list[int], counts: _Counts) -> Any:
    """The items ``keep`` of ``batch`` (in order), with the skip counts ``counts``."""
    index = torch.tensor(keep, dtype=torch.long)
    labels = batch.labels
    if isinstance(labels, torch.Tensor):
        labels = labels[index.to(labels.device)]
    elif labels is not None:
        labels = [labels[i] for i in keep]
    changes: dict[str, Any] = {
        "spec" if isinstance(batch, SpecBatch) else "audio": batch.data[index.to(batch.data.device)]
    }
    return dataclasses.replace(
        batch,
        **changes,
        lengths=batch.lengths[index.to(batch.lengths.device)],
        keys=[batch.keys[i] for i in keep] if batch.keys else [],
        meta=[batch.meta[i] for i in keep] if batch.meta else [],
        labels=labels,
        skipped=counts[0],
        skipped_keys=counts[1],
    )


class BatchTransform:
    """A picklable stage ``batch -> transform(batch)``: webdataset's ``.map(...)``,
    ``torchdata.nodes.Mapper(..., map_fn=...)``, or any loop over batches.

    Args:
        transform: the ``nn.Module`` (kept on its device; in worker processes it must be on the
            CPU).
        no_grad: compute under ``torch.no_grad()`` (the default; a trainable front end belongs in
            the main process, e.g. in :class:`~nnaudio_data.pipeline.DeviceStage`).
        policy: check the output for NaN / Inf on valid frames and raise or skip such items by
            this fault policy (``None``, the default: no check).

    Returns (when called on a ``WaveBatch`` or ``SpecBatch``): the transformed batch, with lengths
    mapped by the transform's ``output_lengths`` and the skip counts kept.
    """

    def __init__(
        self,
        transform: nn.Module,
        *,
        no_grad: bool = True,
        policy: FaultPolicy | str | None = None,
    ) -> None:
        if not isinstance(transform, nn.Module):
            raise ValueError(f"transform must be an nn.Module, got {type(transform).__name__}")
        self.transform = transform
        self.no_grad = bool(no_grad)
        self.policy = None if policy is None else FaultPolicy.of(policy)

    def __repr__(self) -> str:
        return f"BatchTransform({type(self.transform).__name__}, no_grad={self.no_grad})"

    def __call__(self, batch: WaveBatch | SpecBatch) -> SpecBatch | WaveBatch:
        if not isinstance(batch, WaveBatch | SpecBatch):
            raise ValueError(f"batch must be a WaveBatch or SpecBatch, got {type(batch).__name__}")
        if self.no_grad:
            with torch.no_grad():
                return apply_transform(self.transform, batch, self.policy)
        return apply_transform(self.transform, batch, self.policy)


def check_on_cpu(transform: nn.Module) -> nn.Module:
    """``transform`` if every parameter and buffer is on the CPU, else a ``ValueError``."""
    if any(t.device.type != "cpu" for t in (*transform.parameters(), *transform.buffers())):
        raise ValueError(
            "transform must be on the CPU to run inside DataLoader workers; move it with "
            ".to('cpu') or run it on the device with nnaudio_data.pipeline.DeviceStage"
        )
    return transform
