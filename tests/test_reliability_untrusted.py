"""Untrusted shards: nothing a shard holds is ever unpickled. A payload whose unpickling would
create a marker file rides in every pickle-bearing field webdataset knows (``.pyd``, ``.pickle``,
``.pkl``, ``.pth``, and ``.pt``), gzip-compressed, upper-case, and as a NumPy object array; it goes
through webdataset with our handler in worker processes, the ready-made pipeline and the command.
The marker must never appear. And every ``torch.load`` in the project passes ``weights_only=True``.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import webdataset as wds

from nnaudio_data.pipeline import AudioHandler, SkipCounter, WaveCollate, audio_pipeline

ROOT = Path(__file__).resolve().parent.parent
SR = 22050


class _Payload:
    """Unpickling this opens (creates) ``path``: the proof that a pickle was run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


def _shard(tmp_path: Path, marker: Path) -> tuple[str, bytes]:
    payload = pickle.dumps(_Payload(str(marker)))
    npy = io.BytesIO()
    np.save(npy, np.array([_Payload(str(marker))], dtype=object), allow_pickle=True)
    buf = io.BytesIO()
    sf.write(buf, 0.1 * np.ones(3000), SR, format="WAV", subtype="PCM_16")
    audio = buf.getvalue()
    shard = tmp_path / "evil.tar"
    with wds.TarWriter(str(shard)) as sink:
        sink.write(
            {
                "__key__": "evil",
                "wav": audio,
                "pyd": payload,
                "pickle": payload,
                "pkl": payload,
                "pth": payload,
                "pt": payload,
                "meta.PICKLE": payload,
                "extra.pyd.gz": gzip.compress(payload),
            }
        )
        sink.write({"__key__": "evil-npy", "wav": audio, "npy": npy.getvalue()})
        sink.write({"__key__": "plain", "wav": audio, "cls": 3})
    # control: webdataset's default decoders do run these payloads
    wds.autodecode.basichandlers(".pyd", payload)
    assert marker.exists()
    marker.unlink()
    return str(shard), payload


def test_pickles_in_a_shard_are_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    shard, payload = _shard(tmp_path, marker)
    # webdataset's fluent API with our handler (webdataset's own handlers come after it), in a
    # worker process
    dataset = (
        wds.WebDataset(shard, shardshuffle=False)
        .decode(AudioHandler("skip"), handler=wds.warn_and_continue)
        .batched(8, collation_fn=WaveCollate(policy="skip"))
    )
    batches = list(wds.WebLoader(dataset, batch_size=None, num_workers=1))
    assert not marker.exists()
    (batch,) = batches
    assert batch.keys == ["evil", "plain"]  # evil-npy: numpy refuses the object array
    meta = batch.meta[0]
    # (webdataset lower-cases field names: "meta.PICKLE" arrives as "meta.pickle")
    for field in ("pyd", "pickle", "pkl", "pth", "pt", "meta.pickle"):
        assert meta[field] == payload, field  # left as the raw bytes
    assert gzip.decompress(meta["extra.pyd.gz"]) == payload  # left compressed
    # the ready-made pipeline: the sample with the object array is skipped and counted
    counter = SkipCounter()
    pipeline = audio_pipeline(shard, batch_size=8, policy="skip")
    loader = wds.WebLoader(pipeline, batch_size=None, num_workers=1)  # one shard: one worker
    keys = [k for b in counter.wrap(loader) for k in b.keys]
    assert not marker.exists()
    assert keys == ["evil", "plain"] and counter.counts == {"stream_error": 1}
    # the command over the same shard
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnaudio_data.cli",
            "run",
            shard,
            "--recipe",
            "stft-1024",
            "--json",
            "-q",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    summary = json.loads(proc.stdout)
    assert summary["clips"] == 2 and summary["skipped"] == {"stream_error": 1}


_LOAD = re.compile(r"torch\.load\s*\(")
_FORBIDDEN = re.compile(r"pickle\.loads?\s*\(|allow_pickle\s*=\s*True|weights_only\s*=\s*False")


def _call_text(source: str, start: int) -> str:
    """The text of the call whose ``(`` ends at ``start`` up to its closing parenthesis."""
    depth = 1
    for i in range(start, len(source)):
        depth += {"(": 1, ")": -1}.get(source[i], 0)
        if depth == 0:
            return source[start:i]
    return source[start:]


def test_every_torch_load_uses_weights_only() -> None:
    files = [
        p
        for folder in ("nnaudio_data", "examples", "bench", "scripts", "tests")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p.resolve() != Path(__file__).resolve()
    ]
    assert len(files) > 20
    calls = 0
    for path in files:
        source = path.read_text()
        for match in _LOAD.finditer(source):
            args = _call_text(source, match.end())
            assert re.search(r"weights_only\s*=\s*True", args), f"{path}: torch.load({args})"
            calls += 1
        if path.is_relative_to(ROOT / "nnaudio_data"):
            found = _FORBIDDEN.search(source)
            assert found is None, f"{path}: {found.group(0) if found else ''}"
    assert calls > 0  # the checkpoints of this suite and examples/ddp_train.py are checked


@pytest.mark.parametrize("field", [".pyd", ".pickle", ".pkl", ".pth", ".pt", "x.PYD"])
def test_handler_returns_pickle_fields_as_bytes(field: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(str(marker)))
    assert AudioHandler()(field, payload) == payload
    assert not marker.exists()
