"""Collate functions: samples -> a padded :class:`~nnaudio_data.batch.WaveBatch` (or, with a
transform run in the CPU worker, a :class:`~nnaudio_data.batch.SpecBatch`).

Interface:

* :class:`WaveCollate` - ``DataLoader(..., collate_fn=WaveCollate(...))``, and webdataset's
  ``.batched(n, collation_fn=WaveCollate(...))``. Picklable; runs on the CPU only. Integer PCM
  files are converted to float once, straight into the padded batch; inside a DataLoader worker
  that batch is allocated in shared memory (as ``default_collate`` does), so sending it to the
  main process copies nothing.
* :class:`SpecCollate` - the same, then runs a (CPU) transform on the padded batch inside the
  worker, under ``torch.no_grad()``; valid lengths become frame lengths by the transform's
  ``output_lengths``.
* :class:`BatchTransform` - the picklable stage ``batch -> transform(batch)`` for webdataset's
  ``.map`` / ``.compose`` and ``torchdata.nodes.Mapper``; :func:`apply_transform` is the function
  it calls (``compose.apply_to_batch`` keeping the skip counts, and empty batches).
* ``WaveCollate.prepare(sample, index)`` - one sample decoded and normalised (what a dataset's
  ``__getitem__`` returns, in the worker).

This module pads and collates; parsing a sample's forms lives in
:mod:`~nnaudio_data.pipeline.samples`, the transform stage in :mod:`~nnaudio_data.pipeline.stage`
(both re-exported here).

A sample is one of:

* a dict: the audio under ``audio_key`` (default ``"audio"``, or else the first field whose
  extension is an audio one, e.g. webdataset's ``"flac"``), holding a tensor / array (then the
  rate is under ``"sample_rate"`` or ``"sr"``), an ``(audio, sample_rate)`` pair (what
  :class:`~nnaudio_data.pipeline.wds.AudioHandler` decodes to), encoded bytes / a path, or a
  Hugging Face ``datasets`` audio value: ``{"array", "sampling_rate"}`` (decoded; the array a
  list, numpy array or tensor) or ``{"bytes", "path"}`` (``Audio(decode=False)``: decoded here
  with soundfile, no torchcodec needed);
  the key under ``"key"`` or ``"__key__"`` (else the audio value's ``"path"``, else the index);
  the label under ``label_key`` (default ``"label"``, else ``"cls"``); other fields (not
  ``__*__``) go to ``meta``;
* a tuple ``(audio, sample_rate)`` or ``(audio, sample_rate, label)`` where ``audio`` is a
  tensor / array, or encoded bytes / a path (then ``sample_rate`` is ``None`` or the rate the file
  must have);
* encoded bytes or a path alone;
* a :class:`~nnaudio_data.pipeline.policy.Skipped` marker (counted and dropped).

Labels become a tensor when they can (ints / bools -> int64, floats -> float, equal-shape
lists, arrays or tensors such as multi-hot vectors -> stacked), else stay a list.

Audio is ``(time,)`` or ``(channels, time)``; integer arrays are scaled to [-1, 1]. The batch is
``(batch, time)`` when every item has one channel (or ``mono=True``), else
``(batch, channels, time)``; items are zero-padded after their end and ``lengths`` holds their
valid samples.

Sample rates: with ``sample_rate=None`` every item must have the first item's rate; with
``sample_rate=R`` every item must have rate ``R``, or, with ``resample=True``, is resampled to
``R`` (band-limited: :class:`nnaudio_data.ops.Resample`, per item in the worker; the output has
``ceil(n * R / rate)`` samples, as ``scipy.signal.resample_poly``). A rate whose ratio to ``R``
``Resample`` refuses (reduced to ``up / down`` with ``up * down`` above
:data:`nnaudio_data.ops.resample.MAX_RESAMPLE_TERMS`, e.g. a header that says 44101 Hz, to
22050 Hz: 22050 / 44101) is refused with reason ``sample_rate``: its polyphase filter would need
gigabytes. Items that break a rule are :class:`~nnaudio_data.io.SampleError` s
handled by the fault policy: raised (default) or skipped and counted in ``batch.skipped``
(reasons ``decode_error``, ``empty``, ``non_finite``, ``sample_rate``, ``channels``,
``too_short`` - fewer samples than ``min_length``, e.g. the transform's ``n_fft``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import get_worker_info

from nnaudio_data._checks import check_float_dtype, check_positive_int
from nnaudio_data.batch import SpecBatch, WaveBatch
from nnaudio_data.io import (
    AUDIO_EXTENSIONS,
    MAX_SAMPLES,
    SampleError,
    audio_extension,
    read_native,
    scale_into,
)
from nnaudio_data.pipeline.policy import (
    FaultPolicy,
    Skipped,
    add_counts,
    log_skip,
    take_pending,
)
from nnaudio_data.pipeline.samples import (
    ENCODED,
    PCM,
    Item,
    all_finite,
    as_float,
    as_sample_error,
    cached_resampler,
    collate_labels,
    hf_audio,
    pcm,
    skipped_marker,
)
from nnaudio_data.pipeline.stage import BatchTransform, apply_transform, check_on_cpu

__all__ = [
    "BatchTransform",
    "SpecCollate",
    "WaveCollate",
    "apply_transform",
    "check_on_cpu",
]


class WaveCollate:
    """Pad samples into a :class:`~nnaudio_data.batch.WaveBatch` with valid lengths.

    Args:
        sample_rate: the rate every item must have (``None``: the first item's rate).
        resample: resample items of another rate to ``sample_rate`` instead of rejecting them.
        mono: average the channels of every item (the batch is then ``(batch, time)``).
        policy: the :class:`~nnaudio_data.pipeline.policy.FaultPolicy` (default: raise).
        check_finite: reject items holding NaN or Inf (reason ``'non_finite'``).
        min_length: reject items with fewer samples (after resampling) than this (reason
            ``'too_short'``; e.g. the ``n_fft`` of an STFT without centring). 1 by default: only
            empty items (reason ``'empty'``).
        max_samples: the most samples (frames x channels) one item may have, as its header
            declares it and after resampling (reason ``'too_large'``; see
            :data:`nnaudio_data.io.MAX_SAMPLES`).
        audio_key: the dict field holding the audio (default: ``"audio"``, else the first field
            with an audio extension).
        label_key: the dict field holding the label (default: ``"label"``, else ``"cls"``).
        dtype: floating dtype of the batch (``"float32"``).

    Returns (when called on a list of samples): a ``WaveBatch`` whose ``skipped`` counts the
    samples the policy skipped, by reason. See the module docstring for the accepted samples.
    """

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        resample: bool = False,
        mono: bool = False,
        policy: FaultPolicy | str | None = None,
        check_finite: bool = True,
        min_length: int = 1,
        max_samples: int = MAX_SAMPLES,
        audio_key: str | None = None,
        label_key: str | None = None,
        dtype: torch.dtype | str = "float32",
    ) -> None:
        self.sample_rate = (
            None if sample_rate is None else check_positive_int("sample_rate", sample_rate)
        )
        if resample and self.sample_rate is None:
            raise ValueError("resample=True needs a target sample_rate, got sample_rate=None")
        self.resample = bool(resample)
        self.mono = bool(mono)
        self.policy = FaultPolicy.of(policy)
        self.check_finite = bool(check_finite)
        self.min_length = check_positive_int("min_length", min_length)
        self.max_samples = check_positive_int("max_samples", max_samples)
        self.audio_key = audio_key
        self.label_key = label_key
        self.dtype = check_float_dtype("dtype", dtype)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(sample_rate={self.sample_rate}, resample={self.resample}, "
            f"mono={self.mono}, policy={self.policy!r})"
        )

    # -- one sample -> Item ---------------------------------------------------------------
    def _decode(
        self, source: Any, key: str | None, expected_sr: Any
    ) -> tuple[torch.Tensor, int, float]:
        """``(audio, sample_rate, scale)``: integer PCM stays integer until the batch is made."""
        # (a 0-byte file is 'empty': read_native says so, for regular files only)
        data, scale, sr = read_native(
            source, key=key, dtype=self.dtype, max_samples=self.max_samples
        )
        if key is None and isinstance(source, str | os.PathLike):
            key = os.fspath(source)
        return self._native(pcm(data, scale, sr), key, expected_sr)

    @staticmethod
    def _native(value: PCM, name: str | None, expected_sr: Any) -> tuple[torch.Tensor, int, float]:
        """``(audio, sample_rate, scale)`` of audio decoded as stored, its rate checked against
        the sample's ``expected_sr`` (when it names one)."""
        if expected_sr is not None and int(expected_sr) != value.sample_rate:
            raise SampleError(
                f"sample {name!r}: the file's sample rate is {value.sample_rate} Hz, expected "
                f"{expected_sr}",
                key=name,
                reason="sample_rate",
            )
        return value.audio, value.sample_rate, value.scale

    def _from_dict(self, sample: Mapping[str, Any], index: int) -> Item:
        key = sample.get("key", sample.get("__key__"))
        name = None if key is None else str(key)
        audio_key = self.audio_key
        if audio_key is None:
            if "audio" in sample:
                audio_key = "audio"
            else:
                audio_key = next(
                    (
                        k
                        for k in sample
                        if not k.startswith("__") and audio_extension(k) in AUDIO_EXTENSIONS
                    ),
                    None,
                )
        if audio_key is None or audio_key not in sample:
            fields = sorted(k for k in sample if not k.startswith("__"))
            raise SampleError(
                f"sample {name!r} has no audio field (audio_key={self.audio_key!r}, "
                f"fields {fields})",
                key=name,
                reason="decode_error",
            )
        value = sample[audio_key]
        sr = sample.get("sample_rate", sample.get("sr"))
        scale = 1.0
        if isinstance(value, Mapping):  # a Hugging Face ``datasets.Audio`` value
            value, sr, path = hf_audio(value, sr, name)
            name = path if name is None and path is not None else name
        elif isinstance(value, tuple | list) and len(value) == 2:
            value, sr = value
        if isinstance(value, PCM):  # decoded as stored (AudioHandler(native=True))
            audio, sr, scale = self._native(value, name, sr)
        elif isinstance(value, ENCODED):
            if name is None and isinstance(value, str | os.PathLike):
                name = os.fspath(value)
            audio, sr, scale = self._decode(value, name, sr)
        elif sr is None:
            raise ValueError(
                f"sample {name!r}: an audio array needs its rate under 'sample_rate' or 'sr' "
                "(or as {'array': ..., 'sampling_rate': ...}, as Hugging Face datasets give it)"
            )
        else:
            audio = as_float(value, self.dtype, name if name is not None else str(index))
        label_key = next(
            (k for k in (self.label_key, "label", "cls") if k is not None and k in sample), "label"
        )
        used = {audio_key, label_key, "key", "sample_rate", "sr"}
        meta = {k: v for k, v in sample.items() if k not in used and not k.startswith("__")}
        name = name if name is not None else str(index)
        return Item(audio, int(sr), name, sample.get(label_key), meta, scale)

    def _item(self, sample: Any, index: int) -> Item:
        if isinstance(sample, Mapping):
            return self._from_dict(sample, index)
        if isinstance(sample, ENCODED):
            name = os.fspath(sample) if isinstance(sample, str | os.PathLike) else None
            audio, sr, scale = self._decode(sample, name, None)
            return Item(audio, sr, name if name is not None else str(index), scale=scale)
        if isinstance(sample, tuple | list) and len(sample) in (2, 3):
            audio, sr = sample[0], sample[1]
            label = sample[2] if len(sample) == 3 else None
            name = os.fspath(audio) if isinstance(audio, str | os.PathLike) else str(index)
            if isinstance(audio, ENCODED):
                audio, sr, scale = self._decode(audio, name, sr)
                return Item(audio, int(sr), name, label, scale=scale)
            if sr is None:
                raise ValueError(f"sample {index}: an audio array needs its sample rate, got None")
            return Item(as_float(audio, self.dtype, name), int(sr), name, label)
        if isinstance(sample, torch.Tensor | np.ndarray) and self.sample_rate is not None:
            return Item(as_float(sample, self.dtype, str(index)), self.sample_rate, str(index))
        raise ValueError(
            f"cannot collate a sample of type {type(sample).__name__}: expected a dict, "
            "(audio, sample_rate[, label]), encoded bytes or a path (see nnaudio_data.pipeline."
            "collate)"
        )

    def _check(self, item: Item, target_sr: int | None) -> Item:
        if item.audio.shape[-1] == 0:
            raise SampleError(f"sample {item.key!r} has 0 samples", key=item.key, reason="empty")
        # integer PCM is finite; float audio is checked
        if self.check_finite and item.audio.is_floating_point() and not all_finite(item.audio):
            raise SampleError(
                f"sample {item.key!r} holds NaN or Inf values", key=item.key, reason="non_finite"
            )
        if self.mono and item.audio.shape[0] > 1:  # before resampling: one channel to filter
            item.audio = item.as_float(self.dtype).mean(dim=0, keepdim=True)
        if target_sr is not None and item.sample_rate != target_sr:
            if not self.resample:
                raise SampleError(
                    f"sample {item.key!r} has sample rate {item.sample_rate} Hz, expected "
                    f"{target_sr} Hz (pass resample=True to resample)",
                    key=item.key,
                    reason="sample_rate",
                )
            try:
                resampler = cached_resampler(item.sample_rate, target_sr)
            except ValueError as error:  # a ratio too costly to resample (Resample refuses it)
                raise SampleError(
                    f"sample {item.key!r}: {error}", key=item.key, reason="sample_rate"
                ) from error
            n_out = math.ceil(item.audio.shape[-1] * target_sr / item.sample_rate)
            if n_out * item.audio.shape[0] > self.max_samples:  # e.g. a header saying 1 Hz
                raise SampleError(
                    f"sample {item.key!r}: resampling {item.audio.shape[-1]} samples from "
                    f"{item.sample_rate} Hz to {target_sr} Hz would give {n_out} samples per "
                    f"channel, more than max_samples={self.max_samples}",
                    key=item.key,
                    reason="too_large",
                )
            with torch.no_grad():
                item.audio = resampler(item.as_float(self.dtype))
            item.sample_rate = target_sr
        if item.audio.shape[-1] < self.min_length:
            raise SampleError(
                f"sample {item.key!r} has {item.audio.shape[-1]} samples, fewer than "
                f"min_length={self.min_length}",
                key=item.key,
                reason="too_short",
            )
        return item

    def prepare(self, sample: Any, index: int = 0) -> dict[str, Any] | Skipped:
        """Decode and normalise one sample (e.g. in a dataset's ``__getitem__``, in the worker).

        Returns ``{"audio": (channels, time) tensor, "sample_rate", "key", "label", **meta}``
        (``key`` defaults to ``str(index)``), or the policy's :class:`Skipped` marker for a sample
        that does not decode. Rate, channel and finiteness checks wait for the batch.
        """
        marker = skipped_marker(sample)
        if marker is not None:
            return marker
        try:
            item = self._item(sample, index)
        except Exception as error:
            return self.policy.handle(as_sample_error(error, sample, index))
        return {
            **item.meta,
            "audio": item.as_float(self.dtype),
            "sample_rate": item.sample_rate,
            "key": item.key,
            "label": item.label,
        }

    # -- the batch ------------------------------------------------------------------------
    def __call__(self, samples: Sequence[Any]) -> WaveBatch:
        skipped = take_pending()
        skipped_keys: dict[str, list[str]] = {}
        items: list[Item] = []
        target_sr = self.sample_rate
        channels: int | None = None
        for index, sample in enumerate(samples):
            marker = skipped_marker(sample)
            if marker is not None:
                name = marker.key
                if marker is not sample:  # a field's marker, not yet logged with the sample key
                    name = str(sample.get("key", sample.get("__key__", str(index))))
                    log_skip(name, marker.reason, marker.message)
                add_counts(skipped, {marker.reason: 1})
                skipped_keys.setdefault(marker.reason, []).append(name or str(index))
                continue
            try:
                item = self._check(self._item(sample, index), target_sr)
                if channels is not None and item.audio.shape[0] != channels:
                    raise SampleError(
                        f"sample {item.key!r} has {item.audio.shape[0]} channels, the batch has "
                        f"{channels} (pass mono=True to average channels)",
                        key=item.key,
                        reason="channels",
                    )
            except Exception as error:  # whatever a sample causes is its fault, never the loop's
                fault = as_sample_error(error, sample, index)
                reason = self.policy.handle(fault).reason
                add_counts(skipped, {reason: 1})
                skipped_keys.setdefault(reason, []).append(fault.key or str(index))
                continue
            target_sr = item.sample_rate if target_sr is None else target_sr
            channels = item.audio.shape[0] if channels is None else channels
            items.append(item)
        return self._pad(items, target_sr, skipped, skipped_keys)

    def _pad(
        self,
        items: list[Item],
        sample_rate: int | None,
        skipped: dict[str, int],
        skipped_keys: dict[str, list[str]],
    ) -> WaveBatch:
        lengths = torch.tensor([it.audio.shape[-1] for it in items], dtype=torch.long)
        n_channels = items[0].audio.shape[0] if items else 1
        width = int(lengths.max()) if items else 0
        audio = _empty((len(items), n_channels, width), self.dtype, shared=self._shared_batch)
        for row, it in zip(audio, items):  # each byte written once: the item, then zeros
            n = it.audio.shape[-1]
            if it.audio.dtype == self.dtype:
                row[:, :n] = it.audio
            else:  # integer PCM converted straight into the batch
                scale_into(row[:, :n], it.audio, it.scale)
            row[:, n:] = 0
        if n_channels == 1:
            audio = audio[:, 0]
        return WaveBatch(
            audio=audio,
            lengths=lengths,
            sample_rate=int(sample_rate or self.sample_rate or 0),
            keys=[it.key for it in items],
            labels=collate_labels([it.label for it in items]),
            meta=[it.meta for it in items],
            skipped=skipped,
            skipped_keys=skipped_keys,
        )

    #: Whether the padded audio goes in shared memory when made in a DataLoader worker (it is
    #: what the worker sends; a SpecCollate sends the spectrogram instead).
    _shared_batch = True


def _empty(shape: tuple[int, ...], dtype: torch.dtype, *, shared: bool) -> torch.Tensor:
    """``torch.empty(shape)``, in shared memory inside a DataLoader worker (when ``shared``), so
    that sending it to the main process does not copy it (as ``default_collate`` does)."""
    if not shared or get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    storage = torch.UntypedStorage._new_shared(
        math.prod(shape) * dtype.itemsize, device=torch.device("cpu")
    )
    return torch.empty(0, dtype=dtype).set_(storage).view(shape)


class SpecCollate(WaveCollate):
    """:class:`WaveCollate`, then ``transform`` on the padded batch inside the (CPU) worker.

    Args:
        transform: an ``nn.Module`` on the CPU (e.g. a ``MelSpectrogram`` or a ``Compose``);
            its ``output_lengths`` maps sample lengths to frame lengths.
        **kwargs: as :class:`WaveCollate`.

    Returns (when called): a :class:`~nnaudio_data.batch.SpecBatch` (a ``WaveBatch`` if the
    transform maps waveforms to waveforms), computed under ``torch.no_grad()`` (train a front end
    with the device stage instead).

    Raises:
        ValueError: ``transform`` holds tensors on a device other than the CPU (nothing may
            touch CUDA inside a worker process).
    """

    def __init__(self, transform: nn.Module, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(transform, nn.Module):
            raise ValueError(f"transform must be an nn.Module, got {type(transform).__name__}")
        # the output is checked for NaN / Inf as the input is (check_finite), by the same policy
        self.stage = BatchTransform(
            check_on_cpu(transform), policy=self.policy if self.check_finite else None
        )

    _shared_batch = False  # the audio stays in the worker: only the spectrogram is sent

    @property
    def transform(self) -> nn.Module:
        return self.stage.transform

    def __call__(self, samples: Sequence[Any]) -> SpecBatch | WaveBatch:  # type: ignore[override]
        return self.stage(super().__call__(samples))
