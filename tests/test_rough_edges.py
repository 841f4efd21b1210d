"""What a new user hit (issue 9's list, the transform side), each a clear ValueError or one
documented behaviour instead of a silent wrong answer."""

from __future__ import annotations

import pytest
import torch

from nnaudio_data.compose import Compose
from nnaudio_data.features import (
    MFCC,
    STFT,
    CQT1992v2,
    Gammatonegram,
    KaldiFbank,
    MelSpectrogram,
    WhisperLogMel,
)
from nnaudio_data.ops import Log


def test_a_time_channels_array_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\(8000, 2\).*\(time, channels\).*x\.T"):
        STFT(n_fft=512)(torch.randn(8000, 2))
    with pytest.raises(ValueError, match=r"x\.T"):
        MelSpectrogram(sr=16000, n_fft=512, n_mels=20)(torch.randn(8000, 2))
    assert STFT(n_fft=512)(torch.randn(2, 8000)).shape[0] == 2  # (channels, time) is fine


@pytest.mark.parametrize(
    "make",
    [lambda: STFT(n_fft=256, hop_length=64), lambda: KaldiFbank(num_mel_bins=20),
     lambda: WhisperLogMel(pad=False), lambda: MelSpectrogram(sr=16000, n_fft=256, n_mels=20)],
)  # fmt: skip
def test_output_lengths_reject_nonsense_and_agree_with_forward(make: object) -> None:
    t = make()  # type: ignore[operator]
    with pytest.raises(ValueError, match=">= 0"):
        t.output_lengths(torch.tensor([-5]))
    with pytest.raises(ValueError, match="whole numbers"):
        t.output_lengths(torch.tensor([100.5]))
    assert t.output_lengths(torch.tensor([0])).tolist() == [0]  # no frame for no sample
    n = 4000
    out = t(torch.randn(1, n))
    time_dim = -2 if out.ndim == 4 else -1
    assert t.output_lengths(torch.tensor([n])).tolist() == [out.shape[time_dim]]


def test_compose_checks_lengths_against_the_batch() -> None:
    chain = Compose(MelSpectrogram(sr=16000, n_fft=256, hop_length=128, n_mels=20), Log())
    x = torch.randn(2, 1000)
    with pytest.raises(ValueError, match="up to 1200"):
        chain(x, lengths=torch.tensor([1200, 500]))
    with pytest.raises(ValueError, match=r"one length per item.*\(2,\)"):
        chain(x, lengths=torch.tensor([1000, 500, 300]))
    assert chain(x, lengths=torch.tensor([1000, 500])).shape == (2, 20, 8)


def test_fmax_above_nyquist_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"fmax=12000.*Nyquist.*8000"):
        MelSpectrogram(sr=16000, n_fft=2048, n_mels=40, fmax=12000)
    with pytest.raises(ValueError, match=r"fmax=12000.*Nyquist"):
        STFT(freq_scale="linear", sr=16000, fmax=12000)


@pytest.mark.parametrize(
    "make",
    [lambda: STFT(n_fft=256, output_format="Magnitude"),
     lambda: MelSpectrogram(sr=16000, n_fft=256, n_mels=20),
     lambda: MFCC(sr=16000, n_mels=20, n_fft=256),
     lambda: Gammatonegram(sr=16000, n_fft=256, n_bins=20),
     lambda: CQT1992v2(sr=16000, hop_length=256, n_bins=24, fmin=100.0),
     lambda: KaldiFbank(num_mel_bins=20), lambda: WhisperLogMel(pad=False)],
)  # fmt: skip
def test_half_precision_input_is_computed_in_float32(make: object) -> None:
    t = make()  # type: ignore[operator]
    x = torch.randn(2, 4000) * 0.3
    out = t(x.half())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, t(x.half().float()), rtol=0, atol=0)
