"""Shared fixtures: devices (cpu always, cuda where present), generated test signals, and a
fixed seed for every test."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import torch

CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="no CUDA device"))]


@pytest.fixture(autouse=True)
def _seeded_test(request: pytest.FixtureRequest) -> None:
    """Seed torch's global generator from the test's id before each test, so that a test's
    unseeded ``torch.randn`` inputs are the same in every run, whatever ran before it: a failure
    seen once (e.g. on CI) is seen again on a rerun of that one test. (The tests' numpy draws
    all come from seeded ``default_rng``.)"""
    torch.manual_seed(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    """Every device test runs on the CPU, and on CUDA where a GPU is present."""
    return str(request.param)


def make_signals(sr: int = 22050, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """``(3, n)`` float64: a log sweep 30 Hz - sr/2.2, a chord of three tones, white noise."""
    n = int(sr * seconds)
    t = np.arange(n) / sr
    sweep = scipy.signal.chirp(t, f0=30, f1=sr / 2.2, t1=seconds, method="logarithmic")
    chord = sum(
        np.sin(2 * np.pi * f * t + p) for f, p in ((220.0, 0.1), (277.2, 1.0), (329.6, 2.0))
    )
    noise = np.random.default_rng(seed).standard_normal(n)
    return np.stack([0.5 * sweep, chord / 3, 0.3 * noise])


@pytest.fixture(scope="session")
def signals() -> np.ndarray:
    """Sweep, chord and noise at 22.05 kHz, 1 s each, float64 ``(3, 22050)``."""
    return make_signals()


def rel_err(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """``||a - b|| / ||b||`` computed in float64."""
    a = np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a, dtype=np.complex128)
    b = np.asarray(b.detach().cpu() if isinstance(b, torch.Tensor) else b, dtype=np.complex128)
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` inside the block, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def tf32(allowed: bool) -> Iterator[None]:
    """TF32 allowed (or not) for CUDA matmuls and cuDNN convolutions inside the block, restored
    after (torch's defaults: off for matmuls, on for cuDNN)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def write_noise_wavs(
    root: Path, count: int, sr: int, *, level: float, base: int, step: int, corrupt: int
) -> list[str]:
    """``count`` int16 WAV files ``c00.wav``... of Gaussian noise at ``level`` (file ``i``:
    ``base + step * i`` samples, seed ``i``), file ``corrupt`` a broken header; their paths."""
    paths = []
    for i in range(count):
        path = root / f"c{i:02d}.wav"
        if i == corrupt:
            path.write_bytes(b"RIFF....WAVEfmt " + b"\x00" * 40)
        else:
            data = level * np.random.default_rng(i).standard_normal(base + step * i)
            sf.write(path, data, sr, subtype="PCM_16")
        paths.append(str(path))
    return paths
