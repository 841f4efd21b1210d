"""Adapters: collate functions, the fault policy, the device stage, WebDataset stages,
torchdata.nodes helpers and dataset wrappers.

* :mod:`~nnaudio_data.pipeline.policy` - :class:`FaultPolicy` (``on_error="raise" | "skip"``),
  :class:`Skipped`, :class:`SkipCounter` (sums ``batch.skipped`` in the main process).
* :mod:`~nnaudio_data.pipeline.collate` - :class:`WaveCollate` (samples -> padded ``WaveBatch``
  with lengths), :class:`SpecCollate` (the same, then a CPU transform in the worker ->
  ``SpecBatch``), :func:`apply_transform`.
"""

from nnaudio_data.pipeline.collate import SpecCollate, WaveCollate, apply_transform
from nnaudio_data.pipeline.policy import FaultPolicy, SampleError, SkipCounter, Skipped

__all__ = [
    "FaultPolicy",
    "SampleError",
    "SkipCounter",
    "Skipped",
    "SpecCollate",
    "WaveCollate",
    "apply_transform",
]
