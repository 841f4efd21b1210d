"""Wrap your own dataset so that a ``DataLoader`` yields spectrogram batches with lengths.

* :class:`~nnaudio_data.pipeline.AudioDataset` wraps a map-style source of
  ``(audio, sample_rate, label)`` tuples: here, clips already in memory as int16 arrays (integer
  PCM is scaled to [-1, 1]) at two sample rates, resampled to 16 kHz in the workers;
* :class:`~nnaudio_data.pipeline.AudioIterableDataset` wraps an iterable of file paths and splits
  it between the DataLoader workers (and ``torch.distributed`` ranks), so each clip is read once.

``DataLoader(ds, batch_size=..., collate_fn=ds.collate)`` is all it takes.

Run: ``python examples/dataset_wrapper.py [--workers 2] [--batch-size 8] [--json]``
"""

from __future__ import annotations

import argparse
import json

import soundfile as sf
from torch.utils.data import DataLoader

from nnaudio_data import data
from nnaudio_data.pipeline import AudioDataset, AudioIterableDataset
from nnaudio_data.recipes import load_recipe


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    front_end = load_recipe("log-mel-80")  # MelSpectrogram (25 ms / 10 ms, 80 bands) + Log
    clips = data.index()["clips"]

    # A map-style source: (int16 array, sample rate, label) held in memory; stereo music included.
    source = []
    for c in clips:
        audio, sr = sf.read(data.DATA_DIR / c["file"], dtype="int16", always_2d=True)
        source.append((audio.T, sr, c["class"]))  # (channels, time)
    dataset = AudioDataset(source, transform=front_end, sample_rate=16000, resample=True, mono=True)
    loader = DataLoader(
        dataset, batch_size=args.batch_size, num_workers=args.workers, collate_fn=dataset.collate
    )
    mapped = [
        {"shape": list(b.spec.shape), "lengths": b.lengths.tolist(), "labels": b.labels.tolist()}
        for b in loader
    ]

    # An iterable source of paths, shared out between the workers.
    paths = [str(p) for p in data.files("speech")]
    iterable = AudioIterableDataset(paths, transform=front_end, sample_rate=16000)
    loader = DataLoader(
        iterable, batch_size=args.batch_size, num_workers=args.workers, collate_fn=iterable.collate
    )
    keys = [key for b in loader for key in b.keys]

    result = {"map_style": mapped, "iterable_keys": keys}
    if args.json:
        print(json.dumps(result))
    else:
        for b in mapped:
            print(f"spec {tuple(b['shape'])}, valid frames {b['lengths']}, labels {b['labels']}")
        print(f"iterable: {len(keys)} clips, {len(set(keys))} distinct")
    return result


if __name__ == "__main__":
    main()
