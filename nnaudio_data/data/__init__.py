"""Bundled default data: a few short real recordings as FLAC files and WebDataset shards.

* 40 spoken words (yes, no, up, down, left, right, on, off, stop, go) made with espeak-ng in two
  voices at two speeds, 16 kHz mono;
* 3 music-like clips (plucked-string arpeggio, chord, bass line), 22.05 kHz stereo, 1 s each.

The same 43 clips are stored as FLAC files and as two WebDataset shards (``shard-000.tar``,
``shard-001.tar``: ``<key>.flac`` + ``<key>.cls``). ``index.json`` lists each clip's label, class,
sample rate, channels and frames. ``scripts/make_default_data.py`` regenerates all of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["DATA_DIR", "files", "index", "shard_pattern", "shards"]

DATA_DIR = Path(__file__).resolve().parent
"""The folder that holds the bundled data."""


def index() -> dict[str, Any]:
    """The parsed ``index.json``: ``classes``, ``speech_classes``, ``clips`` and ``shards``."""
    with open(DATA_DIR / "index.json", encoding="utf-8") as f:
        return dict(json.load(f))


def files(kind: str | None = None) -> list[Path]:
    """The bundled FLAC files, sorted; ``kind`` ``"speech"`` or ``"music"`` selects one kind."""
    if kind not in (None, "speech", "music"):
        raise ValueError(f"kind must be None, 'speech' or 'music', got {kind!r}")
    clips = index()["clips"]
    return sorted(DATA_DIR / c["file"] for c in clips if kind is None or c["kind"] == kind)


def shards() -> list[Path]:
    """The bundled WebDataset shards, sorted."""
    return [DATA_DIR / name for name in index()["shards"]]


def shard_pattern() -> str:
    """A brace pattern naming every bundled shard (``.../shard-{000..001}.tar``)."""
    n = len(index()["shards"])
    return str(DATA_DIR / f"shard-{{000..{n - 1:03d}}}.tar")
