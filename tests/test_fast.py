"""The FFT-domain path for frozen Fourier kernels (``functional._blocked``) against librosa and torch.stft."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch
from conftest import rel_err

from nnaudio_data.functional import _blocked as _fast
from nnaudio_data.functional._blocked import stft_fft, stft_fft_power
from nnaudio_data.kernels.windows import get_window, pad_center

# float32 arithmetic on ~1e3-term FFT sums: librosa (float64 reference) agrees to ~1e-7; the
# project's bar for every Fourier transform is 1e-5.
TOL32 = 1e-5
# float64 against librosa in float64: only rounding differences remain.
TOL64 = 1e-10


def _window(name: str, win_length: int, n_fft: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(pad_center(get_window(name, win_length), n_fft), dtype=dtype)


@pytest.mark.parametrize("n_fft", [256, 1024, 2048])
@pytest.mark.parametrize("hop_frac", [4, 2])
@pytest.mark.parametrize(("win", "win_frac"), [("hann", 1), ("hamming", 2), ("ones", 1)])
def test_stft_matches_librosa(
    signals: np.ndarray, n_fft: int, hop_frac: int, win: str, win_frac: int
) -> None:
    hop, win_length = n_fft // hop_frac, n_fft // win_frac
    x = torch.as_tensor(signals, dtype=torch.float32)
    w = _window(win, win_length, n_fft, torch.float32)
    ours = stft_fft(x, n_fft=n_fft, hop_length=hop, window=w, center=True, pad_mode="reflect")
    ref = librosa.stft(
        signals.astype(np.float32),
        n_fft=n_fft,
        hop_length=hop,
        win_length=win_length,
        window=win if win != "ones" else "boxcar",
        center=True,
        pad_mode="reflect",
    )
    assert ours.shape == ref.shape
    assert rel_err(ours, ref) <= TOL32
    for power in (1.0, 2.0):
        mag = stft_fft_power(
            x, n_fft=n_fft, hop_length=hop, window=w, center=True, pad_mode="reflect", power=power
        )
        assert mag.dtype == torch.float32
        assert rel_err(mag, np.abs(ref) ** power) <= TOL32


@pytest.mark.parametrize("pad_mode", ["reflect", "constant", "replicate", "circular"])
@pytest.mark.parametrize("center", [True, False])
def test_stft_matches_torch_stft(
    signals: np.ndarray, device: str, pad_mode: str, center: bool
) -> None:
    n_fft, hop = 512, 160
    x = torch.as_tensor(signals, dtype=torch.float32, device=device)
    w = torch.hann_window(n_fft, device=device)
    ref = torch.stft(x, n_fft, hop, window=w, center=center, pad_mode=pad_mode, return_complex=True)
    ours = stft_fft(x, n_fft=n_fft, hop_length=hop, window=w, center=center, pad_mode=pad_mode)
    assert ours.device.type == device
    assert rel_err(ours, ref) <= TOL32
    # any float power: |X| ** 0.5 as the reference computes it
    root = stft_fft_power(
        x, n_fft=n_fft, hop_length=hop, window=w, center=center, pad_mode=pad_mode, power=0.5
    )
    assert rel_err(root, ref.abs() ** 0.5) <= TOL32


def test_float64_matches_librosa(signals: np.ndarray) -> None:
    n_fft, hop = 1024, 256
    x = torch.as_tensor(signals, dtype=torch.float64)
    w = _window("hann", n_fft, n_fft, torch.float64)
    ours = stft_fft(x, n_fft=n_fft, hop_length=hop, window=w, center=True, pad_mode="constant")
    ref = librosa.stft(signals, n_fft=n_fft, hop_length=hop, pad_mode="constant")
    assert ours.dtype == torch.complex128
    assert rel_err(ours, ref) <= TOL64
    mag = stft_fft_power(
        x, n_fft=n_fft, hop_length=hop, window=w, center=True, pad_mode="constant", power=1.0
    )
    assert mag.dtype == torch.float64
    assert rel_err(mag, np.abs(ref)) <= TOL64


def test_batch_equals_stack_of_items(signals: np.ndarray) -> None:
    x = torch.as_tensor(signals, dtype=torch.float32)
    w = torch.hann_window(1024)
    kw = dict(n_fft=1024, hop_length=256, window=w, center=True, pad_mode="reflect", power=2.0)
    batched = stft_fft_power(x, **kw)  # type: ignore[arg-type]
    items = torch.cat([stft_fft_power(x[i : i + 1], **kw) for i in range(3)])  # type: ignore[arg-type]
    torch.testing.assert_close(batched, items, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_gradcheck(power: float) -> None:
    x = torch.randn(2, 40, dtype=torch.float64, requires_grad=True)
    w = torch.hann_window(16, dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:
        return stft_fft_power(
            x, n_fft=16, hop_length=4, window=w, center=True, pad_mode="reflect", power=power
        )

    assert torch.autograd.gradcheck(f, (x,), fast_mode=True)
    assert torch.autograd.gradcheck(
        lambda x: torch.view_as_real(
            stft_fft(x, n_fft=16, hop_length=4, window=w, center=True, pad_mode="reflect")
        ),
        (x,),
        fast_mode=True,
    )


def test_zero_input_has_finite_gradient() -> None:
    x = torch.zeros(2, 4000, requires_grad=True)
    mag = stft_fft_power(
        x,
        n_fft=256,
        hop_length=64,
        window=torch.hann_window(256),
        center=True,
        pad_mode="reflect",
        power=1.0,
    )
    mag.sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()


def test_short_input_errors() -> None:
    w = torch.hann_window(512)
    with pytest.raises(ValueError, match="0 samples"):
        stft_fft(torch.randn(2, 0), n_fft=512, hop_length=128, window=w, center=True,
                 pad_mode="reflect")  # fmt: skip
    with pytest.raises(ValueError, match="n_fft=512"):
        stft_fft(torch.randn(2, 500), n_fft=512, hop_length=128, window=w, center=False,
                 pad_mode="reflect")  # fmt: skip
    # constant padding makes a 200-sample clip long enough: 1 + 200 // 128 frames
    ok = stft_fft(torch.randn(2, 200), n_fft=512, hop_length=128, window=w, center=True,
                  pad_mode="constant")  # fmt: skip
    assert ok.shape == (2, 257, 2)


def test_compile_matches_eager(signals: np.ndarray) -> None:
    x = torch.as_tensor(signals, dtype=torch.float32)
    w = torch.hann_window(512)

    def f(x: torch.Tensor) -> torch.Tensor:
        return stft_fft_power(
            x, n_fft=512, hop_length=128, window=w, center=True, pad_mode="reflect", power=1.0
        )

    # fullgraph: dynamo must trace it with no graph break; aot_eager also traces the backward
    # graph while sparing the suite inductor's C++ build (the transforms' tests use inductor)
    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), f(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("block", [2**12, 2**14, 2**20])
@pytest.mark.parametrize("power", [1.0, 2.0])
def test_cache_blocks_match_torch_stft(
    signals: np.ndarray, monkeypatch: pytest.MonkeyPatch, threads: int, block: int, power: float
) -> None:
    # blocks of 16 and 64 frames (ranges within a row, the last one short) and of whole rows,
    # with the block sizes one thread and several threads use
    monkeypatch.setattr(_fast, "_SERIAL_BLOCK_BYTES", 4 * block)
    monkeypatch.setattr(_fast, "_MAX_BLOCK_BYTES", 4 * block)
    x = torch.as_tensor(np.concatenate([signals, signals[:, ::-1]]), dtype=torch.float32)
    w = torch.hann_window(256)
    ref = torch.stft(x, 256, 100, window=w, center=True, pad_mode="reflect", return_complex=True)
    kw = dict(n_fft=256, hop_length=100, window=w, center=True, pad_mode="reflect")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            spec = stft_fft(x, **kw)  # type: ignore[arg-type]
            mag = stft_fft_power(x, power=power, **kw)  # type: ignore[arg-type]
    finally:
        torch.set_num_threads(before)
    assert rel_err(spec, ref) <= TOL32
    assert rel_err(mag, ref.abs() ** power) <= TOL32


@pytest.mark.parametrize(
    ("rows", "frames", "n_fft", "itemsize", "threads", "expected"),
    [
        # 16 x 4 s at 22.05 kHz, n_fft 2048, float32: 4 blocks of 4 rows (5 rows fit in 8 MiB;
        # 4 equal blocks rather than 5 + 5 + 5 + 1) with 2 threads ...
        (16, 173, 2048, 4, 2, [(4, 173)] * 4),
        # ... 16 blocks of one row (256 frames, 2 MiB at most) with one thread
        (16, 173, 2048, 4, 1, [(1, 173)] * 16),
        # float64: 8 blocks of 2 rows
        (16, 173, 2048, 8, 2, [(2, 173)] * 8),
        # 44.1 kHz: 8 blocks of 2 rows
        (16, 345, 2048, 4, 2, [(2, 345)] * 8),
        # one long row: 1500 frames in 2 equal ranges of 750 (1024 fit)
        (1, 1500, 2048, 4, 2, [(1, 750)] * 2),
    ],
)
def test_block_sizes(
    rows: int,
    frames: int,
    n_fft: int,
    itemsize: int,
    threads: int,
    expected: list[tuple[int, int]],
) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        blocks = list(_fast._blocks(rows, frames, n_fft, itemsize))
    finally:
        torch.set_num_threads(before)
    sizes = [(len(range(rows)[rs]), len(range(frames)[fs])) for rs, fs in blocks]
    assert sizes == expected


@pytest.mark.parametrize("power", [1.0, 2.0, 1.5])
def test_gradient_path_equals_blocked_path(signals: np.ndarray, power: float) -> None:
    # with a gradient to record the whole batch goes through one differentiable expression
    x = torch.as_tensor(signals, dtype=torch.float32)
    w = torch.hamming_window(512)
    kw = dict(n_fft=512, hop_length=128, window=w, center=True, pad_mode="reflect", power=power)
    blocked = stft_fft_power(x, **kw)  # type: ignore[arg-type]
    whole = stft_fft_power(x.clone().requires_grad_(True), **kw)  # type: ignore[arg-type]
    assert whole.requires_grad and not blocked.requires_grad
    torch.testing.assert_close(whole.detach(), blocked, rtol=1e-5, atol=1e-5)


def test_empty_batch() -> None:
    w = torch.hann_window(256)
    kw = dict(n_fft=256, hop_length=64, window=w, center=True, pad_mode="reflect")
    assert stft_fft(torch.zeros(0, 1000), **kw).shape == (0, 129, 16)  # type: ignore[arg-type]
    mag = stft_fft_power(torch.zeros(0, 1000), power=1.0, **kw)  # type: ignore[arg-type]
    assert mag.shape == (0, 129, 16)
    grad = stft_fft_power(torch.zeros(0, 1000, requires_grad=True), power=1.0, **kw)  # type: ignore[arg-type]
    assert grad.shape == (0, 129, 16)


@pytest.mark.parametrize("pad_mode", ["reflect", "constant", "replicate", "circular"])
@pytest.mark.parametrize(("n_fft", "hop"), [(64, 16), (64, 24), (65, 7), (48, 64)])
def test_edge_frames_without_padded_copy(pad_mode: str, n_fft: int, hop: int) -> None:
    # the blocked path builds the padded signal only around its ends: every length from just
    # over n_fft // 2 (reflect's minimum) to a few frames, each hop not dividing n_fft // 2
    # included, against torch.stft (which pads the whole signal); float64, so only rounding differs
    gen = torch.Generator().manual_seed(0)
    w = torch.hann_window(n_fft, dtype=torch.float64)
    for n in range(n_fft // 2 + 1, 3 * n_fft + 2 * hop, 5):
        x = torch.randn(3, n, generator=gen, dtype=torch.float64)
        kw = dict(n_fft=n_fft, hop_length=hop, window=w, center=True, pad_mode=pad_mode)
        ref = torch.stft(
            x, n_fft, hop, window=w, center=True, pad_mode=pad_mode, return_complex=True
        )
        with torch.no_grad():
            mag = stft_fft_power(x, power=2.0, **kw)  # type: ignore[arg-type]
        assert mag.shape == ref.shape, n
        assert rel_err(mag, ref.abs() ** 2) <= TOL64, n
