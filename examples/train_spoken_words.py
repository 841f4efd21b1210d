"""Train a small classifier of the bundled spoken words from on-the-fly log-mel, front end included.

The 40 bundled words (yes, no, up, down, left, right, on, off, stop, go; two espeak-ng voices at
two speeds) are decoded and padded in DataLoader workers; a :class:`~nnaudio_data.pipeline.
DeviceStage` runs the front end - ``MelSpectrogram(trainable_mel=True)`` then ``AmplitudeToDB`` - on the
device in the main process, with gradients, so the mel filters are trained with the classifier.
The classifier pools over each clip's valid frames only (``batch.mask``), so padding never leaks
into the prediction.

Prints the training accuracy per epoch (chance is 1/10), and at the end the accuracy on the
training clips and on held-out clips (one voice at one speed, never seen in training), and how far
the mel filters moved.

Run: ``python examples/train_spoken_words.py [--epochs 30] [--quick] [--json]``
"""

from __future__ import annotations

import argparse
import json

import torch
from torch import nn
from torch.utils.data import DataLoader

from nnaudio_data import data
from nnaudio_data.compose import Compose
from nnaudio_data.features import MelSpectrogram
from nnaudio_data.ops import AmplitudeToDB
from nnaudio_data.pipeline import AudioDataset, DeviceStage

HELD_OUT = ("en-gb+f3", 210)  # (voice, words per minute) kept out of training


class Head(nn.Module):
    """Per-band mean removal, two convolutions, masked mean + max pooling, a linear layer."""

    def __init__(self, n_mels: int, n_classes: int, width: int = 64) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(n_mels, width, 5, padding=2),
            nn.ReLU(),
            nn.Conv1d(width, width, 5, padding=2),
            nn.ReLU(),
        )
        self.out = nn.Linear(2 * width, n_classes)

    def forward(self, spec: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(1).to(spec.dtype)  # (B, 1, T)
        n = m.sum(-1, keepdim=True)
        spec = spec / 20.0  # dB -> a unit of order 1
        spec = (spec - (spec * m).sum(-1, keepdim=True) / n) * m  # mean over valid frames: 0
        h = self.convs(spec)
        mean = (h * m).sum(-1) / n.squeeze(-1)
        peak = h.masked_fill(m == 0, float("-inf")).amax(-1)
        return self.out(torch.cat([mean, peak], dim=1))


def loader_for(items: list, batch_size: int, workers: int, shuffle: bool) -> DataLoader:
    dataset = AudioDataset(items, sample_rate=16000)  # workers decode and pad only
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        persistent_workers=workers > 0,
        collate_fn=dataset.collate,
        generator=torch.Generator().manual_seed(0),
    )


def accuracy(front: nn.Module, head: nn.Module, loader: DataLoader, device: str) -> float:
    front.eval()
    head.eval()
    right = total = 0
    with torch.no_grad():
        for batch in DeviceStage(loader, front, device):
            pred = head(batch.spec, batch.mask).argmax(1)
            right += int((pred == batch.labels.to(device)).sum())
            total += len(batch)
    return right / total


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="8 epochs (what the test runs)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--front-lr", type=float, default=1e-4, help="the mel filters' rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    epochs = 8 if args.quick else args.epochs
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    index = data.index()
    classes = index["speech_classes"]
    train, held_out = [], []
    for c in index["clips"]:
        if c["kind"] != "speech":
            continue
        item = (str(data.DATA_DIR / c["file"]), 16000, c["class"])
        (held_out if (c["voice"], c["speed_wpm"]) == HELD_OUT else train).append(item)

    mel = MelSpectrogram(sr=16000, n_fft=400, hop_length=160, n_mels=40, trainable_mel=True)
    # dB with an 80 dB range per clip, its peak taken over the clip's valid frames only; the
    # amin floor keeps the log finite if training pushes a filter weight below zero.
    front = Compose(mel, AmplitudeToDB(stype="power", top_db=80.0)).to(device)
    head = Head(n_mels=40, n_classes=len(classes)).to(device)
    mel_start = [p.detach().clone() for p in mel.parameters()]
    optimiser = torch.optim.Adam(
        [
            {"params": head.parameters()},
            {"params": front.parameters(), "lr": args.front_lr},  # filters of order 1e-3
        ],
        lr=args.lr,
    )
    train_loader = loader_for(train, args.batch_size, args.workers, shuffle=True)
    loss_fn = nn.CrossEntropyLoss()

    history = []
    for epoch in range(epochs):
        front.train()
        head.train()
        right = total = 0
        loss_sum = 0.0
        for batch in DeviceStage(train_loader, front, device):  # the front end runs with grad
            labels = batch.labels.to(device)
            logits = head(batch.spec, batch.mask)
            loss = loss_fn(logits, labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            loss_sum += float(loss.detach()) * len(batch)
            right += int((logits.argmax(1) == labels).sum())
            total += len(batch)
        history.append({"epoch": epoch + 1, "loss": loss_sum / total, "accuracy": right / total})
        if not args.json:
            print(
                f"epoch {epoch + 1:2d}  loss {loss_sum / total:.3f}  accuracy {right / total:.2f}"
            )

    eval_train = loader_for(train, args.batch_size, args.workers, shuffle=False)
    eval_held = loader_for(held_out, args.batch_size, 0, shuffle=False)
    mel_moved = max(
        float((p.detach() - p0).norm() / p0.norm()) for p, p0 in zip(mel.parameters(), mel_start)
    )
    result = {
        "classes": classes,
        "chance": 1 / len(classes),
        "train_clips": len(train),
        "held_out_clips": len(held_out),
        "history": history,
        "train_accuracy": accuracy(front, head, eval_train, device),
        "held_out_accuracy": accuracy(front, head, eval_held, device),
        "mel_trainable_parameters": sum(p.numel() for p in mel.parameters() if p.requires_grad),
        "mel_relative_change": mel_moved,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"train accuracy {result['train_accuracy']:.2f}, held-out ({HELD_OUT[0]} at "
            f"{HELD_OUT[1]} wpm) {result['held_out_accuracy']:.2f}, chance {result['chance']:.2f}"
        )
        print(f"mel filters moved by {100 * mel_moved:.1f}% (relative Frobenius norm)")
    return result


if __name__ == "__main__":
    main()
