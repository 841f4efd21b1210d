"""Adapters: collate functions, the fault policy, the device stage, WebDataset stages,
torchdata.nodes helpers and dataset wrappers.

* :mod:`~nnaudio_data.pipeline.policy` - :class:`FaultPolicy` (``on_error="raise" | "skip"``),
  :class:`Skipped`, :class:`SkipCounter` (sums ``batch.skipped`` in the main process),
  :func:`flush_skips` (a last webdataset stage that delivers skips recorded after the last batch),
  :class:`SampleError` (a ``ValueError`` with ``key`` and ``reason``).
* :mod:`~nnaudio_data.pipeline.collate` - :class:`WaveCollate` (samples -> padded ``WaveBatch``
  with lengths), :class:`SpecCollate` (the same, then a CPU transform in the worker ->
  ``SpecBatch``), :class:`BatchTransform` (a picklable ``batch -> transform(batch)`` stage for
  webdataset's ``.map`` and torchdata's ``Mapper``), :func:`apply_transform`.
* :mod:`~nnaudio_data.pipeline.device` - :class:`DeviceStage`: moves batches to the device and
  runs the transform there, in the main process (overlapping copies on CUDA).
* :mod:`~nnaudio_data.pipeline.wds` - :class:`AudioHandler` (webdataset decoder handler, never
  unpickles), :func:`split_shards`, :func:`audio_pipeline` (needs ``webdataset``).
* :mod:`~nnaudio_data.pipeline.nodes` - :func:`audio_nodes`, :class:`LoadBatch`,
  :class:`SplitSampler`, :class:`SeededBatches` / :class:`SeededStage` (per-batch salts for the
  random ops) (resumable ``torchdata.nodes`` graphs; needs ``torchdata``).
* :mod:`~nnaudio_data.pipeline.datasets` - :class:`AudioDataset`, :class:`AudioIterableDataset`
  (``DataLoader(ds, batch_size=..., collate_fn=ds.collate)``), :func:`worker_info`.
* :mod:`~nnaudio_data.pipeline.bucketing` - :class:`DurationBatchSampler` (batches of similar
  durations under a budget; seeded, resumable, split by rank), :func:`audio_durations`.
* :mod:`~nnaudio_data.pipeline.hf` - Hugging Face ``datasets`` rows and datasets (map-style and
  streaming) as sources; :class:`HFTransform` for ``ds.set_transform``.

The optional packages (webdataset, torchdata) are imported only when their helpers are called.
"""

from nnaudio_data.pipeline.bucketing import DurationBatchSampler, audio_durations
from nnaudio_data.pipeline.collate import (
    BatchTransform,
    SpecCollate,
    WaveCollate,
    apply_transform,
    check_on_cpu,
)
from nnaudio_data.pipeline.datasets import AudioDataset, AudioIterableDataset, worker_info
from nnaudio_data.pipeline.device import DeviceStage
from nnaudio_data.pipeline.hf import HFTransform
from nnaudio_data.pipeline.nodes import (
    LoadBatch,
    SeededBatch,
    SeededBatches,
    SeededStage,
    SplitSampler,
    audio_nodes,
)
from nnaudio_data.pipeline.policy import (
    FaultPolicy,
    SampleError,
    SkipCounter,
    Skipped,
    flush_skips,
)
from nnaudio_data.pipeline.wds import AudioHandler, audio_pipeline, split_shards

__all__ = [
    "AudioDataset",
    "AudioHandler",
    "AudioIterableDataset",
    "BatchTransform",
    "DeviceStage",
    "DurationBatchSampler",
    "FaultPolicy",
    "HFTransform",
    "LoadBatch",
    "SampleError",
    "SeededBatch",
    "SeededBatches",
    "SeededStage",
    "SkipCounter",
    "Skipped",
    "SpecCollate",
    "SplitSampler",
    "WaveCollate",
    "apply_transform",
    "audio_durations",
    "audio_nodes",
    "audio_pipeline",
    "check_on_cpu",
    "flush_skips",
    "split_shards",
    "worker_info",
]
