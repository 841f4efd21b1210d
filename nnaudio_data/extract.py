"""Offline extraction: a recipe's features of many clips, written once as WebDataset shards, and
read back for training.

Interface:

* :func:`extract` - audio files and / or WebDataset shards -> ``out_dir/*.tar``, where each
  sample ``<key>`` holds ``<key>.npy`` (the features of its valid frames, ``(features, frames)``,
  float32 or float16, loadable with ``numpy.load(..., allow_pickle=False)``) and ``<key>.json``
  (``key``, ``frames``, ``sample_rate``, ``source``, ``label``, ``recipe``, ``dtype``), and
  ``out_dir/manifest.json`` (counts, skipped samples by reason with their names, the recipe's
  config, the library version). The command ``nnaudio-data extract`` calls it.
* :class:`FeatureCollate` - samples of such shards (raw ``npy`` / ``json`` bytes, or decoded
  arrays and dicts) -> a padded :class:`~nnaudio_data.batch.SpecBatch` with valid lengths; the
  ``collation_fn`` of webdataset's ``.batched``, a DataLoader ``collate_fn``.
* :func:`feature_pipeline` - extracted shards -> batches of features, a
  ``webdataset.DataPipeline`` for ``WebLoader`` (split by rank and worker, shuffled per epoch:
  :func:`~nnaudio_data.pipeline.wds.audio_pipeline` with :class:`FeatureCollate`).

How the work is shared out: the inputs are cut into units - ``shard_size`` audio files each
(in the order given), or one input shard each - and unit ``u`` is output shard ``u``
(``files-000003.tar``, ``shards-000001.tar``). Rank ``r`` of ``world_size`` (``torchrun`` sets
them; torch.distributed's when initialised) takes units ``r, r + world_size, ...``, and its
DataLoader workers share those (worker ``w`` of ``W`` takes every ``W``-th); each worker decodes,
computes and writes its own shards. So the union of the keys over ranks is the input set, each
exactly once, for any number of ranks and workers.

Each clip's features are computed alone (a batch of one), so they are the same whatever unit,
rank or worker computed them, and equal :class:`~nnaudio_data.pipeline.SpecCollate` on that clip.

Resumable: a unit is written to ``<name>.tar.tmp-<pid>`` and renamed to ``<name>.tar`` when
complete, after its record ``<name>.json`` (sources, keys, counts); a later run over the same
inputs passes over every unit whose ``.tar`` and record exist for the same sources, and
recomputes the others (an interrupted unit starts again). Each rank writes
``manifest-rank<r>-of-<n>.json``; the merged ``manifest.json`` is written when every rank's part
is there (after a barrier when torch.distributed is initialised).

Faults follow the policy of ``nnaudio-data run``: ``"skip"`` logs and counts a clip that cannot
be used (``decode_error``, ``empty``, ...), ``"raise"`` stops at it with its name.
"""

from __future__ import annotations

import dataclasses
import glob
import io
import json
import os
import re
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from nnaudio_data._checks import check_positive_int
from nnaudio_data._version import __version__
from nnaudio_data.batch import SpecBatch, WaveBatch
from nnaudio_data.io import SampleError
from nnaudio_data.pipeline.collate import SpecCollate, collate_labels
from nnaudio_data.pipeline.datasets import rank_and_world
from nnaudio_data.pipeline.policy import FaultPolicy, add_counts, take_pending

__all__ = ["FeatureCollate", "extract", "feature_pipeline", "merge_manifests"]

DTYPES = {"float32": np.float32, "float16": np.float16}
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclasses.dataclass(frozen=True)
class _Unit:
    """One output shard's worth of inputs."""

    name: str
    sources: tuple[str, ...]  # audio file paths, or one shard url
    first: int  # the index of the first file among all files (keys); the shard's index
    kind: str  # "files" or "shard"


def _units(files: Sequence[str], shards: Sequence[str], shard_size: int) -> list[_Unit]:
    units = [
        _Unit(f"files-{u:06d}", tuple(files[i : i + shard_size]), i, "files")
        for u, i in enumerate(range(0, len(files), shard_size))
    ]
    units += [_Unit(f"shards-{j:06d}", (url,), j, "shard") for j, url in enumerate(shards)]
    return units


def _safe(text: str) -> str:
    """A tar / WebDataset key part: letters, digits, ``_`` and ``-`` only (a dot would end it)."""
    return _UNSAFE.sub("_", text).strip("_") or "clip"


def _json_value(value: Any) -> Any:
    if isinstance(value, torch.Tensor | np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(payload), 0, 0o644
    tar.addfile(info, io.BytesIO(payload))


def _write_json(path: Path, data: Any) -> None:
    """Write ``path`` atomically (a temporary file renamed)."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


class _Extractor:
    """Computes and writes one unit (in a DataLoader worker); picklable."""

    def __init__(
        self, out_dir: Path, collate: SpecCollate, recipe: str, dtype: str, settings: dict[str, Any]
    ) -> None:
        self.out_dir = out_dir
        self.collate = collate
        self.recipe = recipe
        self.dtype = dtype
        self.settings = settings  # what a complete unit must have been made with to be kept

    def _samples(self, unit: _Unit) -> Iterator[tuple[str, str, SpecBatch | WaveBatch]]:
        """``(key, source, batch of at most one clip)`` for each input of ``unit``."""
        if unit.kind == "files":
            for i, path in enumerate(unit.sources):
                key = f"{unit.first + i:07d}-{_safe(Path(path).stem)}"
                yield key, path, self.collate([path])
            return
        from nnaudio_data.pipeline.wds import audio_pipeline

        url = unit.sources[0]
        batches = audio_pipeline(
            [url],
            batch_size=1,
            split=False,  # this worker reads the whole shard
            transform=self.collate.transform,
            policy=self.collate.policy,
            sample_rate=self.collate.sample_rate,
            resample=self.collate.resample,
            mono=True,
        )
        for batch in batches:
            name = batch.keys[0] if len(batch) else ""
            yield f"{unit.first:05d}-{_safe(name)}", f"{url}#{name}", batch

    def __call__(self, unit: _Unit) -> dict[str, Any]:
        final = self.out_dir / f"{unit.name}.tar"
        record_path = self.out_dir / f"{unit.name}.json"
        if final.is_file() and record_path.is_file():
            try:
                record = json.loads(record_path.read_text(encoding="utf-8"))
            except ValueError:
                record = {}
            same = record.get("sources") == list(unit.sources)
            if same and record.get("settings") == self.settings:
                return {**record, "resumed": True}
        for stale in glob.glob(glob.escape(str(final)) + ".tmp-*"):
            os.remove(stale)  # an interrupted run's partial shard
        tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
        keys: list[str] = []
        skipped: dict[str, int] = {}
        skipped_files: dict[str, list[str]] = {}
        started = time.perf_counter()
        take_pending()  # counts left over in this process belong to no unit
        with tarfile.open(tmp, "w") as tar:
            for key, source, batch in self._samples(unit):
                add_counts(skipped, batch.skipped)
                for reason, names in batch.skipped_keys.items():
                    skipped_files.setdefault(reason, []).extend(names)
                if not len(batch):
                    continue
                if not isinstance(batch, SpecBatch):
                    raise ValueError(
                        f"recipe {self.recipe!r} gives waveforms, not features: nothing to extract"
                    )
                frames = int(batch.lengths[0])
                time_dim = batch.time_dim if batch.time_dim < 0 else batch.time_dim - 1
                features = batch.spec[0].narrow(time_dim, 0, frames).movedim(time_dim, -1)
                array = features.numpy().astype(DTYPES[self.dtype])  # time last
                buffer = io.BytesIO()
                np.save(buffer, array, allow_pickle=False)
                label = batch.labels[0] if batch.labels is not None else None
                meta = {
                    "key": key,
                    "frames": frames,
                    "sample_rate": batch.sample_rate,
                    "source": source,
                    "label": _json_value(label),
                    "recipe": self.recipe,
                    "dtype": self.dtype,
                    "shape": list(array.shape),
                }
                _add(tar, f"{key}.npy", buffer.getvalue())
                _add(tar, f"{key}.json", json.dumps(meta).encode())
                keys.append(key)
        record = {
            "name": unit.name,
            "sources": list(unit.sources),
            "recipe": self.recipe,
            "settings": self.settings,
            "samples": len(keys),
            "keys": keys,
            "skipped": skipped,
            "skipped_files": skipped_files,
            "seconds": round(time.perf_counter() - started, 3),
        }
        _write_json(record_path, record)
        os.replace(tmp, final)  # last: a .tar is a complete unit
        return {**record, "resumed": False}


class _Work(IterableDataset[dict[str, Any]]):
    """This rank's units, shared out between the DataLoader workers (whole units each)."""

    def __init__(self, units: list[_Unit], extractor: _Extractor) -> None:
        self.units = units
        self.extractor = extractor

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for unit in self.units[worker::workers]:
            yield self.extractor(unit)


def extract(
    files: Sequence[str | os.PathLike[str]],
    shards: Sequence[str] = (),
    *,
    transform: nn.Module,
    sample_rate: int,
    out_dir: str | os.PathLike[str],
    recipe: str = "",
    recipe_config: dict[str, Any] | None = None,
    shard_size: int = 1000,
    dtype: str = "float32",
    workers: int = 0,
    policy: FaultPolicy | str | None = "skip",
    resample: bool = True,
    progress: Callable[[int], None] | None = None,
    rank: int | None = None,
    world_size: int | None = None,
) -> dict[str, Any]:
    """Compute ``transform`` on every clip and write this rank's share as WebDataset shards.

    Args:
        files: audio files (their order fixes the units and keys: give every rank the same list).
        shards: WebDataset shards of audio (one unit each).
        transform: the CPU front end (e.g. ``get_recipe(name).build()``), run per clip.
        sample_rate: the rate it expects; clips are resampled to it (``resample``) and averaged
            to mono, as ``nnaudio-data run`` does.
        out_dir: where the shards and manifests go (created).
        recipe, recipe_config: the recipe's name and config, recorded in every sample and in the
            manifest.
        shard_size: audio files per output shard.
        dtype: ``"float32"`` or ``"float16"`` features.
        workers: DataLoader worker processes (0: this process).
        policy: the fault policy (``"skip"``: log and count; ``"raise"``).
        progress: called with the number of clips done (kept and skipped) after each unit.
        rank, world_size: this rank (default: torch.distributed's, else ``RANK`` /
            ``WORLD_SIZE``, else 0 of 1).

    Returns:
        this rank's manifest part (``manifest.json``'s fields over this rank's units).

    Raises:
        ValueError: a bad ``dtype`` / ``shard_size``, or ``out_dir`` is a file.
        SampleError: a clip that cannot be used, under ``policy="raise"``.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    shard_size = check_positive_int("shard_size", shard_size)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {str(out)!r} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    rank, world = rank_and_world(rank, world_size)
    fault = FaultPolicy.of(policy)
    collate = SpecCollate(
        transform.to("cpu"), sample_rate=sample_rate, resample=resample, mono=True, policy=fault
    )
    units = _units([os.fspath(f) for f in files], list(shards), shard_size)
    mine = units[rank::world]
    settings = {
        "recipe": recipe,
        "recipe_config": recipe_config,
        "dtype": dtype,
        "sample_rate": sample_rate,
        "resample": bool(resample),
    }
    work = _Work(mine, _Extractor(out, collate, recipe, dtype, json.loads(json.dumps(settings))))
    loader = DataLoader(
        work, batch_size=None, num_workers=min(workers, len(mine)), collate_fn=_identity
    )
    records = []
    with torch.no_grad():
        for record in loader:
            records.append(record)
            if progress is not None:
                progress(record["samples"] + sum(record["skipped"].values()))
    part = _summary(records, recipe, recipe_config, dtype, shard_size, len(files), len(shards))
    part.update(rank=rank, world_size=world)
    _write_json(out / f"manifest-rank{rank:05d}-of-{world:05d}.json", part)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        if rank == 0:
            merge_manifests(out, world)
    elif len(glob.glob(str(out / f"manifest-rank*-of-{world:05d}.json"))) == world:
        merge_manifests(out, world)  # the last rank to finish merges
    return part


def _identity(x: Any) -> Any:
    return x


def _skips(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The skipped counts and names of several records or manifest parts, summed."""
    skipped: dict[str, int] = {}
    skipped_files: dict[str, list[str]] = {}
    for part in parts:
        add_counts(skipped, part["skipped"])
        for reason, names in part["skipped_files"].items():
            skipped_files.setdefault(reason, []).extend(names)
    return {
        "skipped": dict(sorted(skipped.items())),
        "skipped_total": sum(skipped.values()),
        "skipped_files": {k: sorted(v) for k, v in sorted(skipped_files.items())},
    }


def _summary(
    records: list[dict[str, Any]],
    recipe: str,
    recipe_config: dict[str, Any] | None,
    dtype: str,
    shard_size: int,
    files: int,
    shards: int,
) -> dict[str, Any]:
    shard_list = [
        {"name": f"{r['name']}.tar", "samples": r["samples"], "resumed": r["resumed"]}
        for r in records
    ]
    return {
        "recipe": recipe,
        "recipe_config": recipe_config,
        "version": __version__,
        "dtype": dtype,
        "shard_size": shard_size,
        "inputs": {"files": files, "shards": shards},
        "shards": sorted(shard_list, key=lambda s: s["name"]),
        "samples": sum(r["samples"] for r in records),
        "resumed_shards": sum(bool(r["resumed"]) for r in records),
        **_skips(records),
    }


def merge_manifests(out_dir: str | os.PathLike[str], world_size: int) -> dict[str, Any]:
    """Merge the ranks' manifest parts of ``out_dir`` into ``manifest.json`` (and return it)."""
    out = Path(out_dir)
    parts = []
    for rank in range(world_size):
        path = out / f"manifest-rank{rank:05d}-of-{world_size:05d}.json"
        if not path.is_file():
            raise ValueError(f"manifest part {str(path)!r} is missing: rank {rank} did not finish")
        parts.append(json.loads(path.read_text(encoding="utf-8")))
    merged = {k: parts[0][k] for k in ("recipe", "recipe_config", "version", "dtype", "inputs")}
    merged["shard_size"] = parts[0]["shard_size"]
    merged["world_size"] = world_size
    merged["shards"] = sorted((s for p in parts for s in p["shards"]), key=lambda s: s["name"])
    merged["samples"] = sum(p["samples"] for p in parts)
    merged["resumed_shards"] = sum(p["resumed_shards"] for p in parts)
    merged.update(_skips(parts))
    _write_json(out / "manifest.json", merged)
    return merged


# -- reading back -----------------------------------------------------------------------------


class FeatureCollate:
    """Extracted samples -> a :class:`~nnaudio_data.batch.SpecBatch` padded with zeros after each
    item's valid frames.

    A sample is a dict with ``npy`` (raw ``.npy`` bytes, loaded with ``allow_pickle=False``, or
    an array / tensor) and ``json`` (raw bytes or a dict: ``frames``, ``sample_rate``, ``key``,
    ``label``...), as webdataset's ``tarfile_to_samples`` gives them. A sample that does not load
    is raised or skipped and counted (``decode_error``) by the fault policy.

    Args:
        policy: the fault policy (default: raise).
        dtype: the batch's dtype (float16 features are widened to float32 by default).
    """

    def __init__(
        self, *, policy: FaultPolicy | str | None = None, dtype: torch.dtype = torch.float32
    ) -> None:
        self.policy = FaultPolicy.of(policy)
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"FeatureCollate(policy={self.policy!r}, dtype={self.dtype})"

    def _load(self, sample: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        name = str(sample.get("__key__", "?")) if isinstance(sample, dict) else "?"
        try:
            raw, meta = sample["npy"], sample["json"]
            if isinstance(raw, bytes | bytearray | memoryview):
                raw = np.load(io.BytesIO(bytes(raw)), allow_pickle=False)
            if isinstance(meta, bytes | bytearray | memoryview | str):
                meta = json.loads(bytes(meta) if not isinstance(meta, str) else meta)
            features = torch.as_tensor(np.asarray(raw)).to(self.dtype)
            if features.ndim < 1 or not isinstance(meta, dict):
                raise ValueError(f"features of shape {tuple(features.shape)}, meta {meta!r}")
        except (KeyError, TypeError, ValueError, OSError) as error:
            raise SampleError(
                f"extracted sample {name!r} does not load: {error}", key=name, reason="decode_error"
            ) from error
        return features, meta

    def __call__(self, samples: Sequence[Any]) -> SpecBatch:
        skipped = take_pending()
        skipped_keys: dict[str, list[str]] = {}
        loaded: list[tuple[torch.Tensor, dict[str, Any]]] = []
        for sample in samples:
            try:
                loaded.append(self._load(sample))
            except SampleError as error:
                marker = self.policy.handle(error)
                add_counts(skipped, {marker.reason: 1})
                skipped_keys.setdefault(marker.reason, []).append(error.key or "?")
        lengths = torch.tensor([f.shape[-1] for f, _ in loaded], dtype=torch.long)
        width = int(lengths.max()) if loaded else 0
        lead = tuple(loaded[0][0].shape[:-1]) if loaded else ()
        spec = torch.zeros((len(loaded), *lead, width), dtype=self.dtype)
        for row, (features, _) in zip(spec, loaded):
            row[..., : features.shape[-1]] = features
        metas = [m for _, m in loaded]
        return SpecBatch(
            spec=spec,
            lengths=lengths,
            sample_rate=int(metas[0].get("sample_rate", 0)) if metas else 0,
            keys=[str(m.get("key", "")) for m in metas],
            labels=collate_labels([m.get("label") for m in metas]),
            meta=metas,
            skipped=skipped,
            skipped_keys=skipped_keys,
        )


def feature_pipeline(
    urls: str | Sequence[str],
    *,
    batch_size: int,
    policy: FaultPolicy | str | None = None,
    shuffle: int = 0,
    seed: int = 0,
    partial: bool = True,
) -> Any:
    """Extracted shards -> :class:`FeatureCollate` batches: shards split by rank and worker,
    shuffled per epoch with ``shuffle > 0`` (see
    :func:`~nnaudio_data.pipeline.wds.audio_pipeline`; needs ``webdataset``). Use with
    ``webdataset.WebLoader(pipeline, batch_size=None, ...)``."""
    from nnaudio_data.pipeline.wds import audio_pipeline

    collate = FeatureCollate(policy=policy)
    return audio_pipeline(
        urls,
        batch_size=batch_size,
        policy=collate.policy,
        shuffle=shuffle,
        seed=seed,
        partial=partial,
        collate=collate,
    )
