"""The public functional core (``nnaudio_data.functional``) against numpy / librosa and the
rules it implements (Kaldi's framing, per-clip end padding), and the front-end modules built on
it (trainable paths, lazy kernels, purity)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import librosa
import numpy as np
import pytest
import torch
from conftest import torch_threads

from nnaudio_data import functional as AF
from nnaudio_data.features import STFT, KaldiFbank, MelSpectrogram, WhisperLogMel

RNG = np.random.default_rng(0)
NUMPY_MODE = {"reflect": "reflect", "symmetric": "symmetric", "replicate": "edge",
              "circular": "wrap", "constant": "constant"}  # fmt: skip


CASES = [(50, 7, 9), (5, 12, 3), (2, 6, 6), (1, 3, 2)]


@pytest.mark.parametrize(
    ("mode", "n", "left", "right"),
    # (numpy cannot reflect a single sample: no reflect case of length 1)
    [(m, *c) for m in NUMPY_MODE for c in CASES if not (m == "reflect" and c[0] == 1)],
)
def test_pad_signal_is_numpy_pad(mode: str, n: int, left: int, right: int) -> None:
    x = RNG.standard_normal((3, n))
    ours = AF.pad_signal(torch.from_numpy(x), left, right, mode).numpy()
    np.testing.assert_array_equal(ours, np.pad(x, ((0, 0), (left, right)), mode=NUMPY_MODE[mode]))


@pytest.mark.parametrize("mode", ["reflect", "symmetric", "constant", "replicate"])
@pytest.mark.parametrize(
    ("lengths", "grows"), [([40, 17, 3, 40, 0], False), ([40, 35, 40], True), ([40, 40], False)]
)
def test_fill_end_padding_pads_each_row_as_alone(
    mode: str, lengths: list[int], grows: bool
) -> None:
    x = torch.zeros(len(lengths), 40, dtype=torch.float64)
    for i, n in enumerate(lengths):
        x[i, :n] = torch.randn(n, dtype=torch.float64)
    x[1, lengths[1] :] = 99.0  # garbage past a row's end must not be read
    out = AF.fill_end_padding(x, torch.tensor(lengths), 10, mode)
    assert out.shape == (len(lengths), 50 if grows else 40)
    if min(lengths) == 40:
        assert out is x  # every clip fills the batch: nothing to do
    # what centred framing then reads: the batch padded at its end as the caller pads it
    padded = AF.pad_signal(out, 0, 10, mode)
    for i, n in enumerate(lengths):
        if n == 0:
            continue
        alone = AF.pad_signal(x[i : i + 1, :n], 0, 10, mode)[0]
        torch.testing.assert_close(padded[i, : n + 10], alone, rtol=0, atol=0)


def _kaldi_frame_reference(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """Kaldi's ExtractWindow with snip_edges=false, literally (feature-window.cc)."""
    n = x.size
    frames = (n + hop // 2) // hop
    out = np.zeros((frames, win))
    for t in range(frames):
        start = t * hop + hop // 2 - win // 2
        for j in range(win):
            s = start + j
            while s < 0 or s >= n:  # mirror, as many times as needed
                s = -s - 1 if s < 0 else 2 * n - 1 - s
            out[t, j] = x[s]
    return out


@pytest.mark.parametrize(("win", "hop"), [(400, 160), (25, 10), (8, 12)])
def test_kaldi_frames_mirror_at_each_clips_end(win: int, hop: int) -> None:
    lengths = [3 * win + 7, win // 2 + 3, 2 * win]
    x = torch.zeros(3, max(lengths), dtype=torch.float64)
    for i, n in enumerate(lengths):
        x[i, :n] = torch.randn(n, dtype=torch.float64)
    frames = AF.kaldi_frames(x, win, hop, snip_edges=False, lengths=torch.tensor(lengths))
    for i, n in enumerate(lengths):
        ref = _kaldi_frame_reference(x[i, :n].numpy(), win, hop)
        assert AF.kaldi_frame_count(n, win, hop, False) == ref.shape[0]
        np.testing.assert_array_equal(frames[i, : ref.shape[0]].numpy(), ref)


def test_kaldi_frames_snip_edges() -> None:
    x = torch.arange(1000.0)[None]
    frames = AF.kaldi_frames(x, 400, 160, snip_edges=True)
    assert frames.shape == (1, 1 + (1000 - 400) // 160, 400)
    assert frames[0, 2, 0] == 320 and frames[0, -1, -1] == 160 * 3 + 399
    assert AF.kaldi_frames(x[:, :399], 400, 160, snip_edges=True).shape == (1, 0, 400)


def test_preemphasis_and_dc_removal() -> None:
    x = RNG.standard_normal((4, 50))
    c = 0.97
    per_frame = x.copy()
    per_frame[:, 1:] -= c * x[:, :-1]
    per_frame[:, 0] *= 1 - c
    t = torch.from_numpy(x)
    np.testing.assert_allclose(AF.preemphasis(t, c).numpy(), per_frame, rtol=1e-13)
    signal = per_frame.copy()
    signal[:, 0] = x[:, 0]
    np.testing.assert_allclose(AF.preemphasis(t, c, per_frame=False).numpy(), signal, rtol=1e-13)
    np.testing.assert_allclose(AF.remove_dc(t).mean(-1).numpy(), 0, atol=1e-14)


def test_dither_is_seeded_and_off_at_zero() -> None:
    x = torch.zeros(2, 100)
    assert AF.dither(x, 0.0) is x
    a = AF.dither(x, 1.0, torch.Generator().manual_seed(3))
    b = AF.dither(x, 1.0, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert 0.7 < float(a.std()) < 1.3


def test_windows_povey_and_placement() -> None:
    n = np.arange(400)
    povey = (0.5 - 0.5 * np.cos(2 * np.pi * n / 399)) ** 0.85
    w = AF.window("povey", 400, 512, periodic=False, placement="left", dtype=torch.float64)
    np.testing.assert_allclose(w[:400].numpy(), povey, rtol=1e-12, atol=1e-15)
    assert not w[400:].any()
    centred = AF.window("hann", 400, 512, dtype=torch.float64)
    ref = np.pad(librosa.filters.get_window("hann", 400), 56)  # librosa's centring in n_fft
    np.testing.assert_allclose(centred.numpy(), ref, rtol=1e-12, atol=1e-15)


def test_power_to_db_per_item_over_valid_frames_is_librosas() -> None:
    S = RNG.random((3, 6, 40)) ** 4
    lengths = [40, 25, 7]
    db = AF.power_to_db(torch.from_numpy(S), top_db=30.0, lengths=torch.tensor(lengths))
    for i, n in enumerate(lengths):
        ref = librosa.power_to_db(S[i, :, :n], top_db=30.0)
        np.testing.assert_allclose(db[i, :, :n].numpy(), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("kw", "ref"),
    [
        ({"floor": 1e-10, "base": 10}, lambda v: np.log10(np.maximum(v, 1e-10))),
        ({"offset": 0.01}, lambda v: np.log(v + 0.01)),
        ({"offset": 0.5, "floor": 0.7, "base": 3}, lambda v: np.log(np.maximum(v + 0.5, 0.7)) / np.log(3)),
        ({}, np.log),
    ],
)  # fmt: skip
@pytest.mark.parametrize("grad", [False, True])
def test_log_and_normalize_leave_their_input_and_keep_the_gradient(
    kw: dict[str, float], ref: object, grad: bool
) -> None:
    # the steps after the first run in place on the function's own temporary, never on the
    # caller's tensor, and only where no gradient is recorded through it
    v = RNG.random((2, 5, 30)) ** 6 + 1e-13
    x = torch.from_numpy(v.copy()).requires_grad_(grad)
    y = AF.log(x, **kw)
    np.testing.assert_allclose(y.detach().numpy(), ref(v), rtol=1e-12)  # type: ignore[operator]
    z = AF.normalize(y, -4.0, 4.0)
    np.testing.assert_allclose(z.detach().numpy(), (ref(v) + 4) / 4, rtol=1e-12)  # type: ignore[operator]
    np.testing.assert_array_equal(x.detach().numpy(), v)
    if grad:
        z.sum().backward()
        assert x.grad is not None
        # d/dx (log_b(max(x + o, f)) + 4) / 4 = 1 / (4 (x + o) ln b) where x + o > f, else 0
        o, f = kw.get("offset", 0.0), kw.get("floor", 0.0)
        expected = np.where(v + o > f, 1 / (4 * (v + o) * np.log(kw.get("base", np.e))), 0.0)
        np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize(
    ("mean", "std"),
    [(-4.2677393, 2 * 4.5689974), (-4.0, 4.0), (0.5, 3)],
    ids=["ast", "whisper", "int"],
)
def test_normalize_by_numbers_is_the_quotient_within_an_ulp(mean: float, std: float) -> None:
    # one pass, x * (1 / std) - mean / std: against (x - mean) / std in float64, within 2 ulp of
    # the values' scale; in place through out=, a new tensor without, the same bits either way
    v = (RNG.random((3, 128, 500)) * 30 - 25).astype(np.float32)
    ref = (v.astype(np.float64) - mean) / std
    x = torch.from_numpy(v.copy())
    new = AF.normalize(x, mean, std)
    np.testing.assert_array_equal(x.numpy(), v)
    ulp = float(np.spacing(np.float32(np.abs(ref).max())))
    assert float(np.abs(new.numpy() - ref).max()) <= 2 * ulp
    assert AF.normalize(x, mean, std, out=x) is x
    np.testing.assert_array_equal(x.numpy(), new.numpy())
    # std 0: the plain quotient (inf), not a ZeroDivisionError from 1 / std
    assert bool(torch.isinf(AF.normalize(torch.tensor([1.0]), 0.0, 0.0)).all())


@pytest.mark.parametrize("numpy_log", [True, False], ids=["numpy", "torch"])
@pytest.mark.parametrize("base", [None, 10, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_by_either_implementation_is_within_4_ulp(
    numpy_log: bool, base: int | None, dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AF.log takes numpy's logarithm where it was measured faster: force each in turn, on a
    # tensor large enough for numpy (and check the choice was asked for, i.e. numpy was usable)
    from nnaudio_data.functional import level

    asked: list[bool] = []
    monkeypatch.setattr(level, "numpy_log_is_simd", lambda: asked.append(True) or numpy_log)
    v = (RNG.random(level._NUMPY_MIN * 2) * 1e3 + 1e-6).astype(np.float64)
    x = torch.from_numpy(v).to(dtype)
    y = AF.log(x, base=base)
    assert asked == [True]
    exact = {None: np.log, 10: np.log10, 2: np.log2}[base](x.numpy().astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(x.numpy().dtype)).astype(np.float64)
    assert np.all(np.abs(y.numpy() - exact) <= 4 * ulp)
    np.testing.assert_array_equal(x.numpy(), v.astype(x.numpy().dtype))  # the input is kept
    out = torch.empty_like(x)
    assert AF.log(x, base=base, out=out) is out
    torch.testing.assert_close(out, y, rtol=0, atol=0)


def test_numpy_log_is_silent_on_zeros_and_negatives_and_torch_keeps_the_gradient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import warnings

    from nnaudio_data.functional import level

    monkeypatch.setattr(level, "numpy_log_is_simd", lambda: True)
    x = torch.rand(level._NUMPY_MIN)
    x[:3] = torch.tensor([0.0, -1.0, float("nan")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy would warn "divide by zero" / "invalid value"
        y = AF.log(x, base=10)
    torch.testing.assert_close(y[3:], torch.log10(x[3:]), rtol=1e-6, atol=1e-6)
    assert y[0] == float("-inf") and y[1:3].isnan().all()
    g = torch.rand(level._NUMPY_MIN, dtype=torch.float64).add_(0.5).requires_grad_(True)
    AF.log(g).sum().backward()  # a gradient to record: torch's logarithm
    assert g.grad is not None
    torch.testing.assert_close(g.grad, 1 / g.detach(), rtol=1e-12, atol=0)


def test_log_gives_the_same_bits_at_any_thread_count() -> None:
    # which logarithm runs is a property of the machine (numpy's SIMD one or torch's), so a
    # DataLoader worker on one thread and the main process on two compute the same numbers
    x = torch.rand(16, 128, 1003).add_(1e-6)
    with torch_threads(1):
        one = AF.log(x, floor=1e-10, base=10)
    with torch_threads(2):
        two = AF.log(x, floor=1e-10, base=10)
    torch.testing.assert_close(one, two, rtol=0, atol=0)


@pytest.mark.parametrize("ref", [1.0, 0.5, "max"])
def test_power_to_db_in_place_equals_out_of_place(ref: float | str) -> None:
    S = torch.from_numpy(RNG.random((3, 40, 200)) ** 4)
    lengths = torch.tensor([200, 120, 0])
    kw = {"ref": ref, "top_db": 50.0, "lengths": lengths}
    kept = S.clone()
    new = AF.power_to_db(S, **kw)  # type: ignore[arg-type]
    torch.testing.assert_close(S, kept, rtol=0, atol=0)  # without out= the input is kept
    for i, n in enumerate(lengths.tolist()):
        if n:
            expect = librosa.power_to_db(
                S[i, :, :n].numpy(), ref=np.max if ref == "max" else ref, top_db=50.0
            )
            np.testing.assert_allclose(new[i, :, :n].numpy(), expect, rtol=1e-10, atol=1e-10)
    assert AF.power_to_db(S, out=S, **kw) is S  # type: ignore[arg-type]
    torch.testing.assert_close(S, new, rtol=0, atol=0)
    g = kept.clone().requires_grad_(True)
    AF.power_to_db(g, **kw).sum().backward()  # type: ignore[arg-type]
    assert g.grad is not None and torch.isfinite(g.grad).all()


def test_fill_past_end() -> None:
    x = torch.from_numpy(RNG.standard_normal((3, 2, 10)))
    assert AF.fill_past_end(x, torch.tensor([10, 12, 10]), 0.0) is x  # every item fills x
    floor = torch.tensor([-1.0, -2.0, -3.0], dtype=x.dtype).reshape(3, 1, 1)
    out = AF.fill_past_end(x, torch.tensor([10, 4, 0]), floor)
    torch.testing.assert_close(out[0], x[0], rtol=0, atol=0)
    torch.testing.assert_close(out[1, :, :4], x[1, :, :4], rtol=0, atol=0)
    assert (out[1, :, 4:] == -2.0).all() and (out[2] == -3.0).all()


@pytest.mark.parametrize("value", ["number", "per item", "broadcast"])
def test_fill_past_end_in_place_writes_only_the_tails(value: str) -> None:
    x = torch.from_numpy(RNG.standard_normal((4, 3, 12)))
    lengths = torch.tensor([12, 5, 0, 30])  # full, short, empty, longer than the frames
    fill = {
        "number": -7.0,
        "per item": torch.tensor([-1.0, -2.0, -3.0, -4.0], dtype=x.dtype).reshape(4, 1, 1),
        "broadcast": torch.tensor([-9.0], dtype=x.dtype).reshape(1, 1, 1),
    }[value]
    expected = AF.fill_past_end(x, lengths, fill)  # the out-of-place select
    assert expected is not x
    inplace = x.clone()
    storage = inplace.data_ptr()
    got = AF.fill_past_end(inplace, lengths, fill, out=inplace)
    assert got is inplace and got.data_ptr() == storage
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    mask = torch.arange(12) >= lengths.clamp_max(12)[:, None, None]
    np.testing.assert_array_equal(
        got.numpy()[~mask.expand(4, 3, 12).numpy()], x.numpy()[~mask.expand(4, 3, 12).numpy()]
    )
    other = torch.empty_like(x)  # another out: the whole result is written there
    assert AF.fill_past_end(x, lengths, fill, out=other) is other
    torch.testing.assert_close(other, expected, rtol=0, atol=0)


def test_masked_amax_reads_only_the_valid_frames() -> None:
    x = RNG.standard_normal((4, 2, 9))
    x[1, :, 3:] += 100.0  # past item 1's end: must not be its peak
    lengths = torch.tensor([9, 3, 0, 20])
    peak = AF.masked_amax(torch.from_numpy(x), lengths)
    assert peak.shape == (4, 1, 1)
    expected = [x[0].max(), x[1, :, :3].max(), -np.inf, x[3].max()]
    np.testing.assert_array_equal(peak.reshape(4).numpy(), expected)
    full = AF.masked_amax(torch.from_numpy(x), torch.tensor([9, 9, 9, 9]))
    np.testing.assert_array_equal(full.reshape(4).numpy(), x.max(axis=(1, 2)))
    # the gradient reaches each item's own peak only
    t = torch.from_numpy(x).requires_grad_(True)
    AF.masked_amax(t, torch.tensor([9, 3, 1, 9])).sum().backward()
    assert t.grad is not None
    assert float(t.grad.sum()) == 4.0 and float(t.grad[1, :, 3:].abs().sum()) == 0.0


def test_dynamic_range_clamp_and_normalize_per_item() -> None:
    x = RNG.standard_normal((2, 3, 20)) * 5
    lengths = torch.tensor([20, 9])
    out = AF.dynamic_range_clamp(torch.from_numpy(x), 2.0, lengths).numpy()
    for i, n in enumerate([20, 9]):
        np.testing.assert_array_equal(out[i, :, :n], np.maximum(x[i, :, :n], x[i, :, :n].max() - 2))
    z = AF.normalize_per_item(torch.from_numpy(x), lengths, unbiased=True, eps=0.0).numpy()
    v = x[1, :, :9]
    ref = (v - v.mean(-1, keepdims=True)) / v.std(-1, ddof=1, keepdims=True)
    np.testing.assert_allclose(z[1, :, :9], ref, rtol=1e-10)
    assert not z[1, :, 9:].any()


def test_stft_with_lengths_pads_each_clip_at_its_end() -> None:
    lengths = torch.tensor([16000, 9001])
    x = torch.zeros(2, 16000)
    x[0] = torch.randn(16000)
    x[1, :9001] = torch.randn(9001)
    mel = MelSpectrogram(sr=16000, n_fft=512, hop_length=160, n_mels=40)
    batched = mel(x, lengths=lengths)
    alone = mel(x[1:, :9001])
    valid = int(mel.output_lengths(lengths)[1])
    torch.testing.assert_close(batched[1, :, :valid], alone[0], rtol=1e-5, atol=1e-5)
    # without lengths the last frames read the batch's zeros, which is what the fix is for
    assert not torch.allclose(mel(x)[1, :, valid - 1], alone[0, :, -1], rtol=1e-3)


@pytest.mark.parametrize("mode", ["reflect", "constant", "symmetric"])
@pytest.mark.parametrize(
    ("n", "n_fft", "hop", "zeros"),
    [(1000, 400, 160, 400), (1000, 400, 160, 3), (1000, 400, 160, 1), (1000, 64, 16, 1000),
     (999, 64, 16, 33), (50, 64, 16, 7), (300, 64, 16, 0)],
)  # fmt: skip
def test_spectrogram_end_zeros_is_that_of_the_zero_padded_signal(
    mode: str, n: int, n_fft: int, hop: int, zeros: int
) -> None:
    # librosa's STFT of np.pad(x, (0, zeros)) is the reference; float64, so the only difference
    # is FFT rounding. The FFT path builds only the last frames from a padded copy (a wrong
    # index there would shift or truncate them); the kernel path pads first.
    x = RNG.standard_normal((3, n))
    ref = (
        np.abs(
            librosa.stft(
                np.pad(x, ((0, 0), (0, zeros))), n_fft=n_fft, hop_length=hop, pad_mode=mode
            )
        )
        ** 2
    )
    kw = {"n_fft": n_fft, "hop_length": hop, "center": True, "pad_mode": mode}
    win = AF.window("hann", n_fft, dtype=torch.float64)
    fft = AF.spectrogram(torch.from_numpy(x), window=win, end_zeros=zeros, **kw)
    assert fft.shape == ref.shape
    np.testing.assert_allclose(fft.numpy(), ref, rtol=1e-9, atol=1e-9 * ref.max())
    # the trainable kernels (float32 basis): the same as on the padded signal, librosa's to 1e-5
    stft = STFT(n_fft=n_fft, hop_length=hop, pad_mode=mode, trainable=True).double()
    kernels = stft.power_spectrogram(torch.from_numpy(x), 2.0, end_zeros=zeros)
    assert kernels.requires_grad
    padded = stft.power_spectrogram(torch.from_numpy(np.pad(x, ((0, 0), (0, zeros)))), 2.0)
    torch.testing.assert_close(kernels, padded, rtol=1e-12, atol=1e-12 * ref.max())
    np.testing.assert_allclose(kernels.detach().numpy(), ref, rtol=1e-5, atol=1e-5 * ref.max())


def test_spectrogram_end_zeros_refuses_lengths_and_negatives() -> None:
    x, win = torch.randn(2, 800), AF.window("hann", 64)
    kw = {"n_fft": 64, "hop_length": 16, "window": win}
    with pytest.raises(ValueError, match=r"end_zeros must be >= 0.*-1"):
        AF.spectrogram(x, end_zeros=-1, **kw)
    with pytest.raises(ValueError, match=r"cannot be combined with lengths.*3 with lengths given"):
        AF.spectrogram(x, end_zeros=3, lengths=torch.tensor([800, 500]), **kw)


@pytest.mark.parametrize("name", ["kaldi", "vggish", "ast"])
def test_kaldi_fbank_trainable_chain_starts_at_the_frozen_numbers(name: str) -> None:
    kw = {
        "kaldi": {"num_mel_bins": 80},
        "vggish": {"num_mel_bins": 64, "preemphasis_coefficient": 0.0, "remove_dc_offset": False,
                   "window_type": "hann", "use_power": False, "low_freq": 125.0,
                   "high_freq": 7500.0, "log_offset": 0.01, "log_floor": 0.0},
        "ast": {"num_mel_bins": 128, "window_type": "hanning", "norm_mean": -4.2677393,
                "norm_std": 9.1379948, "snip_edges": False},
    }[name]  # fmt: skip
    x = torch.randn(2, 8000, dtype=torch.float64) * 0.3
    frozen = KaldiFbank(**kw, dtype=torch.float64)
    learn = KaldiFbank(**kw, trainable_mel=True, trainable_STFT=True, dtype=torch.float64)
    assert {n for n, _ in learn.named_parameters()} == {"mel_basis", "wcos", "wsin"}
    y = learn(x)
    # float64 both ways: the kernel chain is the same linear map as DC / pre-emphasis / window / FFT
    torch.testing.assert_close(y, frozen(x), rtol=1e-9, atol=1e-9)
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in learn.parameters())


def test_whisper_trainable_starts_at_the_frozen_numbers() -> None:
    x = torch.randn(2, 16000) * 0.1
    frozen = WhisperLogMel()(x)
    learn = WhisperLogMel(trainable_mel=True, trainable_STFT=True)
    y = learn(x)
    torch.testing.assert_close(y, frozen, rtol=0, atol=2e-5)  # conv vs FFT path, float32
    y.sum().backward()
    assert learn.mel_basis.grad is not None and torch.isfinite(learn.stft.wcos.grad).all()


def test_frozen_fft_stft_builds_no_kernels() -> None:
    stft = STFT(n_fft=16384, hop_length=4096, output_format="Magnitude")
    assert {n for n, _ in stft.named_buffers()} == {"window_mask"}
    assert stft(torch.randn(1, 40000)).shape == (1, 8193, 10)
    assert {n for n, _ in stft.named_buffers()} == {"window_mask"}  # forward built none either
    small = STFT(n_fft=64)
    assert small.wcos.shape == (33, 1, 64)  # built when asked for
    x = torch.randn(2, 500)
    fft = small(x)
    small.use_fft = False  # the conv path, on the kernels built above
    torch.testing.assert_close(small(x), fft, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "make",
    [lambda: KaldiFbank(num_mel_bins=40, dither=0.5, seed=1), lambda: WhisperLogMel(pad=False),
     lambda: WhisperLogMel(), lambda: MelSpectrogram(sr=16000, n_fft=400, hop_length=160)],
)  # fmt: skip
def test_forward_is_pure(make: object) -> None:
    module = make()  # type: ignore[operator]
    before = (dict(module.__dict__), {n: b.clone() for n, b in module.named_buffers()})
    x, lengths = torch.randn(2, 8000), torch.tensor([8000, 5000])
    first = module(x, lengths=lengths)
    second = module(x, lengths=lengths)
    torch.testing.assert_close(first, second, rtol=0, atol=0)  # seeded dither included
    assert set(module.__dict__) == set(before[0])
    assert all(module.__dict__[k] is v for k, v in before[0].items())
    for n, b in module.named_buffers():
        torch.testing.assert_close(b, before[1][n], rtol=0, atol=0)


@pytest.mark.parametrize(("dc", "c"), [(True, 0.97), (False, 0.97), (True, 0.0), (False, 0.0)])
def test_condition_frames_is_the_three_steps_fused(dc: bool, c: float) -> None:
    x = torch.randn(3, 3000, dtype=torch.float64)
    frames = AF.kaldi_frames(x, 400, 160, snip_edges=True)
    w = AF.window("povey", 400, periodic=False, dtype=torch.float64)
    steps = AF.remove_dc(frames) if dc else frames
    steps = AF.preemphasis(steps, c) if c else steps
    expected = torch.nn.functional.pad(steps * w, (0, 112))
    got = AF.condition_frames(frames, window=w, n_fft=512, remove_dc_offset=dc,
                              preemphasis_coefficient=c)  # fmt: skip
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_condition_frames_leaves_a_zeroed_padding_alone() -> None:
    # padding_zeroed: the columns past the frame (zeroed once by the blocked loop) are not
    # written again; the frame itself is the same
    frames = AF.kaldi_frames(torch.randn(2, 3000, dtype=torch.float64), 400, 160, snip_edges=True)
    w = AF.window("povey", 400, periodic=False, dtype=torch.float64)
    kw = dict(window=w, n_fft=512, preemphasis_coefficient=0.97)
    expected = AF.condition_frames(frames, **kw)  # type: ignore[arg-type]
    out = torch.full_like(expected, float("nan"))
    AF.condition_frames(frames, out=out, padding_zeroed=True, **kw)  # type: ignore[arg-type]
    assert out[..., 400:].isnan().all()
    torch.testing.assert_close(out[..., :400], expected[..., :400], rtol=0, atol=0)
    AF.condition_frames(frames, out=out, **kw)  # type: ignore[arg-type]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_banded_filterbank_product_is_the_dense_one() -> None:
    from nnaudio_data.functional import filterbank as fbmod
    from nnaudio_data.kernels.mel import kaldi_mel_filterbank, mel_filterbank

    for basis in (mel_filterbank(16000, 400, 80, 0.0, None, False, 1),
                  kaldi_mel_filterbank(16000, 512, 128)):  # fmt: skip
        fb = torch.tensor(basis)
        assert fbmod.band_groups(fb) is not None  # mel banks are banded: the banded path runs
        spec = torch.rand(3, 40, fb.shape[1], dtype=torch.float64).transpose(1, 2)
        torch.testing.assert_close(
            AF.apply_filterbank(spec, fb), torch.matmul(fb, spec), rtol=1e-12, atol=1e-12
        )
    # a filterbank that filled in takes the dense product; one being trained too, so that the
    # zeros of a mel bank get their gradient (they may learn to be non-zero)
    assert fbmod.band_groups(torch.rand(20, 33, dtype=torch.float64)) is None
    fb = torch.tensor(mel_filterbank(8000, 64, 20, 0.0, None, False, 1), requires_grad=True)
    spec = torch.rand(2, 33, 9, dtype=torch.float64)
    AF.apply_filterbank(spec, fb).sum().backward()
    expected = spec.sum(-1).sum(0).expand(20, 33)
    torch.testing.assert_close(fb.grad, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block", [3, 40, 300, 1024])
@pytest.mark.parametrize("threads", [1, 2])
def test_kaldi_blocks_give_the_whole_batch_numbers(
    monkeypatch: pytest.MonkeyPatch, block: int, threads: int
) -> None:
    from nnaudio_data.functional import _blocked

    x = torch.randn(3, 20000) * 0.2  # 123 frames a row: blocks of part of a row, rows, all
    fbank = KaldiFbank(num_mel_bins=40, snip_edges=False)
    whole = fbank(x.clone().requires_grad_(True)).detach()  # the differentiable expression
    monkeypatch.setattr(_blocked, "block_frames", lambda n_fft, dtype, t: block)
    with torch.no_grad(), torch_threads(threads):
        # float32 FFTs of other batch shapes round differently: ~1e-5 relative
        torch.testing.assert_close(fbank(x), whole, rtol=3e-5, atol=1e-5)


@pytest.mark.parametrize("trainable_stft", [False, True])
@pytest.mark.parametrize("num_frames", [30, 80])  # trimmed, padded (the clips give 48 frames)
def test_kaldi_fixed_length_output_without_autograd_equals_the_recorded_one(
    trainable_stft: bool, num_frames: int
) -> None:
    # without a gradient the padded output is written in place, whichever path computed it
    x = torch.randn(2, 8000) * 0.2
    fbank = KaldiFbank(num_mel_bins=23, num_frames=num_frames, trainable_STFT=trainable_stft)
    recorded = fbank(x.clone().requires_grad_(True)).detach()
    with torch.no_grad():
        fast = fbank(x)
    assert fast.shape == recorded.shape == (2, 23, num_frames)
    torch.testing.assert_close(fast, recorded, rtol=3e-5, atol=1e-5)
    if num_frames > 48:
        assert not fast[..., 48:].any()  # AST's zero padding


def test_large_outputs_are_plain_tensors_with_huge_page_advice() -> None:
    # the advice changes nothing a caller can see: shape, dtype, strides, writes, frees
    from nnaudio_data.functional import _memory

    for shape in [(3, 5), (16, 128, 3000)]:  # below and above MIN_BYTES
        out = _memory.empty(shape, dtype=torch.float32, device="cpu")
        assert out.shape == shape and out.dtype == torch.float32 and out.is_contiguous()
        out.fill_(2.5)
        assert float(out.sum()) == 2.5 * out.numel()
    assert 16 * 128 * 3000 * 4 >= _memory.MIN_BYTES > 3 * 5 * 4
    big = _memory.empty((2, 1 << 20), dtype=torch.complex64, device="cpu")
    big[:, ::4096] = 1 + 2j
    assert torch.equal(big[:, ::4096], torch.full((2, 256), 1 + 2j, dtype=torch.complex64))


def test_large_blocks_are_reused_only_once_nobody_holds_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a block comes back only when its last holder is gone: every kind of holder keeps its
    # values through the next call's writes, a shared block never comes back, sizes are exact
    from torch.utils.dlpack import from_dlpack, to_dlpack

    from nnaudio_data.functional import _memory

    _memory.release()
    shape, kw = (16, 128, 3000), {"dtype": torch.float32, "device": "cpu"}
    a = _memory.empty(shape, **kw)
    ptr = a.data_ptr()
    del a
    b = _memory.empty(shape, **kw)
    assert b.data_ptr() == ptr and b.shape == shape and b.is_contiguous()  # nobody held it
    holders: dict[str, Callable[[torch.Tensor], Any]] = {
        "tensor": lambda t: t,
        "view": lambda t: t[3:, 5],
        "numpy": lambda t: t.numpy(),
        "dlpack": to_dlpack,
        "storage": lambda t: t.untyped_storage(),
    }
    for name, hold in holders.items():
        t = _memory.empty(shape, **kw).fill_(7.0)
        kept, ptr = hold(t), t.data_ptr()
        del t
        u = _memory.empty(shape, **kw).fill_(-1.0)
        assert u.data_ptr() != ptr, name
        back = from_dlpack(kept) if name == "dlpack" else kept
        if name == "storage":
            back = torch.empty(0).set_(back, 0, shape)
        assert (torch.as_tensor(back) == 7.0).all(), name
        del u
    shared = _memory.empty(shape, **kw).share_memory_()  # as a DataLoader worker's sent batch
    del shared
    assert not _memory.empty(shape, **kw).is_shared()
    other = _memory.empty((16, 128, 2999), **kw)  # another size: a block of its own size
    assert other.untyped_storage().nbytes() == other.numel() * 4
    # the limits: at most MAX_BLOCKS blocks, at most IDLE_BYTES of them idle after a call
    monkeypatch.setattr(_memory, "IDLE_BYTES", 24 << 20)
    many = [_memory.empty(((5 << 20) // 4 + i,), **kw) for i in range(_memory.MAX_BLOCKS + 4)]
    assert len(_memory._blocks) == _memory.MAX_BLOCKS
    del many
    held = _memory.empty(shape, **kw)  # trims the idle blocks before it joins them
    idle = [blk.nbytes() for blk in _memory._blocks if _memory._idle(blk)]
    assert 0 < sum(idle) <= 24 << 20 and len(_memory._blocks) <= _memory.MAX_BLOCKS
    del held
    _memory.release()
    assert not _memory._blocks
    # off: NNAUDIO_DATA_REUSE=0, and while torch fills empty memory (deterministic mode)
    monkeypatch.setenv("NNAUDIO_DATA_REUSE", "0")
    _memory.empty(shape, **kw)
    assert not _memory._blocks
    monkeypatch.delenv("NNAUDIO_DATA_REUSE")
    _memory.empty(shape, **kw).fill_(3.0)
    torch.use_deterministic_algorithms(True)
    try:
        assert torch.isnan(_memory.empty(shape, **kw)).all()  # torch's fill, not the old 3.0
    finally:
        torch.use_deterministic_algorithms(False)
    _memory.release()


@pytest.mark.parametrize(
    ("center", "n_fft", "hop", "time"), [(True, 512, 128, 5000), (False, 400, 160, 4000), (True, 64, 17, 300)]
)  # fmt: skip
def test_kernel_spectrum_by_conv_or_gemm_gives_the_same_numbers_and_gradients(
    center: bool, n_fft: int, hop: int, time: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the trainable (kernel) STFT runs as a strided conv1d or as GEMMs over the frames, whichever
    # was faster on the first call of the shape: force each, compare values and kernel gradients
    # with each other, and the values with the float64 FFT path
    from nnaudio_data.functional import spectral

    x = torch.from_numpy(RNG.standard_normal((3, time)).astype(np.float32))
    stft = STFT(n_fft=n_fft, hop_length=hop, center=center, trainable=True, output_format="Complex")
    results = {}
    for conv in (True, False):
        monkeypatch.setattr(
            spectral,
            "_CONV_FASTER",
            {}.fromkeys(
                [(n_fft, hop, n_fft // 2 + 1, torch.float32, torch.get_num_threads())], conv
            ),
        )
        stft.zero_grad()
        out = stft(x)
        out.pow(2).sum().backward()
        results[conv] = (out.detach(), stft.wcos.grad.clone(), stft.wsin.grad.clone())  # type: ignore[union-attr]
    for a, b in zip(results[True], results[False]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))
    frozen = STFT(n_fft=n_fft, hop_length=hop, center=center, output_format="Complex")
    ref = frozen.double()(x.double())  # the FFT path (tested against librosa elsewhere)
    assert (results[True][0].double() - ref).abs().max() < 1e-4 * ref.abs().max()


def test_kernel_spectrum_times_both_forms_once_per_shape_and_keeps_gemm_for_float64(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nnaudio_data.functional import spectral

    monkeypatch.setattr(spectral, "_CONV_FASTER", {})
    x = torch.randn(2, 3000)
    stft = STFT(n_fft=256, hop_length=64, trainable=True, output_format="Magnitude")
    first = stft(x)
    key = (256, 64, 129, torch.float32, torch.get_num_threads())
    assert list(spectral._CONV_FASTER) == [key]  # measured on that first call
    spectral._CONV_FASTER[key] = not spectral._CONV_FASTER[key]  # remembered: the other form now
    torch.testing.assert_close(stft(x), first, rtol=1e-4, atol=1e-4)
    stft64 = STFT(
        n_fft=256, hop_length=64, trainable=True, output_format="Magnitude", dtype=torch.float64
    )
    stft64(x.double())
    assert list(spectral._CONV_FASTER) == [key]  # float64: the GEMM form, nothing timed
    for conv in (True, False):  # an empty batch: (0, bins, frames) by either form
        spectral._CONV_FASTER[key] = conv
        assert stft(x[:0]).shape == (0, 129, first.shape[-1])
