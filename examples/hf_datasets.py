"""Hugging Face ``datasets`` in: its rows are samples, its datasets are sources.

* a ``datasets.Dataset`` built from local files with ``Audio(decode=False)`` (each row's audio is
  ``{"bytes", "path"}``, decoded here with soundfile: torchcodec is not needed), wrapped in
  :class:`~nnaudio_data.pipeline.AudioDataset` with the ``"label"`` column as the label; the
  other columns (here ``"word"``) travel in ``batch.meta``;
* the same as a streaming ``datasets.IterableDataset`` in 4 shards, wrapped in
  :class:`~nnaudio_data.pipeline.AudioIterableDataset`: ``datasets`` shares the shards out
  between the DataLoader workers (and ``split_dataset_by_node`` between DDP ranks);
* ``ds.with_transform(HFTransform(front_end, ...))`` for code that stays inside ``datasets``:
  ``ds[i]["spec"]`` is the clip's log-mel, cut to its valid frames.

Run: ``python examples/hf_datasets.py [--workers 2] [--batch-size 8] [--json]`` (needs
``pip install 'nnaudio-data[datasets]'``)
"""

from __future__ import annotations

import argparse
import json

import datasets
from torch.utils.data import DataLoader

from nnaudio_data import data
from nnaudio_data.pipeline import AudioDataset, AudioIterableDataset, HFTransform
from nnaudio_data.recipes import load_recipe


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    front_end = load_recipe("log-mel-80")  # MelSpectrogram (25 ms / 10 ms, 80 bands) + Log
    clips = data.index()["clips"]
    ds = datasets.Dataset.from_dict(
        {
            "audio": [str(data.DATA_DIR / c["file"]) for c in clips],
            "label": [c["class"] for c in clips],
            "word": [c["label"] for c in clips],
        }
    ).cast_column("audio", datasets.Audio(decode=False))
    # 16 kHz speech and 22.05 kHz stereo music: resampled and averaged to mono in the workers
    settings = {"sample_rate": 16000, "resample": True, "mono": True}

    dataset = AudioDataset(ds, transform=front_end, **settings)
    loader = DataLoader(
        dataset, batch_size=args.batch_size, num_workers=args.workers, collate_fn=dataset.collate
    )
    mapped = [
        {
            "shape": list(b.spec.shape),
            "lengths": b.lengths.tolist(),
            "labels": b.labels.tolist(),
            "words": [m["word"] for m in b.meta],
        }
        for b in loader
    ]

    stream = AudioIterableDataset(
        ds.to_iterable_dataset(num_shards=4), transform=front_end, **settings
    )
    loader = DataLoader(
        stream, batch_size=args.batch_size, num_workers=args.workers, collate_fn=stream.collate
    )
    streamed = sorted(m["word"] + "/" + k for b in loader for k, m in zip(b.keys, b.meta))

    view = ds.with_transform(HFTransform(front_end, **settings))
    first = view[0]
    result = {
        "map_style": mapped,
        "streamed": streamed,
        "set_transform": {"shape": list(first["spec"].shape), "length": first["length"]},
    }
    if args.json:
        print(json.dumps(result))
    else:
        for b in mapped:
            print(f"spec {tuple(b['shape'])}, valid frames {b['lengths']}, labels {b['labels']}")
        print(f"streamed: {len(streamed)} clips, {len(set(streamed))} distinct")
        print(f"set_transform: ds[0]['spec'] {tuple(first['spec'].shape)}")
    return result


if __name__ == "__main__":
    main()
