"""Batch transforms other than spectrograms: mono, resample, crop / pad, gain, dB, log,
normalisation, masking. Length-aware where it matters: the ops that need each item's valid length
take it as ``forward(x, lengths=None)`` (see :mod:`nnaudio_data.compose`)."""

from nnaudio_data.ops.channels import ToMono
from nnaudio_data.ops.crop import CropOrPad, RandomCrop
from nnaudio_data.ops.level import AmplitudeToDB, Gain, Log
from nnaudio_data.ops.masking import FrequencyMasking, TimeMasking
from nnaudio_data.ops.normalize import Normalize
from nnaudio_data.ops.resample import Resample

__all__ = [
    "AmplitudeToDB",
    "CropOrPad",
    "FrequencyMasking",
    "Gain",
    "Log",
    "Normalize",
    "RandomCrop",
    "Resample",
    "TimeMasking",
    "ToMono",
]
