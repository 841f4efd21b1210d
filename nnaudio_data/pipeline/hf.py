"""Hugging Face ``datasets``: its rows are samples of the collate functions and dataset wrappers.

Interface:

* rows ``{"audio": {"array", "sampling_rate"}, ...}`` (decoded) and
  ``{"audio": {"bytes", "path"}, ...}`` (``Audio(decode=False)``, decoded with soundfile here, so
  torchcodec is not needed) are samples of
  :class:`~nnaudio_data.pipeline.collate.WaveCollate` / ``SpecCollate``; the other columns
  travel as the label (``label_key=`` names the column, default ``"label"``) and ``meta``.
* a ``datasets.Dataset`` is a map-style source: ``AudioDataset(ds, label_key=...)``; under DDP
  give each rank ``split_dataset_by_node(ds, rank=rank, world_size=world)`` (or a rank-aware
  sampler such as :class:`~nnaudio_data.pipeline.nodes.SplitSampler`); DataLoader workers then
  share that rank's indices as usual.
* a streaming ``datasets.IterableDataset`` is an iterable source:
  ``AudioIterableDataset(ds, ...)`` splits it by rank with ``split_dataset_by_node`` and lets
  ``datasets`` split it by worker (by shard), so that each row is read once over all ranks and
  workers.
* :class:`HFTransform` - a batch function for ``ds.set_transform(...)`` / ``ds.with_transform``
  for users who stay inside ``datasets``: each row's audio becomes its spectrogram (or padded
  waveform) cut to its valid frames, with its length.

``datasets`` itself is never imported here: a user who has its objects has it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nnaudio_data.pipeline.datasets import make_collate
from nnaudio_data.pipeline.policy import FaultPolicy

__all__ = ["HFTransform"]


class HFTransform:
    """``ds.set_transform(HFTransform(front_end, sample_rate=16000, resample=True))``: columns in,
    columns out.

    Args:
        transform: a CPU ``nn.Module`` run on the padded batch of rows (``None``: padded
            waveforms).
        audio_column: the column holding the audio (decoded or ``Audio(decode=False)``).
        output_column: the column the features go to (the audio column is dropped).
        policy: the fault policy; a skipped row gets ``None`` features and length 0 (logged and
            counted like any skip).
        **collate_kwargs: as :class:`~nnaudio_data.pipeline.collate.WaveCollate`
            (``sample_rate``, ``resample``, ``mono``...).

    Returns (when called with a dict of columns, as ``datasets`` does): the other columns as
    given, ``output_column``: one tensor per row, ``(freq, frames)`` cut to its valid frames (a
    waveform ``(time,)`` or ``(channels, time)`` without a transform), and ``"length"``: its valid
    frames (samples).

    Shape:
        - Input: ``{audio_column: [row audio, ...], other columns...}``
        - Output: ``{output_column: [(..., frames_i), ...], "length": [frames_i, ...], ...}``
    """

    def __init__(
        self,
        transform: nn.Module | None = None,
        *,
        audio_column: str = "audio",
        output_column: str = "spec",
        policy: FaultPolicy | str | None = None,
        **collate_kwargs: Any,
    ) -> None:
        if not isinstance(audio_column, str) or not audio_column:
            raise ValueError(f"audio_column must be a column name, got {audio_column!r}")
        self.audio_column = audio_column
        self.output_column = str(output_column)
        self.collate = make_collate(
            transform, {"policy": policy, "audio_key": audio_column, **collate_kwargs}
        )

    def __repr__(self) -> str:
        return f"HFTransform(audio_column={self.audio_column!r}, collate={self.collate!r})"

    def __call__(self, columns: Mapping[str, Any]) -> dict[str, list[Any]]:
        if self.audio_column not in columns:
            raise ValueError(
                f"HFTransform: no column {self.audio_column!r} (columns {sorted(columns)}); "
                "pass audio_column="
            )
        n = len(columns[self.audio_column])
        audio = columns[self.audio_column]
        rows = [{self.audio_column: audio[i], "key": str(i)} for i in range(n)]
        batch = self.collate(rows)
        out = {k: list(v) for k, v in columns.items() if k != self.audio_column}
        features: list[torch.Tensor | None] = [None] * n
        lengths = [0] * n
        time_dim = getattr(batch, "time_dim", -1)
        item_dim = time_dim if time_dim < 0 else time_dim - 1  # the axis in one item
        for j, key in enumerate(batch.keys):
            row, length = int(key), int(batch.lengths[j])
            features[row] = batch.data[j].narrow(item_dim, 0, length).clone()
            lengths[row] = length
        out[self.output_column] = features
        out["length"] = lengths
        return out
