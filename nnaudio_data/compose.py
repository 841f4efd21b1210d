"""Chaining transforms, and applying a transform to a batch with its valid lengths."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nnaudio_data._transform import Transform
from nnaudio_data.batch import SpecBatch, WaveBatch

__all__ = ["Compose", "apply_to_batch", "output_lengths"]


def output_lengths(transform: nn.Module, lengths: torch.Tensor) -> torch.Tensor:
    """Map valid lengths through ``transform`` (identity for modules that do not define it)."""
    mapper = getattr(transform, "output_lengths", None)
    return mapper(lengths) if mapper is not None else torch.as_tensor(lengths)


class Compose(Transform):
    """Apply ``transforms`` in order; valid lengths propagate through each stage's own rule."""

    def __init__(self, *transforms: nn.Module) -> None:
        super().__init__()
        self.transforms = nn.ModuleList(transforms)

    @classmethod
    def _from_config_kwargs(cls, kwargs: dict[str, Any]) -> Transform:
        return cls(*(Transform.from_config(c) for c in kwargs.get("transforms", [])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            x = t(x)
        return x

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            lengths = output_lengths(t, lengths)
        return lengths


def apply_to_batch(transform: nn.Module, batch: WaveBatch | SpecBatch) -> SpecBatch:
    """Run ``transform`` on a batch's tensor and carry lengths and metadata across."""
    out = transform(batch.data)
    return SpecBatch(
        spec=out,
        lengths=output_lengths(transform, batch.lengths),
        sample_rate=batch.sample_rate,
        keys=batch.keys,
        labels=batch.labels,
        meta=batch.meta,
    )
