"""Batch ops: mono, crop / pad, gain, dB, log, normalisation, masking - against librosa / numpy
per item, with lengths, seeds, devices and bad parameters."""

from __future__ import annotations

from typing import Any

import librosa
import numpy as np
import pytest
import torch

from nnaudio_data import Transform
from nnaudio_data.ops import (
    AmplitudeToDB,
    CropOrPad,
    FrequencyMasking,
    Gain,
    Log,
    Normalize,
    RandomCrop,
    Resample,
    TimeMasking,
    ToMono,
)

LENGTHS = torch.tensor([50, 37, 12, 0])


def _spectrogram(pad_value: float = 1e6, channels: int | None = None) -> torch.Tensor:
    """``(4, [channels,] 6, 50)`` float64 power-like values over 1e-12 .. 1e4, items scaled apart,
    with ``pad_value`` past each item's valid frames (so a statistic that used them would show)."""
    rng = np.random.default_rng(1)
    shape = (4, 6, 50) if channels is None else (4, channels, 6, 50)
    x = rng.random(shape) ** 4 * np.array([1e4, 1.0, 1e-3, 1.0]).reshape(
        4, *([1] * (len(shape) - 1))
    )
    x[0, ..., :3] = 1e-12  # a few near-silent frames, below top_db
    for i, n in enumerate(LENGTHS):
        x[i, ..., int(n) :] = pad_value
    return torch.from_numpy(x)


# ---------------------------------------------------------------- ToMono


def test_to_mono_mean_and_pick() -> None:
    x = torch.randn(3, 2, 100, dtype=torch.float64)
    np.testing.assert_allclose(ToMono()(x).numpy(), x.numpy().mean(axis=1), rtol=1e-12)
    assert torch.equal(ToMono(channel=1)(x), x[:, 1])
    mono = torch.randn(3, 100)
    assert ToMono()(mono) is mono  # already mono
    with pytest.raises(ValueError, match="channel"):
        ToMono(channel=2)(x)
    with pytest.raises(ValueError, match="channel"):
        ToMono(channel=-1)


# ---------------------------------------------------------------- CropOrPad / RandomCrop


def _ramp_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Items whose valid samples are 1, 2, 3, ... and whose padding is 0."""
    lengths = torch.tensor([100, 40, 7])
    x = torch.zeros(3, 100, dtype=torch.float64)
    for i, n in enumerate(lengths):
        x[i, :n] = torch.arange(1, int(n) + 1)
    return x, lengths


@pytest.mark.parametrize("position", ["start", "center", "end"])
def test_crop_or_pad_within_each_valid_part(position: str) -> None:
    x, lengths = _ramp_batch()
    size = 20
    out = CropOrPad(size, position)(x, lengths)
    assert out.shape == (3, size)
    for i, n in enumerate(lengths.tolist()):
        excess = max(0, n - size)
        start = {"start": 0, "center": excess // 2, "end": excess}[position]
        valid = np.arange(1, n + 1)[start : start + size]
        expected = np.zeros(size)
        expected[: len(valid)] = valid
        np.testing.assert_array_equal(out[i].numpy(), expected)
    assert CropOrPad(size).output_lengths(lengths).tolist() == [20, 20, 7]


def test_crop_or_pad_shapes() -> None:
    x = torch.randn(2, 3, 50)
    assert CropOrPad(80)(x).shape == (2, 3, 80)
    torch.testing.assert_close(CropOrPad(80)(x)[..., :50], x)
    assert CropOrPad(10)(torch.randn(30)).shape == (10,)
    spec = torch.randn(2, 5, 30)
    torch.testing.assert_close(CropOrPad(10, "end")(spec), spec[..., 20:])


def test_random_crop_stays_in_valid_part_and_is_seeded() -> None:
    x, lengths = _ramp_batch()
    size = 20
    crop = RandomCrop(size, seed=3)
    starts = []
    for _ in range(60):
        out = crop(x, lengths)
        for i, n in enumerate(lengths.tolist()):
            row = out[i].numpy()
            if n >= size:  # a contiguous run of valid samples, no padding
                assert row[0] >= 1 and row[-1] <= n
                np.testing.assert_array_equal(np.diff(row), np.ones(size - 1))
                if i == 1:
                    starts.append(int(row[0]) - 1)
            else:  # the whole item, then zeros
                np.testing.assert_array_equal(row[:n], np.arange(1, n + 1))
                assert not row[n:].any()
    # item 1 has 40 - 20 = 20 + 1 possible starts: both ends are reachable in 60 draws
    assert min(starts) >= 0 and max(starts) <= 20 and len(set(starts)) > 10
    # same seed -> same sequence; another seed -> another one
    a, b, c = RandomCrop(size, seed=3), RandomCrop(size, seed=3), RandomCrop(size, seed=4)
    first = [a(x, lengths) for _ in range(3)]
    assert all(torch.equal(f, b(x, lengths)) for f in first)
    assert not all(torch.equal(f, c(x, lengths)) for f in first)
    # seed=None follows torch's global generator
    torch.manual_seed(0)
    u = RandomCrop(size)(x, lengths)
    torch.manual_seed(0)
    assert torch.equal(u, RandomCrop(size)(x, lengths))
    assert RandomCrop(size).output_lengths(lengths).tolist() == [20, 20, 7]


class _CropDataset(torch.utils.data.Dataset[torch.Tensor]):
    def __init__(self) -> None:
        self.crop = RandomCrop(4, seed=7)

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.crop(torch.arange(1000.0).unsqueeze(0))[0]


def test_random_crop_workers_draw_their_own_streams() -> None:
    def run() -> list[torch.Tensor]:
        loader = torch.utils.data.DataLoader(
            _CropDataset(), batch_size=2, num_workers=2, multiprocessing_context="fork"
        )
        return list(loader)

    first, second = run(), run()
    # worker 0 made batch 0, worker 1 batch 1: each from its own stream seeded by seed + id
    assert not torch.equal(first[0], first[1])
    assert all(torch.equal(a, b) for a, b in zip(first, second))


# ---------------------------------------------------------------- Gain, Log, AmplitudeToDB


def test_gain_and_log() -> None:
    x = torch.rand(2, 100, dtype=torch.float64)
    np.testing.assert_allclose(
        Gain(-6.0)(x).numpy(), x.numpy() * librosa.db_to_amplitude(-6.0), rtol=1e-12
    )
    np.testing.assert_allclose(Log(1e-3)(x).numpy(), np.log(x.numpy() + 1e-3), rtol=1e-12)
    with pytest.raises(ValueError, match="gain_db"):
        Gain(float("inf"))
    with pytest.raises(ValueError, match="eps"):
        Log(0.0)


@pytest.mark.parametrize("stype", ["power", "magnitude"])
@pytest.mark.parametrize("ref", [1.0, 0.5, "max"])
@pytest.mark.parametrize("top_db", [80.0, 30.0, None])
def test_amplitude_to_db_matches_librosa_per_item(
    stype: str, ref: float | str, top_db: float | None
) -> None:
    x = _spectrogram()
    out = AmplitudeToDB(stype, ref=ref, top_db=top_db)(x, LENGTHS)
    reference = librosa.power_to_db if stype == "power" else librosa.amplitude_to_db
    assert torch.isfinite(out).all()  # the empty item too
    for i, n in enumerate(LENGTHS.tolist()):
        if n == 0:
            continue
        item = x[i, :, :n].numpy()
        expected = reference(item, ref=np.max if ref == "max" else ref, top_db=top_db)
        # float64 on both sides: only log10 rounding differs
        np.testing.assert_allclose(out[i, :, :n].numpy(), expected, atol=1e-9, rtol=0)


def test_amplitude_to_db_channels_and_float32() -> None:
    x = _spectrogram(channels=2)
    out = AmplitudeToDB(top_db=60.0)(x.float(), LENGTHS)
    assert out.dtype == torch.float32
    for i, n in enumerate(LENGTHS.tolist()[:3]):
        expected = librosa.power_to_db(x[i, :, :, :n].numpy(), top_db=60.0)
        # float32 log10 of values up to 1e4: 1e-4 dB is a few ulps of 40 dB
        np.testing.assert_allclose(out[i, :, :, :n].numpy(), expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"stype": "amplitude"}, "stype"),
        ({"ref": 0.0}, "ref"),
        ({"ref": "min"}, "ref"),
        ({"amin": -1.0}, "amin"),
        ({"top_db": -10.0}, "top_db"),
    ],
)
def test_amplitude_to_db_bad_parameters(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        AmplitudeToDB(**kwargs)


def test_lengths_are_checked() -> None:
    x = _spectrogram()
    with pytest.raises(ValueError, match="lengths"):
        AmplitudeToDB()(x, torch.tensor([50, 51, 1, 1]))  # more frames than x has
    with pytest.raises(ValueError, match="lengths"):
        Normalize()(x, torch.tensor([50, 10]))  # wrong batch size
    with pytest.raises(ValueError, match="lengths"):
        TimeMasking(4)(x, torch.tensor([50.0, 10.0, 1.0, 1.0]))  # not integer


# ---------------------------------------------------------------- Normalize


@pytest.mark.parametrize("mode", ["per_feature", "global"])
@pytest.mark.parametrize("channels", [None, 2])
def test_normalize_uses_valid_frames_only(mode: str, channels: int | None) -> None:
    x = _spectrogram(pad_value=1e3, channels=channels)
    out = Normalize(mode, eps=1e-5)(x, LENGTHS)
    for i, n in enumerate(LENGTHS.tolist()):
        assert not out[i, ..., n:].any()  # padded frames come out 0
        if n == 0:
            continue
        item = x[i, ..., :n].numpy()
        axis = -1 if mode == "per_feature" else None
        mean = item.mean(axis=axis, keepdims=True)
        std = item.std(axis=axis, keepdims=True)
        # float64 on both sides; sums in another order
        np.testing.assert_allclose(
            out[i, ..., :n].numpy(), (item - mean) / (std + 1e-5), atol=1e-9, rtol=1e-9
        )


def test_normalize_batched_equals_per_item() -> None:
    x = _spectrogram(pad_value=0.0)
    norm = Normalize()
    batched = norm(x, LENGTHS)
    for i, n in enumerate(LENGTHS.tolist()[:3]):
        torch.testing.assert_close(batched[i : i + 1, :, :n], norm(x[i : i + 1, :, :n]))


def test_normalize_bad_parameters() -> None:
    with pytest.raises(ValueError, match="mode"):
        Normalize("per_item")
    with pytest.raises(ValueError, match="eps"):
        Normalize(eps=0)
    with pytest.raises(ValueError, match="shape"):
        Normalize()(torch.zeros(10))


# ---------------------------------------------------------------- masking


def test_time_masking_stays_inside_valid_frames(device: str) -> None:
    x = torch.ones(4, 2, 6, 50, device=device)
    lengths = LENGTHS.to(device)
    masking = TimeMasking(max_width=10, num_masks=2, seed=0)
    hits = 0
    for _ in range(30):
        out = masking(x, lengths)
        assert out.device.type == device
        masked = out == 0
        # the same frames for every channel and row of an item
        assert torch.equal(masked, masked[:, :1, :1].expand_as(masked))
        frames = masked[:, 0, 0].cpu()
        for i, n in enumerate(LENGTHS.tolist()):
            assert not frames[i, n:].any()  # never past the valid length
            assert int(frames[i].sum()) <= 2 * 10
        hits += int(frames.sum())
    assert hits > 0


def test_time_masking_max_proportion_and_seed() -> None:
    x = torch.ones(4, 6, 50)
    for _ in range(20):
        frames = (TimeMasking(10, num_masks=1, max_proportion=0.1)(x, LENGTHS) == 0)[:, 0]
        for i, n in enumerate(LENGTHS.tolist()):
            assert int(frames[i].sum()) <= int(0.1 * n)  # 5, 3, 1, 0 frames at most
    a, b, c = (TimeMasking(10, 3, seed=s) for s in (1, 1, 2))
    outs = [a(x, LENGTHS) for _ in range(3)]
    assert all(torch.equal(o, b(x, LENGTHS)) for o in outs)
    assert not all(torch.equal(o, c(x, LENGTHS)) for o in outs)


def test_frequency_masking_bands_on_valid_frames(device: str) -> None:
    x = torch.ones(4, 6, 50, device=device)
    masking = FrequencyMasking(max_width=3, num_masks=1, mask_value=-1.0, seed=5)
    hits = 0
    for _ in range(30):
        out = masking(x, LENGTHS.to(device)).cpu()
        for i, n in enumerate(LENGTHS.tolist()):
            assert (out[i, :, n:] == 1).all()  # padded frames untouched
            if n == 0:
                continue
            rows = torch.nonzero(out[i, :, 0] == -1).flatten().tolist()
            assert len(rows) <= 3
            if rows:  # one contiguous band, masked on all valid frames
                assert rows == list(range(rows[0], rows[0] + len(rows)))
                assert (out[i, rows, :n] == -1).all()
            hits += len(rows)
    assert hits > 0


@pytest.mark.parametrize(
    ("cls", "kwargs", "name"),
    [
        (TimeMasking, {"max_width": 0}, "max_width"),
        (TimeMasking, {"max_width": 5, "num_masks": -1}, "num_masks"),
        (TimeMasking, {"max_width": 5, "max_proportion": 1.5}, "max_proportion"),
        (TimeMasking, {"max_width": 5, "seed": -1}, "seed"),
        (FrequencyMasking, {"max_width": 2.5}, "max_width"),
        (FrequencyMasking, {"max_width": 2, "mask_value": float("nan")}, "mask_value"),
        (RandomCrop, {"size": 0}, "size"),
        (CropOrPad, {"size": 10, "position": "middle"}, "position"),
    ],
)
def test_bad_parameters(cls: type, kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)


# ---------------------------------------------------------------- configs


OPS: list[Transform] = [
    ToMono(channel=1),
    Resample(16000, 8000),
    CropOrPad(30, "center"),
    RandomCrop(30, seed=2),
    Gain(3.0),
    AmplitudeToDB("magnitude", ref="max", amin=1e-4, top_db=50.0),
    Log(1e-4),
    Normalize("global"),
    TimeMasking(5, 2, mask_value=0.5, max_proportion=0.5, seed=9),
    FrequencyMasking(2, 1, seed=9),
]


@pytest.mark.parametrize("op", OPS, ids=lambda op: type(op).__name__)
def test_config_round_trip(op: Transform) -> None:
    config = op.get_config()
    assert config["name"] == type(op).__name__
    rebuilt = Transform.from_config(config)
    assert rebuilt.get_config() == config
    # the same outputs (a seeded op rebuilt from its config repeats the same draws: `op` itself
    # is called only here, so both generators start from the seed)
    x = torch.rand(4, 2, 6, 50)
    if isinstance(op, Resample | ToMono | Gain | Log):
        torch.testing.assert_close(rebuilt(x), op(x), atol=0, rtol=0)
    else:
        torch.testing.assert_close(rebuilt(x, lengths=LENGTHS), op(x, lengths=LENGTHS))
