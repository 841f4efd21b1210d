"""Pure tensor functions every spectrogram transform is built from (as ``torchaudio.functional``).

* Framing (:mod:`~nnaudio_data.functional.framing`): :func:`pad_signal` with numpy's pad modes,
  :func:`frame` (librosa's centred frames), :func:`kaldi_frames` (``snip_edges`` on and off),
  :func:`fill_end_padding` (each clip of a batch padded at its own end), frame-count rules.
* Windows (:mod:`~nnaudio_data.functional.window`): :func:`window`.
* Conditioning (:mod:`~nnaudio_data.functional.preprocess`): :func:`remove_dc`,
  :func:`preemphasis`, :func:`dither`, :func:`condition_frames` (the three fused, Kaldi's).
* Spectra (:mod:`~nnaudio_data.functional.spectral`, :mod:`~nnaudio_data.functional.magnitude`):
  :func:`stft`, :func:`spectrogram`, :func:`istft`, :func:`magnitude`, :func:`power_spectrum`.
* :func:`apply_filterbank`; levels (:mod:`~nnaudio_data.functional.level`): :func:`log`,
  :func:`power_to_db`, :func:`dynamic_range_clamp`, :func:`masked_amax`, :func:`fill_past_end`; normalisation:
  :func:`normalize`, :func:`normalize_per_item`.

Signals are ``(rows, time)`` (batches and channels flattened into rows), spectrograms
``(batch, ..., freq, frames)``; "per item" statistics use the valid frames given by ``lengths``.
"""

from nnaudio_data.functional.amplitude import magnitude, power_spectrum
from nnaudio_data.functional.filterbank import apply_filterbank
from nnaudio_data.functional.framing import (
    PAD_MODES,
    center_pad,
    fill_end_padding,
    frame,
    frame_count,
    frame_lengths,
    kaldi_frame_count,
    kaldi_frame_lengths,
    kaldi_frames,
    pad_signal,
)
from nnaudio_data.functional.level import (
    dynamic_range_clamp,
    fill_past_end,
    log,
    masked_amax,
    power_to_db,
)
from nnaudio_data.functional.normalization import normalize, normalize_per_item
from nnaudio_data.functional.preprocess import condition_frames, dither, preemphasis, remove_dc
from nnaudio_data.functional.spectral import (
    istft,
    istft_lengths,
    overlap_add,
    spectrogram,
    stft,
    window_sumsquare,
)
from nnaudio_data.functional.windows import window

__all__ = [
    "PAD_MODES",
    "apply_filterbank",
    "center_pad",
    "condition_frames",
    "dither",
    "dynamic_range_clamp",
    "fill_end_padding",
    "fill_past_end",
    "frame",
    "frame_count",
    "frame_lengths",
    "istft",
    "istft_lengths",
    "kaldi_frame_count",
    "kaldi_frame_lengths",
    "kaldi_frames",
    "log",
    "magnitude",
    "masked_amax",
    "normalize",
    "normalize_per_item",
    "overlap_add",
    "pad_signal",
    "power_spectrum",
    "power_to_db",
    "preemphasis",
    "remove_dc",
    "spectrogram",
    "stft",
    "window",
    "window_sumsquare",
]
