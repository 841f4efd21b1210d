"""Resample: against scipy.signal.resample_poly and analytic sines, lengths, batches, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import torch
from conftest import make_signals, rel_err

from nnaudio_data import Transform
from nnaudio_data.ops import Resample
from nnaudio_data.ops.resample import CHUNK_BYTES, MAX_RESAMPLE_TERMS, polyphase

RATES = [(22050, 16000), (16000, 22050), (22050, 44100), (48000, 44100), (16000, 8000)]


def _scipy(x: np.ndarray, orig: int, new: int) -> np.ndarray:
    g = math.gcd(orig, new)
    return scipy.signal.resample_poly(x, new // g, orig // g, axis=-1)


@pytest.mark.parametrize(("orig", "new"), RATES)
def test_scipy_design_matches_resample_poly(orig: int, new: int) -> None:
    # With scipy's own design (Kaiser beta 5, 10 zero crossings, cut-off at the lower Nyquist)
    # the filters are the same sinc; scipy scales its prototype filter as a whole to unit DC
    # gain, we scale each polyphase row to unit DC gain, and the rows of scipy's filter deviate
    # from unit gain by up to 7e-4. That difference, not the design, bounds the error (6e-4
    # measured on sweep, chord and noise, which cover the whole band).
    x = make_signals(orig, 0.5)
    ours = Resample(orig, new, lowpass_filter_width=10, rolloff=1.0, beta=5.0)
    y = ours(torch.from_numpy(x)).numpy()
    ref = _scipy(x, orig, new)
    assert y.shape == ref.shape
    for i in range(3):
        assert rel_err(y[i], ref[i]) < 1e-3


@pytest.mark.parametrize(("orig", "new"), RATES)
def test_default_design_matches_resample_poly_in_the_passband(orig: int, new: int) -> None:
    # The default filter cuts at 0.945 of the lower Nyquist and scipy's at 1.0, so the two only
    # agree where both pass the signal: the chord (220-330 Hz) is far inside both passbands;
    # each filter's passband ripple is below 1e-3, hence 2e-3 between the two.
    x = make_signals(orig, 0.5)[1]
    y = Resample(orig, new)(torch.from_numpy(x)).numpy()
    assert rel_err(y, _scipy(x, orig, new)) < 2e-3


@pytest.mark.parametrize(("orig", "new"), [(22050, 16000), (44100, 16000), (16000, 8000)])
def test_passband_and_stopband_against_analytic_sines(orig: int, new: int) -> None:
    t = np.arange(orig) / orig
    r = Resample(orig, new)
    # A tone at 0.4 * new_sr is inside the passband: the output is the same sine sampled at
    # new_sr, to the filter's passband ripple (measured 1.1e-3 of the amplitude) away from the
    # edges (the first and last 0.03 s see the zeros outside the signal).
    f = 0.4 * new
    y = r(torch.from_numpy(np.sin(2 * np.pi * f * t))).numpy()
    ideal = np.sin(2 * np.pi * f * np.arange(y.shape[-1]) / new)
    edge = int(0.03 * new)
    assert np.abs(y - ideal)[edge:-edge].max() < 2e-3
    # A tone at 0.5625 * new_sr (above the new Nyquist, below the old one) must not alias back:
    # the Kaiser beta 8.6 stop band is about 90 dB down (measured -93 dB); require 80 dB.
    f = 0.5625 * new
    y = r(torch.from_numpy(np.sin(2 * np.pi * f * t))).numpy()[edge:-edge]
    level_db = 20 * np.log10(np.sqrt(np.mean(y**2)) / np.sqrt(0.5))
    assert level_db < -80


def test_long_clip_resampled_in_chunks_matches_resample_poly() -> None:
    # 40 s at 8 kHz to 16 kHz: the windows of the 3 rows would take 3 * 320,000 frames * 22 taps
    # * 8 bytes = 169 MB at once; Resample copies them CHUNK_BYTES at a time. With scipy's design
    # the tolerance is that of test_scipy_design_matches_resample_poly (row scaling, 6e-4).
    x = make_signals(8000, 40.0)
    ours = Resample(8000, 16000, lowpass_filter_width=10, rolloff=1.0, beta=5.0)
    taps = ours.kernel.shape[-1]
    frames = x.shape[-1]  # up = 2, down = 1: one frame of 2 output samples per input sample
    assert x.shape[0] * frames * taps * 8 > 8 * CHUNK_BYTES  # many chunks
    y = ours(torch.from_numpy(x)).numpy()
    ref = _scipy(x, 8000, 16000)
    assert y.shape == ref.shape
    for i in range(3):
        assert rel_err(y[i], ref[i]) < 1e-3


@pytest.mark.parametrize(("orig", "new"), [*RATES, (44100, 22050), (8000, 16000)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chunked_equals_unchunked(orig: int, new: int, dtype: torch.dtype) -> None:
    r = Resample(orig, new)
    n = 2000
    x = torch.randn(3, 2, n, dtype=dtype, generator=torch.Generator().manual_seed(0))
    rows = x.reshape(-1, n)
    n_out = math.ceil(n * r.up / r.down)
    frames = math.ceil(n_out / r.up)
    taps = r.kernel.shape[-1]
    rows = torch.nn.functional.pad(rows, (r.pad, (frames - 1) * r.down + taps - r.pad - n))
    kernel = r.kernel[:, 0].to(dtype)
    whole = polyphase(rows, kernel, r.down, frames, frames)
    # the same sums; a matrix product of another height may block them in another order: the
    # dot-product rounding bound, taps * eps * max sum|kernel row| * max|x| (a few ulps in fact)
    bound = taps * torch.finfo(dtype).eps * float(kernel.abs().sum(1).max() * x.abs().max())
    for chunk in (3, 7, frames - 1):
        torch.testing.assert_close(
            polyphase(rows, kernel, r.down, frames, chunk), whole, atol=bound, rtol=0
        )
    # and the forward's own (default) chunking
    expected = whole.reshape(6, -1)[:, :n_out].reshape(3, 2, n_out)
    torch.testing.assert_close(r(x), expected, atol=bound, rtol=0)


def test_refuses_ratios_too_costly_to_build() -> None:
    # 44101 Hz (a corrupt header) to 22050 Hz reduces to 22050 / 44101: ~1e9 coefficients.
    # Refused before any kernel is built, naming both rates.
    with pytest.raises(ValueError, match=r"44101 Hz to 22050 Hz \(orig_sr=44101, new_sr=22050\)"):
        Resample(44101, 22050)
    with pytest.raises(ValueError, match="MAX_RESAMPLE_TERMS"):
        Resample(8000, 8001)
    # the largest usual pair, 11025 -> 32000 (1280 / 441), is accepted
    assert 1280 * 441 <= MAX_RESAMPLE_TERMS
    r = Resample(11025, 32000)
    assert r(torch.zeros(1, 441)).shape == (1, 1280)


@pytest.mark.parametrize(("orig", "new"), RATES)
def test_output_lengths_are_resample_polys(orig: int, new: int) -> None:
    r = Resample(orig, new)
    for n in (1, 2, 3, 159, 441, 1000, 4001):
        expected = _scipy(np.zeros(n), orig, new).shape[-1]
        assert expected == math.ceil(n * new / orig)
        assert int(r.output_lengths(torch.tensor([n]))[0]) == expected
        assert r(torch.zeros(2, n)).shape == (2, expected)


def test_batched_equals_per_item_on_valid_parts() -> None:
    x = torch.from_numpy(make_signals(22050, 0.3))
    lengths = torch.tensor([x.shape[-1], 5000, 1234])
    padded = x.clone()
    for i, n in enumerate(lengths):
        padded[i, n:] = 0
    r = Resample(22050, 16000)
    batched = r(padded)
    out_lengths = r.output_lengths(lengths)
    for i, n in enumerate(lengths):
        single = r(x[i, :n])
        assert single.shape[-1] == int(out_lengths[i])
        # float64 throughout: only the summation order differs
        torch.testing.assert_close(batched[i, : int(out_lengths[i])], single, atol=1e-12, rtol=0)


def test_shapes_dtypes_identity_and_rate_check() -> None:
    r = Resample(16000, 8000)
    x = torch.randn(2, 3, 1600)
    assert r(x).shape == (2, 3, 800)
    torch.testing.assert_close(r(x)[1, 2], r(x[1, 2]))
    assert r(x).dtype == torch.float32
    assert r(x.double()).dtype == torch.float64
    same = Resample(16000, 16000)
    assert same(x) is x
    assert r.output_sample_rate(16000) == 8000
    with pytest.raises(ValueError, match="orig_sr"):
        r.output_sample_rate(22050)
    with pytest.raises(ValueError, match="dtype"):
        r(torch.zeros(2, 100, dtype=torch.int16))


def test_device(device: str) -> None:
    x = torch.from_numpy(make_signals(22050, 0.2)).float()
    r = Resample(22050, 16000)
    cpu = r(x)
    on_device = r.to(device)(x.to(device))
    assert on_device.device.type == device
    # float32 on either device: a few ulps of the output scale
    torch.testing.assert_close(on_device.cpu(), cpu, atol=1e-5, rtol=1e-5)


def test_config_round_trip() -> None:
    r = Resample(22050, 16000, lowpass_filter_width=12, rolloff=0.9, beta=7.0)
    config = r.get_config()
    assert config == {
        "name": "Resample",
        "orig_sr": 22050,
        "new_sr": 16000,
        "lowpass_filter_width": 12,
        "rolloff": 0.9,
        "beta": 7.0,
    }
    rebuilt = Transform.from_config(config)
    x = torch.randn(2, 1000)
    torch.testing.assert_close(rebuilt(x), r(x), atol=0, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"orig_sr": 0, "new_sr": 16000}, "orig_sr"),
        ({"orig_sr": 16000, "new_sr": -8000}, "new_sr"),
        ({"orig_sr": 16000.5, "new_sr": 8000}, "orig_sr"),
        ({"orig_sr": 16000, "new_sr": 8000, "lowpass_filter_width": 0}, "lowpass_filter_width"),
        ({"orig_sr": 16000, "new_sr": 8000, "rolloff": 0.0}, "rolloff"),
        ({"orig_sr": 16000, "new_sr": 8000, "rolloff": 1.5}, "rolloff"),
        ({"orig_sr": 16000, "new_sr": 8000, "beta": -1.0}, "beta"),
    ],
)
def test_bad_parameters(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Resample(**kwargs)  # type: ignore[arg-type]
