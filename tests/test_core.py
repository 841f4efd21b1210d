"""The shared core: parameter checks, accepted shapes, the frame rule, config records, batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnaudio_data import SpecBatch, Transform, WaveBatch
from nnaudio_data._checks import (
    check_choice,
    check_float_dtype,
    check_non_negative_int,
    check_positive_float,
    check_positive_int,
    check_range,
)
from nnaudio_data._shapes import flatten_waveform, frame_count, frame_lengths, unflatten


@pytest.mark.parametrize("value", [0, -3, 2.5, "4", True, None])
def test_positive_int_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="n_fft"):
        check_positive_int("n_fft", value)


def test_checks_accept_and_normalise() -> None:
    assert check_positive_int("n", np.int64(4)) == 4
    assert check_non_negative_int("n", 0) == 0
    assert check_positive_float("sr", 16000) == 16000.0
    assert check_positive_float("x", 0, allow_zero=True) == 0.0
    assert check_range("p", 0.5, 0, 1) == 0.5
    assert check_choice("mode", "a", ["a", "b"]) == "a"
    assert check_float_dtype("dtype", "float64") is torch.float64
    assert check_float_dtype("dtype", np.float32) is torch.float32
    assert check_float_dtype("dtype", torch.float16) is torch.float16


@pytest.mark.parametrize(
    ("fn", "args", "name"),
    [
        (check_non_negative_int, ("pad", -1), "pad"),
        (check_positive_float, ("sr", float("nan")), "sr"),
        (check_positive_float, ("sr", 0), "sr"),
        (check_range, ("p", 1.5, 0, 1), "p"),
        (check_choice, ("mode", "c", ["a", "b"]), "mode"),
        (check_float_dtype, ("dtype", torch.int32), "dtype"),
        (check_float_dtype, ("dtype", "int8"), "dtype"),
    ],
)
def test_checks_name_the_parameter(fn, args, name) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=name):
        fn(*args)


@pytest.mark.parametrize(
    ("shape", "rows", "lead"),
    [((100,), 1, (1,)), ((4, 100), 4, (4,)), ((4, 1, 100), 4, (4,)), ((4, 2, 100), 8, (4, 2))],
)
def test_flatten_waveform(shape: tuple[int, ...], rows: int, lead: tuple[int, ...]) -> None:
    x = torch.randn(shape)
    flat, got_lead = flatten_waveform(x)
    assert flat.shape == (rows, 100) and got_lead == lead
    assert torch.equal(unflatten(flat, got_lead).reshape(-1), x.reshape(-1))


@pytest.mark.parametrize(
    "x", [torch.zeros(2, 2, 2, 2), torch.zeros(()), torch.zeros(4, 100, dtype=torch.int16)]
)
def test_flatten_waveform_rejects(x: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"shape|dtype"):
        flatten_waveform(x)


@pytest.mark.parametrize("n_fft", [255, 256, 2048])
@pytest.mark.parametrize("hop", [64, 100, 512])
@pytest.mark.parametrize("center", [True, False])
def test_frame_rule_matches_torch_stft(n_fft: int, hop: int, center: bool) -> None:
    for n in (n_fft, n_fft + 1, 3 * n_fft + 17, 5000):
        x = torch.randn(n)
        expected = torch.stft(
            x, n_fft, hop, window=torch.ones(n_fft), center=center, return_complex=True
        ).shape[-1]
        assert frame_count(n, n_fft, hop, center) == expected
        assert int(frame_lengths(torch.tensor([n]), n_fft, hop, center)[0]) == expected


def test_frame_rule_short_without_center_is_zero() -> None:
    assert frame_count(10, 256, 64, center=False) == 0
    assert frame_lengths(torch.tensor([10, 256]), 256, 64, False).tolist() == [0, 1]


class _Scale(Transform):
    pass


class Scale(Transform):
    def __init__(self, factor: float = 2.0, window: tuple[str, float] = ("gaussian", 3.0)) -> None:
        super().__init__()
        self.factor = factor
        self.window = tuple(window)


def test_config_round_trip() -> None:
    t = Scale(3.0, window=("kaiser", 8.0))
    config = t.get_config()
    assert t.to_config() == config
    # a class from outside the library is named by its import path, so a recipe finds it
    path = f"{Scale.__module__}:Scale"
    assert config == {"name": path, "factor": 3.0, "window": ["kaiser", 8.0]}
    for name in (path, "Scale"):  # the short name works too while no other class has it
        rebuilt = Transform.from_config({**config, "name": name})
        assert isinstance(rebuilt, Scale) and rebuilt.factor == 3.0
        assert rebuilt.window == ("kaiser", 8.0)


def test_from_config_errors() -> None:
    with pytest.raises(ValueError, match="name"):
        Transform.from_config({"factor": 1})
    with pytest.raises(ValueError, match="_Scale"):
        Transform.from_config({"name": "_Scale"})


def test_batches_move_and_mask() -> None:
    wave = WaveBatch(
        audio=torch.zeros(2, 5), lengths=torch.tensor([3, 5]), sample_rate=16000, keys=["a", "b"]
    )
    moved = wave.to(dtype=torch.float64)
    assert moved.audio.dtype == torch.float64 and moved.lengths.dtype == torch.int64
    assert moved.keys == ["a", "b"] and len(moved) == 2
    spec = SpecBatch(spec=torch.zeros(2, 4, 3), lengths=torch.tensor([1, 3]), sample_rate=16000)
    assert spec.mask.tolist() == [[True, False, False], [True, True, True]]
    with pytest.raises(ValueError, match="batch size"):
        WaveBatch(audio=torch.zeros(3, 5), lengths=torch.tensor([1, 2]), sample_rate=8000)


def test_array_arguments_are_recorded_as_lists() -> None:
    from nnaudio_data.features import STFT

    window = np.hanning(256)
    stft = STFT(n_fft=256, window=window, output_format="Magnitude")
    config = stft.get_config()
    assert config["window"] == window.tolist()
    rebuilt = Transform.from_config(config)
    x = torch.randn(2, 2048)
    torch.testing.assert_close(rebuilt(x), stft(x))


class ScaleTwice(Scale):
    """Inherits ``Scale.__init__``: its config is recorded all the same."""


def test_inherited_init_records_the_config() -> None:
    t = ScaleTwice(5.0)
    name = f"{ScaleTwice.__module__}:ScaleTwice"
    assert t.get_config() == {"name": name, "factor": 5.0, "window": ["gaussian", 3.0]}
    assert isinstance(Transform.from_config(t.get_config()), ScaleTwice)
    assert not hasattr(t, "_init_depth")
