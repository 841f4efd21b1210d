"""WebDataset stages: an audio decoder handler, shard splitting, and a ready-made pipeline.

Interface:

* :class:`AudioHandler` - webdataset's handler signature ``(key, data) -> value or None``:
  decodes audio fields (``.flac``, ``.wav``, ``.ogg``... see
  :data:`~nnaudio_data.io.AUDIO_EXTENSIONS`) with soundfile to ``(audio (C, T), sample_rate)``,
  hands a field it cannot decode to the fault policy (raised, or a
  :class:`~nnaudio_data.pipeline.policy.Skipped` marker that the collate function logs with the
  sample's key and counts), and
  returns pickle-bearing fields (``.pyd``, ``.pickle``, ``.pkl``, ``.pth``, ``.pt``) as their
  raw bytes, so that no later handler (webdataset's ``basichandlers`` would call
  ``pickle.loads`` / ``torch.load``) ever unpickles them. Use it as
  ``wds.WebDataset(urls, ...).decode(AudioHandler(policy))``; it never needs webdataset itself.
* Collation for ``.batched(n, collation_fn=...)``:
  :class:`~nnaudio_data.pipeline.collate.WaveCollate` (or ``SpecCollate``), which reads
  webdataset dicts (``__key__``, the audio field, ``cls`` as the label).
* The ``.map`` / ``.compose`` stage: :class:`~nnaudio_data.pipeline.collate.BatchTransform`.
* :func:`split_shards` - split a shard list by rank and by worker with a clear ``ValueError``
  (never a hang, never a silently idle worker) when there are fewer shards than ranks x workers.
* :class:`TarSamples` - webdataset's ``tarfile_to_samples`` for shards made with any ``tar``:
  hard-link and symbolic-link members are followed to the member they name (earlier in the same,
  uncompressed, shard; webdataset drops them uncounted), a link that cannot be followed and a
  member that holds no data (a FIFO, a device) take the sample's place as a
  :class:`~nnaudio_data.pipeline.policy.Skipped` marker (``'not_regular_file'``), a member larger
  than :data:`~nnaudio_data.io.MAX_ENCODED_BYTES` is not read (``'too_large'``); folders are
  passed over.
* :func:`audio_pipeline` - shards -> split -> tar samples -> decode -> batches (-> transform) ->
  :func:`~nnaudio_data.pipeline.policy.flush_skips`: a ``webdataset.DataPipeline`` for
  ``webdataset.WebLoader(pipeline, batch_size=None, ...)``. The fault policy handles undecodable
  audio and broken tar streams alike (``stream_error``). Gzip-compressed members
  (``x.wav.gz``) are decoded as the audio they hold, decompressed by
  :func:`nnaudio_data.io.gunzip` (bounded: a bomb is ``'too_large'``), not by webdataset's
  unbounded ``gzfilter``.

webdataset's own ``split_by_node`` / ``split_by_worker`` work with these stages as well
(``wds.WebDataset(urls, nodesplitter=wds.split_by_node)``; its default ``single_node_only``
refuses ``world_size > 1``).
"""

from __future__ import annotations

import logging
import posixpath
import random
import re
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from nnaudio_data._checks import (
    check_bool,
    check_float_dtype,
    check_non_negative_int,
    check_positive_int,
)
from nnaudio_data.io import (
    AUDIO_EXTENSIONS,
    MAX_ENCODED_BYTES,
    PICKLE_EXTENSIONS,
    SampleError,
    audio_extension,
    decode,
    read_native,
)
from nnaudio_data.pipeline.collate import SpecCollate, WaveCollate
from nnaudio_data.pipeline.datasets import worker_info
from nnaudio_data.pipeline.policy import FaultPolicy, Skipped, flush_skips
from nnaudio_data.pipeline.samples import pcm

__all__ = ["AudioHandler", "EpochShuffle", "TarSamples", "audio_pipeline", "split_shards"]

logger = logging.getLogger("nnaudio_data.pipeline")


class AudioHandler:
    """Decode audio fields of webdataset samples; never unpickle anything.

    Args:
        policy: the fault policy for fields that do not decode (default: raise the
            :class:`~nnaudio_data.io.DecodeError`, naming the field).
        dtype: floating dtype of the decoded audio.
        extensions: the extensions decoded as audio.
        native: give the audio as stored (a :class:`~nnaudio_data.pipeline.samples.PCM`:
            integer PCM and its scale), for a collate function of this package to convert once,
            straight into the padded batch (``audio_pipeline`` does; per batch of 16 x 4 s that
            saves a float copy of every clip).

    Returns (when called with ``(key, data)``, ``key`` like ``".flac"``, ``"x.flac"`` or
    ``".flac.gz"`` - gzip-compressed audio, decoded as the audio it holds):
    ``(audio, sample_rate)`` for audio fields (``PCM`` with ``native``), a ``Skipped`` marker
    for a skipped one, the raw bytes for pickle-bearing fields, ``None`` for anything else (left
    to the next handler).
    """

    def __init__(
        self,
        policy: FaultPolicy | str | None = None,
        *,
        dtype: torch.dtype | str = "float32",
        extensions: Iterable[str] = AUDIO_EXTENSIONS,
        native: bool = False,
    ) -> None:
        self.policy = FaultPolicy.of(policy)
        self.dtype = check_float_dtype("dtype", dtype)
        self.extensions = frozenset(e.lower().lstrip(".") for e in extensions)
        self.native = check_bool("native", native)

    def __repr__(self) -> str:
        return (
            f"AudioHandler(policy={self.policy!r}, extensions={sorted(self.extensions)}, "
            f"native={self.native})"
        )

    def __call__(self, key: str, data: Any) -> Any:
        ext = audio_extension(key)
        if ext in PICKLE_EXTENSIONS:
            logger.debug("field %r left as bytes: pickle-bearing fields are never decoded", key)
            return bytes(data)
        if ext not in self.extensions:
            return None
        try:
            if self.native:
                return pcm(*read_native(data, key=key.lstrip("."), dtype=self.dtype))
            return decode(data, key=key.lstrip("."), dtype=self.dtype)
        except SampleError as error:
            if not self.policy.skips:
                raise
            # logged by the collate function, which knows the sample's key
            return Skipped(key=None, reason=error.reason, message=str(error))


# webdataset's own rules: __key__-like names are metadata, not data
_SKIP_META = re.compile(r"__[^/]*__($|/)")
_META_NAME = re.compile(r"^__[^/]*__$")
_MEMBER_KINDS = {
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
}


class TarSamples:
    """A webdataset stage: shard urls (``{"url": ...}``) -> samples, as
    ``webdataset.tarfile_to_samples`` but for shards made with any ``tar`` (see the module
    docstring). Picklable.

    Args:
        policy: the fault policy: a member that cannot be read is raised as a
            :class:`~nnaudio_data.io.SampleError` naming it, or becomes the sample's
            :class:`~nnaudio_data.pipeline.policy.Skipped` marker; read errors of the stream go to
            it as webdataset's handler (``stream_error``).
    """

    def __init__(self, policy: FaultPolicy | str | None = None) -> None:
        self.handler = FaultPolicy.of(policy)

    def __call__(self, shards: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        from webdataset.tariterators import group_by_keys, url_opener

        streams = url_opener(shards, handler=self.handler)
        return group_by_keys(self._members(streams), handler=self.handler)

    def _members(self, streams: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for source in streams:  # as webdataset's tar_file_expander
            url = source["url"]
            try:
                for member in self._read(source["stream"], url):
                    member["__url__"] = url
                    yield member
                yield {}  # end of the shard: samples of two shards are never merged
            except Exception as exn:
                exn.args = (*exn.args, url)
                if not self.handler(exn):
                    break

    def _read(self, fileobj: Any, url: str) -> Iterator[dict[str, Any]]:
        start = fileobj.tell() if _seekable(fileobj) else None
        stream = tarfile.open(fileobj=fileobj, mode="r|*")
        # links can be followed by reading their target again: an uncompressed, seekable shard
        random_access = start is not None and getattr(stream.fileobj, "comptype", "") == "tar"
        places: dict[str, tuple[int, int]] = {}  # member name -> (data offset, size)
        for info in stream:
            name = info.name
            try:
                if info.isdir() or _SKIP_META.match(name) or _META_NAME.match(name):
                    continue
                if info.isreg():
                    if info.size > MAX_ENCODED_BYTES:
                        data: Any = self._skip(
                            name,
                            f"member {name!r} of {url} holds {info.size} bytes, more than "
                            f"MAX_ENCODED_BYTES={MAX_ENCODED_BYTES}: not read",
                            "too_large",
                        )
                    else:
                        member = stream.extractfile(info)  # a regular member: never None
                        data = member.read() if member is not None else b""
                        places[name] = (info.offset_data, info.size)
                elif info.islnk() or info.issym():
                    target = info.linkname
                    if info.issym():
                        target = posixpath.join(posixpath.dirname(name), target)
                    target = posixpath.normpath(target)
                    place = places.get(target)
                    if place is None or not random_access:
                        why = (
                            "no regular member of that name comes before it in the shard"
                            if place is None
                            else "links are followed in uncompressed shards only"
                        )
                        data = self._skip(
                            name,
                            f"link member {name!r} -> {info.linkname!r} of {url}: {why}",
                            "not_regular_file",
                        )
                    else:
                        if start is None:  # links are only followed in seekable shards
                            raise RuntimeError("a link member was followed in an unseekable shard")
                        data = _read_at(fileobj, start + place[0], place[1])
                        places[name] = place
                else:
                    kind = _MEMBER_KINDS.get(info.type, f"of tar type {info.type!r}")
                    data = self._skip(
                        name, f"member {name!r} of {url} is {kind}, not a file", "not_regular_file"
                    )
                yield {"fname": name, "data": data}
                stream.members = []  # type: ignore[attr-defined]  # as webdataset: bounded memory
            except Exception as exn:
                if not isinstance(exn, SampleError):  # (a SampleError names the shard already)
                    exn.args = (f"{exn.args[0] if exn.args else exn!r} @ {url}", *exn.args[1:])
                if not self.handler(exn):
                    break

    def _skip(self, name: str, message: str, reason: str) -> Skipped:
        """The marker a member takes in its sample (counted and logged with the sample's key),
        or, under ``"raise"``, the error naming it."""
        if not self.handler.skips:
            raise SampleError(message, key=name, reason=reason)
        return Skipped(key=None, reason=reason, message=message)


def _seekable(fileobj: Any) -> bool:
    try:
        return bool(fileobj.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _read_at(fileobj: Any, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` of ``fileobj``, leaving its position as it was."""
    here = fileobj.tell()
    try:
        fileobj.seek(offset)
        return bytes(fileobj.read(size))
    finally:
        fileobj.seek(here)


def split_shards(shards: Iterable[Any]) -> Iterator[Any]:
    """A webdataset stage: this rank's and this worker's share of ``shards`` (shard ``i`` goes to
    consumer ``i % (world_size * num_workers)``, consumer ``rank * num_workers + worker``).

    Works on a list of shard urls or on webdataset's ``{"url": ...}`` dicts.

    Raises:
        ValueError: there are fewer shards than ``world_size * num_workers``, so some consumer
            would get none (and a DDP run would hang waiting for it).
    """
    items = list(shards)
    rank, world, worker, workers = worker_info()
    consumers = world * workers
    if len(items) < consumers:
        raise ValueError(
            f"{len(items)} shard(s) cannot feed {world} rank(s) x {workers} worker(s) = "
            f"{consumers} consumers: write at least {consumers} shards or use fewer workers"
        )
    yield from items[rank * workers + worker :: consumers]


class EpochShuffle:
    """Seeded shard and sample shuffling that changes every epoch (the stages of
    :func:`audio_pipeline` with ``shuffle > 0``; picklable).

    Epoch ``e`` shuffles the shard list with ``(seed, e)`` - the same order on every rank and
    worker, before :func:`split_shards` shares it out - and each consumer's samples in a buffer of
    ``bufsize`` with ``(seed, e, rank, worker)``. The epoch counts up by one each time the shards
    are iterated in a process; DataLoader worker processes iterate a copy, so with
    ``num_workers > 0`` (and no ``persistent_workers``) call ``set_epoch(e)`` before each epoch,
    as with ``DistributedSampler``.
    """

    def __init__(self, seed: int, bufsize: int) -> None:
        self.seed = int(seed)
        self.bufsize = check_positive_int("bufsize", bufsize)
        self.epoch = 0
        self._current = 0  # the epoch being iterated

    def set_epoch(self, epoch: int) -> None:
        self.epoch = check_non_negative_int("epoch", epoch)

    def shards(self, shards: Iterable[Any]) -> Iterator[Any]:
        items = list(shards)
        self._current, self.epoch = self.epoch, self.epoch + 1
        random.Random(f"shards-{self.seed}-{self._current}").shuffle(items)
        yield from items

    def samples(self, samples: Iterable[Any]) -> Iterator[Any]:
        import webdataset as wds

        rng = random.Random()
        rank, _, worker, _ = worker_info()

        def seeded() -> Iterator[Any]:  # seeds once the shard stage has started this epoch
            for n, sample in enumerate(samples):
                if n == 0:
                    rng.seed(f"samples-{self.seed}-{self._current}-{rank}-{worker}")
                yield sample

        yield from wds.shuffle(self.bufsize, initial=min(self.bufsize, 100), rng=rng)(seeded())


def audio_pipeline(
    urls: str | Sequence[str],
    *,
    batch_size: int,
    transform: nn.Module | None = None,
    policy: FaultPolicy | str | None = None,
    shuffle: int = 0,
    seed: int = 0,
    partial: bool = True,
    split: bool = True,
    collate: Any = None,
    **collate_kwargs: Any,
) -> Any:
    """A ``webdataset.DataPipeline``: shards split by rank and worker -> samples -> decoded audio
    -> padded batches (-> the CPU ``transform`` on each batch, in the worker).

    Args:
        urls: shard urls or a brace pattern (``"data-{000..009}.tar"``).
        batch_size: samples per batch.
        transform: run on each batch inside the worker (CPU only); ``None``: ``WaveBatch`` es.
        policy: the fault policy for decoding, collating and reading the tar stream.
        shuffle: size of the sample shuffle buffer (0: no shuffling of shards or samples).
        seed: seed of the shard and sample shuffling (``shuffle > 0``), which differs every
            epoch (:class:`EpochShuffle`; with worker processes call ``pipeline.set_epoch(e)``
            before each epoch).
        partial: keep the last, smaller batch.
        split: split the shards by rank and worker (:func:`split_shards`); ``False``: read every
            shard here (e.g. one shard per call).
        collate: a collate function that decodes its own fields, used instead of the audio
            decoding and ``WaveCollate`` / ``SpecCollate`` (e.g.
            :class:`nnaudio_data.extract.FeatureCollate` for extracted features).
        **collate_kwargs: as :class:`~nnaudio_data.pipeline.collate.WaveCollate`
            (``sample_rate``, ``resample``, ``mono``, ``label_key``...).

    Use with ``webdataset.WebLoader(pipeline, batch_size=None, num_workers=...)``.
    """
    import webdataset as wds

    batch_size = check_positive_int("batch_size", batch_size)
    shuffle = check_non_negative_int("shuffle", shuffle)
    fault = FaultPolicy.of(policy)
    decode = collate is None
    if collate is None:
        collate = (
            WaveCollate(policy=fault, **collate_kwargs)
            if transform is None
            else SpecCollate(transform, policy=fault, **collate_kwargs)
        )
    shuffler = EpochShuffle(seed, shuffle) if shuffle else None
    stages: list[Any] = [wds.SimpleShardList(urls)]
    if shuffler is not None:
        stages.append(shuffler.shards)
    if split:
        stages.append(split_shards)
    stages.append(TarSamples(fault))
    if shuffler is not None:
        stages.append(shuffler.samples)
    if decode:
        # no pre-handler: webdataset's gzfilter would decompress without a bound (AudioHandler
        # decodes .gz audio itself); partial: the Skipped markers of TarSamples pass through
        handler = AudioHandler(fault, native=True)  # converted once, into the batch
        stages.append(wds.decode(handler, handler=fault, pre=[], partial=True))
    stages.append(wds.batched(batch_size, collation_fn=collate, partial=partial))
    stages.append(flush_skips)
    pipeline = wds.DataPipeline(*stages)
    pipeline.set_epoch = shuffler.set_epoch if shuffler is not None else _no_epoch
    return pipeline


def _no_epoch(epoch: int) -> None:
    """``set_epoch`` of an unshuffled pipeline: nothing depends on the epoch."""
