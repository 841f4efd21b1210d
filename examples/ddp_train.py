"""Train a spoken-word classifier with a trainable mel front end under DistributedDataParallel.

Each rank (a process; ``gloo`` on the CPU, ``nccl`` with one GPU per rank) reads its own share of
the bundled spoken words through ``torch.utils.data.distributed.DistributedSampler`` and
DataLoader workers that decode and pad only. The model - ``MelSpectrogram(trainable_mel=True)``,
then dB, then a classifier that pools over each clip's valid frames - is wrapped whole in
``DistributedDataParallel``, so the mel filters' gradients are averaged across ranks like any other
parameter's and every rank applies the same update: the filters stay identical on every rank.

``DistributedSampler(drop_last=True)`` gives every rank the same number of batches; a rank that
ran out of batches before the others would leave them waiting in the gradient all-reduce.

Run on one machine with two ranks (the script starts them), or under ``torchrun``::

    python examples/ddp_train.py --world-size 2 --steps 20
    torchrun --nproc-per-node 2 examples/ddp_train.py --steps 20

``--out DIR`` writes each rank's front-end state (``rank<r>.pt``, loadable with
``torch.load(..., weights_only=True)``), the initial one (``initial.pt``) and ``summary.json``
(loss per step, the keys each rank read, the largest difference of the filters across ranks).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from nnaudio_data import data
from nnaudio_data.features.mel import MelSpectrogram
from nnaudio_data.ops import AmplitudeToDB
from nnaudio_data.pipeline import AudioDataset, DeviceStage

SR = 16000


class Classifier(nn.Module):
    """Trainable log-mel front end, one convolution, mean over valid frames, a linear layer."""

    def __init__(self, n_classes: int, n_mels: int = 40, width: int = 32) -> None:
        super().__init__()
        self.mel = MelSpectrogram(
            sr=SR, n_fft=400, hop_length=160, n_mels=n_mels, trainable_mel=True
        )
        self.db = AmplitudeToDB(stype="power", top_db=80.0)
        self.conv = nn.Conv1d(n_mels, width, 5, padding=2)
        self.out = nn.Linear(width, n_classes)

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        frames = self.mel.output_lengths(lengths)
        spec = self.db(self.mel(audio), frames) / 20.0  # dB per clip, over its valid frames
        mask = (torch.arange(spec.shape[-1], device=spec.device) < frames[:, None]).unsqueeze(1)
        h = torch.relu(self.conv(spec)) * mask
        return self.out(h.sum(-1) / frames[:, None].clamp_min(1))


def _items() -> tuple[list[tuple[str, int, int]], list[str]]:
    index = data.index()
    items = [
        (str(data.DATA_DIR / c["file"]), SR, int(c["class"]))
        for c in index["clips"]
        if c["kind"] == "speech"
    ]
    return items, list(index["speech_classes"])


def train(rank: int, world_size: int, args: argparse.Namespace) -> dict[str, Any]:
    """One rank's training loop; the process group is already initialised."""
    torch.manual_seed(args.seed)  # the same initial weights everywhere (DDP also broadcasts them)
    device = torch.device(f"cuda:{rank}" if args.cuda else "cpu")
    items, classes = _items()
    dataset = AudioDataset(items, policy="skip")
    sampler = DistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=args.seed, drop_last=True
    )
    loader = DataLoader(
        dataset,
        batch_size=args.batch_size,
        sampler=sampler,
        num_workers=args.workers,
        collate_fn=dataset.collate,
        multiprocessing_context="fork" if args.workers else None,
        pin_memory=args.cuda,
    )
    model = Classifier(len(classes)).to(device)
    initial = {k: v.detach().clone().cpu() for k, v in model.mel.state_dict().items()}
    ddp = DistributedDataParallel(model, device_ids=[rank] if args.cuda else None)
    optimiser = torch.optim.Adam(
        [
            {"params": [p for n, p in model.named_parameters() if not n.startswith("mel.")]},
            {"params": model.mel.parameters(), "lr": args.front_lr},
        ],
        lr=args.lr,
    )
    loss_fn = nn.CrossEntropyLoss()
    losses, keys, step, epoch = [], [], 0, 0
    while step < args.steps:
        sampler.set_epoch(epoch)
        stage = DeviceStage(loader, device=device)  # moves batches; the front end is in ddp
        for batch in stage:
            loss = loss_fn(ddp(batch.audio, batch.lengths), batch.labels)
            optimiser.zero_grad()
            loss.backward()  # gradients all-reduced across ranks here
            optimiser.step()
            losses.append(float(loss.detach()))
            keys += [Path(k).stem for k in batch.keys]
            step += 1
            if step == args.steps:
                break
        epoch += 1
    # the filters of every rank, gathered on every rank
    basis = model.mel.mel_basis.detach()
    gathered = [torch.empty_like(basis) for _ in range(world_size)]
    dist.all_gather(gathered, basis)
    spread = max(float((g - basis).abs().max()) for g in gathered)
    moved = float((basis.cpu() - initial["mel_basis"]).abs().max())
    if args.out is not None:
        out = Path(args.out)
        torch.save(
            {k: v.detach().cpu() for k, v in model.mel.state_dict().items()}, out / f"rank{rank}.pt"
        )
        if rank == 0:
            torch.save(initial, out / "initial.pt")
    return {"rank": rank, "losses": losses, "keys": keys, "spread": spread, "moved": moved}


def _worker(rank: int, world_size: int, store: str, args: argparse.Namespace) -> None:
    """A rank started by ``torch.multiprocessing.spawn``."""
    dist.init_process_group(
        args.backend, init_method=f"file://{store}", rank=rank, world_size=world_size
    )
    try:
        _finish(train(rank, world_size, args), args)
    finally:
        dist.destroy_process_group()


def _finish(result: dict[str, Any], args: argparse.Namespace) -> None:
    results: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(results, result)
    if result["rank"] != 0:
        return
    summary = {
        "world_size": len(results),
        "steps": args.steps,
        "losses": results[0]["losses"],
        "keys": {r["rank"]: r["keys"] for r in results},
        "filters_max_difference_across_ranks": max(r["spread"] for r in results),
        "filters_max_change": results[0]["moved"],
    }
    if args.out is not None:
        (Path(args.out) / "summary.json").write_text(json.dumps(summary))
    print(
        f"{summary['world_size']} ranks, {args.steps} steps: loss {summary['losses'][0]:.3f} -> "
        f"{summary['losses'][-1]:.3f}; mel filters moved by up to "
        f"{summary['filters_max_change']:.2e}, differ across ranks by "
        f"{summary['filters_max_difference_across_ranks']:.1e}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world-size", type=int, default=2, help="ranks to start (no torchrun)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers per rank")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--front-lr", type=float, default=1e-4, help="the mel filters' rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="folder for the states and summary.json")
    args = parser.parse_args(argv)
    args.cuda = torch.cuda.is_available() and torch.cuda.device_count() >= args.world_size
    args.backend = "nccl" if args.cuda else "gloo"
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # started by torchrun
        dist.init_process_group(args.backend)
        try:
            _finish(train(dist.get_rank(), dist.get_world_size(), args), args)
        finally:
            dist.destroy_process_group()
        return
    with tempfile.TemporaryDirectory() as tmp:
        torch.multiprocessing.spawn(
            _worker,
            args=(args.world_size, os.path.join(tmp, "store"), args),
            nprocs=args.world_size,
        )


if __name__ == "__main__":
    main()
