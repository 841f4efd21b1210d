"""``features.stft.STFT`` against librosa 0.11 and nnAudio 0.3.4; shapes, lengths, backends,
gradients and errors."""

from __future__ import annotations

import warnings

import librosa
import nnAudio.features as nnaudio
import numpy as np
import pytest
import torch
from conftest import rel_err

from nnaudio_data._transform import Transform
from nnaudio_data.features.stft import STFT

# float32 kernels summing ~n_fft products: librosa (float64 FFT) agrees to ~4e-7; the bar is 1e-5.
TOL32 = 1e-5
# float64 kernels against librosa in float64: rounding of n_fft-term sums only (~1e-15 seen).
TOL64 = 1e-10


def _grid() -> list[tuple[int, int, str, int | None]]:
    """(n_fft, hop_length, window, win_length): nnAudio's own test grid (n_fft 1024 / 2048, hops
    128 / 512, windows ones / hann / hamming; n_fft 512 / 1024 with win_length 400 / 900) widened
    to n_fft 256 .. 2048, an odd n_fft and an odd hop."""
    grid: list[tuple[int, int, str, int | None]] = []
    for n_fft in (256, 512, 1024, 2048):
        for window in ("ones", "hann", "hamming"):
            for hop in sorted({n_fft // 4, 128, 512}):
                if hop <= n_fft // 2:
                    grid.append((n_fft, hop, window, None))
    for n_fft, win_length in ((512, 400), (1024, 400), (1024, 900), (2048, 1500), (256, 200)):
        for hop in (128, 256):
            if hop <= n_fft // 2:
                grid.append((n_fft, hop, "hann", win_length))
    grid += [(511, 100, "hann", None), (1023, 333, "hamming", 700)]
    return grid


def _librosa_window(window: str) -> str:
    return "boxcar" if window == "ones" else window


@pytest.mark.parametrize("backend", ["conv", "fft"])
@pytest.mark.parametrize(("n_fft", "hop", "window", "win_length"), _grid())
def test_stft_matches_librosa(
    signals: np.ndarray, backend: str, n_fft: int, hop: int, window: str, win_length: int | None
) -> None:
    t = STFT(n_fft=n_fft, hop_length=hop, window=window, win_length=win_length, backend=backend)
    x = torch.tensor(signals, dtype=torch.float32)
    ref = librosa.stft(
        signals,
        n_fft=n_fft,
        hop_length=hop,
        win_length=win_length,
        window=_librosa_window(window),
        pad_mode="reflect",
    )
    spec = t(x)
    assert spec.shape == (*ref.shape, 2) and spec.dtype == torch.float32
    assert rel_err(torch.view_as_complex(spec.contiguous()), ref) <= TOL32
    assert rel_err(t(x, output_format="Magnitude"), np.abs(ref)) <= TOL32


@pytest.mark.parametrize("backend", ["conv", "fft"])
@pytest.mark.parametrize(("center", "pad_mode"), [(True, "constant"), (False, "reflect")])
def test_stft_padding_matches_librosa(
    signals: np.ndarray, backend: str, center: bool, pad_mode: str
) -> None:
    t = STFT(n_fft=1024, hop_length=256, center=center, pad_mode=pad_mode, backend=backend)
    ref = librosa.stft(signals, n_fft=1024, hop_length=256, center=center, pad_mode=pad_mode)
    spec = t(torch.tensor(signals, dtype=torch.float32))
    assert rel_err(torch.view_as_complex(spec.contiguous()), ref) <= TOL32


@pytest.mark.parametrize("backend", ["conv", "fft"])
@pytest.mark.parametrize(
    ("n_fft", "hop", "window", "win_length"),
    [(2048, 512, "hann", None), (1024, 128, "hamming", 900), (511, 100, "ones", 300)],
)
def test_float64_kernels_match_librosa_float64(
    signals: np.ndarray, backend: str, n_fft: int, hop: int, window: str, win_length: int | None
) -> None:
    t = STFT(
        n_fft=n_fft,
        hop_length=hop,
        window=window,
        win_length=win_length,
        dtype="float64",
        backend=backend,
    )
    spec = t(torch.tensor(signals), output_format="Complex")
    assert spec.dtype == torch.float64
    ref = librosa.stft(
        signals,
        n_fft=n_fft,
        hop_length=hop,
        win_length=win_length,
        window=_librosa_window(window),
        pad_mode="reflect",
        dtype=np.complex128,
    )
    assert rel_err(torch.view_as_complex(spec.contiguous()), ref) <= TOL64
    assert rel_err(t(torch.tensor(signals), output_format="Magnitude"), np.abs(ref)) <= TOL64


def _phase_err(ours: torch.Tensor, ref: torch.Tensor, mag: torch.Tensor) -> float:
    """Magnitude-weighted phase error ||m e^{i a} - m e^{i b}|| / ||m||: where the magnitude is
    ~0 the phase is rounding noise in both libraries and carries no weight."""
    m = mag.detach().double()
    return rel_err(m * torch.exp(1j * ours.double()), m * torch.exp(1j * ref.double()))


@pytest.mark.parametrize("freq_scale", ["no", "linear", "log", "log2"])
@pytest.mark.parametrize(
    ("n_fft", "hop", "win_length", "freq_bins", "center"),
    [(1024, 256, None, None, True), (512, 128, 400, 100, True), (2048, 512, None, 300, False)],
)
def test_stft_matches_nnaudio(
    signals: np.ndarray,
    freq_scale: str,
    n_fft: int,
    hop: int,
    win_length: int | None,
    freq_bins: int | None,
    center: bool,
) -> None:
    kw = dict(
        n_fft=n_fft,
        hop_length=hop,
        win_length=win_length,
        freq_bins=freq_bins,
        freq_scale=freq_scale,
        center=center,
        fmin=60,
        fmax=7000,
        sr=22050,
    )
    ref_t = nnaudio.STFT(**kw, verbose=False)
    ours_t = STFT(**kw)
    x = torch.tensor(signals, dtype=torch.float32)
    for fmt in ("Complex", "Magnitude"):
        ref, ours = ref_t(x, output_format=fmt), ours_t(x, output_format=fmt)
        assert ours.shape == ref.shape
        # nnAudio's float32 conv1d and our matmul / FFT round differently: ~6e-7 seen
        assert rel_err(ours, ref) <= TOL32
    mag = ours_t(x, output_format="Magnitude")
    ref_phase, phase = ref_t(x, output_format="Phase"), ours_t(x, output_format="Phase")
    assert phase.shape == ref_phase.shape == mag.shape
    assert _phase_err(phase, ref_phase, mag) <= TOL32


def test_trainable_stft_matches_nnaudio_trainable_complex(signals: np.ndarray) -> None:
    ref_t = nnaudio.STFT(n_fft=512, hop_length=128, trainable=True, verbose=False)
    ours_t = STFT(n_fft=512, hop_length=128, trainable=True)
    x = torch.tensor(signals, dtype=torch.float32)
    assert rel_err(ours_t(x), ref_t(x)) <= TOL32
    # nnAudio adds 1e-8 under the square root of a trainable magnitude (1e-4 where the spectrum
    # is 0); we do not (exact value, finite gradient by a safe square root): put it back to compare
    ours = ours_t(x, "Magnitude")
    assert rel_err(torch.sqrt(ours**2 + 1e-8), ref_t(x, output_format="Magnitude")) <= TOL32


def test_fast_path_equals_conv_path(device: str, signals: np.ndarray) -> None:
    x = torch.tensor(signals, dtype=torch.float32, device=device)
    conv = STFT(n_fft=1024, hop_length=200, win_length=800, backend="conv").to(device)
    fast = STFT(n_fft=1024, hop_length=200, win_length=800, backend="auto").to(device)
    assert fast.use_fft and not conv.use_fft
    for fmt in ("Complex", "Magnitude"):
        assert rel_err(fast(x, fmt), conv(x, fmt)) <= TOL32
    assert _phase_err(fast(x, "Phase"), conv(x, "Phase"), conv(x, "Magnitude")) <= TOL32
    # the decision is an attribute: switching it changes the path, not the numbers
    fast.use_fft = False
    assert torch.equal(fast(x), conv(x))


def test_backend_selection() -> None:
    assert STFT(n_fft=256).use_fft
    assert not STFT(n_fft=256, trainable=True).use_fft
    assert not STFT(n_fft=256, freq_scale="log").use_fft
    assert not STFT(n_fft=256, backend="conv").use_fft
    with pytest.raises(ValueError, match="backend='fft' needs frozen kernels"):
        STFT(n_fft=256, trainable=True, backend="fft")
    with pytest.raises(ValueError, match="backend"):
        STFT(n_fft=256, backend="cuda")


@pytest.mark.parametrize("backend", ["conv", "fft"])
def test_shapes_batch_and_channels(device: str, signals: np.ndarray, backend: str) -> None:
    t = STFT(n_fft=256, hop_length=64, backend=backend).to(device)
    x = torch.tensor(signals, dtype=torch.float32, device=device)
    batched = t(x, "Magnitude")
    per_item = torch.cat([t(row, "Magnitude") for row in x])  # (time,) -> (1, F, T)
    assert batched.shape == (3, 129, 1 + x.shape[-1] // 64)
    # sums of 256 float32 products in whatever order the backend picks for the batch size (cuDNN
    # chooses its convolution algorithm per shape): a few ulps of the spectrum's peak (seen on an
    # H200: 1.3e-5 at a peak of ~40, 2e-7 of it)
    peak = float(batched.abs().max())
    torch.testing.assert_close(batched, per_item, rtol=1e-6, atol=1e-5 * peak)
    assert torch.equal(t(x.unsqueeze(1), "Magnitude"), batched)  # (B, 1, T) as nnAudio
    stereo = torch.stack([x[:2], x[1:]], dim=1)  # (2, 2, T)
    out = t(stereo)
    assert out.shape == (2, 2, 129, batched.shape[-1], 2)
    torch.testing.assert_close(out[1, 0], t(x[1:2])[0], rtol=1e-6, atol=1e-5 * peak)
    assert t(stereo, "Magnitude").shape == (2, 2, 129, batched.shape[-1])


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("n_fft", [256, 255])
def test_lengths_and_num_frames(center: bool, n_fft: int) -> None:
    t = STFT(n_fft=n_fft, hop_length=100, center=center, output_format="Magnitude")
    lengths = torch.tensor([300, 399, 400, 1000, 1234])
    frames = t.output_lengths(lengths)
    for n, f in zip(lengths.tolist(), frames.tolist()):
        assert t(torch.randn(n)).shape[-1] == f == t.num_frames(n)
    assert t.time_dim == -1 and STFT(n_fft=256).time_dim == -2


def test_float64_input_through_float32_transform(signals: np.ndarray) -> None:
    t = STFT(n_fft=512, hop_length=128, backend="conv")
    out = t(torch.tensor(signals), "Magnitude")
    assert out.dtype == torch.float64  # the promotion of the input's and the kernels' dtypes
    ref = np.abs(librosa.stft(signals, n_fft=512, hop_length=128, pad_mode="reflect"))
    assert rel_err(out, ref) <= TOL32  # float32 kernels limit the accuracy
    assert t(torch.tensor(signals, dtype=torch.float16), "Magnitude").dtype == torch.float32


def test_two_sided_output(signals: np.ndarray) -> None:
    t = STFT(n_fft=256, hop_length=64)
    x = torch.tensor(signals[:1], dtype=torch.float32)
    full = t(x, "Complex", onesided=False)
    ref = np.fft.fft(
        librosa.util.frame(np.pad(signals[0], 128, mode="reflect"), frame_length=256, hop_length=64)
        * librosa.filters.get_window("hann", 256)[:, None],
        axis=0,
    )
    assert full.shape == (1, 256, ref.shape[1], 2)
    assert rel_err(torch.view_as_complex(full[0].contiguous()), ref) <= TOL32
    assert rel_err(t(x, "Magnitude", onesided=False)[0], np.abs(ref)) <= TOL32
    with pytest.raises(ValueError, match="onesided=False needs freq_scale='no'"):
        STFT(n_fft=256, freq_scale="log")(x, onesided=False)


def test_trainable_kernels_are_parameters_and_learn() -> None:
    torch.manual_seed(0)
    t = STFT(n_fft=64, hop_length=16, trainable=True, output_format="Magnitude")
    names = {n for n, _ in t.named_parameters()}
    assert names == {"wcos", "wsin"} and t.wcos.shape == (33, 1, 64)  # nnAudio's shapes
    assert set(t.state_dict()) == {"wcos", "wsin"}
    x = torch.randn(4, 512)
    target = torch.zeros_like(t(x))
    opt = torch.optim.Adam(t.parameters(), lr=2e-2)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(t(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_frozen_kernels_are_non_persistent_buffers(device: str) -> None:
    t = STFT(n_fft=64, iSTFT=True, backend="conv")
    assert list(t.parameters()) == []
    assert t.state_dict() == {}
    names = {n for n, _ in t.named_buffers()}
    assert {"wcos", "wsin", "window_mask", "kernel_cos_inv", "kernel_sin_inv"} <= names
    t.to(device)
    assert all(b.device.type == device for b in t.buffers())
    # on the FFT path the kernels are built when first asked for, on the module's device
    lazy = STFT(n_fft=64, iSTFT=True).to(device)
    assert {n for n, _ in lazy.named_buffers()} == {"window_mask"}
    assert lazy.wcos.device.type == device and lazy.kernel_sin_inv.device.type == device
    assert lazy.state_dict() == {}


@pytest.mark.parametrize("fmt", ["Magnitude", "Complex"])
@pytest.mark.parametrize("backend", ["conv", "fft"])
def test_no_nan_gradient_for_silence(fmt: str, backend: str) -> None:
    trainable = backend == "conv"
    t = STFT(n_fft=64, hop_length=16, trainable=trainable, backend=backend, output_format=fmt)
    x = torch.zeros(2, 256, requires_grad=True)
    t(x).sum().backward()
    assert torch.isfinite(x.grad).all()  # type: ignore[arg-type]
    if trainable:
        assert torch.isfinite(t.wcos.grad).all() and torch.isfinite(t.wsin.grad).all()  # type: ignore[arg-type]


def test_magnitude_gradient_is_finite_where_the_spectrum_vanishes() -> None:
    # a DC signal of 1: every bin but DC is exactly zero for a rectangular window
    t = STFT(
        n_fft=16,
        hop_length=16,
        window="ones",
        center=False,
        trainable=True,
        output_format="Magnitude",
    )
    x = torch.ones(1, 64, requires_grad=True)
    out = t(x)
    assert (out[0, 1:] < 1e-5).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(t.wcos.grad).all()  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["Magnitude", "Complex"])
@pytest.mark.parametrize("backend", ["conv", "fft"])
def test_gradcheck_float64(fmt: str, backend: str) -> None:
    trainable = backend == "conv"
    t = STFT(
        n_fft=16,
        hop_length=4,
        trainable=trainable,
        backend=backend,
        output_format=fmt,
        dtype="float64",
    )
    x = torch.randn(2, 40, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: t(inp), (x,), fast_mode=True)
    if trainable:
        assert torch.autograd.gradcheck(
            lambda wc, ws: torch.func.functional_call(t, {"wcos": wc, "wsin": ws}, (x.detach(),)),
            (t.wcos.detach().clone().requires_grad_(), t.wsin.detach().clone().requires_grad_()),
            fast_mode=True,
        )


@pytest.mark.parametrize("kw", [{"backend": "auto"}, {"backend": "conv", "trainable": True}])
def test_torch_compile_equals_eager(kw: dict[str, object]) -> None:
    t = STFT(n_fft=128, hop_length=32, output_format="Magnitude", **kw)  # type: ignore[arg-type]
    x = torch.randn(2, 1000)
    compiled = torch.compile(t, dynamic=False)
    torch.testing.assert_close(compiled(x), t(x), rtol=1e-5, atol=1e-5)


def test_forward_is_pure() -> None:
    t = STFT(n_fft=128, hop_length=32)
    before = dict(vars(t))
    t(torch.randn(2, 1000))
    t(torch.randn(1000), output_format="Phase")
    assert vars(t).keys() == before.keys()
    assert all(vars(t)[k] is v for k, v in before.items())


def test_config_round_trip_and_quiet(
    capsys: pytest.CaptureFixture[str], signals: np.ndarray
) -> None:
    t = STFT(
        n_fft=256,
        hop_length=64,
        window=("kaiser", 6.0),
        freq_scale="log",
        fmin=40,
        fmax=8000,
        output_format="Magnitude",
        dtype=torch.float64,
        verbose=True,
    )
    cfg = t.get_config()
    assert cfg["window"] == ["kaiser", 6.0] and cfg["dtype"] == "float64"
    rebuilt = Transform.from_config(cfg)
    x = torch.tensor(signals)
    assert torch.equal(rebuilt(x), t(x))
    assert capsys.readouterr().out == ""
    assert len(t.bins2freq) == 129 and t.bins2freq[0] == pytest.approx(40.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_fft": 0}, "n_fft"),
        ({"n_fft": 256, "win_length": 512}, "win_length"),
        ({"n_fft": 256, "hop_length": 0}, "hop_length"),
        ({"n_fft": 2, "hop_length": None}, "hop_length"),
        ({"n_fft": 256, "freq_bins": -3}, "freq_bins"),
        ({"n_fft": 256, "window": "nonsense"}, "window"),
        ({"n_fft": 256, "freq_scale": "mel"}, "freq_scale"),
        ({"n_fft": 256, "freq_scale": "log", "fmin": 0}, "fmin"),
        ({"n_fft": 256, "freq_scale": "linear", "fmin": 9000, "fmax": 100}, "fmax"),
        ({"n_fft": 256, "center": "yes"}, "center"),
        ({"n_fft": 256, "pad_mode": "mirror"}, "pad_mode"),
        ({"n_fft": 256, "iSTFT": 1}, "iSTFT"),
        ({"n_fft": 256, "sr": -1}, "sr"),
        ({"n_fft": 256, "trainable": None}, "trainable"),
        ({"n_fft": 256, "output_format": "magnitude"}, "output_format"),
        ({"n_fft": 256, "dtype": torch.int32}, "dtype"),
        ({"n_fft": 256, "iSTFT": True, "freq_bins": 10}, "freq_bins"),
    ],
)
def test_bad_parameters_raise(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        STFT(**kwargs)  # type: ignore[arg-type]


def test_bad_inputs_raise() -> None:
    t = STFT(n_fft=256, hop_length=64)
    with pytest.raises(ValueError, match=r"shape \(1, 2, 3, 400\)"):
        t(torch.randn(1, 2, 3, 400))
    with pytest.raises(ValueError, match="floating dtype"):
        t(torch.ones(2, 400, dtype=torch.int16))
    with pytest.raises(ValueError, match=r"torch\.Tensor"):
        t(np.zeros(400))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="0 samples"):
        t(torch.randn(2, 0))
    assert STFT(n_fft=256, pad_mode="constant")(torch.randn(2, 100)).shape[-2] == t.num_frames(100)
    with pytest.raises(ValueError, match="center=False needs at least n_fft=256"):
        STFT(n_fft=256, center=False)(torch.randn(2, 100))
    with pytest.raises(ValueError, match="output_format"):
        t(torch.randn(400), output_format="Power")
    with pytest.raises(ValueError, match="onesided"):
        t(torch.randn(400), onesided="no")  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [1, 5, 100])
@pytest.mark.parametrize("backend", ["fft", "conv"])
def test_shorter_than_the_reflect_padding_matches_librosa(n: int, backend: str) -> None:
    """Clips of n <= n_fft // 2 samples: the reflection repeats as numpy.pad's (librosa's) does."""
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    ours = STFT(n_fft=256, hop_length=64, output_format="Complex", backend=backend)
    got = ours(torch.from_numpy(x))[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # librosa: "n_fft=256 is too large ..."
        ref = librosa.stft(x, n_fft=256, hop_length=64, pad_mode="reflect")
    # float32 sums of 256 products: 1e-5 relative, as for the full-length grid
    assert rel_err(torch.view_as_complex(got.contiguous()), ref) < 1e-5
    assert got.shape[-2] == ours.num_frames(n)
