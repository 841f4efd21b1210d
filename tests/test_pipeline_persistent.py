"""What makes the pipeline cheaper without changing what it delivers: ``audio_nodes`` workers kept
from one epoch to the next (``persistent_workers=True``), plain 16-bit PCM WAV files read without
libsndfile (the same int16 values), and a worker's batch arriving in the main process from shared
memory with the numbers the same collate gives in-process. Real files, real worker processes,
real torchdata graphs."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import torch_threads, write_noise_wavs
from test_pipeline_collate import TorchStft
from torch.utils.data import DataLoader
from torchdata import nodes

from nnaudio_data.batch import BY_VALUE_BYTES
from nnaudio_data.io import decode, read_native
from nnaudio_data.pipeline import SpecCollate, audio_nodes

SR = 16000


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """10 int16 WAV files of different lengths (one stereo-free set), the fourth one corrupt."""
    root = tmp_path_factory.mktemp("persistent")
    return write_noise_wavs(root, 10, SR, level=0.3, base=900, step=101, corrupt=3)


def _worker_pids(node: object) -> set[int]:
    pool = getattr(node, "_pool", None)
    return set() if pool is None else {p.pid for p in (pool._processes or {}).values()}


def test_persistent_nodes_keep_their_workers_and_deliver_every_epoch(clips: list[str]) -> None:
    stft = TorchStft()
    kw = {"batch_size": 3, "num_workers": 2, "transform": stft, "policy": "skip"}
    root = audio_nodes(clips, persistent_workers=True, **kw)
    loader = nodes.Loader(root)
    reference = list(nodes.Loader(audio_nodes(clips, **kw)))  # workers joined each epoch
    pids: list[set[int]] = []
    for _ in range(3):
        batches = list(loader)
        assert [b.keys for b in batches] == [b.keys for b in reference]
        for got, ref in zip(batches, reference):
            assert torch.equal(got.spec, ref.spec) and torch.equal(got.lengths, ref.lengths)
        assert sum(b.skipped.get("decode_error", 0) for b in batches) == 1
        pids.append(_worker_pids(root))
    assert pids[0] and pids[0] == pids[1] == pids[2]  # no process started after the first epoch
    assert all(os.path.exists(f"/proc/{pid}") for pid in pids[0])
    # mid-epoch: state, then a new epoch on the same workers, then resume from the state
    it = iter(loader)
    first = next(it)
    state = loader.state_dict()
    rest = [b.keys for b in it]
    assert [first.keys, *rest] == [b.keys for b in reference]
    loader.load_state_dict(state)
    assert [b.keys for b in loader] == rest
    assert _worker_pids(root) == pids[0]
    root._close()
    assert not _worker_pids(root)


def test_default_nodes_join_their_workers_at_the_end_of_each_epoch(clips: list[str]) -> None:
    root = audio_nodes(clips[:6], batch_size=3, num_workers=2, policy="skip")
    assert len(list(nodes.Loader(root))) == 2
    assert root._pool is None  # joined


def test_persistent_workers_need_worker_processes(clips: list[str]) -> None:
    for kw in ({"num_workers": 0}, {"num_workers": 2, "method": "thread"}):
        with pytest.raises(ValueError, match="persistent_workers"):
            audio_nodes(clips, batch_size=2, persistent_workers=True, **kw)


@pytest.mark.parametrize("channels", [1, 2, 5])
@pytest.mark.parametrize("frames", [1, 3, 4097])
def test_plain_wav_read_equals_libsndfile(tmp_path: Path, channels: int, frames: int) -> None:
    data = np.random.default_rng(frames).uniform(-1, 1, (frames, channels))
    path = tmp_path / "x.wav"
    sf.write(path, data, 8000 + channels, subtype="PCM_16")
    ref = sf.read(path, dtype="int16", always_2d=True)[0]
    for source in (str(path), path.read_bytes()):
        got, scale, rate = read_native(source)
        assert got.dtype == np.int16 and np.array_equal(got, ref) and rate == 8000 + channels
        assert scale == 2.0**-15
        audio, _ = decode(source)
        assert torch.equal(
            audio, torch.from_numpy(sf.read(path, dtype="float32", always_2d=True)[0].T.copy())
        )


def test_unusual_wavs_still_go_through_libsndfile(tmp_path: Path) -> None:
    data = np.random.default_rng(0).uniform(-1, 1, 500)
    buf = io.BytesIO()
    sf.write(buf, data, SR, subtype="PCM_16", format="WAV")
    wav = buf.getvalue()
    # a LIST chunk before the data and trailing bytes after the RIFF size: read as libsndfile does
    list_chunk = b"LIST" + (4).to_bytes(4, "little") + b"INFO"
    riff = wav[:12] + wav[12:36] + list_chunk + wav[36:]
    riff = riff[:4] + (len(riff) - 8).to_bytes(4, "little") + riff[8:]
    for blob in (riff, wav + b"\x00" * 3):
        got, _, _ = read_native(blob)
        assert np.array_equal(got, sf.read(io.BytesIO(blob), dtype="int16", always_2d=True)[0])
    # a data chunk cut short: libsndfile's truncation error, as before
    cut = wav[:-100]
    cut = cut[:4] + (len(cut) - 8).to_bytes(4, "little") + cut[8:]
    with pytest.raises(ValueError, match="truncated"):
        read_native(cut, key="cut")
    # a header declaring more than max_samples: refused before reading
    with pytest.raises(ValueError, match="max_samples"):
        read_native(wav, key="big", max_samples=100)


@pytest.mark.parametrize("n_fft", [64, 1024])
def test_a_worker_batch_equals_the_in_process_one_and_arrives_in_shared_memory(
    clips: list[str], n_fft: int
) -> None:
    collate = SpecCollate(TorchStft(n_fft), sample_rate=SR, policy="skip")
    loader = DataLoader(clips, batch_size=4, num_workers=2, collate_fn=collate)
    got = list(loader)
    with torch_threads(1):  # as in the workers (an FFT's rounding may depend on the threads)
        ref = [collate(clips[i : i + 4]) for i in range(0, len(clips), 4)]
    assert len(got) == len(ref) == 3
    for a, b in zip(got, ref):
        assert a.keys == b.keys and a.skipped == b.skipped
        assert torch.equal(a.spec, b.spec) and torch.equal(a.lengths, b.lengths)
        # a spectrogram above BY_VALUE_BYTES arrives in shared memory; these short clips' ones,
        # and the lengths (32 bytes), came by value in the pickle (no segment of their own)
        large = a.spec.numel() * a.spec.element_size() > BY_VALUE_BYTES
        assert large == (n_fft == 1024)
        assert a.spec.is_shared() == large and not b.spec.is_shared()
        assert not a.lengths.is_shared() and a.lengths.dtype == torch.long
    assert sum(len(b) for b in got) + sum(sum(b.skipped.values()) for b in got) == len(clips)


def test_workers_reusing_output_memory_never_overwrite_a_sent_batch(tmp_path: Path) -> None:
    # whisper-128's (4, 128, 3000) log-mel (6.1 MB) is above _memory.MIN_BYTES: each worker keeps
    # its outputs' blocks for reuse, and a sent batch's block is in shared memory, read by the
    # main process: a worker that wrote its next batch there would change the batches held here
    from nnaudio_data.features import WhisperLogMel
    from nnaudio_data.functional import _memory

    paths = write_noise_wavs(tmp_path, 24, SR, level=0.3, base=4000, step=333, corrupt=-1)
    collate = SpecCollate(WhisperLogMel(n_mels=128), sample_rate=SR)
    got = list(DataLoader(paths, batch_size=4, num_workers=2, collate_fn=collate))  # type: ignore[arg-type]
    assert got[0].spec.numel() * 4 >= _memory.MIN_BYTES and len(got) == 6
    with torch_threads(1):
        ref = [collate(paths[i : i + 4]) for i in range(0, len(paths), 4)]
    for a, b in zip(got, ref, strict=True):
        assert a.keys == b.keys and a.spec.is_shared()
        assert torch.equal(a.spec, b.spec) and torch.equal(a.lengths, b.lengths)
    assert len({a.spec.data_ptr() for a in got}) == len(got)
