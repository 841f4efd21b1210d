"""nnaudio-data: trainable spectrogram front ends computed on the fly inside torch data pipelines.

Layers (dependencies point down only):

* :mod:`nnaudio_data.kernels` - pure builders: windows, Fourier, mel, constant-Q, DCT kernels.
* :mod:`nnaudio_data.features` - ``nn.Module`` spectrogram transforms with nnAudio's names.
* :mod:`nnaudio_data.ops` - other batch transforms (mono, resample, crop/pad, dB, masking...).
* :mod:`nnaudio_data.batch` - :class:`WaveBatch` and :class:`SpecBatch`.
* :mod:`nnaudio_data.compose` - chaining transforms with valid lengths and config round-trip.
* :mod:`nnaudio_data.io` - decoding audio with soundfile.
* :mod:`nnaudio_data.pipeline` - collate, device stage, WebDataset, torchdata.nodes, datasets.
* :mod:`nnaudio_data.recipes` - named transform chains from ``transforms/*.toml``.
"""

from nnaudio_data import features, ops
from nnaudio_data._transform import Transform
from nnaudio_data._version import __version__
from nnaudio_data.batch import SpecBatch, WaveBatch

# Importing features and ops registers every transform class, so ``Transform.from_config`` and
# recipes can rebuild any of them by name.
__all__ = ["SpecBatch", "Transform", "WaveBatch", "__version__", "features", "ops"]
