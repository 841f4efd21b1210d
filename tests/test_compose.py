"""Compose: lengths through every stage, lengths into the stages that take them, devices,
repr, config round-trip; apply_to_batch: batch types, time axis, sample rate and metadata."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from nnaudio_data import SpecBatch, Transform, WaveBatch
from nnaudio_data.compose import Compose, accepts_lengths, apply_to_batch, output_lengths
from nnaudio_data.ops import (
    AmplitudeToDB,
    CropOrPad,
    Gain,
    Normalize,
    RandomCrop,
    Resample,
    TimeMasking,
    ToMono,
)


class _Frames(Transform):
    """A toy spectrogram: frames of ``hop`` samples' energy, ``(batch, 2, n // hop)``; with
    ``complex_out`` it adds a trailing axis of 2, like nnAudio's Complex STFT, and declares its
    time axis -2."""

    output_kind = "spectrogram"

    def __init__(self, hop: int = 4, complex_out: bool = False) -> None:
        super().__init__()
        self.hop = hop
        self.output_format = "Complex" if complex_out else "Magnitude"
        self.time_dim = -2 if complex_out else -1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1] // self.hop
        energy = x[..., : n * self.hop].reshape(*x.shape[:-1], n, self.hop).square().sum(-1)
        spec = torch.stack([energy, 2 * energy], dim=-2)
        return torch.stack([spec, -spec], dim=-1) if self.output_format == "Complex" else spec

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(lengths) // self.hop


class _NoLengths(nn.Module):
    """Halves the time axis but does not say so (no output_lengths)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., ::2]


def _wave_batch(sample_rate: int = 16000) -> WaveBatch:
    lengths = torch.tensor([1600, 1000, 333])
    audio = torch.zeros(3, 2, 1600)
    for i, n in enumerate(lengths.tolist()):
        audio[i, :, :n] = torch.randn(2, n)
    return WaveBatch(
        audio=audio,
        lengths=lengths,
        sample_rate=sample_rate,
        keys=["a", "b", "c"],
        labels=torch.tensor([0, 1, 2]),
        meta=[{"i": 0}, {"i": 1}, {"i": 2}],
    )


def test_forward_and_lengths_equal_the_stages_in_turn() -> None:
    stages = [ToMono(), Resample(16000, 8000), Gain(-3.0), CropOrPad(600, "center")]
    chain = Compose(*stages)
    batch = _wave_batch()
    x, lengths = batch.audio, batch.lengths
    expected, expected_lengths = x, lengths
    for s in stages:
        expected = s(expected, expected_lengths) if isinstance(s, CropOrPad) else s(expected)
        expected_lengths = s.output_lengths(expected_lengths)
    torch.testing.assert_close(chain(x, lengths), expected, atol=0, rtol=0)
    # 1600 -> 800 -> 600; 1000 -> 500; 333 -> ceil(333 / 2) = 167
    assert chain.output_lengths(lengths).tolist() == [600, 500, 167]
    assert expected_lengths.tolist() == [600, 500, 167]
    assert output_lengths(chain, lengths).tolist() == [600, 500, 167]


def test_each_stage_gets_the_lengths_of_its_own_input() -> None:
    # Normalize after a 4-sample framing must use frame lengths (n // 4), not sample lengths:
    # compare with calling it by hand with the frame lengths.
    frames, norm = _Frames(4), Normalize()
    chain = Compose(frames, norm)
    x = torch.randn(3, 40)
    lengths = torch.tensor([40, 21, 8])
    spec = frames(x)
    torch.testing.assert_close(chain(x, lengths), norm(spec, torch.tensor([10, 5, 2])))
    assert not torch.equal(chain(x, lengths), norm(spec))  # lengths did change the result
    assert accepts_lengths(norm) and accepts_lengths(chain) and not accepts_lengths(frames)
    # nested chains pass them on the same way
    torch.testing.assert_close(
        Compose(Compose(frames), Compose(norm))(x, lengths), chain(x, lengths)
    )


def test_to_moves_every_kernel(device: str) -> None:
    chain = Compose(Resample(22050, 16000), Compose(Resample(16000, 8000)))
    chain = chain.to(device, torch.float64)
    buffers = list(chain.buffers())
    assert len(buffers) == 2
    assert all(b.device.type == device and b.dtype == torch.float64 for b in buffers)
    x = torch.randn(2, 2205, dtype=torch.float64, device=device)
    assert chain(x).shape == (2, 800)
    assert chain(x).device.type == device


def test_repr_lists_the_stages() -> None:
    text = repr(Compose(Resample(16000, 8000), Compose(Gain(6.0)), TimeMasking(5)))
    lines = text.splitlines()
    assert lines[0] == "Compose("
    assert lines[1].startswith("  (0): Resample(orig_sr=16000, new_sr=8000")
    assert lines[2] == "  (1): Compose("
    assert lines[3] == "    (0): Gain(gain_db=6.0)"
    assert lines[5] == "  (2): TimeMasking(max_width=5, num_masks=1, mask_value=0.0, seed=None)"
    assert lines[-1] == ")"
    assert repr(Compose()) == "Compose()"


def test_config_round_trip() -> None:
    chain = Compose(
        ToMono(),
        Resample(22050, 16000),
        RandomCrop(16000, seed=1),
        Compose(AmplitudeToDB("magnitude", top_db=60.0)),
        Normalize("global"),
    )
    config = chain.get_config()
    assert config["name"] == "Compose"
    assert [c["name"] for c in config["transforms"]] == [
        "ToMono",
        "Resample",
        "RandomCrop",
        "Compose",
        "Normalize",
    ]
    assert config["transforms"][3]["transforms"][0]["top_db"] == 60.0
    plain = json.loads(json.dumps(config))  # plain values only
    rebuilt = Transform.from_config(plain)
    assert isinstance(rebuilt, Compose)
    assert rebuilt.get_config() == config
    x = torch.rand(2, 2, 30000)
    lengths = torch.tensor([30000, 12000])
    torch.testing.assert_close(rebuilt(x, lengths), chain(x, lengths))


def test_bad_stages_and_configs() -> None:
    with pytest.raises(ValueError, match=r"transforms\[1\]"):
        Compose(Gain(1.0), "Gain")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"transforms\[0\].*not a Transform"):
        Compose(nn.Identity()).get_config()
    with pytest.raises(ValueError, match="unknown transform name 'Nope'"):
        Transform.from_config({"name": "Compose", "transforms": [{"name": "Nope"}]})
    with pytest.raises(ValueError, match="transforms"):
        Transform.from_config({"name": "Compose", "transforms": "Gain"})
    with pytest.raises(ValueError, match="stages"):
        Transform.from_config({"name": "Compose", "stages": []})


def test_apply_to_batch_ops_only_gives_a_wave_batch() -> None:
    batch = _wave_batch(16000)
    chain = Compose(ToMono(channel=0), Resample(16000, 8000), CropOrPad(700))
    out = apply_to_batch(chain, batch)
    assert isinstance(out, WaveBatch)
    assert out.sample_rate == 8000
    assert out.lengths.tolist() == [700, 500, 167]
    assert out.audio.shape == (3, 700)
    assert out.keys == batch.keys and out.meta == batch.meta
    assert torch.equal(out.labels, batch.labels)  # type: ignore[arg-type]
    # the valid part of each item is the per-item computation
    for i, n in enumerate(batch.lengths.tolist()):
        single = chain(batch.audio[i : i + 1, :, :n])
        m = int(out.lengths[i])
        torch.testing.assert_close(out.audio[i, :m], single[0, :m], atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="orig_sr"):
        apply_to_batch(chain, _wave_batch(22050))


@pytest.mark.parametrize(("complex_out", "time_dim"), [(False, -1), (True, -2)])
def test_apply_to_batch_spectrogram_time_axis(complex_out: bool, time_dim: int) -> None:
    batch = _wave_batch()
    out = apply_to_batch(Compose(ToMono(), _Frames(4, complex_out)), batch)
    assert isinstance(out, SpecBatch)
    assert out.time_dim == time_dim
    assert out.spec.shape[time_dim] == 400
    assert out.lengths.tolist() == [400, 250, 83]
    assert out.mask.shape == (3, 400)
    assert out.mask.sum(dim=1).tolist() == [400, 250, 83]
    assert out.keys == ["a", "b", "c"] and out.sample_rate == 16000


def test_apply_to_batch_on_a_spectrogram_batch_keeps_it_one() -> None:
    spec = torch.rand(2, 5, 30)
    batch = SpecBatch(spec=spec, lengths=torch.tensor([30, 12]), sample_rate=16000, keys=["x", "y"])
    out = apply_to_batch(Compose(AmplitudeToDB(), Normalize()), batch)
    assert isinstance(out, SpecBatch) and out.time_dim == -1
    torch.testing.assert_close(out.spec[1:, :, :12], Normalize()(AmplitudeToDB()(spec[1:, :, :12])))
    assert not out.spec[1, :, 12:].any()


def test_apply_to_batch_rejects_unmapped_lengths() -> None:
    with pytest.raises(ValueError, match="output_lengths"):
        apply_to_batch(Compose(ToMono(), _NoLengths()), _wave_batch())
    with pytest.raises(ValueError, match="batch"):
        apply_to_batch(Gain(1.0), torch.zeros(2, 10))  # type: ignore[arg-type]
