"""Spectrogram batches from a plain ``DataLoader``, with no collate code of your own.

Two ways, over the bundled spoken words (16 kHz FLAC files):

1. ``SpecCollate``: the workers decode, pad and run the (CPU) log-mel on each batch; the loader
   yields :class:`~nnaudio_data.SpecBatch` es with valid frame lengths.
2. ``WaveCollate`` + ``DeviceStage``: the workers decode and pad only; the device stage moves each
   batch to the device (the GPU when there is one) and computes the spectrogram there, in the
   main process - nothing touches CUDA inside a worker.

Run: ``python examples/collate_fn.py [--workers 2] [--batch-size 8] [--json]``
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.utils.data import DataLoader

from nnaudio_data import data
from nnaudio_data.pipeline import DeviceStage, SpecCollate, WaveCollate
from nnaudio_data.recipes import load_recipe


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    front_end = load_recipe("log-mel-80")  # MelSpectrogram (25 ms / 10 ms, 80 bands) + Log
    files = [str(p) for p in data.files("speech")]
    result: dict = {"files": len(files)}

    # 1. The transform runs inside the CPU workers.
    loader = DataLoader(
        files,
        batch_size=args.batch_size,
        num_workers=args.workers,
        collate_fn=SpecCollate(front_end, sample_rate=16000),
    )
    batches = []
    for batch in loader:  # SpecBatch: spec (B, n_mels, frames), lengths (B,) in frames
        batches.append({"shape": list(batch.spec.shape), "lengths": batch.lengths.tolist()})
    result["in_workers"] = batches

    # 2. Workers pad waveforms; the device stage computes on the device in the main process.
    device = "cuda" if torch.cuda.is_available() else "cpu"
    loader = DataLoader(
        files,
        batch_size=args.batch_size,
        num_workers=args.workers,
        collate_fn=WaveCollate(sample_rate=16000),
        pin_memory=device == "cuda",
    )
    batches = []
    with torch.no_grad():
        for batch in DeviceStage(loader, front_end, device):
            batches.append(
                {
                    "shape": list(batch.spec.shape),
                    "lengths": batch.lengths.tolist(),
                    "device": batch.spec.device.type,
                }
            )
    result["device_stage"] = batches

    if args.json:
        print(json.dumps(result))
    else:
        for name in ("in_workers", "device_stage"):
            print(f"{name}:")
            for b in result[name]:
                print(f"  spec {tuple(b['shape'])}, valid frames {b['lengths']}")
    return result


if __name__ == "__main__":
    main()
