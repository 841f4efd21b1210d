"""Spectrogram batches from WebDataset shards.

Reads the bundled shards (``shard-000.tar``, ``shard-001.tar``: ``<key>.flac`` + ``<key>.cls``)
two ways:

1. webdataset's own fluid API with this library's stages: ``.decode(AudioHandler(...))`` decodes
   the audio fields (and never unpickles anything), ``.batched(n, collation_fn=WaveCollate(...))``
   pads variable-length clips with valid lengths, ``.map(BatchTransform(mel))`` computes the
   spectrogram inside the ``WebLoader`` worker;
2. the ready-made :func:`~nnaudio_data.pipeline.audio_pipeline` (shards split by rank and worker,
   then the same stages).

The shards hold 16 kHz speech and 22.05 kHz stereo music: every clip is resampled to 16 kHz and
averaged to mono; with ``--on-error skip`` a clip that does not decode is logged and counted.

Run: ``python examples/webdataset_pipeline.py [--workers 2] [--batch-size 8] [--json]``
"""

from __future__ import annotations

import argparse
import json

import webdataset as wds

from nnaudio_data import data
from nnaudio_data.pipeline import (
    AudioHandler,
    BatchTransform,
    FaultPolicy,
    SkipCounter,
    WaveCollate,
    audio_pipeline,
)
from nnaudio_data.recipes import load_recipe


def describe(loader) -> list[dict]:
    counter = SkipCounter()
    out = []
    for batch in counter.wrap(loader):
        out.append(
            {
                "keys": batch.keys,
                "labels": batch.labels.tolist(),
                "shape": list(batch.spec.shape),
                "lengths": batch.lengths.tolist(),
            }
        )
    if counter.counts:
        out.append({"skipped": counter.counts})
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--on-error", choices=("skip", "raise"), default="raise")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    front_end = load_recipe("log-mel-80")  # MelSpectrogram (25 ms / 10 ms, 80 bands) + Log
    shards = data.shard_pattern()  # ".../shard-{000..001}.tar"
    policy = FaultPolicy(args.on_error)
    collate = WaveCollate(sample_rate=16000, resample=True, mono=True, policy=policy)

    # 1. webdataset's API with our stages.
    dataset = (
        wds.WebDataset(shards, shardshuffle=False, handler=policy, empty_check=False)
        .decode(AudioHandler(policy), handler=policy)
        .batched(args.batch_size, collation_fn=collate, partial=True)
        .map(BatchTransform(front_end))
    )
    loader = wds.WebLoader(dataset, batch_size=None, num_workers=args.workers)
    result = {"fluid": describe(loader)}

    # 2. The ready-made pipeline (each worker reads its own shards).
    pipeline = audio_pipeline(
        shards,
        batch_size=args.batch_size,
        transform=front_end,
        policy=policy,
        sample_rate=16000,
        resample=True,
        mono=True,
    )
    loader = wds.WebLoader(pipeline, batch_size=None, num_workers=args.workers)
    result["audio_pipeline"] = describe(loader)

    if args.json:
        print(json.dumps(result))
    else:
        for name, batches in result.items():
            print(f"{name}:")
            for b in batches:
                if "skipped" in b:
                    print(f"  skipped {b['skipped']}")
                else:
                    print(f"  spec {tuple(b['shape'])}, labels {b['labels']}")
    return result


if __name__ == "__main__":
    main()
