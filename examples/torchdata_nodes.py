"""A resumable ``torchdata.nodes`` pipeline of spectrogram batches.

``audio_nodes`` builds sampler -> batches of indices -> load + pad + log-mel in worker processes
(in order); ``torchdata.nodes.Loader`` wraps it. The example stops part-way through an epoch,
saves ``loader.state_dict()``, builds a fresh loader, ``load_state_dict`` s it and finishes the
epoch: the keys seen before and after the restart are exactly the epoch's keys, none lost and none
repeated.

Run: ``python examples/torchdata_nodes.py [--workers 2] [--batch-size 4] [--stop-after 3] [--json]``
"""

from __future__ import annotations

import argparse
import json

from torchdata import nodes

from nnaudio_data import data
from nnaudio_data.pipeline import audio_nodes
from nnaudio_data.recipes import load_recipe


def make_loader(files: list[str], labels: list[int], args: argparse.Namespace) -> nodes.Loader:
    log_mel = load_recipe("log-mel-80")  # MelSpectrogram (25 ms / 10 ms, 80 bands) + Log
    root = audio_nodes(
        list(zip(files, [None] * len(files), labels)),  # (path, sample rate: from the file, label)
        batch_size=args.batch_size,
        shuffle=True,
        seed=args.seed,
        num_workers=args.workers,
        transform=log_mel,  # runs in the workers (CPU)
        sample_rate=16000,
    )
    return nodes.Loader(root)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--stop-after", type=int, default=3, help="batches before the restart")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    clips = [c for c in data.index()["clips"] if c["kind"] == "speech"]
    files = [str(data.DATA_DIR / c["file"]) for c in clips]
    labels = [c["class"] for c in clips]

    # The uninterrupted epoch, for comparison.
    full = [key for batch in make_loader(files, labels, args) for key in batch.keys]

    # Stop part-way, keep the state, resume in a new loader.
    loader = make_loader(files, labels, args)
    before, shapes = [], []
    for i, batch in enumerate(loader):
        before += batch.keys
        shapes.append(list(batch.spec.shape))
        if i + 1 == args.stop_after:
            state = loader.state_dict()
            break
    resumed = make_loader(files, labels, args)
    resumed.load_state_dict(state)
    after = [key for batch in resumed for key in batch.keys]

    result = {
        "epoch": full,
        "before": before,
        "after": after,
        "first_shapes": shapes,
        "lost": sorted(set(full) - set(before) - set(after)),
        "repeated": sorted(set(before) & set(after)),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{len(before)} clips before the restart, {len(after)} after, epoch {len(full)}")
        print(f"lost {result['lost']}, repeated {result['repeated']}")
        print(f"order kept: {before + after == full}")
    return result


if __name__ == "__main__":
    main()
