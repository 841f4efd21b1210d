"""Spectrogram transforms with nnAudio 0.3.4's names, parameters, defaults and output formats:
``from nnaudio_data.features import STFT`` replaces ``from nnAudio.features import STFT``.

* Fourier family (:mod:`~nnaudio_data.features.stft`): :class:`STFT`, :class:`iSTFT`.
* Constant-Q family (:mod:`~nnaudio_data.features.cqt`): :class:`CQT1992v2` (alias :data:`CQT`),
  :class:`CQT2010v2`, :class:`VQT`.

Every transform accepts ``(time,)``, ``(batch, time)``, ``(batch, 1, time)`` and
``(batch, channels, time)`` input, maps valid sample lengths to frame lengths with
``output_lengths``, holds frozen kernels as non-persistent buffers and trainable ones as
``nn.Parameter``s, and records its configuration (``get_config()``).
"""

from nnaudio_data.features.cqt import CQT, VQT, CQT1992v2, CQT2010v2
from nnaudio_data.features.stft import STFT, iSTFT

__all__ = ["CQT", "STFT", "VQT", "CQT1992v2", "CQT2010v2", "iSTFT"]
