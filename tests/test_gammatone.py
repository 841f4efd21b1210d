"""``features.gammatone.Gammatonegram`` and ``kernels.gammatone`` against nnAudio 0.3.4."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import make_signals, rel_err
from nnAudio.features import Gammatonegram as NNGammatonegram
from nnAudio.librosa_functions import get_gammatone

from nnaudio_data.features.gammatone import Gammatonegram
from nnaudio_data.kernels.gammatone import gammatone_filterbank

# float32 STFTs (ours by FFT, nnAudio's by conv kernels) then the same float32 weights: ~1e-6 seen
TOL = 1e-4


@pytest.fixture(autouse=True)
def _quiet() -> None:
    warnings.filterwarnings("ignore", category=UserWarning, module="nnAudio")


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_bins", "fmin", "fmax"),
    [(22050, 2048, 64, 0.0, None), (16000, 512, 40, 50.0, 7000.0), (44100, 1024, 128, 20.0, None)],
)
def test_filterbank_matches_nnaudio(
    sr: int, n_fft: int, n_bins: int, fmin: float, fmax: float | None
) -> None:
    ours = gammatone_filterbank(sr, n_fft, n_bins, fmin, fmax)
    ref = get_gammatone(sr, n_fft, n_bins, fmin, fmax)
    assert ours.shape == ref.shape == (n_bins, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-12)  # same float32 formula


@pytest.mark.parametrize(
    "kw",
    [
        {},
        dict(sr=16000, n_fft=512, hop_length=160, n_bins=40, fmin=50.0, power=1.0),
        dict(n_fft=1024, win_length=800, hop_length=256, center=False),
    ],
)
def test_gammatonegram_matches_nnaudio(kw: dict) -> None:
    sr = int(kw.get("sr", 22050))
    x = torch.tensor(make_signals(sr, 1.0), dtype=torch.float32)
    ref = NNGammatonegram(verbose=False, **kw)(x)
    m = Gammatonegram(**kw)
    got = m(x)
    assert got.shape == ref.shape
    assert rel_err(got, ref) < TOL
    assert got.shape[-1] == int(m.output_lengths(torch.tensor(x.shape[-1])))


def test_channels_float64_and_trainable() -> None:
    x = torch.tensor(make_signals(16000, 0.5))
    m = Gammatonegram(sr=16000, n_fft=512, n_bins=32, trainable_bins=True, dtype="float64")
    out = m(torch.stack([x, x], 1))
    assert out.shape[:3] == (3, 2, 32) and out.dtype == torch.float64
    torch.testing.assert_close(out[:, 1], m(x))
    out.sum().backward()
    assert m.gammatone_basis.grad is not None and m.gammatone_basis.grad.abs().sum() > 0
    frozen = Gammatonegram(sr=16000, n_fft=512, n_bins=32)
    assert len(list(frozen.parameters())) == 0
    assert rel_err(frozen(x.float()), out[:, 0]) < 1e-5


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="htk"):
        Gammatonegram(htk=True)
    with pytest.raises(ValueError, match="norm"):
        Gammatonegram(norm=2)
    with pytest.raises(ValueError, match="fmax"):
        Gammatonegram(fmin=5000.0, fmax=1000.0)
    with pytest.raises(ValueError, match="n_bins"):
        Gammatonegram(n_bins=0)
    # the STFT's keywords: only iSTFT passes on (as nnAudio's **kwargs), checked as the mel's
    with pytest.raises(ValueError, match="freq_bin"):
        Gammatonegram(freq_bin=10)
    with pytest.raises(ValueError, match="trainable_STFT"):
        Gammatonegram(trainable_STFT=1)
    with pytest.raises(ValueError, match="dtype"):
        Gammatonegram(dtype="int32")
    assert Gammatonegram(n_fft=512, iSTFT=True).stft.iSTFT


def test_config_round_trip() -> None:
    from nnaudio_data._transform import Transform

    m = Gammatonegram(sr=16000, n_fft=512, n_bins=32, power=1.0)
    again = Transform.from_config(m.get_config())
    x = torch.tensor(make_signals(16000, 0.25)[:1], dtype=torch.float32)
    torch.testing.assert_close(again(x), m(x))
