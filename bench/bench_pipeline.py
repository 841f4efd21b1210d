"""Loader throughput: log-mel 128 spectrogram batches from WAV files, 2 workers (a script, not a test).

512 clips x 4 s at 22.05 kHz as 16-bit WAV files in a temporary folder (and the same clips in 4
WebDataset shards), batch 16, mel 128 bands in dB (n_fft 2048, hop 512, the ``mel-128`` recipe),
2 DataLoader workers. One epoch per timing, clips/s reported as median (min-max) over rounds, all
cases interleaved round after round with a pause before each (``bench/_common.py``):

- (a) ``librosa`` - ``librosa.feature.melspectrogram`` + ``power_to_db`` per item inside the
  workers (BLAS limited to one thread per worker, as torch limits its own);
- (b) ``nnAudio`` - workers decode and pad; nnAudio 0.3.4 ``MelSpectrogram`` + dB on the batch
  in the main process;
- (c) ``floor`` - decode and collate only (no spectrogram);
- (d) ours through each adapter: ``SpecCollate`` (the transform in the workers), ``DeviceStage``
  (workers pad, the transform in the main process), WebDataset ``audio_pipeline``,
  ``torchdata.nodes`` ``audio_nodes``, the ``AudioDataset`` wrapper (every loader keeps its
  worker processes from one epoch to the next: ``persistent_workers=True``);
- ``transform alone`` - our transform on the same batches already in memory: in the main process
  with 1 and 2 threads, and in 2 forked processes of 1 thread (half the batches each, nothing sent
  back). The best of the three is the cost the pipeline adds to.

Targets: best of ours >= 1.5x (a); ours at most 20% slower than the transform alone, i.e.
``transform-alone clips/s / ours clips/s <= 1.2``. The table prints that cost for each adapter
against the transform alone laid out as the adapter runs it (2 processes of 1 thread for the
adapters that transform in the workers, the main process's 2 threads for ``DeviceStage``) and
against the best of the three, in clips/s and in CPU time per batch summed over every process
(workers, pool, main: ``/proc``), which other users' load on a shared machine changes far less
than it changes wall-clock time; a profile of one worker's steps follows.

Run from the repository root: ``python -m bench.bench_pipeline [--rounds 5] [--clips 512]``.
"""

from __future__ import annotations

from bench._common import set_threads

set_threads(2)  # before numpy / librosa are imported

import argparse  # noqa: E402
import io  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
import torch.multiprocessing  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from bench._common import Case, machine_details, make_batch, markdown_table, time_cases  # noqa: E402
from nnaudio_data.pipeline import (  # noqa: E402
    AudioDataset,
    DeviceStage,
    SpecCollate,
    WaveCollate,
    audio_nodes,
    audio_pipeline,
)
from nnaudio_data.recipes import get_recipe  # noqa: E402

SR = 22_050
SECONDS = 4.0
BATCH = 16
WORKERS = 2
N_FFT, HOP, N_MELS, TOP_DB = 2048, 512, 128, 80.0
ALONE_MAIN = "our transform alone, 2 threads"
ALONE_WORKERS = "our transform alone, 2 processes"


# -- data ----------------------------------------------------------------------------------------


def write_clips(folder: Path, n: int, shards: int = 4) -> tuple[list[str], list[str]]:
    """``n`` 16-bit WAV files and the same clips in ``shards`` tar shards."""
    paths, blobs = [], []
    for start in range(0, n, BATCH):
        rows = make_batch(min(BATCH, n - start), SECONDS, SR, seed=start)
        for i, row in enumerate(rows):
            path = folder / f"clip-{start + i:04d}.wav"
            sf.write(path, row, SR, subtype="PCM_16")
            paths.append(str(path))
            blobs.append(path.read_bytes())
    urls = []
    per_shard = math.ceil(n / shards)
    for s in range(shards):
        url = folder / f"shard-{s:03d}.tar"
        with tarfile.open(url, "w") as tar:
            for i in range(s * per_shard, min(n, (s + 1) * per_shard)):
                info = tarfile.TarInfo(f"clip-{i:04d}.wav")
                info.size = len(blobs[i])
                tar.addfile(info, io.BytesIO(blobs[i]))
        urls.append(str(url))
    return paths, urls


# -- (a) librosa per item in the workers --------------------------------------------------------


def _limit_blas(_: int) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


class LibrosaItems(Dataset):
    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        import librosa

        audio, sr = sf.read(self.paths[i], dtype="float32")
        mel = librosa.feature.melspectrogram(
            y=audio, sr=sr, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, pad_mode="reflect"
        )
        return librosa.power_to_db(mel, ref=1.0, top_db=TOP_DB)


def stack_padded(items: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    frames = torch.tensor([x.shape[-1] for x in items])
    out = torch.zeros(len(items), items[0].shape[0], int(frames.max()))
    for row, x in zip(out, items):
        row[:, : x.shape[-1]] = torch.from_numpy(x)
    return out, frames


# -- (b) nnAudio after collate in the main process ---------------------------------------------


def db_per_item(power: torch.Tensor) -> torch.Tensor:
    """``power_to_db(ref=1, amin=1e-10, top_db=80)`` per item of a (B, F, T) batch."""
    db = 10.0 * torch.log10(power.clamp_min(1e-10))
    floor = db.amax(dim=(1, 2), keepdim=True) - TOP_DB
    return torch.maximum(db, floor)


# -- our transform alone in 2 processes (forked, 1 thread each) --------------------------------

_ALONE: dict[str, Any] = {}  # the batches and the transform, inherited by the forked processes


def _one_thread() -> None:
    torch.set_num_threads(1)


def _share(part: int) -> int:
    """Run the transform on every other batch (``part`` 0 or 1); the clips done."""
    done = 0
    with torch.no_grad():
        for batch in _ALONE["batches"][part::2]:
            _ALONE["transform"](batch.audio)
            done += len(batch)
    return done


# -- where a worker's time goes ---------------------------------------------------------------


def profile_worker(paths: list[str], transform: Any, batches: int = 8) -> list[list[str]]:
    """Median ms per batch of each step a ``SpecCollate`` worker takes, with 1 thread like a
    DataLoader worker, run here in the main process."""
    from multiprocessing.reduction import ForkingPickler

    from nnaudio_data.io import decode, read_native
    from nnaudio_data.pipeline import BatchTransform

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    collate = WaveCollate(sample_rate=SR)
    stage = BatchTransform(transform)
    steps: dict[str, list[float]] = {
        k: [] for k in ("read", "decode", "collate", "transform", "send")
    }
    try:
        for b in range(batches):
            group = paths[b * BATCH : (b + 1) * BATCH]
            time.sleep(0.1)
            tr = time.perf_counter()
            for p in group:
                read_native(p)
            t0 = time.perf_counter()
            for p in group:
                decode(p)
            t1 = time.perf_counter()
            wave = collate(group)  # decode again, check, pad
            t2 = time.perf_counter()
            spec = stage(wave)
            t3 = time.perf_counter()
            ForkingPickler.dumps(spec)  # what a worker does to send it: copy into shared memory
            t4 = time.perf_counter()
            steps["read"].append(t0 - tr)
            steps["decode"].append(t1 - t0)
            steps["collate"].append(t2 - t1)
            steps["transform"].append(t3 - t2)
            steps["send"].append(t4 - t3)
    finally:
        torch.set_num_threads(threads)
    ms = {k: 1e3 * statistics.median(v) for k, v in steps.items()}
    rows = [
        ["read 16 files as stored (soundfile, int16)", ms["read"]],
        ["decode 16 files to float32 (io.decode)", ms["decode"]],
        ["WaveCollate: decode + checks + pad", ms["collate"]],
        ["our transform (mel-128 recipe)", ms["transform"]],
        ["send the SpecBatch (shared memory)", ms["send"]],
    ]
    return [[name, f"{v:.1f}", f"{100 * v / ms['transform']:.0f}%"] for name, v in rows]


# -- running an epoch --------------------------------------------------------------------------


def tree_cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process, its live descendants
    (DataLoader / torchdata workers, the pool) and its children that have ended: unlike
    wall-clock time, other users' load on a shared machine barely changes it. Linux ``/proc``;
    ``nan`` elsewhere."""
    tick = os.sysconf("SC_CLK_TCK")
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    total, todo = ended.ru_utime + ended.ru_stime, [os.getpid()]
    try:
        while todo:
            pid = todo.pop()
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
    except (OSError, ValueError, IndexError):
        return math.nan
    return total


def with_cpu(fn: Any, store: list[float]) -> Any:
    """``fn`` that appends the CPU seconds of its process tree to ``store`` at each call."""

    def run() -> Any:
        before = tree_cpu_seconds()
        out = fn()
        store.append(tree_cpu_seconds() - before)
        return out

    return run


def drain(batches: Any) -> int:
    n = 0
    for batch in batches:
        n += len(batch) if not isinstance(batch, tuple) else len(batch[0])
    return n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--clips", type=int, default=512)
    parser.add_argument("--pause", type=float, default=0.3)
    parser.add_argument(
        "--sharing-strategy",
        choices=("file_descriptor", "file_system"),
        default=None,
        help="torch.multiprocessing sharing strategy (a user's process-wide choice; the default "
        "passes a file descriptor per tensor through a socket, file_system sends a name)",
    )
    args = parser.parse_args(argv)
    if args.sharing_strategy is not None:
        torch.multiprocessing.set_sharing_strategy(args.sharing_strategy)
    warnings.filterwarnings("ignore")
    n = args.clips

    recipe = get_recipe("mel-128")
    if recipe.sample_rate != SR:
        raise RuntimeError(f"mel-128 expects {recipe.sample_rate} Hz, the clips are {SR} Hz")
    ours = recipe.build().eval()
    from nnAudio.features import MelSpectrogram as NNAudioMel

    nnaudio_mel = NNAudioMel(
        sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, verbose=False
    ).eval()

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths, urls = write_clips(Path(tmp), n)
        print(f"wrote {n} clips and {len(urls)} shards in {time.perf_counter() - t0:.1f} s")

        def loader(dataset: Any, collate: Any, **kw: Any) -> DataLoader:
            return DataLoader(
                dataset,
                batch_size=BATCH,
                num_workers=WORKERS,
                collate_fn=collate,
                persistent_workers=True,
                **kw,
            )

        wave = WaveCollate(sample_rate=SR)
        librosa_loader = loader(LibrosaItems(paths), stack_padded, worker_init_fn=_limit_blas)
        floor_loader = loader(paths, wave)
        spec_loader = loader(paths, SpecCollate(ours, sample_rate=SR))
        wrapped = AudioDataset(paths, transform=ours, sample_rate=SR)
        wrapper_loader = loader(wrapped, wrapped.collate)
        import webdataset as wds
        from torchdata import nodes

        wds_loader = wds.WebLoader(
            audio_pipeline(urls, batch_size=BATCH, transform=ours, sample_rate=SR),
            batch_size=None,
            num_workers=WORKERS,
            persistent_workers=True,
        )

        nodes_loader = nodes.Loader(
            audio_nodes(
                paths,
                batch_size=BATCH,
                num_workers=WORKERS,
                transform=ours,
                sample_rate=SR,
                persistent_workers=True,  # as the DataLoaders here
            )
        )

        def nnaudio_epoch() -> int:
            count = 0
            with torch.no_grad():
                for batch in floor_loader:
                    db_per_item(nnaudio_mel(batch.audio))
                    count += len(batch)
            return count

        def device_stage_epoch() -> int:
            with torch.no_grad():
                return drain(DeviceStage(floor_loader, ours, "cpu"))

        # The same batches, decoded and padded once, for the transform alone.
        batches = list(floor_loader)

        def transform_alone() -> int:
            with torch.no_grad():
                for batch in batches:
                    ours(batch.audio)
            return n

        # Check that the three spectrograms agree before timing them.
        with torch.no_grad():
            first = batches[0]
            ref = torch.stack([torch.from_numpy(LibrosaItems(paths)[i]) for i in range(BATCH)])
            diff_ours = float((ours(first.audio) - ref).abs().max())
            diff_nna = float((db_per_item(nnaudio_mel(first.audio)) - ref).abs().max())
        print(f"max |dB difference| vs librosa: ours {diff_ours:.3g}, nnAudio {diff_nna:.3g}")

        import multiprocessing

        _ALONE.update(batches=batches, transform=ours)
        pool = multiprocessing.get_context("fork").Pool(WORKERS, initializer=_one_thread)

        def transform_alone_2_processes() -> int:
            return sum(pool.map(_share, range(WORKERS)))

        def transform_alone_1_thread() -> int:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return transform_alone()
            finally:
                torch.set_num_threads(threads)

        cases = [
            Case("(a) librosa per item in workers", lambda: drain(librosa_loader)),
            Case("(b) nnAudio after collate (main)", nnaudio_epoch),
            Case("(c) decode + collate only", lambda: drain(floor_loader)),
            Case("(d) ours: SpecCollate in workers", lambda: drain(spec_loader)),
            Case("(d) ours: DeviceStage (main)", device_stage_epoch),
            Case("(d) ours: WebDataset audio_pipeline", lambda: drain(wds_loader)),
            Case("(d) ours: torchdata.nodes", lambda: drain(nodes_loader)),
            Case("(d) ours: AudioDataset wrapper", lambda: drain(wrapper_loader)),
            Case("our transform alone, 1 thread", transform_alone_1_thread),
            Case(ALONE_MAIN, transform_alone),
            Case(ALONE_WORKERS, transform_alone_2_processes),
        ]
        # Every case sees every clip once per epoch. The DataLoaders' persistent workers start
        # here, before the torchdata.nodes workers exist (so that no fork copies those).
        for c in sorted(cases, key=lambda c: "nodes" in c.name):
            got = c.fn()
            if got != n:
                raise RuntimeError(f"{c.name} delivered {got} clips, expected {n}")
        cpu: dict[str, list[float]] = {c.name: [] for c in cases}
        timed = [Case(c.name, with_cpu(c.fn, cpu[c.name])) for c in cases]
        timings = time_cases(timed, rounds=args.rounds, warmup=args.warmup, pause=args.pause)
        pool.terminate()
        profile = profile_worker(paths, ours)

    def rate(name: str) -> float:
        return n / (timings[name].median / 1e3)

    def rate_range(name: str) -> str:
        t = timings[name]
        return f"{n / (t.max / 1e3):.0f}-{n / (t.min / 1e3):.0f}"

    base = rate(cases[0].name)
    # The transform alone on the same batches, the best way this machine runs it.
    alone_name = max((c.name for c in cases if "alone" in c.name), key=rate)
    alone = rate(alone_name)

    def same_layout(name: str) -> str | None:
        """The transform alone laid out as the adapter runs it: 2 processes of 1 thread for
        the adapters that transform in the workers, 2 threads in the main process for
        DeviceStage."""
        if not name.startswith("(d)"):
            return None
        return ALONE_MAIN if "DeviceStage" in name else ALONE_WORKERS

    def cpu_ms(name: str) -> float:
        """Median CPU ms per batch of the whole process tree over the timed rounds."""
        return 1e3 * statistics.median(cpu[name][-args.rounds :]) / math.ceil(n / BATCH)

    rows = []
    for c in cases:
        r = rate(c.name)
        layout = same_layout(c.name)
        rows.append(
            [
                c.name,
                f"{r:.0f}",
                rate_range(c.name),
                f"{r / base:.2f}x",
                "" if layout is None else f"{100 * (rate(layout) / r - 1):+.0f}%",
                "" if layout is None else f"{100 * (alone / r - 1):+.0f}%",
                f"{cpu_ms(c.name):.1f}",
                "" if layout is None else f"{100 * (cpu_ms(c.name) / cpu_ms(layout) - 1):+.0f}%",
            ]
        )
    print()
    print(machine_details())
    print(
        f"{n} clips x {SECONDS:.0f} s at {SR} Hz, batch {BATCH}, mel {N_MELS} dB, n_fft {N_FFT}, "
        f"hop {HOP}, {WORKERS} workers; {args.rounds} rounds, medians; sharing strategy "
        f"{torch.multiprocessing.get_sharing_strategy()}"
    )
    print(
        markdown_table(
            [
                "case",
                "clips/s",
                "min-max",
                "vs (a)",
                "cost over the transform alone, same layout",
                "cost over the best transform alone",
                "CPU ms per batch (all processes)",
                "CPU cost over the transform alone, same layout",
            ],
            rows,
        )
    )
    print()
    print("Where a SpecCollate worker's time goes (1 thread, median ms per batch of 16):")
    print(markdown_table(["step", "ms", "of the transform"], profile))
    ours_names = [c.name for c in cases if c.name.startswith("(d)")]
    best = max(ours_names, key=rate)
    print()
    print(
        f"best of ours: {best}: {rate(best) / base:.2f}x librosa (target >= 1.5), "
        f"{rate(best) / rate(cases[1].name):.2f}x nnAudio; pipeline cost over the transform "
        f"alone ({alone_name}) {100 * (alone / rate(best) - 1):+.0f}% (target <= +20%)"
    )
    for name in ours_names:
        layout = same_layout(name) or alone_name
        print(
            f"  {name}: {100 * (rate(layout) / rate(name) - 1):+.0f}% over {layout}, "
            f"ratio {rate(layout) / rate(name):.2f} (target <= 1.20); in CPU time "
            f"{100 * (cpu_ms(name) / cpu_ms(layout) - 1):+.0f}%"
        )


if __name__ == "__main__":
    main()
