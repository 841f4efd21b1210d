"""Batch transforms other than spectrograms: mono, resample, crop / pad, gain, dB, log,
normalisation, masking, patches. Length-aware where it matters: the ops that need each item's valid length
take it as ``forward(x, lengths=None)`` (see :mod:`nnaudio_data.compose`).

Randomness (``RandomCrop``, ``TimeMasking``, ``FrequencyMasking``). A batch's crops and masks are
a function of the batch's identity, not of the process that happens to compute them:

* :func:`random_context` ``(*salt)`` - inside the block, each call of a random op draws from a
  fresh generator seeded from ``(salt, the call's position in the block, the op's seed)``.
  :func:`nnaudio_data.pipeline.audio_nodes` runs every batch inside one, with the salt
  ``(seed, rank, epoch, batch number)``, which comes from the graph's own state: so the batches are
  the same whether the caller, worker threads or worker processes (assigned batches in any order)
  compute them, two workers never repeat each other's draws, every epoch draws anew, and a
  ``Loader`` resumed from ``state_dict()`` repeats exactly the augmentation of the uninterrupted
  run. Call it in your own stage with any salt that names the batch.
* Outside a context, an op with ``seed=None`` uses torch's global generator; a seeded op keeps
  one generator per process: seeded from ``seed`` where the op was built, from
  ``(seed, rank, worker id)`` in a ``DataLoader`` worker (each worker its own stream,
  reproducible; but workers that are not ``persistent_workers`` restart their stream every
  epoch, and a resumed ``StatefulDataLoader`` restarts it too), and from the process id, with a
  warning, in any other process (a ``torchdata.nodes`` worker outside ``audio_nodes``: such
  workers take batches in no fixed order, so only a per-batch salt can be reproducible).
"""

from nnaudio_data.ops._common import random_context
from nnaudio_data.ops.channels import ToMono
from nnaudio_data.ops.crop import CropOrPad, RandomCrop
from nnaudio_data.ops.level import AmplitudeToDB, Gain, Log
from nnaudio_data.ops.masking import FrequencyMasking, TimeMasking
from nnaudio_data.ops.normalize import Normalize
from nnaudio_data.ops.patches import Patches
from nnaudio_data.ops.resample import Resample

__all__ = [
    "AmplitudeToDB",
    "CropOrPad",
    "FrequencyMasking",
    "Gain",
    "Log",
    "Normalize",
    "Patches",
    "RandomCrop",
    "Resample",
    "TimeMasking",
    "ToMono",
    "random_context",
]
