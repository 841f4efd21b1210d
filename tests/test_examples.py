"""Each script in examples/ runs (``main(args)``, real worker processes) and produces what it says.

Expected frame counts come from the files (soundfile) and the ``center=True`` rule
``1 + samples // hop``; labels and keys from the bundled ``index.json``.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import soundfile as sf

from nnaudio_data import data

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HOP = 160  # every example: 16 kHz, n_fft 400, hop 160


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def frames(path: Path, sr: int = 16000) -> int:
    info = sf.info(str(path))
    samples = -(-info.frames * sr // info.samplerate)  # resampled: ceil(n * new / old)
    return 1 + samples // HOP


def test_collate_fn_example():
    result = load("collate_fn").main(["--workers", "2", "--batch-size", "8", "--json"])
    files = data.files("speech")
    expected = [frames(p) for p in files]
    for name in ("in_workers", "device_stage"):
        batches = result[name]
        assert len(batches) == math.ceil(len(files) / 8)
        lengths = [n for b in batches for n in b["lengths"]]
        assert lengths == expected  # no shuffling: the files' order
        for b in batches:
            assert b["shape"] == [len(b["lengths"]), 80, max(b["lengths"])]
    assert {b["device"] for b in result["device_stage"]} <= {"cpu", "cuda"}


def test_webdataset_example():
    result = load("webdataset_pipeline").main(["--workers", "2", "--batch-size", "8", "--json"])
    clips = {c["key"]: c for c in data.index()["clips"]}
    for name in ("fluid", "audio_pipeline"):
        batches = result[name]
        keys = [k for b in batches for k in b["keys"]]
        assert sorted(keys) == sorted(clips)  # every clip of both shards, once
        for b in batches:
            assert b["labels"] == [clips[k]["class"] for k in b["keys"]]
            assert b["lengths"] == [frames(data.DATA_DIR / clips[k]["file"]) for k in b["keys"]]
            assert b["shape"] == [len(b["keys"]), 80, max(b["lengths"])]


def test_torchdata_nodes_example_resumes_without_loss_or_repeat():
    args = ["--workers", "2", "--batch-size", "4", "--stop-after", "3", "--json"]
    result = load("torchdata_nodes").main(args)
    speech = sorted(str(p) for p in data.files("speech"))
    assert sorted(result["epoch"]) == speech
    assert len(result["before"]) == 3 * 4
    assert result["before"] + result["after"] == result["epoch"]
    assert result["lost"] == [] and result["repeated"] == []
    assert all(shape[:2] == [4, 80] for shape in result["first_shapes"])


def test_dataset_wrapper_example():
    result = load("dataset_wrapper").main(["--workers", "2", "--batch-size", "8", "--json"])
    clips = data.index()["clips"]
    labels = [n for b in result["map_style"] for n in b["labels"]]
    lengths = [n for b in result["map_style"] for n in b["lengths"]]
    assert labels == [c["class"] for c in clips]
    assert lengths == [frames(data.DATA_DIR / c["file"]) for c in clips]
    keys = result["iterable_keys"]
    assert sorted(keys) == sorted(str(p) for p in data.files("speech"))  # split, not repeated


def test_training_example_learns_the_words():
    result = load("train_spoken_words").main(["--quick", "--json"])
    assert result["chance"] == 0.1
    assert result["train_clips"] == 30 and result["held_out_clips"] == 10
    history = [h["accuracy"] for h in result["history"]]
    assert history[-1] > history[0]
    # 8 epochs take the training clips from chance to (nearly) all right; the held-out voice and
    # speed, never trained on, well above chance.
    assert result["train_accuracy"] >= 0.8
    assert result["held_out_accuracy"] >= 0.3
    assert result["mel_trainable_parameters"] == 40 * 201  # n_mels x (n_fft // 2 + 1)
    assert result["mel_relative_change"] > 0.0


def test_hf_datasets_example():
    result = load("hf_datasets").main(["--workers", "2", "--batch-size", "8", "--json"])
    clips = data.index()["clips"]
    batches = result["map_style"]
    assert [n for b in batches for n in b["labels"]] == [c["class"] for c in clips]
    assert [w for b in batches for w in b["words"]] == [c["label"] for c in clips]
    assert [n for b in batches for n in b["lengths"]] == [
        frames(data.DATA_DIR / c["file"]) for c in clips
    ]
    for b in batches:
        assert b["shape"] == [len(b["lengths"]), 80, max(b["lengths"])]
    expected = sorted(f"{c['label']}/{data.DATA_DIR / c['file']}" for c in clips)
    assert result["streamed"] == expected  # 4 shards over 2 workers: each clip once
    assert result["set_transform"] == {
        "shape": [80, frames(data.DATA_DIR / clips[0]["file"])],
        "length": frames(data.DATA_DIR / clips[0]["file"]),
    }
