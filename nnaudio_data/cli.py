"""The ``nnaudio-data`` command.

``nnaudio-data run [INPUTS...]`` computes spectrograms with a recipe over audio files, folders,
WebDataset shard patterns or, with no input, the bundled default data, and prints what it did:
clips, batches, audio seconds, throughput, output shapes and skipped samples by reason.
``--json`` prints that summary as one JSON object on stdout; ``--png FILE`` draws the first batch.
``nnaudio-data extract [INPUTS...] --out DIR`` computes a recipe's features once and writes them as
WebDataset shards with a manifest (:mod:`nnaudio_data.extract`; resumable, and under ``torchrun``
each rank writes its share). ``nnaudio-data recipes`` lists the recipes.

How a run is built (the same adapters a training script uses):

* files and folders: an :class:`~nnaudio_data.pipeline.datasets.AudioDataset` of paths in a
  ``DataLoader``; shards: :func:`~nnaudio_data.pipeline.wds.audio_pipeline` in a ``WebLoader``;
* every clip is resampled to the recipe's sample rate (``--no-resample``: a clip at another rate
  is a ``sample_rate`` fault) and averaged to mono;
* on the CPU the recipe runs on each batch inside the worker processes (all cores work); on CUDA the
  workers only decode and pad, and a :class:`~nnaudio_data.pipeline.device.DeviceStage` runs the
  recipe on the GPU in the main process;
* a file that cannot be used is raised (``--on-error raise``, exit status 1, the message names the
  file) or skipped, logged and counted by reason (``--on-error skip``).

Exit status: 0 done, 1 a sample failed under ``--on-error raise`` or no clip made it through
(every one skipped), 2 bad arguments or inputs (checked before any work, ``--png``'s folder
included).
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CliError", "RunStats", "format_summary", "main", "resolve_inputs"]

logger = logging.getLogger("nnaudio_data.cli")

_SHARD_SUFFIXES = (".tar", ".tar.gz", ".tgz")
_GLOB_CHARS = frozenset("*?[")
DEFAULT_RECIPE = "log-mel-80"


class CliError(Exception):
    """A problem with the command line or its inputs (exit status 2)."""


# -- inputs ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Inputs:
    """What a run reads: audio files and WebDataset shards (urls), in order."""

    files: list[str] = dataclasses.field(default_factory=list)
    shards: list[str] = dataclasses.field(default_factory=list)
    default: bool = False


def _is_shard(name: str) -> bool:
    return name.lower().endswith(_SHARD_SUFFIXES)


def _expand_braces(pattern: str) -> list[str]:
    if "{" not in pattern:
        return [pattern]
    try:
        from braceexpand import braceexpand
    except ImportError:  # pragma: no cover - braceexpand comes with webdataset
        raise CliError(
            f"the brace pattern {pattern!r} needs webdataset: pip install 'nnaudio-data[webdataset]'"
        ) from None
    return list(braceexpand(pattern))


def _folder_files(folder: Path) -> tuple[list[str], list[str]]:
    """Audio files under ``folder`` (recursive, sorted); its shards when it holds no audio."""
    from nnaudio_data.io import AUDIO_EXTENSIONS, extension

    paths = sorted(p for p in folder.rglob("*") if p.is_file())
    audio = [str(p) for p in paths if extension(p.name) in AUDIO_EXTENSIONS]
    if audio:
        return audio, []
    return [], [str(p) for p in paths if _is_shard(p.name)]


def resolve_inputs(inputs: Sequence[str]) -> Inputs:
    """Turn the command line's inputs into audio files and shards.

    Each input is a file (audio, or a ``.tar`` shard), a folder (its audio files, recursively; or
    its shards when it holds no audio file), a glob (``data/*.flac``) or a brace pattern
    (``data/shard-{000..009}.tar``). With no input: the bundled default data's FLAC files.

    Raises:
        CliError: an input names nothing, or a file that is neither audio nor a shard.
    """
    from nnaudio_data import data
    from nnaudio_data.io import AUDIO_EXTENSIONS, extension

    if not inputs:
        return Inputs(files=[str(p) for p in data.files()], default=True)
    out = Inputs()
    for given in inputs:
        names: list[str] = []
        for name in _expand_braces(given):
            if _GLOB_CHARS & set(name):
                matches = sorted(glob.glob(name, recursive=True))
                if not matches:
                    raise CliError(f"no file matches {given!r}")
                names += matches
            else:
                names.append(name)
        for name in names:
            path = Path(name)
            if path.is_dir():
                files, shards = _folder_files(path)
                if not files and not shards:
                    raise CliError(f"the folder {name!r} holds no audio file and no .tar shard")
                out.files += files
                out.shards += shards
            elif path.is_file():
                if _is_shard(name):
                    out.shards.append(name)
                elif extension(name) in AUDIO_EXTENSIONS:
                    out.files.append(name)
                else:
                    raise CliError(
                        f"{name!r} is neither an audio file ({', '.join(sorted(AUDIO_EXTENSIONS))})"
                        " nor a .tar shard"
                    )
            else:
                raise CliError(f"no such file or folder: {name!r}")
    return out


# -- statistics ------------------------------------------------------------------------------


@dataclasses.dataclass
class RunStats:
    """What a run saw, batch by batch (``update``), in the main process."""

    clips: int = 0
    batches: int = 0
    audio_seconds: float = 0.0
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    first_shape: list[int] | None = None
    feature_shape: list[int] | None = None
    frames_min: int | None = None
    frames_max: int | None = None
    dtype: str | None = None
    device: str | None = None

    def update(self, batch: Any) -> None:
        """Add one (non-empty) spectrogram batch; ``meta[i]["seconds"]`` holds item durations."""
        spec = batch.data
        self.clips += len(batch)
        self.batches += 1
        self.audio_seconds += sum(float(m.get("seconds", 0.0)) for m in batch.meta)
        shape = list(spec.shape)
        time_dim = getattr(batch, "time_dim", -1) % spec.ndim
        if self.first_shape is None:
            self.first_shape = shape
            self.feature_shape = [n for d, n in enumerate(shape) if d not in (0, time_dim)]
            self.dtype = str(spec.dtype).removeprefix("torch.")
            self.device = str(spec.device)
        lengths = batch.lengths
        lo, hi = int(lengths.min()), int(lengths.max())
        self.frames_min = lo if self.frames_min is None else min(self.frames_min, lo)
        self.frames_max = hi if self.frames_max is None else max(self.frames_max, hi)

    skipped_keys: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def add_skipped(self, counts: dict[str, int]) -> None:
        for reason, n in counts.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + int(n)

    def names_of_skipped(self, batches: Iterable[Any]) -> Iterator[Any]:
        """Pass ``batches`` on (empty ones too), noting the names of the samples they skipped."""
        for batch in batches:
            for reason, keys in getattr(batch, "skipped_keys", {}).items():
                self.skipped_keys.setdefault(reason, []).extend(keys)
            yield batch


def summary_dict(
    stats: RunStats, elapsed: float, *, recipe: str, sample_rate: int, settings: dict[str, Any]
) -> dict[str, Any]:
    """The run's summary as plain JSON values."""
    per_s = (lambda x: x / elapsed) if elapsed > 0 else (lambda x: 0.0)
    return {
        "recipe": recipe,
        "sample_rate": sample_rate,
        **settings,
        "clips": stats.clips,
        "batches": stats.batches,
        "audio_seconds": round(stats.audio_seconds, 6),
        "elapsed_seconds": round(elapsed, 6),
        "clips_per_second": round(per_s(stats.clips), 3),
        "audio_seconds_per_second": round(per_s(stats.audio_seconds), 3),
        "output": {
            "first_batch_shape": stats.first_shape,
            "feature_shape": stats.feature_shape,
            "frames_min": stats.frames_min,
            "frames_max": stats.frames_max,
            "dtype": stats.dtype,
            "device": stats.device,
        },
        "skipped": dict(sorted(stats.skipped.items())),
        "skipped_total": sum(stats.skipped.values()),
        "skipped_files": {r: sorted(k) for r, k in sorted(stats.skipped_keys.items())},
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a few aligned lines for people."""
    out = summary["output"]
    inputs = summary["inputs"]
    where = "bundled default data: " if inputs.get("default") else ""
    lines = [
        f"recipe   {summary['recipe']} at {summary['sample_rate']} Hz on {summary['device']}, "
        f"batch {summary['batch_size']}, {summary['workers']} worker(s)",
        f"inputs   {where}{inputs['files']} file(s), {inputs['shards']} shard(s)",
        f"clips    {summary['clips']} in {summary['batches']} batch(es), "
        f"{summary['audio_seconds']:.2f} s of audio",
        f"speed    {summary['clips_per_second']:.1f} clips/s, "
        f"{summary['audio_seconds_per_second']:.1f} audio-s/s "
        f"({summary['elapsed_seconds']:.2f} s)",
    ]
    if out["first_batch_shape"] is not None:
        feature = ", ".join(str(n) for n in out["feature_shape"])
        lines.append(
            f"output   first batch {tuple(out['first_batch_shape'])} {out['dtype']} on "
            f"{out['device']}; per clip ({feature}) x frames, "
            f"{out['frames_min']}-{out['frames_max']} valid frames"
        )
    else:
        lines.append("output   none (no clip made it through)")
    skipped = summary["skipped"]
    reasons = ", ".join(f"{r} {n}" for r, n in skipped.items())
    lines.append(f"skipped  {summary['skipped_total']}" + (f" ({reasons})" if reasons else ""))
    for reason, names in summary.get("skipped_files", {}).items():
        shown = ", ".join(Path(n).name for n in names[:5])
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        lines.append(f"         {reason}: {shown}{more}")
    if summary.get("png"):
        lines.append(f"picture  {summary['png']}")
    return "\n".join(lines)


# -- the run ---------------------------------------------------------------------------------


class MeasureThen:
    """A picklable batch stage: record each item's duration in ``meta[i]["seconds"]`` (valid
    samples / sample rate, before the transform makes frames of them), then apply ``stage``."""

    def __init__(self, stage: Any = None) -> None:
        self.stage = stage

    def __call__(self, batch: Any) -> Any:
        rate = float(batch.sample_rate) or 1.0
        for meta, n in zip(batch.meta, batch.lengths.tolist()):
            meta["seconds"] = n / rate
        return batch if self.stage is None else self.stage(batch)


class CollateThen:
    """A picklable ``collate_fn``: ``after(collate(samples))``."""

    def __init__(self, collate: Any, after: Any) -> None:
        self.collate = collate
        self.after = after

    def __call__(self, samples: Sequence[Any]) -> Any:
        return self.after(self.collate(samples))


def _head(batch: Any, n: int) -> Any:
    """The first ``n`` items of a batch."""
    changes: dict[str, Any] = {
        "lengths": batch.lengths[:n],
        "keys": batch.keys[:n],
        "meta": batch.meta[:n],
        "labels": None if batch.labels is None else batch.labels[:n],
    }
    field = "spec" if hasattr(batch, "spec") else "audio"
    changes[field] = batch.data[:n]
    return dataclasses.replace(batch, **changes)


def _loaders(
    inputs: Inputs, transform: Any, sample_rate: int, args: argparse.Namespace, stats: RunStats
) -> Iterator[tuple[Iterable[Any], Any]]:
    """``(loader, skip_source)`` per kind of input: files first, then shards."""
    import torch

    from nnaudio_data.pipeline.collate import BatchTransform
    from nnaudio_data.pipeline.datasets import AudioDataset
    from nnaudio_data.pipeline.device import DeviceStage

    on_device = args.device != "cpu"
    # On the CPU the workers run the transform; with no workers, the main process does.
    worker_stage = MeasureThen(None if on_device else BatchTransform(transform))
    collate_kwargs = {"sample_rate": sample_rate, "resample": args.resample, "mono": True}

    def finish(loader: Iterable[Any]) -> tuple[Iterable[Any], Any]:
        loader = stats.names_of_skipped(loader)
        if on_device:
            stage = DeviceStage(loader, transform, args.device)
            return stage, stage.counter
        from nnaudio_data.pipeline.policy import SkipCounter

        counter = SkipCounter()
        return counter.wrap(loader), counter

    files = inputs.files[: args.limit] if args.limit is not None else inputs.files
    if files:
        dataset = AudioDataset(files, policy=args.on_error, **collate_kwargs)
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=args.batch_size,
            num_workers=args.workers,
            collate_fn=CollateThen(dataset.collate, worker_stage),
            pin_memory=on_device,
        )
        yield finish(loader)
    if inputs.shards and (args.limit is None or len(files) < args.limit):
        try:
            import webdataset as wds
        except ImportError:
            raise CliError(
                "reading WebDataset shards needs webdataset: pip install 'nnaudio-data[webdataset]'"
            ) from None
        from nnaudio_data.pipeline.wds import audio_pipeline

        pipeline = audio_pipeline(
            inputs.shards, batch_size=args.batch_size, policy=args.on_error, **collate_kwargs
        )
        pipeline.append(wds.map(worker_stage))
        workers = min(args.workers, len(inputs.shards))
        loader = wds.WebLoader(pipeline, batch_size=None, num_workers=workers, pin_memory=on_device)
        yield finish(loader)


def _run(args: argparse.Namespace) -> int:
    import torch

    inputs = resolve_inputs(args.inputs)
    if args.png is not None:
        _check_matplotlib()
        _check_writable_folder("--png", Path(args.png).parent)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise CliError("--device cuda: no CUDA device is available (use --device cpu)")
    recipe, transform = _recipe(args.recipe)
    sample_rate = recipe.sample_rate
    transform.eval()

    stats = RunStats()
    first = None
    total = len(inputs.files) if not inputs.shards else None
    if total is not None and args.limit is not None:
        total = min(total, args.limit)
    from tqdm import tqdm

    progress = tqdm(
        total=total, unit="clip", file=sys.stderr, disable=args.quiet or None, leave=False
    )
    start = time.perf_counter()
    with torch.no_grad(), progress:
        for loader, counter in _loaders(inputs, transform, sample_rate, args, stats):
            for batch in loader:
                if args.limit is not None and stats.clips + len(batch) > args.limit:
                    batch = _head(batch, args.limit - stats.clips)
                stats.update(batch)
                progress.update(len(batch))
                if first is None:
                    first = batch.to("cpu")
                if args.limit is not None and stats.clips >= args.limit:
                    break
            stats.add_skipped(counter.counts)
            if args.limit is not None and stats.clips >= args.limit:
                break
    elapsed = time.perf_counter() - start

    png = args.png
    if png is not None and first is None:
        print(f"nnaudio-data: no clip made it through; {png} not written", file=sys.stderr)
        png = None
    elif png is not None:
        write_png(first, png, title=f"{recipe.name}: first batch", axes=plot_axes(recipe))
    settings = {
        "device": args.device,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "on_error": args.on_error,
        "resample": args.resample,
        "inputs": {
            "files": len(inputs.files),
            "shards": len(inputs.shards),
            "default": inputs.default,
        },
        "png": None if png is None else str(png),
    }
    summary = summary_dict(
        stats, elapsed, recipe=recipe.name, sample_rate=sample_rate, settings=settings
    )
    if args.json:
        print(json.dumps(summary))
    else:
        print(format_summary(summary))
    if stats.clips == 0:
        print(
            f"nnaudio-data: error: no clip made it through ({summary['skipped_total']} skipped)",
            file=sys.stderr,
        )
        return 1
    return 0


def _recipe(name: str) -> tuple[Any, Any]:
    """``(recipe, its chain)`` for the recipe named or at the path ``name``; a ``CliError``
    naming it otherwise."""
    from nnaudio_data.recipes import get_recipe

    try:
        recipe = get_recipe(name)
        return recipe, recipe.build()
    except ValueError as error:  # also a recipe path that is not text (UnicodeDecodeError)
        text = str(error)
        raise CliError(text if name in text else f"--recipe {name!r}: {text}") from None


def _check_writable_folder(option: str, folder: Path) -> None:
    """Before any work: ``folder`` exists and is a folder (else a ``CliError``, exit 2)."""
    if not folder.is_dir():
        raise CliError(f"{option}: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise CliError(f"{option}: the folder {str(folder)!r} is not writable")


# -- extract ---------------------------------------------------------------------------------


def _extract(args: argparse.Namespace) -> int:
    """``nnaudio-data extract``: :func:`nnaudio_data.extract.extract` over the resolved inputs;
    under ``torchrun`` (``WORLD_SIZE`` > 1) each rank writes its share, and a gloo group's
    barrier lets rank 0 merge the manifests."""
    import torch

    from nnaudio_data.extract import extract

    inputs = resolve_inputs(args.inputs)
    recipe, transform = _recipe(args.recipe)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {args.out!r} is a file, not a folder")
    _check_writable_folder("--out", out if out.exists() else _existing_parent(out))
    if inputs.shards:
        try:
            import webdataset  # noqa: F401
        except ImportError:
            raise CliError(
                "reading WebDataset shards needs webdataset: pip install 'nnaudio-data[webdataset]'"
            ) from None
    group = None
    dist = torch.distributed
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")  # torchrun's env:// rendezvous; for the final barrier
        group = True
    from tqdm import tqdm

    config = {"sample_rate": recipe.sample_rate, "transforms": recipe.transforms}
    progress = tqdm(
        total=len(inputs.files) if not inputs.shards else None,
        unit="clip",
        file=sys.stderr,
        disable=args.quiet or None,
        leave=False,
    )
    try:
        with progress:
            manifest = extract(
                inputs.files,
                inputs.shards,
                transform=transform.eval(),
                sample_rate=recipe.sample_rate,
                out_dir=out,
                recipe=recipe.name,
                recipe_config=config,
                shard_size=args.shard_size,
                dtype=args.dtype,
                workers=args.workers,
                policy=args.on_error,
                resample=args.resample,
                progress=progress.update,
            )
    finally:
        if group:
            dist.destroy_process_group()
    merged = out / "manifest.json"
    if manifest["rank"] == 0 and merged.is_file():
        manifest = json.loads(merged.read_text(encoding="utf-8"))
    if args.json:
        print(json.dumps(manifest))
    else:
        resumed = manifest["resumed_shards"]
        reasons = ", ".join(f"{r} {n}" for r, n in manifest["skipped"].items())
        print(
            f"extract  {recipe.name} -> {out}: {manifest['samples']} sample(s) in "
            f"{len(manifest['shards'])} shard(s) ({resumed} complete already), {args.dtype}\n"
            f"skipped  {manifest['skipped_total']}" + (f" ({reasons})" if reasons else "")
        )
    if manifest["samples"] == 0 and (manifest["shards"] or manifest["skipped_total"]):
        print(
            f"nnaudio-data: error: no clip made it through ({manifest['skipped_total']} skipped)",
            file=sys.stderr,
        )
        return 1
    return 0


def _existing_parent(path: Path) -> Path:
    """The nearest folder above ``path`` that exists (where it will be created)."""
    for parent in path.absolute().parents:
        if parent.exists():
            return parent
    return Path("/")


# -- the picture -----------------------------------------------------------------------------


def _check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CliError("--png needs matplotlib: pip install 'nnaudio-data[plot]'") from None


@dataclasses.dataclass
class PlotAxes:
    """What the picture's axes mean (from a recipe's stages; ``None``: unknown).

    Attributes:
        seconds_per_frame: the hop in seconds (the time axis in seconds).
        frequencies: the centre frequency (Hz) of each bin, low to high.
        notes: label the bins by note name (constant-Q) instead of Hz.
        values: what the colours are (``"dB"``, ``"log"``...).
    """

    seconds_per_frame: float | None = None
    frequencies: list[float] | None = None
    notes: bool = False
    values: str = "value"


def _stages(configs: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for config in configs:
        if config.get("name") == "Compose":
            yield from _stages(config.get("transforms", []))
        else:
            yield config


def plot_axes(recipe: Any) -> PlotAxes:
    """The time, frequency and colour axes of a recipe's output, read from its stage configs:
    mel band centres (``MelSpectrogram``), FFT bins (``STFT``), constant-Q bins as notes
    (``CQT*``, ``VQT``); the colours are dB after ``AmplitudeToDB``, a log after ``Log``."""
    from nnaudio_data.kernels.cqt import cqt_frequencies
    from nnaudio_data.kernels.mel import fft_frequencies, mel_frequencies

    stages = list(_stages(recipe.transforms))
    axes = PlotAxes()
    for stage in stages:
        if "hop_length" not in stage:
            continue
        sr = float(stage.get("sr", recipe.sample_rate))
        axes.seconds_per_frame = int(stage["hop_length"]) / sr
        name = str(stage["name"])
        if name == "MelSpectrogram":
            fmax = stage.get("fmax") or sr / 2
            centres = mel_frequencies(
                int(stage["n_mels"]) + 2,
                float(stage.get("fmin", 0.0)),
                fmax,
                bool(stage.get("htk", False)),
            )
            axes.frequencies = [float(f) for f in centres[1:-1]]
        elif name == "STFT" and stage.get("freq_scale", "no") == "no":
            axes.frequencies = [float(f) for f in fft_frequencies(sr, int(stage["n_fft"]))]
        elif (name.startswith("CQT") or name == "VQT") and "n_bins" in stage:
            bins = cqt_frequencies(
                int(stage["n_bins"]), float(stage["fmin"]), int(stage.get("bins_per_octave", 12))
            )
            axes.frequencies, axes.notes = [float(f) for f in bins], True
        break
    last = stages[-1]["name"] if stages else ""
    axes.values = {"AmplitudeToDB": "dB", "Log": "log"}.get(str(last), "value")
    return axes


_NOTES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(hz: float) -> str:
    """The nearest equal-tempered note (A4 = 440 Hz): ``32.70 -> 'C1'``."""
    midi = round(69 + 12 * math.log2(hz / 440.0))
    return f"{_NOTES[midi % 12]}{midi // 12 - 1}"


def _hz(hz: float) -> str:
    return f"{hz / 1000:.1f}k" if hz >= 1000 else f"{hz:.0f}"


def draw_batch(batch: Any, *, title: str = "", items: int = 8, axes: PlotAxes | None = None) -> Any:
    """A matplotlib figure of up to ``items`` spectrograms of ``batch`` (each cut to its valid
    frames), each with a colour bar; time in seconds and frequency in Hz (note names for
    constant-Q) where ``axes`` says what they are. Non-negative (linear) spectrograms are drawn
    in dB."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    axes = axes or PlotAxes()
    spec = batch.data.detach().float()
    time_dim = getattr(batch, "time_dim", -1) % spec.ndim
    if time_dim != spec.ndim - 1:  # complex (B, F, T, 2): magnitude
        spec = spec.pow(2).sum(-1).sqrt()
    while spec.ndim > 3:  # (B, C, F, T): first channel
        spec = spec[:, 0]
    values = axes.values
    if bool((spec >= 0).all()):  # a linear magnitude / power: draw it in dB
        spec = 10 * torch.log10(spec.clamp_min(1e-10 * float(spec.max().clamp_min(1e-30))))
        values = "dB"
    n = min(items, spec.shape[0])
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, grid = plt.subplots(rows, cols, figsize=(3.8 * cols, 2.8 * rows), squeeze=False)
    bins = spec.shape[1]
    frequencies = axes.frequencies if axes.frequencies and len(axes.frequencies) == bins else None
    for i, ax in enumerate(grid.flat):
        if i >= n:
            ax.axis("off")
            continue
        frames = int(batch.lengths[i])
        image = spec[i, :, :frames].numpy()
        step = axes.seconds_per_frame
        extent = (0.0, frames * step if step else float(frames), 0.0, float(bins))
        shown = ax.imshow(
            image, origin="lower", aspect="auto", interpolation="nearest", extent=extent
        )
        colour_bar = fig.colorbar(shown, ax=ax)
        colour_bar.set_label(values, fontsize=7)
        colour_bar.ax.tick_params(labelsize=6)
        label = Path(batch.keys[i]).name if i < len(batch.keys) else str(i)
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("time (s)" if step else "frame", fontsize=7)
        if frequencies is not None:
            ticks = sorted({round(k) for k in np.linspace(0, bins - 1, min(bins, 6))})
            ax.set_yticks([k + 0.5 for k in ticks])
            name = note_name if axes.notes else _hz
            ax.set_yticklabels([name(frequencies[k]) for k in ticks])
            ax.set_ylabel("note" if axes.notes else "Hz", fontsize=7)
        else:
            ax.set_ylabel("bin", fontsize=7)
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def write_png(
    batch: Any,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    items: int = 8,
    axes: PlotAxes | None = None,
) -> None:
    """:func:`draw_batch`, saved as a PNG."""
    import matplotlib.pyplot as plt

    fig = draw_batch(batch, title=title, items=items, axes=axes)
    fig.savefig(path, dpi=80)
    plt.close(fig)


# -- recipes ----------------------------------------------------------------------------------


def _recipes(args: argparse.Namespace) -> int:
    from nnaudio_data.recipes import get_recipe, list_recipes

    rows: list[dict[str, Any]] = []
    for name in list_recipes():
        recipe = get_recipe(name)
        rows.append({"name": name, "sample_rate": recipe.sample_rate, "about": recipe.description})
    if args.json:
        print(json.dumps(rows))
    else:
        width = max((len(str(r["name"])) for r in rows), default=0)
        for r in rows:
            print(f"{r['name']:<{width}}  {r['sample_rate']:>6} Hz  {r['about']}")
    return 0


# -- the command line --------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _input_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments ``run`` and ``extract`` share: inputs, recipe, workers, fault policy."""
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="audio files, folders, globs, or shard patterns like data/shard-{000..009}.tar",
    )
    parser.add_argument(
        "--recipe",
        default=DEFAULT_RECIPE,
        help=f"recipe name or TOML path (default {DEFAULT_RECIPE}; see `nnaudio-data recipes`)",
    )
    parser.add_argument(
        "--workers",
        type=_non_negative,
        default=min(2, os.cpu_count() or 1),
        help="DataLoader worker processes (default: min(2, CPUs))",
    )
    parser.add_argument(
        "--on-error",
        choices=("skip", "raise"),
        default="skip",
        help="a clip that cannot be used: skip, log and count it (default), or stop",
    )
    parser.add_argument(
        "--no-resample",
        dest="resample",
        action="store_false",
        help="reject clips at another sample rate than the recipe's instead of resampling",
    )


def build_parser() -> argparse.ArgumentParser:
    from nnaudio_data._version import __version__

    parser = argparse.ArgumentParser(
        prog="nnaudio-data",
        description="Spectrograms computed on the fly inside torch data pipelines.",
    )
    parser.add_argument("--version", action="version", version=f"nnaudio-data {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser(
        "run",
        help="compute spectrograms over audio files, folders or shards",
        description="Compute spectrograms with a recipe over audio files, folders or WebDataset "
        "shards (with no input: the bundled default data) and print a summary.",
    )
    _input_arguments(run)
    run.add_argument("--batch-size", type=_positive, default=16, help="clips per batch (16)")
    run.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default=None,
        help="where the recipe runs (default: cuda when available, else cpu)",
    )
    run.add_argument("--limit", type=_positive, default=None, help="stop after N clips")
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.add_argument(
        "--png", metavar="FILE", default=None, help="draw the first batch's spectrograms"
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_run)

    ext = sub.add_parser(
        "extract",
        help="compute a recipe's features once and write them as WebDataset shards",
        description="Compute a recipe's features of every clip and write them as WebDataset "
        "shards DIR/*.tar (<key>.npy: (features, frames); <key>.json) with DIR/manifest.json. "
        "Resumable (complete shards are kept); under torchrun each rank writes its share.",
    )
    _input_arguments(ext)
    ext.add_argument("--out", required=True, metavar="DIR", help="the output folder")
    ext.add_argument(
        "--shard-size", type=_positive, default=1000, help="audio files per output shard (1000)"
    )
    ext.add_argument(
        "--dtype", choices=("float32", "float16"), default="float32", help="feature dtype"
    )
    ext.add_argument("--json", action="store_true", help="print the manifest as one JSON object")
    ext.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ext.set_defaults(func=_extract)

    rec = sub.add_parser("recipes", help="list the recipes")
    rec.add_argument("--json", action="store_true", help="print the list as JSON")
    rec.set_defaults(func=_recipes)
    return parser


def _sample_error_message(error: Exception) -> str:
    """The one line that names the sample, also when a worker's traceback wraps it."""
    text = str(error).strip()
    if "Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 ok, 1 a sample failed, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "device", "cpu") is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    logging.basicConfig(level=logging.WARNING, format="nnaudio-data: %(levelname)s: %(message)s")
    from nnaudio_data.io import SampleError

    try:
        return int(args.func(args))
    except CliError as error:
        print(f"nnaudio-data: error: {error}", file=sys.stderr)
        return 2
    except SampleError as error:
        print(f"nnaudio-data: error: {_sample_error_message(error)}", file=sys.stderr)
        print("(pass --on-error skip to skip and count such clips)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
