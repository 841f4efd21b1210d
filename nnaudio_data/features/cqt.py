"""Constant-Q and variable-Q transforms with nnAudio 0.3.4's names, parameters and outputs.

* :class:`CQT1992v2` (alias :class:`CQT`): every wavelet applied to the full-rate signal.
* :class:`CQT2010v2`: multirate (one octave of wavelets, the signal halved per octave).
* :class:`VQT`: the multirate transform with a bandwidth offset ``gamma`` (``gamma=0`` is
  :class:`CQT2010v2`).

What differs from nnAudio 0.3.4 (each one a bug there):

* early downsampling keeps the scale (nnAudio's ``CQT2010v2`` is 1.4x - 2.8x too large and its
  ``VQT`` one octave too high when it downsamples early, e.g. at 44.1 kHz);
* any ``hop_length`` works in the multirate classes (octaves whose hop cannot be halved any more
  are computed at the last rate that divides it), and inputs shorter than the kernels work
  (``'reflect'`` padding repeats the reflection);
* ``q_mode='librosa'`` uses librosa 0.11's Q and fractional wavelet lengths, so that magnitudes
  match ``librosa.cqt`` / ``librosa.vqt``; the default ``'nnaudio'`` gives nnAudio's numbers;
* ``VQT`` honours ``trainable``; nothing prints.

Frozen kernels (``trainable=False``) of :class:`CQT1992v2` take the folded-spectrum path
(see :mod:`nnaudio_data.features._cqt_common`), which agrees with the conv kernels to ~1e-5;
``backend='conv'`` forces the conv kernels.

Where each lives (every name is importable from here, as before): :mod:`.cqt1992`
(``CQT1992v2``, ``CQT``), :mod:`.cqt2010` (``CQT2010v2``, ``VQT``), :mod:`.cqt_spectral`
(``CQT1992``, ``CQT2010``), :mod:`.icqt` (``iCQT``), :mod:`._cqt_common` (what the family shares);
the fold engine is :mod:`nnaudio_data.functional._folded`, the decimator
:mod:`nnaudio_data.functional._decimate`, and the pure numpy kernel builders
:mod:`nnaudio_data.kernels.cqt`.
"""

from __future__ import annotations

from nnaudio_data.features.cqt1992 import CQT, CQT1992v2
from nnaudio_data.features.cqt2010 import VQT, CQT2010v2
from nnaudio_data.features.cqt_spectral import CQT1992, CQT2010
from nnaudio_data.features.icqt import iCQT

__all__ = ["CQT", "CQT1992", "CQT2010", "VQT", "CQT1992v2", "CQT2010v2", "iCQT"]
