"""Windows (``kernels.windows``) against librosa 0.11's ``filters.get_window`` and ``util.pad_center``."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from nnaudio_data.kernels.windows import get_window, pad_center

# The same scipy function computes both sides; only the array conversion could differ.
EXACT = 0.0


@pytest.mark.parametrize(
    "spec",
    [
        "hann",
        "hamming",
        "boxcar",
        "blackman",
        ("kaiser", 8.0),
        ("gaussian", 7.0),
        ("tukey", 0.3),
        8.0,
    ],
)
@pytest.mark.parametrize("length", [1, 7, 256, 1024])
@pytest.mark.parametrize("fftbins", [True, False])
def test_named_windows_match_librosa(spec: object, length: int, fftbins: bool) -> None:
    ours = get_window(spec, length, fftbins=fftbins)
    ref = librosa.filters.get_window(spec, length, fftbins=fftbins)
    assert ours.shape == (length,)
    assert ours.dtype == np.float64
    assert np.max(np.abs(ours - ref)) <= EXACT


def test_list_spec_is_a_tuple_spec_for_config_round_trip() -> None:
    ref = librosa.filters.get_window(("kaiser", 4.0), 64)
    assert np.array_equal(get_window(["kaiser", 4.0], 64), ref)


def test_callable_and_array_windows() -> None:
    ref = librosa.filters.get_window(np.hanning, 33)
    assert np.array_equal(get_window(np.hanning, 33), ref)
    values = np.linspace(0.0, 1.0, 12)
    assert np.array_equal(get_window(values, 12), values)
    assert np.array_equal(get_window(list(values), 12), values)


def test_window_dtype_and_writable_copy() -> None:
    w = get_window("hann", 16, dtype=np.float32)
    assert w.dtype == np.float32
    w[0] = 5.0  # a new array each call: the cache is not touched
    assert get_window("hann", 16, dtype=np.float32)[0] == 0.0


@pytest.mark.parametrize(
    ("window", "length", "match"),
    [
        ("nonsense", 16, "window 'nonsense'"),
        (np.ones(5), 16, r"window array has shape \(5,\)"),
        ("hann", 0, "window length"),
        ("hann", 2.5, "window length"),
        (None, 16, "window must be"),
        (True, 16, "window must be"),
        (lambda n: np.ones(n + 1), 16, "gave shape"),
    ],
)
def test_bad_windows_raise(window: object, length: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        get_window(window, length)  # type: ignore[arg-type]


@pytest.mark.parametrize(("n", "size"), [(4, 8), (5, 8), (4, 9), (5, 9), (8, 8), (1, 1024)])
def test_pad_center_matches_librosa(n: int, size: int) -> None:
    data = np.arange(1.0, n + 1)
    assert np.array_equal(pad_center(data, size), librosa.util.pad_center(data, size=size))
    batch = np.stack([data, -data])
    assert np.array_equal(pad_center(batch, size), librosa.util.pad_center(batch, size=size))


def test_pad_center_too_small_raises() -> None:
    with pytest.raises(ValueError, match="size must be >= 5"):
        pad_center(np.ones(5), 4)
