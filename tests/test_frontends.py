"""The pretrained-model front ends (recipes ``whisper-80`` ... ``clap-htsat-64``) against the
packages they copy, run as their users run them:

- openai-whisper ``log_mel_spectrogram`` and transformers' ``WhisperFeatureExtractor``;
- kaldi-native-fbank ``OnlineFbank`` and lhotse ``Fbank``;
- transformers' ``ASTFeatureExtractor`` (its numpy path: torchaudio is not installed);
- torchvggish ``mel_features.log_mel_spectrogram`` / ``vggish_input.waveform_to_examples``;
- torchlibrosa ``Spectrogram`` + ``LogmelFilterBank`` as PANNs' Cnn14 and CLAP's HTSAT build them.

For every recipe: one clip, a zero-padded batch of clips of different lengths (each clip against
the original on that clip alone), a real 2-worker ``DataLoader`` over WAV files with
``SpecCollate``, and ``output_lengths`` against the length rule and the original's frame count.
The references are cross-checked where two of them compute the same thing.

Every reference returns numpy ``(features, frames)`` (the originals that give
``(frames, features)`` are transposed). Errors are max abs differences over valid frames.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kaldi_native_fbank as knf
import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import torch
import transformers.models.audio_spectrogram_transformer.feature_extraction_audio_spectrogram_transformer as hf_ast
import whisper.audio
from conftest import tf32
from lhotse import Fbank, FbankConfig
from torch.utils.data import DataLoader
from torchlibrosa.stft import LogmelFilterBank, Spectrogram
from torchvggish import mel_features, vggish_input, vggish_params
from transformers import ASTFeatureExtractor, WhisperFeatureExtractor

from nnaudio_data.compose import Compose
from nnaudio_data.pipeline import AudioDataset, DeviceStage, audio_nodes, audio_pipeline
from nnaudio_data.pipeline.collate import SpecCollate, WaveCollate
from nnaudio_data.recipes import get_recipe, load_recipe

pytestmark = [
    # the references' own warnings: HF's AST filterbank has an empty band (mel bin 3, as the
    # original torchaudio path), lhotse's mel scale calls np.log on a float
    pytest.mark.filterwarnings("ignore:At least one mel filter has all zero values:UserWarning"),
    pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context:DeprecationWarning"),
]

# ------------------------------------------------------------------------------ test signals


def make_clip(n: int, sr: int, seed: int, level: float, gap: bool = False) -> np.ndarray:
    """``(n,)`` float32 audio-like clip with peak ``level``: a log chirp 60 Hz - sr/2.3, a tone
    with tremolo, a second tone that starts part-way (an onset), a decaying noise burst and
    background noise (so that no mel band is empty). ``gap``: the middle fifth 100 dB down (a
    pause, more than any top_db-style clamp below the clip's peak lets through). Deterministic in
    ``seed``."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    dur = max(n / sr, 1e-3)
    sweep = scipy.signal.chirp(
        t, f0=60.0 * (1 + seed % 3), f1=sr / 2.3, t1=dur, method="logarithmic"
    )
    tone = np.sin(2 * np.pi * (180.0 + 37 * seed) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    onset = np.where(t > 0.4 * dur, np.sin(2 * np.pi * (1250.0 + 90 * seed) * t + seed), 0.0)
    burst = rng.standard_normal(n) * np.exp(-np.maximum(t - 0.2 * dur, 0) * 25) * (t > 0.2 * dur)
    x = 0.4 * sweep + 0.3 * tone + 0.25 * onset + 0.3 * burst + 0.05 * rng.standard_normal(n)
    if gap:
        x[2 * n // 5 : 3 * n // 5] *= 1e-5
    return (level * x / np.max(np.abs(x))).astype(np.float32)


# ------------------------------------------------------------------------------ the originals
# Each takes one clip, float32 (n,) in [-1, 1], and returns numpy (features, frames).


def ref_whisper(x: np.ndarray, n_mels: int, pad: bool = True) -> np.ndarray:
    """openai-whisper: ``log_mel_spectrogram(pad_or_trim(x), n_mels)`` (``pad=False``: of ``x``
    itself, ``n // 160`` frames)."""
    audio = torch.from_numpy(x)
    if pad:
        audio = whisper.audio.pad_or_trim(audio)
    return whisper.audio.log_mel_spectrogram(audio, n_mels).numpy()


def ref_whisper_hf(x: np.ndarray, n_mels: int) -> tuple[np.ndarray, int]:
    """transformers ``WhisperFeatureExtractor`` (its torch path, the one taken when torch is
    installed): the (n_mels, 3000) features and the valid frames of its attention mask."""
    fe = WhisperFeatureExtractor(feature_size=n_mels)
    out = fe(x, sampling_rate=16000, return_tensors="np", return_attention_mask=True)
    return out["input_features"][0], int(out["attention_mask"][0].sum())


def ref_kaldi(x: np.ndarray, *, snip_edges: bool = True, high_freq: float = 0.0) -> np.ndarray:
    """kaldi-native-fbank ``FbankOptions()`` with dither 0 (its default is 3e-5), 80 bins, 16 kHz."""
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = 16000
    opts.frame_opts.snip_edges = snip_edges
    opts.mel_opts.num_bins = 80
    opts.mel_opts.high_freq = high_freq
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(16000, x)
    fbank.input_finished()
    frames = [np.asarray(fbank.get_frame(i)) for i in range(fbank.num_frames_ready)]
    return np.stack(frames).T if frames else np.zeros((80, 0), np.float32)


def ref_lhotse(x: np.ndarray) -> np.ndarray:
    """lhotse ``Fbank(FbankConfig())`` (dither 0, snip_edges False) on the clip alone."""
    return Fbank(FbankConfig()).extract(x, 16000).T


AST_PAD = (0.0 - -4.2677393) / (2 * 4.5689974)  # what HF's padded (zero) frames normalise to


@contextlib.contextmanager
def hf_ast_numpy_path() -> Iterator[None]:
    """HF's AST extractor takes torchaudio's Kaldi fbank wherever torchaudio imports (not beside
    this CPU torch; it does on a CUDA machine), and that refuses a clip shorter than a window
    (an AssertionError); its numpy path, the reference everywhere, is what it runs when it is
    told torchaudio is absent (checked at construction and at each call)."""
    saved = hf_ast.is_speech_available
    hf_ast.is_speech_available = lambda: False
    try:
        yield
    finally:
        hf_ast.is_speech_available = saved


def ref_ast(x: np.ndarray, max_length: int | None) -> np.ndarray:
    """transformers ``ASTFeatureExtractor(max_length=...)``, numpy path. ``max_length=None``: the
    clip's own frames (what ``ast-128`` keeps): HF run with room for every frame, then the frames
    it added as padding (exactly the normalised zero in every bin) cut off."""
    if max_length is not None:
        with hf_ast_numpy_path():
            fe = ASTFeatureExtractor(max_length=max_length)
            return fe(x, sampling_rate=16000, return_tensors="np")["input_values"][0].T
    room = x.size // 160 + 2  # more than 1 + (n - 400) // 160
    feats = ref_ast(x, room)
    added = np.all(feats == np.float32(AST_PAD), axis=0)
    n_own = int(np.argmax(added)) if added.any() else room
    assert not added[:n_own].any() and added[n_own:].all()
    return feats[:, :n_own]


def ref_vggish(x: np.ndarray) -> np.ndarray:
    """torchvggish ``mel_features.log_mel_spectrogram`` with ``vggish_params``, exactly as
    ``vggish_input.waveform_to_examples`` calls it (float64)."""
    return mel_features.log_mel_spectrogram(
        x,
        audio_sample_rate=vggish_params.SAMPLE_RATE,
        log_offset=vggish_params.LOG_OFFSET,
        window_length_secs=vggish_params.STFT_WINDOW_LENGTH_SECONDS,
        hop_length_secs=vggish_params.STFT_HOP_LENGTH_SECONDS,
        num_mel_bins=vggish_params.NUM_MEL_BINS,
        lower_edge_hertz=vggish_params.MEL_MIN_HZ,
        upper_edge_hertz=vggish_params.MEL_MAX_HZ,
    ).T


@functools.lru_cache(maxsize=4)
def _torchlibrosa(
    sr: int, n_fft: int, hop: int, n_mels: int, fmin: float, fmax: float
) -> tuple[Spectrogram, LogmelFilterBank]:
    # The arguments of panns_inference/models.py Cnn14.__init__ (window 'hann', center True,
    # pad_mode 'reflect', ref 1.0, amin 1e-10, top_db None), which CLAP's HTSAT repeats.
    spec = Spectrogram(
        n_fft=n_fft,
        hop_length=hop,
        win_length=n_fft,
        window="hann",
        center=True,
        pad_mode="reflect",
        freeze_parameters=True,
    )
    logmel = LogmelFilterBank(
        sr=sr,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        ref=1.0,
        amin=1e-10,
        top_db=None,
        freeze_parameters=True,
    )
    return spec, logmel


def ref_torchlibrosa(
    x: np.ndarray,
    sr: int,
    n_fft: int,
    hop: int,
    n_mels: int = 64,
    fmin: float = 50.0,
    fmax: float = 14000.0,
) -> np.ndarray:
    """torchlibrosa ``Spectrogram`` + ``LogmelFilterBank`` as Cnn14 / HTSAT configure them: the
    model input before ``bn0`` (dB, no top_db)."""
    spec, logmel = _torchlibrosa(sr, n_fft, hop, n_mels, fmin, fmax)
    with torch.no_grad():
        return logmel(spec(torch.from_numpy(x)[None]))[0, 0].T.numpy()


# ------------------------------------------------------------------------------ the recipes


@dataclass(frozen=True)
class FrontEnd:
    """A recipe, its original, tolerance and length rule."""

    name: str
    ref: Callable[[np.ndarray], np.ndarray]  # one clip -> (features, frames)
    tol: float
    rule: Callable[[int], int]  # valid frames for n samples
    fixed: int | None = None  # fixed output frames: then the WHOLE output is compared
    shortest: int = 300  # a clip shorter than one window that the original accepts


def _snip(n: int) -> int:
    return max(0, 1 + (n - 400) // 160)


FRONT_ENDS = [
    # Whisper: the bar 1e-4 on (log10 + 4) / 4 values; HF's torch path and openai agree
    # to 1.2e-7 (cross-check below) and the recipes were seen within 2.6e-5, so 1e-4 leaves room
    # for a different float32 FFT / mel summation order, not for a different formula (openai's
    # batch-wide max is off by 0.23 here, an n_fft of 402 by 0.28).
    FrontEnd("whisper-80", lambda x: ref_whisper(x, 80), 1e-4, lambda n: min(3000, -(-n // 160)), 3000),
    FrontEnd("whisper-128", lambda x: ref_whisper(x, 128), 1e-4, lambda n: min(3000, -(-n // 160)), 3000),
    # -nopad: torch.stft's reflect pad of 200 needs more than 200 samples
    FrontEnd("whisper-80-nopad", lambda x: ref_whisper(x, 80, pad=False), 1e-4, lambda n: n // 160, shortest=300),
    # Kaldi fbank: natural log of float32 energies; where a band's energy is small relative to its
    # frame, float32 rounding of two different FFTs differs by a larger relative amount, and the
    # log turns that into an absolute error. The bar 2e-2; seen 1.1e-3 (knf and lhotse,
    # both float32, agree to ~2.4e-4; pre-emphasis 0.96 instead of 0.97 is off by 1.4).
    FrontEnd("kaldi-fbank-80", ref_kaldi, 2e-2, _snip),
    FrontEnd("lhotse-fbank-80", ref_lhotse, 2e-2, lambda n: (n + 80) // 160),
    # AST: Kaldi fbank / 9.138: HF's numpy path stores the FFT in complex64 and runs a float64 mel
    # product, so float32 differences of ~1e-3 in log units shrink to ~1e-4 (seen 1.7e-4); the
    # bar is 2e-3 (a periodic instead of symmetric hann is off by 0.14).
    FrontEnd("ast-128", lambda x: ref_ast(x, None), 2e-3, _snip),
    FrontEnd("ast-128-1024", lambda x: ref_ast(x, 1024), 2e-3, lambda n: min(1024, _snip(n)), 1024),
    # VGGish: the original is float64; ln(mel + 0.01) bounds the log's gain (d = dmel / (mel +
    # 0.01)), so float32 magnitudes land within ~1e-5 (seen 1.1e-5); the bar is 2e-4.
    FrontEnd("vggish-64", ref_vggish, 2e-4, _snip),
    # PANNs / CLAP: 10 log10 of float32 powers from torchlibrosa's conv1d DFT; 5e-3 dB is a 0.12 %
    # power error, room for two float32 DFTs of 1024 points (seen 2.2e-4 dB; fmin 50.5 instead of
    # 50 is off by 1.4 dB); reflect pad 512 needs more than 512 samples.
    FrontEnd("panns-64", lambda x: ref_torchlibrosa(x, 32000, 1024, 320), 5e-3, lambda n: 1 + n // 320, shortest=700),
    FrontEnd("clap-htsat-64", lambda x: ref_torchlibrosa(x, 48000, 1024, 480), 5e-3, lambda n: 1 + n // 480, shortest=700),
]  # fmt: skip
BY_NAME = {f.name: f for f in FRONT_ENDS}
NAMES = [f.name for f in FRONT_ENDS]
RATES = {n: 16000 for n in NAMES} | {"panns-64": 32000, "clap-htsat-64": 48000}


@functools.cache
def front_end(name: str) -> Compose:
    fe = load_recipe(name)
    fe.eval()
    return fe


def ours(name: str, x: torch.Tensor, lengths: torch.Tensor | None = None) -> np.ndarray:
    with torch.no_grad():
        out = front_end(name)(x) if lengths is None else front_end(name)(x, lengths=lengths)
    return out.numpy()


def batch_lengths(name: str) -> list[int]:
    """Clip lengths of the padded batch: a long loud clip, one shorter than a window, a quiet one
    beside the loud ones (Whisper's per-clip max), one with a 100 dB pause; none a multiple of
    the hop, so that the last frames reach past the clips' ends."""
    sr = RATES[name]
    return [int(2.5 * sr) + 77, BY_NAME[name].shortest, int(1.2 * sr) + 123, int(1.7 * sr) + 59]


LEVELS = [0.8, 0.5, 1e-3, 0.3]


def padded_batch(name: str) -> tuple[list[np.ndarray], torch.Tensor, torch.Tensor]:
    """The clips of :func:`batch_lengths` at ``LEVELS``, zero-padded into ``(batch, time)``, and
    their lengths."""
    sr = RATES[name]
    clips = [
        make_clip(n, sr, seed=i, level=lv, gap=i == 3)
        for i, (n, lv) in enumerate(zip(batch_lengths(name), LEVELS))
    ]
    x = torch.zeros(len(clips), max(c.size for c in clips))
    for i, c in enumerate(clips):
        x[i, : c.size] = torch.from_numpy(c)
    return clips, x, torch.tensor([c.size for c in clips])


def err(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))


def check_clip(name: str, feats: np.ndarray, valid: int, clip: np.ndarray) -> float:
    """``feats`` (features, frames) of ``clip`` against the original on the clip alone; returns
    the error (whole output for fixed-length recipes, else the valid frames)."""
    spec = BY_NAME[name]
    ref = spec.ref(clip)
    if spec.fixed is None:
        assert valid == ref.shape[1] == spec.rule(clip.size), (valid, ref.shape, clip.size)
        e = err(feats[:, :valid], ref)
    else:
        assert valid == spec.rule(clip.size)
        assert feats.shape[1] == ref.shape[1] == spec.fixed
        e = err(feats, ref)
    assert e <= spec.tol, f"{name}: n={clip.size}: max abs diff {e:.3g} > {spec.tol:g}"
    return e


# ------------------------------------------------------------------------------ the tests


def test_sample_rates() -> None:
    assert {n: get_recipe(n).sample_rate for n in NAMES} == RATES


@pytest.mark.parametrize("name", NAMES)
def test_single_clip(name: str) -> None:
    sr = RATES[name]
    clip = make_clip(int(2.3 * sr) + 31, sr, seed=5, level=0.5)
    x = torch.from_numpy(clip)
    out = ours(name, x[None])
    assert out.ndim == 3 and out.shape[0] == 1 and out.dtype == np.float32
    frames = BY_NAME[name].fixed or BY_NAME[name].rule(clip.size)
    assert out.shape[2] == frames
    check_clip(name, out[0], BY_NAME[name].rule(clip.size), clip)
    # (time,) gives the same numbers as (1, time)
    flat = ours(name, x)
    assert flat.shape[-2:] == out.shape[-2:]
    np.testing.assert_array_equal(flat.reshape(out.shape), out)


@pytest.mark.parametrize("name", NAMES)
def test_padded_batch(name: str) -> None:
    clips, x, lengths = padded_batch(name)
    out = ours(name, x, lengths)
    valid = front_end(name).output_lengths(lengths)
    assert out.ndim == 3 and out.shape[0] == len(clips)  # features: checked per clip
    if BY_NAME[name].fixed is not None:
        assert out.shape[2] == BY_NAME[name].fixed
    else:
        assert out.shape[2] >= int(valid.max())
    for i, c in enumerate(clips):
        check_clip(name, out[i], int(valid[i]), c)


@pytest.mark.parametrize("name", NAMES)
def test_padded_batch_never_reads_the_padding(name: str) -> None:
    # noise where the batch's padding is: with lengths, every valid frame (for the fixed-length
    # recipes the whole output) is what the zero-padded batch gives, bit for bit
    _, x, lengths = padded_batch(name)
    noisy = x.clone()
    for i, n in enumerate(lengths.tolist()):
        noisy[i, n:] = torch.randn(x.shape[1] - n, generator=torch.Generator().manual_seed(i))
    assert not torch.equal(noisy, x)
    out, out_noisy = ours(name, x, lengths), ours(name, noisy, lengths)
    if BY_NAME[name].fixed is not None:
        np.testing.assert_array_equal(out_noisy, out)
    for i, n in enumerate(front_end(name).output_lengths(lengths).tolist()):
        np.testing.assert_array_equal(out_noisy[i, :, :n], out[i, :, :n])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("allowed", [False, True], ids=["tf32-off", "tf32-allowed"])
@pytest.mark.parametrize("name", NAMES)
def test_on_cuda(name: str, allowed: bool) -> None:
    # The same bars on a GPU, with TF32 off (torch's default for matmuls) and allowed for matmuls
    # and cuDNN convolutions (a user's global setting; cuDNN's default): an exact recipe must not
    # depend on it (a TF32 DFT errs 2e-3 to 3e-2 on whisper-80).
    clips, x, lengths = padded_batch(name)
    fe = load_recipe(name).eval().to("cuda")
    with torch.no_grad(), tf32(allowed):
        out = fe(x.cuda(), lengths=lengths.cuda()).cpu().numpy()
    valid = fe.output_lengths(lengths)
    for i, c in enumerate(clips):
        check_clip(name, out[i], int(valid[i]), c)


def test_fixed_length_recipes_trim_long_clips() -> None:
    # longer than the fixed length: whisper trims at 30 s, AST keeps the first 1024 frames; a
    # short clip in the same (wider than 30 s) batch is unaffected by its long neighbour
    for name, n in (("whisper-80", 480000 + 16037), ("ast-128-1024", 400 + 1030 * 160)):
        long, short = make_clip(n, 16000, seed=7, level=0.6), make_clip(30011, 16000, 8, 0.02)
        x = torch.zeros(2, n)
        x[0], x[1, : short.size] = torch.from_numpy(long), torch.from_numpy(short)
        lengths = torch.tensor([n, short.size])
        out = ours(name, x, lengths)
        valid = front_end(name).output_lengths(lengths)
        assert int(valid[0]) == BY_NAME[name].fixed
        check_clip(name, out[0], int(valid[0]), long)
        check_clip(name, out[1], int(valid[1]), short)


def _write_wavs(folder: Path, name: str) -> list[Path]:
    sr = RATES[name]
    paths = []
    for i, (n, lv) in enumerate(zip([*batch_lengths(name), int(0.9 * sr) + 7], [*LEVELS, 0.05])):
        path = folder / f"{name}-{i}.wav"
        sf.write(path, make_clip(n, sr, seed=10 + i, level=lv), sr, subtype="PCM_16")
        paths.append(path)
    return paths


@pytest.mark.parametrize("name", NAMES)
def test_dataloader_with_two_workers(tmp_path: Path, name: str) -> None:
    # real 16-bit WAV files, decoded and run through the recipe inside 2 worker processes
    paths = _write_wavs(tmp_path, name)
    collate = SpecCollate(front_end(name), sample_rate=RATES[name])
    loader = DataLoader(paths, batch_size=3, num_workers=2, collate_fn=collate)  # type: ignore[arg-type]
    seen = 0
    for batch in loader:
        for j in range(batch.spec.shape[0]):
            clip, rate = sf.read(paths[seen], dtype="float32")  # what the worker decoded
            assert rate == RATES[name]
            check_clip(name, batch.spec[j].numpy(), int(batch.lengths[j]), clip)
            seen += 1
    assert seen == len(paths)


def _adapter_batches(adapter: str, name: str, paths: list[Path], tmp_path: Path) -> list[Any]:
    """The recipe's batches of ``paths`` through one adapter, each with 2 worker processes
    (``DeviceStage``: workers pad, the recipe runs in the main process)."""
    fe, sr = front_end(name), RATES[name]
    if adapter == "webdataset":
        import webdataset as wds

        for s in range(2):  # two shards, so that both workers get one
            with wds.TarWriter(str(tmp_path / f"shard-{s}.tar")) as sink:
                for i, path in enumerate(paths):
                    if i % 2 == s:
                        sink.write({"__key__": path.stem, "wav": path.read_bytes()})
        urls = [str(tmp_path / f"shard-{s}.tar") for s in range(2)]
        pipeline = audio_pipeline(urls, batch_size=2, transform=fe, sample_rate=sr)
        return list(DataLoader(pipeline, batch_size=None, num_workers=2))
    if adapter == "nodes":
        from torchdata import nodes

        graph = audio_nodes(paths, batch_size=2, num_workers=2, transform=fe, sample_rate=sr)
        return list(nodes.Loader(graph))
    if adapter == "dataset":
        ds = AudioDataset(paths, transform=fe, sample_rate=sr)
        return list(DataLoader(ds, batch_size=2, num_workers=2, collate_fn=ds.collate))
    waves = DataLoader(paths, batch_size=2, num_workers=2, collate_fn=WaveCollate(sample_rate=sr))  # type: ignore[arg-type]
    return list(DeviceStage(waves, fe))


@pytest.mark.parametrize("adapter", ["webdataset", "nodes", "dataset", "device-stage"])
@pytest.mark.parametrize("name", NAMES)
def test_every_adapter(tmp_path: Path, name: str, adapter: str) -> None:
    # the same WAV files through the WebDataset pipeline (real tar shards), a torchdata.nodes
    # graph, the dataset wrapper and DeviceStage: every clip, each equal to the original alone
    paths = _write_wavs(tmp_path, name)
    by_key = {p.stem: p for p in paths} | {str(p): p for p in paths}
    seen = set()
    for batch in _adapter_batches(adapter, name, paths, tmp_path):
        assert batch.spec.shape[0] == len(batch.keys) == batch.lengths.shape[0]
        for j, key in enumerate(batch.keys):
            clip, _ = sf.read(by_key[key], dtype="float32")
            check_clip(name, batch.spec[j].numpy(), int(batch.lengths[j]), clip)
            seen.add(by_key[key])
    assert seen == set(paths)


# Sample counts around every framing boundary (one window, one hop, the 30 s Whisper chunk, the
# 1024-frame AST chunk), for the length rules.
COUNTS = [1, 100, 200, 239, 240, 300, 399, 400, 401, 559, 560, 561, 700, 1023, 1024, 1025,
          16000, 16079, 16080, 16081, 164080, 164081, 164240, 479999, 480000, 480001, 500000]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_output_lengths(name: str) -> None:
    spec = BY_NAME[name]
    got = front_end(name).output_lengths(torch.tensor(COUNTS))
    assert got.dtype == torch.int64
    assert got.tolist() == [spec.rule(n) for n in COUNTS]
    # and the original's own frame count on clips of these lengths
    sr = RATES[name]
    for n in (spec.shortest, 401, 560, 561, 16079, 16080):
        if n < spec.shortest:
            continue
        clip = make_clip(n, sr, seed=3, level=0.5)
        if name.startswith("whisper") and spec.fixed:
            _, hf_valid = ref_whisper_hf(clip, 80)
            assert int(front_end(name).output_lengths(torch.tensor([n]))[0]) == hf_valid
        elif name == "ast-128-1024":
            assert spec.rule(n) == ref_ast(clip, None).shape[1]
        else:
            assert (
                int(front_end(name).output_lengths(torch.tensor([n]))[0]) == spec.ref(clip).shape[1]
            )


def test_vggish_patches() -> None:
    from nnaudio_data.ops import Patches

    chain = Compose(load_recipe("vggish-64"), Patches(size=96))
    # 192, 96, 95 and 301 frames: 2, 1, 0 and 3 patches (the remainder dropped)
    lengths_s = [400 + 159 + 191 * 160, 400 + 95 * 160, 400 + 94 * 160, 400 + 300 * 160 + 1]
    clips = [make_clip(n, 16000, seed=20 + i, level=0.4) for i, n in enumerate(lengths_s)]
    x = torch.zeros(len(clips), max(lengths_s))
    for i, c in enumerate(clips):
        x[i, : c.size] = torch.from_numpy(c)
    lengths = torch.tensor(lengths_s)
    with torch.no_grad():
        out = chain(x, lengths=lengths).numpy()
    n_patches = chain.output_lengths(lengths)
    frames = front_end("vggish-64").output_lengths(lengths)
    assert n_patches.tolist() == (frames // 96).tolist() == [2, 1, 0, 3]
    assert out.shape[0] == 4 and out.shape[2:] == (96, 64) and out.shape[1] >= 3
    for i, c in enumerate(clips):
        examples = vggish_input.waveform_to_examples(c, 16000, return_tensor=False)
        assert examples.shape == (int(n_patches[i]), 96, 64)
        e = err(out[i, : int(n_patches[i])], examples)
        # as vggish-64 (same numbers, regrouped)
        assert e <= BY_NAME["vggish-64"].tol, f"patches of clip {i}: {e:.3g}"


# ------------------------------------------------------------------------------ references


def test_reference_whisper_openai_and_hf_agree() -> None:
    # Two implementations of one definition: they agree to float32 rounding, which shows both
    # are driven with the right arguments (pad, n_mels, per-clip max).
    for n_mels in (80, 128):
        for n, level in ((16000 * 2 + 77, 0.8), (300, 0.5), (16000 + 123, 1e-3)):
            clip = make_clip(n, 16000, seed=n_mels, level=level)
            hf, hf_valid = ref_whisper_hf(clip, n_mels)
            ref = ref_whisper(clip, n_mels)
            assert ref.shape == hf.shape == (n_mels, 3000)
            assert err(ref, hf) <= 1e-6
            assert hf_valid == math.ceil(n / 160)
    # openai's function on a batch takes one max over the batch: not what the recipes copy
    loud, quiet = make_clip(32000, 16000, 1, 0.8), make_clip(32000, 16000, 2, 1e-3)
    both = whisper.audio.log_mel_spectrogram(torch.from_numpy(np.stack([loud, quiet])), 80).numpy()
    assert (
        err(both[1], whisper.audio.log_mel_spectrogram(torch.from_numpy(quiet), 80).numpy()) > 0.1
    )


def test_reference_kaldi_and_lhotse_agree() -> None:
    # knf configured as lhotse (snip_edges False, top edge 400 Hz below Nyquist) computes the
    # same fbank: ~2.4e-4 seen; the bar is the recipes' 2e-2.
    for n, level in ((16000 * 2 + 77, 0.8), (300, 0.5), (16000 + 123, 1e-3)):
        clip = make_clip(n, 16000, seed=4, level=level)
        lh = ref_lhotse(clip)
        kn = ref_kaldi(clip, snip_edges=False, high_freq=-400.0)
        assert lh.shape == kn.shape == (80, (n + 80) // 160)
        assert err(lh, kn) <= 2e-2


def test_reference_ast_own_frames_and_1024() -> None:
    clip = make_clip(16000 * 2 + 77, 16000, seed=6, level=0.7)
    own, fixed = ref_ast(clip, None), ref_ast(clip, 1024)
    t = _snip(clip.size)
    assert own.shape == (128, t) and fixed.shape == (128, 1024)
    np.testing.assert_array_equal(fixed[:, :t], own)
    np.testing.assert_array_equal(fixed[:, t:], np.float32(AST_PAD))
    # mel bin 3 holds no FFT bin: its row is ln(FLT_EPSILON), normalised
    expected = (np.log(np.float32(1.192092955078125e-07)) + 4.2677393) / (2 * 4.5689974)
    np.testing.assert_allclose(own[3], expected, atol=1e-6)


def test_reference_torchlibrosa_frames() -> None:
    # centred frames: 1 + n // hop, for both the PANNs and the CLAP configuration
    for sr, hop in ((32000, 320), (48000, 480)):
        clip = make_clip(2 * sr + 55, sr, seed=8, level=0.7)
        out = ref_torchlibrosa(clip, sr, 1024, hop)
        assert out.shape == (64, 1 + clip.size // hop) and np.isfinite(out).all()
