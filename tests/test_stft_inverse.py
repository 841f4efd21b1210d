"""The inverse STFT (``STFT(iSTFT=True).inverse`` and ``iSTFT``) against the signal it came from,
librosa 0.11's ``istft`` and nnAudio 0.3.4."""

from __future__ import annotations

import librosa
import nnAudio.features as nnaudio
import numpy as np
import pytest
import torch
from conftest import rel_err
from nnAudio.utils import create_fourier_kernels

from nnaudio_data.features.stft import STFT, iSTFT

# float32 analysis + synthesis of ~n_fft-term sums: ~3e-7 seen; the bar is 1e-5.
TOL32 = 1e-5
# float64: rounding only.
TOL64 = 1e-12

CONFIGS = [
    (1024, 256, None, "hann"),
    (512, 128, 400, "hamming"),
    (2048, 512, None, "hann"),
    (511, 100, 300, "hann"),
]


@pytest.mark.parametrize("backend", ["conv", "fft"])
@pytest.mark.parametrize(("n_fft", "hop", "win_length", "window"), CONFIGS)
def test_round_trip(
    signals: np.ndarray, backend: str, n_fft: int, hop: int, win_length: int | None, window: str
) -> None:
    kw = {"n_fft": n_fft, "hop_length": hop, "win_length": win_length, "window": window}
    stft = STFT(**kw, iSTFT=True, backend=backend)
    inv = iSTFT(**kw, backend=backend)
    x = torch.tensor(signals, dtype=torch.float32)
    spec = stft(x)
    n = x.shape[-1]
    assert rel_err(stft.inverse(spec, length=n), x) <= TOL32
    assert rel_err(inv(spec, onesided=True, length=n), x) <= TOL32
    full = stft(x, onesided=False)
    assert rel_err(stft.inverse(full, onesided=False, length=n), x) <= TOL32
    assert rel_err(inv(full, length=n), x) <= TOL32  # iSTFT's default is onesided=False
    # length=None trims n_fft // 2 at both ends: the frames' span
    assert (
        inv(spec, onesided=True).shape[-1] == inv.output_lengths(torch.tensor(spec.shape[2])).item()
    )


def test_round_trip_float64(signals: np.ndarray) -> None:
    stft = STFT(n_fft=512, hop_length=128, iSTFT=True, dtype="float64", backend="conv")
    x = torch.tensor(signals)
    y = stft.inverse(stft(x), length=x.shape[-1])
    assert y.dtype == torch.float64 and rel_err(y, x) <= TOL64


def test_round_trip_without_centre_in_the_interior(signals: np.ndarray) -> None:
    # without centring the first and last samples see only the window's zero tail: compare the
    # interior, where the window envelope is well above the 1e-10 floor
    stft = STFT(n_fft=512, hop_length=128, center=False, iSTFT=True)
    x = torch.tensor(signals, dtype=torch.float32)
    y = stft.inverse(stft(x))
    assert y.shape[-1] == 512 + 128 * (stft.num_frames(x.shape[-1]) - 1)
    assert rel_err(y[:, 512:-512], x[:, 512 : y.shape[-1] - 512]) <= TOL32


@pytest.mark.parametrize("backend", ["conv", "fft"])
@pytest.mark.parametrize("n_fft", [256, 255])
def test_inverse_of_any_spectrum_matches_librosa_istft(backend: str, n_fft: int) -> None:
    rng = np.random.default_rng(5)
    spec = rng.standard_normal((2, n_fft // 2 + 1, 30)) + 1j * rng.standard_normal(
        (2, n_fft // 2 + 1, 30)
    )
    ref = librosa.istft(spec, hop_length=64, n_fft=n_fft, window="hann")
    inv = iSTFT(n_fft=n_fft, hop_length=64, backend=backend, dtype="float64")
    ours = inv(torch.tensor(spec), onesided=True)  # a complex tensor is accepted as well
    assert ours.shape == ref.shape
    assert rel_err(ours, ref) <= TOL64
    ref_len = librosa.istft(spec, hop_length=64, n_fft=n_fft, length=3000)
    assert rel_err(inv(torch.tensor(spec), onesided=True, length=3000), ref_len) <= TOL64


@pytest.mark.parametrize(("n_fft", "hop"), [(1024, 256), (512, 128)])
def test_inverse_matches_nnaudio(signals: np.ndarray, n_fft: int, hop: int) -> None:
    x = torch.tensor(signals, dtype=torch.float32)
    ref_stft = nnaudio.STFT(n_fft=n_fft, hop_length=hop, iSTFT=True, verbose=False)
    spec = ref_stft(x)
    ours = STFT(n_fft=n_fft, hop_length=hop, iSTFT=True, backend="conv")
    assert (
        rel_err(ours.inverse(spec, length=x.shape[-1]), ref_stft.inverse(spec, length=x.shape[-1]))
        <= TOL32
    )
    assert rel_err(ours.inverse(spec), ref_stft.inverse(spec)) <= TOL32
    ref_inv = nnaudio.iSTFT(n_fft=n_fft, hop_length=hop, verbose=False)
    for backend in ("conv", "fft"):
        inv = iSTFT(n_fft=n_fft, hop_length=hop, backend=backend)
        assert rel_err(inv(spec, onesided=True), ref_inv(spec, onesided=True)) <= TOL32


@pytest.mark.parametrize("freq_scale", ["linear", "log", "log2"])
@pytest.mark.parametrize("onesided", [False, True])
def test_inverse_other_scales_is_the_adjoint_of_the_kernels(
    freq_scale: str, onesided: bool
) -> None:
    """For scales other than 'no' a frame is synthesised as ``(C.T @ re - S.T @ im) / n_fft`` with
    nnAudio's own kernels (C, S from ``create_fourier_kernels(freq_bins=n_fft)``), the full
    spectrum mirrored from a one-sided one as nnAudio's ``extend_fbins`` does. (nnAudio 0.3.4's
    conv2d applies the kernel transposed, ``C @ re``, which coincides only for 'no', where the DFT
    matrix is symmetric; we keep the adjoint.) Reference: numpy overlap-add of those frames."""
    n_fft, hop, n_frames = 32, 8, 6
    kw = {"n_fft": n_fft, "hop_length": hop, "freq_scale": freq_scale, "fmin": 50, "fmax": 8000}
    sin, cos, *_ = create_fourier_kernels(
        n_fft,
        freq_bins=n_fft,
        sr=22050,
        verbose=False,
        **{k: v for k, v in kw.items() if k in ("freq_scale", "fmin", "fmax")},
    )
    c, s = cos[:, 0].astype(np.float64), sin[:, 0].astype(np.float64)
    rng = np.random.default_rng(6)
    bins = n_fft // 2 + 1 if onesided else n_fft
    spec = rng.standard_normal((bins, n_frames)) + 1j * rng.standard_normal((bins, n_frames))
    full = np.concatenate([spec, np.conj(spec[1:-1][::-1])]) if onesided else spec
    w = librosa.filters.get_window("hann", n_fft)
    frames = (c.T @ full.real - s.T @ full.imag) / n_fft * w[:, None]
    ref = np.zeros(n_fft + hop * (n_frames - 1))
    wss = np.zeros_like(ref)
    for t in range(n_frames):
        ref[t * hop : t * hop + n_fft] += frames[:, t]
        wss[t * hop : t * hop + n_fft] += w**2
    ref = np.where(wss > 1e-10, ref / np.where(wss > 1e-10, wss, 1.0), ref)
    ours = iSTFT(**kw, center=False, dtype="float64")(torch.tensor(spec)[None], onesided=onesided)
    # nnAudio's kernels are float32: their rounding (6e-8 relative) is the difference
    assert rel_err(ours[0], ref) <= 1e-6


def test_multichannel_and_batch(device: str, signals: np.ndarray) -> None:
    stft = STFT(n_fft=256, hop_length=64, iSTFT=True).to(device)
    x = torch.tensor(signals, dtype=torch.float32, device=device)
    stereo = torch.stack([x[:2], x[1:]], dim=1)  # (2, 2, T)
    y = stft.inverse(stft(stereo), length=x.shape[-1])
    assert y.shape == stereo.shape
    assert rel_err(y, stereo) <= TOL32
    single = stft.inverse(stft(x[0])[0], length=x.shape[-1])  # (F, T, 2) -> (1, time)
    assert single.shape == (1, x.shape[-1])
    torch.testing.assert_close(
        single[0], stft.inverse(stft(x), length=x.shape[-1])[0], rtol=1e-5, atol=1e-6
    )


def test_trainable_istft() -> None:
    inv = iSTFT(n_fft=32, hop_length=8, trainable_kernels=True, trainable_window=True)
    assert {n for n, _ in inv.named_parameters()} == {"kernel_cos", "kernel_sin", "window_mask"}
    assert inv.kernel_cos.shape == (32, 1, 32, 1) and inv.window_mask.shape == (
        1,
        32,
        1,
    )  # nnAudio's
    assert not inv.use_fft
    torch.manual_seed(0)
    x = torch.randn(2, 400)
    spec = STFT(n_fft=32, hop_length=8)(x)
    torch.testing.assert_close(inv(spec, onesided=True, length=400), x, rtol=1e-4, atol=1e-4)
    target = torch.zeros(2, 400)
    opt = torch.optim.Adam(inv.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(inv(spec, onesided=True, length=400), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]
    frozen = iSTFT(n_fft=32)
    assert frozen.state_dict() == {} and frozen.use_fft


@pytest.mark.parametrize("backend", ["conv", "fft"])
def test_gradcheck_float64(backend: str) -> None:
    inv = iSTFT(n_fft=16, hop_length=4, backend=backend, dtype=torch.float64)
    spec = torch.randn(1, 9, 6, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: inv(s, onesided=True), (spec,), fast_mode=True)


def test_torch_compile_equals_eager() -> None:
    inv = iSTFT(n_fft=64, hop_length=16, backend="conv")
    spec = STFT(n_fft=64, hop_length=16)(torch.randn(2, 500))
    torch.testing.assert_close(
        torch.compile(inv, dynamic=False)(spec, onesided=True),
        inv(spec, onesided=True),
        rtol=1e-5,
        atol=1e-5,
    )


def test_bad_inverse_inputs_and_parameters_raise() -> None:
    stft = STFT(n_fft=64, hop_length=16, iSTFT=True)
    spec = stft(torch.randn(2, 500))
    with pytest.raises(ValueError, match="iSTFT=True"):
        STFT(n_fft=64).inverse(spec)
    with pytest.raises(ValueError, match=r"shape \(2, 33, 32\)"):
        stft.inverse(spec[..., 0])  # a magnitude-like tensor
    with pytest.raises(ValueError, match="33 frequency bins; onesided=False"):
        stft.inverse(spec, onesided=False)
    with pytest.raises(ValueError, match="length"):
        stft.inverse(spec, length=0)
    with pytest.raises(ValueError, match="onesided"):
        iSTFT(n_fft=64)(spec, onesided=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="freq_bins"):
        iSTFT(n_fft=64, freq_bins=20)
    with pytest.raises(ValueError, match="backend='fft' needs frozen kernels"):
        iSTFT(n_fft=64, trainable_kernels=True, backend="fft")
    with pytest.raises(ValueError, match="trainable_window"):
        iSTFT(n_fft=64, trainable_window="yes")
    with pytest.raises(ValueError, match="win_length"):
        iSTFT(n_fft=64, win_length=65)
