"""The FFT-domain path for frozen Fourier kernels (``functional._blocked``) against librosa and torch.stft."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import librosa
import numpy as np
import pytest
import torch
from conftest import rel_err, torch_threads

from nnaudio_data.functional import _blocked as _fast
from nnaudio_data.functional import _blocksize
from nnaudio_data.functional._blocked import stft_fft, stft_fft_power
from nnaudio_data.functional.filterbank import apply_filterbank, band_groups
from nnaudio_data.functional.framing import fill_end_padding
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


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("block", [1, 16, 64, 4096])
@pytest.mark.parametrize("power", [1.0, 2.0, 1.5])
def test_block_choices_give_identical_results(
    signals: np.ndarray, threads: int, block: int, power: float
) -> None:
    # the block size and the thread count change only the speed: blocks of one frame, 16 and
    # 64 frames (ranges within a row, the last one short) and of whole rows, on 1-3 workers, give
    # the same bits as each other (and torch.stft's numbers). Other powers than 1 and 2 go through
    # pow, whose vectorised and scalar (the tail of a block) code round differently: one ulp.
    x = torch.as_tensor(np.concatenate([signals, signals[:, ::-1]]), dtype=torch.float32)
    w = torch.hann_window(256)
    ref = torch.stft(x, 256, 100, window=w, center=True, pad_mode="reflect", return_complex=True)
    kw = dict(n_fft=256, hop_length=100, window=w, center=True, pad_mode="reflect", power=power)
    with torch.no_grad():
        base = stft_fft_power(x, block=7, threads=1, **kw)  # type: ignore[arg-type]
        mag = stft_fft_power(x, block=block, threads=threads, **kw)  # type: ignore[arg-type]
    if power in (1.0, 2.0):
        assert torch.equal(mag, base)
    else:
        torch.testing.assert_close(mag, base, rtol=2.5e-7, atol=0)
    assert rel_err(mag, ref.abs() ** power) <= TOL32


def _bank(kind: str, bins: int) -> np.ndarray:
    """A filterbank over ``bins`` bins: librosa's mel (banded), a dense one, or mel with one
    group of 8 filters all zero (a group of the banded product with no bins)."""
    if kind == "dense":
        return np.random.default_rng(3).uniform(0, 1, (20, bins))
    mel = librosa.filters.mel(sr=22050, n_fft=2 * (bins - 1), n_mels=40)
    if kind == "empty group":
        mel[8:16] = 0.0
    return mel


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("block", [5, 64, 4096])
@pytest.mark.parametrize("kind", ["mel", "dense", "empty group"])
@pytest.mark.parametrize("power", [1.0, 2.0])
def test_filterbank_applied_in_the_blocks(
    signals: np.ndarray, threads: int, block: int, kind: str, power: float
) -> None:
    # the filterbank product of each block while its power is in the cache: blocks within a
    # row (5, 64 frames) and of several rows (4096), the banded groups, a dense bank and a group
    # without bins; against float64 librosa and the product applied afterwards
    x = torch.as_tensor(np.concatenate([signals, signals[:, ::-1]]), dtype=torch.float32)
    bank = _bank(kind, 129)
    fb = torch.as_tensor(bank, dtype=torch.float32)
    assert (band_groups(fb) is None) == (kind == "dense")  # the banded groups run for mel
    kw = dict(n_fft=256, hop_length=100, center=True, pad_mode="reflect", power=power)
    w = torch.hann_window(256)
    with torch.no_grad():
        ours = stft_fft_power(x, window=w, filterbank=fb, block=block, threads=threads, **kw)  # type: ignore[arg-type]
        after = apply_filterbank(stft_fft_power(x, window=w, **kw), fb)  # type: ignore[arg-type]
    spec = librosa.stft(
        np.asarray(x, dtype=np.float64), n_fft=256, hop_length=100, pad_mode="reflect"
    )
    ref = np.einsum(
        "mf,rft->rmt", bank.astype(np.float32).astype(np.float64), np.abs(spec) ** power
    )
    assert ours.shape == ref.shape and ours.is_contiguous()
    assert rel_err(ours, ref) <= TOL32
    # only the summation order differs from the product afterwards (float32 rounding)
    torch.testing.assert_close(ours, after, rtol=2e-6, atol=2e-6 * float(after.abs().max()))
    if kind == "empty group":
        assert not ours[:, 8:16].any()


def test_filterbank_in_the_blocks_promotes_as_the_product() -> None:
    # a float32 filterbank over a float64 signal is applied in float64 (as apply_filterbank
    # promotes); a float64 one over a float32 signal is applied afterwards in float64
    x = torch.randn(2, 4000, dtype=torch.float64)
    fb32 = torch.as_tensor(_bank("mel", 129), dtype=torch.float32)
    kw = dict(n_fft=256, hop_length=64, window=torch.hann_window(256, dtype=torch.float64))
    kw |= dict(center=True, pad_mode="reflect", power=2.0)
    with torch.no_grad():
        ours = stft_fft_power(x, filterbank=fb32, **kw)  # type: ignore[arg-type]
        power = stft_fft_power(x, **kw)  # type: ignore[arg-type]
        wider = stft_fft_power(x.float(), filterbank=fb32.double(), **kw)  # type: ignore[arg-type]
    assert ours.dtype == torch.float64 and wider.dtype == torch.float64
    torch.testing.assert_close(ours, fb32.double() @ power, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        wider, apply_filterbank(power.float(), fb32.double()), rtol=1e-5, atol=1e-6
    )


def test_the_filterbank_memo_follows_the_tensor() -> None:
    # the sparse product is memoised per filterbank tensor: an in-place change, a new tensor
    # (even one that reuses a freed one's id) and an inference tensor all give their own numbers
    x = torch.randn(2, 6000)
    fb = torch.as_tensor(_bank("mel", 129), dtype=torch.float32)
    assert band_groups(fb) is not None
    kw = dict(n_fft=256, hop_length=100, window=torch.hann_window(256))
    kw |= dict(center=True, pad_mode="reflect", power=2.0)

    def fbank(bank: torch.Tensor) -> torch.Tensor:
        return stft_fft_power(x, filterbank=bank, **kw)  # type: ignore[arg-type]

    with torch.no_grad():
        power = stft_fft_power(x, **kw)  # type: ignore[arg-type]
        tol = dict(rtol=2e-6, atol=1e-6 * float((fb @ power).abs().max()))
        first = fbank(fb)
        assert torch.equal(fbank(fb), first)
        torch.testing.assert_close(first, fb @ power, **tol)  # type: ignore[arg-type]
        fb[10:20] *= 3.0  # in place: its version counter moves
        torch.testing.assert_close(fbank(fb), fb @ power, **tol)  # type: ignore[arg-type]
        for scale in (0.5, 2.0, 4.0):  # freed each time: the next may get the same id
            other = fb * scale
            torch.testing.assert_close(fbank(other), other @ power, **tol)  # type: ignore[arg-type]
    with torch.inference_mode():
        frozen = fb.clone()  # no version counter
        torch.testing.assert_close(fbank(frozen), fb @ power, **tol)  # type: ignore[arg-type]


@pytest.mark.parametrize("mkl", [True, False])
def test_sparse_product_layouts_give_the_dense_numbers(
    mkl: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # with MKL the banded bank is a CSR tensor (MKL's sparse product), without it a coalesced
    # COO one: both are the dense product, in blocks of whole rows and of frame ranges of a row
    # (whose output rows are strided), and building them warns of nothing (CSR is "beta")
    if mkl and not torch.backends.mkl.is_available():
        pytest.skip("this torch has no MKL: the CSR layout is not used")
    monkeypatch.setattr(torch.backends.mkl, "is_available", lambda: mkl)
    monkeypatch.setattr(_fast, "_PRODUCTS", {})
    fb = torch.as_tensor(_bank("mel", 257), dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        product = _fast._product(fb)
    assert product.layout == (torch.sparse_csr if mkl else torch.sparse_coo)
    x = torch.randn(3, 20000, dtype=torch.float64)
    kw = dict(n_fft=512, hop_length=160, window=torch.hann_window(512, dtype=torch.float64))
    kw |= dict(center=True, pad_mode="reflect", power=2.0)
    with torch.no_grad():
        power = stft_fft_power(x, **kw)  # type: ignore[arg-type]
        for block, threads in [(1024, 1), (7, 1), (7, 2), (50, 2)]:
            got = stft_fft_power(x, filterbank=fb, block=block, threads=threads, **kw)  # type: ignore[arg-type]
            torch.testing.assert_close(got, fb @ power, rtol=1e-12, atol=1e-12)


def test_filterbank_and_out_must_fit() -> None:
    frames = torch.randn(2, 30, 400)
    fb = torch.rand(10, 257)

    def prepare(block: torch.Tensor, out: torch.Tensor) -> None:
        out[..., 400:].zero_()
        out[..., :400] = block

    with torch.no_grad():
        with pytest.raises(ValueError, match=r"filterbank has shape \(10, 129\)"):
            _fast.frames_fft_power(
                frames, n_fft=512, prepare=prepare, power=2.0, filterbank=fb[:, :129]
            )
        with pytest.raises(
            ValueError, match=r"out must be a torch.float32 tensor of shape \(2, 10, 30\)"
        ):
            _fast.frames_fft_power(
                frames,
                n_fft=512,
                prepare=prepare,
                power=2.0,
                filterbank=fb,
                out=torch.empty(2, 10, 31),
            )
        buffer = torch.full((2, 10, 40), -1.0)
        got = _fast.frames_fft_power(
            frames, n_fft=512, prepare=prepare, power=2.0, filterbank=fb, out=buffer[..., :30]
        )
    assert got.data_ptr() == buffer.data_ptr() and (buffer[..., 30:] == -1.0).all()
    spec = torch.fft.rfft(torch.nn.functional.pad(frames, (0, 112)), dim=-1).abs() ** 2
    torch.testing.assert_close(buffer[..., :30], fb @ spec.transpose(1, 2), rtol=2e-5, atol=1e-3)


@pytest.mark.parametrize("threads", [1, 2])
def test_complex_blocked_path_matches_torch_stft(signals: np.ndarray, threads: int) -> None:
    x = torch.as_tensor(signals, dtype=torch.float32)
    w = torch.hann_window(256)
    ref = torch.stft(x, 256, 100, window=w, center=True, pad_mode="reflect", return_complex=True)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            spec = stft_fft(x, n_fft=256, hop_length=100, window=w, center=True, pad_mode="reflect")
    finally:
        torch.set_num_threads(before)
    assert rel_err(spec, ref) <= TOL32


def test_workers_keep_the_callers_thread_count_and_modes(signals: np.ndarray) -> None:
    # the pool's threads run torch on one thread each; the caller's setting is left as it was,
    # and inference mode reaches the workers (they write into the caller's inference tensors)
    x = torch.as_tensor(signals, dtype=torch.float32)
    w = torch.hann_window(256)
    kw = dict(n_fft=256, hop_length=64, window=w, center=True, pad_mode="reflect", power=1.0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.inference_mode():
            mag = stft_fft_power(x, block=4, **kw)  # type: ignore[arg-type]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    with torch.no_grad():
        assert torch.equal(mag, stft_fft_power(x, block=4, threads=1, **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rows", "frames", "max_frames", "expected"),
    [
        # 16 x 4 s at 22.05 kHz in blocks of at most 512 frames: 2 rows fit, 8 blocks of 2
        (16, 173, 512, [(2, 173)] * 8),
        # 4 equal blocks rather than 5 + 5 + 5 + 1
        (16, 173, 865, [(4, 173)] * 4),
        # a row longer than a block: each row in equal frame ranges (173 = 87 + 86)
        (2, 173, 128, [(1, 87), (1, 86), (1, 87), (1, 86)]),
        # one long row: 1500 frames in 2 equal ranges of 750 (1024 fit)
        (1, 1500, 1024, [(1, 750)] * 2),
    ],
)
def test_block_sizes(
    rows: int, frames: int, max_frames: int, expected: list[tuple[int, int]]
) -> None:
    blocks = list(_fast._blocks(rows, frames, max_frames))
    sizes = [(len(range(rows)[rs]), len(range(frames)[fs])) for rs, fs in blocks]
    assert sizes == expected
    # every frame of every row exactly once
    cover = torch.zeros(rows, frames, dtype=torch.int64)
    for rs, fs in blocks:
        cover[rs, fs] += 1
    assert bool((cover == 1).all())


def test_derived_block_size_follows_the_l2_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # a block's windowed frames fill two L2s, at least 2 MiB: 1 MiB -> 256 frames of 2048 float32,
    # 2 MiB -> 512; 512 KiB -> 256 (2 MiB), not 128
    for l2, frames in [(256 << 10, 256), (512 << 10, 256), (1 << 20, 256), (2 << 20, 512)]:
        monkeypatch.setattr(_blocksize, "cache_sizes", lambda l2=l2: (l2, 32 << 20))
        assert _blocksize.derived_frames(2048, 4) == frames
        assert _blocksize.derived_frames(2048, 8) == frames // 2
    assert _blocksize.parse_size("1024K") == 1 << 20
    assert _blocksize.parse_size("32M") == 32 << 20


def test_tuner_measures_once_per_fft_size_dtype_and_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, torch.dtype, int]] = []

    def measure(n_fft: int, dtype: torch.dtype, derived: int) -> int:
        calls.append((n_fft, dtype, derived))
        return 8 + len(calls)

    monkeypatch.setattr(_blocksize, "_TUNED", {})
    monkeypatch.setattr(_blocksize, "_measure", measure)
    _blocksize.set_autotune(True)
    try:
        first = _blocksize.block_frames(256, torch.float32, 1)
        assert _blocksize.block_frames(256, torch.float32, 1) == first  # remembered
        keys = [(512, torch.float32, 1), (256, torch.float64, 1), (256, torch.float32, 2)]
        choices = {_blocksize.block_frames(*k) for k in keys}
        assert len(calls) == 4 and len(choices | {first}) == 4  # each key measured once
    finally:
        _blocksize.set_autotune(False)


def test_tuner_picks_a_candidate_and_keeps_the_numbers(signals: np.ndarray) -> None:
    choice = _blocksize._measure(256, torch.float32, 16)
    assert choice in {4, 8, 16, 32, 64}
    x = torch.as_tensor(signals, dtype=torch.float32)
    w = torch.hann_window(256)
    kw = dict(n_fft=256, hop_length=64, window=w, center=True, pad_mode="reflect", power=2.0)
    with torch.no_grad():
        a = stft_fft_power(x, block=choice, **kw)  # type: ignore[arg-type]
        b = stft_fft_power(x, block=16, **kw)  # type: ignore[arg-type]
    assert torch.equal(a, b)


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


def test_pool_workers_run_torch_on_one_thread_and_nest() -> None:
    # each worker runs torch on one thread (else every operation would be an OpenMP region
    # again); a nested call runs inside its worker (no deadlock on a pool of one), and the
    # caller's thread count is left as it was
    from nnaudio_data.functional._pool import run_shared

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    seen: list[tuple[str, int]] = []

    def inner(items: object) -> None:
        seen.extend(("inner", torch.get_num_threads()) for _ in items)  # type: ignore[attr-defined]

    def outer(items: object) -> None:
        for _ in items:  # type: ignore[attr-defined]
            seen.append(("outer", torch.get_num_threads()))
            run_shared(range(3), inner, 2)

    try:
        run_shared(range(4), outer, 2)
        run_shared(range(2), outer, 1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert len(seen) == 6 * 4 and {n for _, n in seen} == {1}


@pytest.fixture
def parallel_mode() -> Iterator[Callable[[str], None]]:
    """Set the blocked loop's parallel mode for one test, restored after."""
    from nnaudio_data.functional import _pool

    before = _pool._MODE
    yield _pool.set_parallel
    _pool.set_parallel(before)


def test_parallel_mode_follows_the_other_processes_load(
    monkeypatch: pytest.MonkeyPatch, parallel_mode: Callable[[str], None]
) -> None:
    # auto: by operations while other processes leave a CPU for each thread, on the pool
    # otherwise; never on one thread or inside a pool worker
    from nnaudio_data.functional import _pool

    parallel_mode("auto")
    monkeypatch.setattr(_pool.os, "sched_getaffinity", lambda pid: set(range(4)))
    for others, threads, expected in [
        (0.0, 2, True),
        (2.4, 2, True),
        (2.6, 2, False),
        (0.4, 4, True),
        (0.6, 4, False),
        (0.0, 1, False),
    ]:
        monkeypatch.setattr(_pool, "_others_busy", lambda cpus, o=others: o)
        assert _pool.by_operations(threads) is expected, (others, threads)
    monkeypatch.setattr(_pool, "_others_busy", lambda cpus: 0.0)
    seen: list[bool] = []
    _pool.run_shared(range(2), lambda items: seen.extend(_pool.by_operations(2) for _ in items), 2)
    assert seen == [False, False]  # a pool worker never nests a parallel loop
    parallel_mode("pool")
    assert not _pool.by_operations(2)
    parallel_mode("operations")
    assert _pool.by_operations(2) and not _pool.by_operations(1)
    with pytest.raises(ValueError, match=r"parallel mode must be one of .* got 'threads'"):
        parallel_mode("threads")


def test_the_load_counts_other_processes_not_this_one() -> None:
    # this process spinning is not load; a busy process beside it (while this one sleeps) is,
    # about one CPU: were this process's own time counted, the two would read the same
    from nnaudio_data.functional import _pool

    cpus = os.sched_getaffinity(0)

    def measured(spin: bool, seconds: float = 0.7) -> float:
        _pool._SAMPLE.clear()
        _pool._others_busy(cpus)  # the first sample
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if not spin:
                time.sleep(0.01)
        return _pool._others_busy(cpus)

    alone = measured(spin=True)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        beside = measured(spin=False)
    finally:
        hog.kill()
        hog.wait()
    _pool._SAMPLE.clear()
    assert 0.0 <= alone and beside - alone >= 0.4, (alone, beside)


def _child_measures(queue: Any) -> None:
    from nnaudio_data.functional import _pool

    cpus = os.sched_getaffinity(0)
    _pool._others_busy(cpus)  # inherited sample: must be dropped, not compared with
    time.sleep(0.6)  # the parent waits meanwhile: nothing else is busy
    queue.put(_pool._others_busy(cpus))


def test_a_forked_child_measures_the_load_afresh() -> None:
    # the child's own CPU time restarts at 0: against the parent's sample it would read the
    # parent's whole CPU time (seconds: torch's import alone) as other processes' load. What the
    # child measures must be what the parent measures over the same time (other load included)
    import multiprocessing

    from nnaudio_data.functional import _pool

    cpus = os.sched_getaffinity(0)
    own = os.times().user + os.times().system
    assert own > 1.0  # so that the mistake would read > 1.5 CPUs more than the parent
    _pool._SAMPLE.clear()
    _pool._others_busy(cpus)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_measures, args=(queue,))
    time.sleep(0.6)
    child.start()
    others = queue.get(timeout=30)
    child.join(timeout=30)
    parent = _pool._others_busy(cpus)  # over the child's life, the child included
    _pool._SAMPLE.clear()
    assert child.exitcode == 0 and 0.0 <= others < parent + 0.9, (others, parent)


def test_a_bad_parallel_environment_variable_warns_and_falls_back() -> None:
    code = "from nnaudio_data.functional import _pool; print(_pool._MODE)"
    env = {**os.environ, "NNAUDIO_DATA_PARALLEL": "fast", "PYTHONWARNINGS": "default"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "auto"
    assert "NNAUDIO_DATA_PARALLEL must be one of" in done.stderr and "'fast'" in done.stderr


@pytest.mark.parametrize("threads", [2, 3])
def test_both_parallel_modes_give_the_same_numbers(
    signals: np.ndarray, threads: int, parallel_mode: Callable[[str], None]
) -> None:
    # the numbers never depend on how the blocks are shared out: the pool's single-threaded
    # workers and each operation parallel over larger blocks give the same bits
    from nnaudio_data.features import KaldiFbank, MelSpectrogram

    x = torch.as_tensor(np.concatenate([signals, signals[:, ::-1]]), dtype=torch.float32)
    w = torch.hann_window(512)
    kw = dict(n_fft=512, hop_length=128, window=w, center=True, pad_mode="reflect")
    mel = MelSpectrogram(sr=22050, n_fft=512, hop_length=128, n_mels=64)
    fbank = KaldiFbank(sample_frequency=22050, num_mel_bins=40)
    results = {}
    with torch.no_grad(), torch_threads(threads):
        for mode in ("pool", "operations"):
            parallel_mode(mode)
            results[mode] = [
                stft_fft(x, **kw),  # type: ignore[arg-type]
                stft_fft_power(x, power=1.0, **kw),  # type: ignore[arg-type]
                mel(x),
                fbank(x),
            ]
    for a, b in zip(results["pool"], results["operations"]):
        assert torch.equal(a, b)
    ref = torch.stft(x, 512, 128, window=w, center=True, pad_mode="reflect", return_complex=True)
    assert rel_err(results["operations"][0], ref) <= TOL32


@pytest.mark.parametrize("pad_mode", ["reflect", "constant", "symmetric", "replicate"])
@pytest.mark.parametrize(("block", "threads"), [(None, None), (7, 1), (5, 2)])
@pytest.mark.parametrize(
    ("lengths", "copied"),
    [([4000, 3001, 1777, 600], False), ([4000, 4000, 0, 2500], False),
     ([4000, 3900, 2000, 1000], True), ([4000, 100, 3000, 50], True)],
    ids=["short", "full-and-empty", "near-the-end", "shorter-than-a-window"],
)  # fmt: skip
def test_own_end_padding_without_a_copy_is_the_copied_batchs(
    pad_mode: str, block: int | None, threads: int | None, lengths: list[int], copied: bool
) -> None:
    # frames past each short row's end come from a small padded copy of that stretch; the
    # reference pads the whole batch with fill_end_padding first (the copy this avoids). Rows
    # too short for it, or near the batch's end, take the copy (same numbers either way).
    x = torch.randn(4, 4000, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    n = torch.tensor(lengths)
    for i, m in enumerate(lengths):
        x[i, m:] = 0.5  # what the rows hold past their ends must never be read as their padding
    w = torch.hann_window(512, dtype=torch.float64)
    kw: dict[str, Any] = dict(n_fft=512, hop_length=160, window=w, center=True, pad_mode=pad_mode)
    kw.update({k: v for k, v in (("block", block), ("threads", threads)) if v is not None})
    frames = 1 + 4000 // 160  # (the copy may be longer: its frames past these are not used)
    ours = stft_fft_power(x, power=2.0, lengths=n, **kw)[..., :frames]
    ref = stft_fft_power(fill_end_padding(x, n, 256, pad_mode), power=2.0, **kw)[..., :frames]
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    # and the rule itself: a short row alone (its own padding) gives its valid frames
    alone = stft_fft_power(x[1:2, : max(lengths[1], 1)], power=2.0, **kw)
    valid = 1 + max(lengths[1], 1) // 160
    torch.testing.assert_close(ours[1:2, :, :valid], alone[..., :valid], rtol=1e-12, atol=1e-9)
    # 3900 + 2 * 256 reaches the batch's end padding; 50 and 100 are too short to reflect 256
    assert (_fast._own_end_frames(x, n, 512, 160, pad_mode) is None) == copied
