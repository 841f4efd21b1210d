"""``features.cqt.iCQT``: reconstruction error against ``librosa.icqt`` on the same signals."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import scipy.signal
import torch

from nnaudio_data.features.cqt import CQT1992v2, iCQT

SR = 22050


@pytest.fixture(scope="module")
def inband() -> np.ndarray:
    """A sweep 60 Hz - 3 kHz, a chord and band-passed noise (80 Hz - 3 kHz): inside the band of
    84 bins from 32.7 Hz (top bin 3.95 kHz), so that a perfect inverse exists."""
    n = int(SR * 1.5)
    t = np.arange(n) / SR
    sweep = scipy.signal.chirp(t, f0=60, f1=3000, t1=t[-1], method="logarithmic")
    chord = sum(np.sin(2 * np.pi * f * t + p) for f, p in ((220, 0.1), (277.2, 1), (329.6, 2)))
    b, a = scipy.signal.butter(4, [80 / (SR / 2), 3000 / (SR / 2)], "band")
    noise = scipy.signal.lfilter(b, a, np.random.default_rng(0).standard_normal(n))
    return np.stack([0.5 * sweep, chord / 3, noise / (3 * noise.std())])


def _err(a: np.ndarray, b: np.ndarray) -> float:
    """Relative error away from the edges (where neither inverse has the full set of frames)."""
    sl = slice(4096, -4096)
    return float(np.linalg.norm(a[sl] - b[sl]) / np.linalg.norm(b[sl]))


def test_reconstruction_at_least_as_good_as_librosa(inband: np.ndarray) -> None:
    n = inband.shape[-1]
    c = librosa.cqt(inband, sr=SR, fmin=32.7, n_bins=84, tuning=0.0)
    theirs = librosa.icqt(c, sr=SR, fmin=32.7, tuning=0.0, length=n)
    cqt = CQT1992v2(sr=SR, q_mode="librosa", output_format="Complex", dtype="float64")
    ours = iCQT(sr=SR, q_mode="librosa", n_iter=6, dtype="float64")(cqt(torch.tensor(inband)), n)
    assert ours.shape == inband.shape
    for i in range(3):
        e_ours, e_theirs = _err(ours[i].numpy(), inband[i]), _err(theirs[i], inband[i])
        # sweep, chord, noise: 0.45, 0.007, 0.74 vs librosa 0.91, 0.084, 1.34 seen
        assert e_ours <= e_theirs, (i, e_ours, e_theirs)
    assert _err(ours[1].numpy(), inband[1]) < 0.02  # the chord comes back within 2 %


def test_iterations_lower_the_error(inband: np.ndarray) -> None:
    y = torch.tensor(inband[2:], dtype=torch.float32)
    c = CQT1992v2(sr=SR, output_format="Complex")(y)
    e0 = _err(iCQT(sr=SR, n_iter=0)(c, y.shape[-1])[0].numpy(), inband[2])
    e4 = _err(iCQT(sr=SR, n_iter=4)(c, y.shape[-1])[0].numpy(), inband[2])
    assert e4 < 0.5 * e0


@pytest.mark.parametrize("norm", ["librosa", "wrap", "convolutional"])
def test_normalization_types_and_shapes(norm: str) -> None:
    y = torch.tensor(np.sin(2 * np.pi * 440 * np.arange(16384) / SR), dtype=torch.float32)
    cqt = CQT1992v2(sr=SR, fmin=110.0, n_bins=48, output_format="Complex")
    inv = iCQT(sr=SR, fmin=110.0, n_bins=48, n_iter=8, normalization_type=norm)
    c = cqt(torch.stack([y, 0.5 * y]), normalization_type=norm)
    out = inv(c)
    assert out.shape == (2, (c.shape[2] - 1) * 512) == (2, int(inv.output_lengths(c.shape[2])))
    mid = slice(4096, 12288)
    # a steady in-band sine: within 5 % (hop 512 against 48 bins from 110 Hz)
    assert float((out[0, mid] - y[mid]).norm() / y[mid].norm()) < 0.05
    torch.testing.assert_close(out[1], 0.5 * out[0], rtol=1e-4, atol=1e-5)
    stereo = inv(torch.stack([c, c], 1))
    assert stereo.shape == (2, 2, out.shape[-1])
    assert inv(torch.view_as_complex(c.contiguous()), 4000).shape == (2, 4000)


def test_bad_input() -> None:
    inv = iCQT(n_bins=48, fmin=110.0)
    with pytest.raises(ValueError, match="shape"):
        inv(torch.zeros(1, 47, 10, 2))
    with pytest.raises(ValueError, match="n_iter"):
        iCQT(n_iter=-1)
    with pytest.raises(ValueError, match="normalization_type"):
        iCQT(normalization_type="peak")


def test_config_round_trip() -> None:
    from nnaudio_data._transform import Transform

    inv = iCQT(sr=SR, fmin=110.0, n_bins=48, n_iter=2)
    again = Transform.from_config(inv.get_config())
    c = CQT1992v2(sr=SR, fmin=110.0, n_bins=48, output_format="Complex")(torch.randn(1, 8192))
    torch.testing.assert_close(again(c), inv(c))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fft_domain_adjoint_is_the_transpose(dtype: torch.dtype) -> None:
    # <A x, y> == <x, A^T y> for the folded-spectrum forward and its adjoint (time-domain groups
    # and folded bins), to rounding
    from nnaudio_data.functional._folded import adjoint_fold_plan, apply_fold_plan

    cqt = CQT1992v2(sr=SR, dtype=dtype)
    n = 20000 + cqt.kernel_width
    plan = cqt.fold_plan(n, torch.device("cpu"), dtype)
    assert plan.groups and plan.folds
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, n, generator=gen, dtype=dtype)
    re, im = apply_fold_plan(x, plan)
    a, b = (
        torch.randn(re.shape, generator=gen, dtype=dtype),
        torch.randn(im.shape, generator=gen, dtype=dtype),
    )
    lhs = float((re * a).sum() + (im * b).sum())
    rhs = float((x * adjoint_fold_plan(a, b, plan, n)).sum())
    assert abs(lhs - rhs) <= (1e-12 if dtype == torch.float64 else 1e-4) * abs(lhs)


def test_fft_domain_passes_match_the_conv_kernels(inband: np.ndarray) -> None:
    # the FFT-domain forward / adjoint pair solves the same least-squares problem as the conv
    # kernels: the waveforms agree to the fold path's truncation (3e-5 of each wavelet's amplitude)
    y = torch.tensor(inband[:2, :16384])
    c = CQT1992v2(sr=SR, output_format="Complex", dtype="float64")(y)
    fft = iCQT(sr=SR, n_iter=3, dtype="float64")
    conv = iCQT(sr=SR, n_iter=3, dtype="float64", backend="conv")
    assert fft.cqt.uses_fft_path and not conv.cqt.uses_fft_path
    a, b = fft(c, y.shape[-1]), conv(c, y.shape[-1])
    assert float((a - b).norm() / b.norm()) < 1e-4
