"""Spectrogram transforms with nnAudio 0.3.4's names, parameters, defaults and output formats:
``from nnaudio_data.features import STFT`` replaces ``from nnAudio.features import STFT``.

* Fourier family: :class:`STFT`, :class:`iSTFT` (:mod:`~nnaudio_data.features.stft`),
  :class:`MelSpectrogram`, :class:`MFCC` (:mod:`~nnaudio_data.features.mel`),
  :class:`Griffin_Lim` (:mod:`~nnaudio_data.features.griffin_lim`).
* Constant-Q family (:mod:`~nnaudio_data.features.cqt`): :class:`CQT1992v2` (alias :data:`CQT`),
  :class:`CQT2010v2`, :class:`CQT1992`, :class:`CQT2010`, :class:`VQT`, and the inverse
  :class:`iCQT` (not in nnAudio 0.3.4).
* :class:`Gammatonegram` (:mod:`~nnaudio_data.features.gammatone`), :class:`CFP` and its long
  name :class:`Combined_Frequency_Periodicity` (:mod:`~nnaudio_data.features.cfp`).
* Pretrained models' front ends (not in nnAudio): :class:`KaldiFbank`
  (:mod:`~nnaudio_data.features.kaldi`; Kaldi, lhotse, AST, VGGish) and :class:`WhisperLogMel`
  (:mod:`~nnaudio_data.features.whisper`). The recipes in ``transforms/`` configure them.

Each module checks its arguments, builds its kernels from :mod:`nnaudio_data.kernels` and
computes with :mod:`nnaudio_data.functional`.

Every transform accepts ``(time,)``, ``(batch, time)``, ``(batch, 1, time)`` and
``(batch, channels, time)`` input, maps valid sample lengths to frame lengths with
``output_lengths``, holds frozen kernels as non-persistent buffers and trainable ones as
``nn.Parameter``s, and records its configuration (``get_config()``).
"""

from nnaudio_data.features.cfp import CFP, Combined_Frequency_Periodicity
from nnaudio_data.features.cqt import CQT, CQT1992, CQT2010, VQT, CQT1992v2, CQT2010v2, iCQT
from nnaudio_data.features.gammatone import Gammatonegram
from nnaudio_data.features.griffin_lim import Griffin_Lim
from nnaudio_data.features.kaldi import KaldiFbank
from nnaudio_data.features.mel import MFCC, MelSpectrogram
from nnaudio_data.features.stft import STFT, iSTFT
from nnaudio_data.features.whisper import WhisperLogMel

__all__ = [
    "CFP",
    "CQT",
    "CQT1992",
    "CQT2010",
    "MFCC",
    "STFT",
    "VQT",
    "CQT1992v2",
    "CQT2010v2",
    "Combined_Frequency_Periodicity",
    "Gammatonegram",
    "Griffin_Lim",
    "KaldiFbank",
    "MelSpectrogram",
    "WhisperLogMel",
    "iCQT",
    "iSTFT",
]
