"""Hostile input through every adapter, under both policies (issue 10).

Headers that promise more than the file holds, a clip that overflows the spectrogram, gzip,
files that are not regular files, names that are not UTF-8, arrays that are not numbers, samples
that make the code raise anything at all. Each input goes through the collate function (0 and 2
workers), the dataset wrappers, ``audio_nodes`` (0 and 2 workers) and WebDataset (0 and 2
workers). Under ``"skip"``: the valid inputs delivered, each bad one counted under its reason,
delivered + counted == given. Under ``"raise"``: a ``SampleError`` naming the sample (with its
reason where the loop runs in this process). Every test is bounded in time (a FIFO would block).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import _faults
import _hostile
import numpy as np
import pytest
import torch
from _faults import Case
from _hostile import HOP, SR
from torch.utils.data import DataLoader
from torchdata import nodes

from nnaudio_data.io import MAX_SAMPLES, SampleError, decode, read_native
from nnaudio_data.pipeline import (
    AudioDataset,
    BatchTransform,
    SkipCounter,
    SpecCollate,
    WaveCollate,
    audio_nodes,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return _faults.hostile_cases()


@pytest.fixture(scope="module")
def inputs(cases: list[Case], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The cases as files, as in-memory records and as two WebDataset shards."""
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for c in cases:
        path = folder / f"{c.key}.{c.ext}"
        path.write_bytes(c.data)
        paths[c.key] = str(path)
    return {
        "paths": paths,
        "records": [{"key": c.key, "audio": c.data} for c in cases],
        "shards": _faults.write_case_shards(folder / "shards", cases, n_shards=2),
    }


def _adapters(inputs: dict[str, Any], keys: list[str] | None = None) -> dict[str, Any]:
    paths = inputs["paths"]
    chosen = list(paths) if keys is None else keys
    return {
        **_hostile.file_adapters([paths[k] for k in chosen]),
        **_hostile.record_adapters([r for r in inputs["records"] if r["key"] in chosen]),
    }


def test_every_adapter_skips_and_counts_each_hostile_input(
    cases: list[Case], inputs: dict[str, Any]
) -> None:
    expected = {c.key: c.reason for c in cases}
    reference = decode(next(c for c in cases if c.key == "good").data)[0][0]
    adapters = {**_adapters(inputs), **_hostile.shard_adapters(inputs["shards"])}
    for name, build in adapters.items():
        delivered, counter = _hostile.drain(build("skip"))
        _hostile.check_accounting(delivered, counter, expected, name)
        # the valid inputs come out as the clean clip does: gzip and the streaming size are
        # read as the audio they hold (1 + n // hop frames of the same STFT)
        good = delivered["good"]
        assert good.shape[-1] == 1 + len(reference) // HOP, name
        torch.testing.assert_close(delivered["gzipped"], good, rtol=0, atol=0)
        assert delivered["streaming-size"].shape[-1] == 1 + 1000 // HOP, name


def _check_raises(adapters: dict[str, Any], bad: str, reason: str, where: str) -> None:
    for name, build in adapters.items():
        with pytest.raises(SampleError) as info:
            list(build("raise"))
        assert bad in str(info.value), (name, where, str(info.value))
        if not name.endswith("/2"):  # raised in this process: the error itself, with its reason
            assert info.value.reason == reason, (name, where)


# A DataLoader whose worker raised takes torch about 5 s to shut down (its idle workers wait
# out MP_STATUS_CHECK_INTERVAL), so under "raise" every case goes through the adapters that
# load in this process, and through torchdata's worker processes; the DataLoader-based ones
# with workers get one case each (the error crosses the process boundary the same way for all).
IN_PROCESS = ("collate_fn/0", "audio_nodes/0", "audio_nodes/2")


def test_every_adapter_raises_naming_each_hostile_input(
    cases: list[Case], inputs: dict[str, Any]
) -> None:
    for c in cases:
        if c.reason is None:
            continue
        adapters = _adapters(inputs, ["good", c.key])
        _check_raises({n: adapters[n] for n in IN_PROCESS}, c.key, c.reason, c.key)
    adapters = _adapters(inputs, ["good", "claims-2e36"])
    workers = {n: b for n, b in adapters.items() if n.endswith("/2") and n not in IN_PROCESS}
    assert len(workers) == 3
    _check_raises(workers, "claims-2e36", "too_large", "in DataLoader workers")
    shard = _faults.write_case_shards(Path(inputs["shards"][0]).parent / "two", cases[:2], 2)
    web = _hostile.shard_adapters(shard)
    _check_raises({"WebLoader/2": web["WebLoader/2"]}, "claims-2e36", "too_large", "WebLoader")


def test_webdataset_raises_naming_each_hostile_member(cases: list[Case], tmp_path: Path) -> None:
    good = next(c for c in cases if c.key == "good")
    for c in cases:
        if c.reason is None:
            continue
        shards = _faults.write_case_shards(tmp_path / c.key, [good, c], n_shards=1)
        (build,) = [b for n, b in _hostile.shard_adapters(shards).items() if n.endswith("/0")]
        with pytest.raises(SampleError) as info:
            list(build("raise"))
        assert info.value.reason == c.reason and c.key in str(info.value), c.key


def test_headers_that_lie_are_refused_before_allocating(cases: list[Case]) -> None:
    by_key = {c.key: c for c in cases}
    with pytest.raises(SampleError, match=r"declares 68719476735 frames") as info:
        read_native(by_key["claims-2e36"].data, key="claims-2e36")
    assert info.value.reason == "too_large" and info.value.key == "claims-2e36"
    with pytest.raises(SampleError, match=r"134217728 frames in 99 bytes") as info:
        read_native(by_key["claims-2e27"].data, key="claims-2e27")
    assert info.value.reason == "too_large"
    # the bound is a parameter: a clip of 3000 samples is refused below it, read at it
    good = by_key["good"].data
    with pytest.raises(SampleError, match="max_samples=2999"):
        read_native(good, max_samples=2999)
    assert read_native(good, max_samples=3000)[0].shape == (3000, 1)
    # 1 Hz with resampling on: the filter is small (8000 / 1), the output is not
    collate = WaveCollate(sample_rate=SR, resample=True, policy="raise")
    with pytest.raises(SampleError, match=r"320000000 samples per channel") as info:
        collate([by_key["one-hertz"].data])
    assert info.value.reason == "too_large"
    # and without resampling it is a sample_rate fault, as any other rate
    with pytest.raises(SampleError, match="1 Hz") as info:
        WaveCollate(sample_rate=SR)([by_key["one-hertz"].data])
    assert info.value.reason == "sample_rate"
    assert MAX_SAMPLES == 2**28


def test_output_is_checked_as_the_input_is(cases: list[Case]) -> None:
    loud = next(c for c in cases if c.key == "overflow").data
    good = next(c for c in cases if c.key == "good").data
    # the input is finite: without a transform the clip is delivered as it is
    wave = WaveCollate(sample_rate=SR, policy="raise")([loud])
    assert bool(torch.isfinite(wave.audio).all()) and float(wave.audio.abs().max()) > 1e29
    # its spectrogram is not: counted as non_finite, the other item kept with its label
    collate = SpecCollate(_hostile.stft(), sample_rate=SR, policy="skip")
    batch = collate([(good, None, 7), (loud, None, 8)])
    assert batch.labels.tolist() == [7] and batch.skipped == {"non_finite": 1}
    assert batch.keys == ["0"] and bool(torch.isfinite(batch.spec).all())
    with pytest.raises(SampleError, match="transform's output holds NaN or Inf") as info:
        SpecCollate(_hostile.stft(), sample_rate=SR)([good, loud])
    assert info.value.reason == "non_finite"
    # a BatchTransform stage checks when given a policy (webdataset .map, nodes Mapper, CLI)
    stage = BatchTransform(_hostile.stft(), policy="skip")
    out = stage(WaveCollate(sample_rate=SR)([good, loud]))
    assert len(out) == 1 and out.skipped == {"non_finite": 1}
    assert len(BatchTransform(_hostile.stft())(WaveCollate(sample_rate=SR)([good, loud]))) == 2
    # check_finite=False turns both checks off
    off = SpecCollate(_hostile.stft(), sample_rate=SR, check_finite=False)([good, loud])
    assert len(off) == 2 and not bool(torch.isfinite(off.spec[1]).all())


class _LogMagnitude(torch.nn.Module):
    """log |STFT|: -inf where the STFT is 0 (frames of zero padding only, for noise clips)."""

    def __init__(self) -> None:
        super().__init__()
        self.stft = _hostile.stft()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(self.stft(x))

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.stft.output_lengths(lengths)


def test_padding_is_not_a_non_finite_output(cases: list[Case]) -> None:
    good = next(c for c in cases if c.key == "good").data
    noise = np.random.default_rng(5).uniform(-0.5, 0.5, 600).astype(np.float32)
    batch = WaveCollate(sample_rate=SR)([good, (noise, SR)])
    out = BatchTransform(_LogMagnitude(), policy="raise")(batch)
    assert len(out) == 2 and out.lengths.tolist() == [1 + 3000 // HOP, 1 + 600 // HOP]
    short = out.data[1]
    frames = int(out.lengths[1])
    assert bool(torch.isfinite(short[:, :frames]).all())  # its valid frames: finite
    assert bool(torch.isneginf(short[:, frames + 2 :]).all())  # its padding: -inf, not a fault


@pytest.mark.parametrize("policy", ["skip", "raise"])
def test_files_that_are_not_regular_files(
    policy: str, cases: list[Case], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = next(c for c in cases if c.key == "good").data
    special = _faults.write_special_files(tmp_path, good)
    (tmp_path / "good.wav").write_bytes(good)
    special["good"] = (str(tmp_path / "good.wav"), None)
    paths = [path for path, _ in special.values()]
    expected = {_hostile.stem(path): reason for path, reason in special.values()}
    if policy == "skip":
        for name, build in _hostile.file_adapters(paths).items():
            delivered, counter = _hostile.drain(build("skip"))
            _hostile.check_accounting(delivered, counter, expected, name)
        # each skip is logged naming the file; the name that is not UTF-8 is escaped, not lost
        with caplog.at_level(logging.WARNING, logger="nnaudio_data.pipeline"):
            bad = [p for p, r in special.values() if r is not None]
            batch = WaveCollate(sample_rate=SR, policy="skip")([*bad, special["not-utf8"][0]])
        assert len(batch) == 1 and "\\udcff\\udcfe-not-utf8" in batch.keys[0].encode(
            "utf-8", "backslashreplace"
        ).decode("utf-8")
        for path in bad:
            assert path in caplog.text
        assert "a FIFO" in caplog.text and "a folder" in caplog.text
        assert "a character device" in caplog.text
        return
    for key, (path, reason) in special.items():
        if reason is None:
            continue
        adapters = _hostile.file_adapters([special["good"][0], path])
        if key == "fifo":  # the one that could hang: through every adapter
            _check_raises(adapters, path, reason, key)
        else:
            _check_raises({n: adapters[n] for n in IN_PROCESS}, path, reason, key)


def test_a_name_that_is_not_utf8_is_read_and_named(cases: list[Case], tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt-\udcff.wav"  # surrogate escape of the byte 0xff
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(200))
    good = next(c for c in cases if c.key == "good")
    fine = tmp_path / "\udcfe\udcff.wav"
    fine.write_bytes(good.data)
    audio, rate = decode(str(fine))
    assert rate == SR and audio.shape == (1, 3000)
    with pytest.raises(SampleError) as info:
        decode(str(corrupt))
    assert info.value.reason == "decode_error" and info.value.key == str(corrupt)
    assert "corrupt-\\udcff.wav" in str(info.value)  # escaped: the message can be printed
    str(info.value).encode("utf-8")  # (a raw surrogate would raise UnicodeEncodeError here)


NOT_NUMBERS = {
    "object": np.array([0.1, "x", None] * 100, dtype=object),
    "bool": np.ones(300, dtype=bool),
    "str": np.array(["0.1"] * 300),
    "complex": np.full(300, 0.1 + 0.1j),
    "bool-tensor": torch.ones(300, dtype=torch.bool),
    "datetime": np.arange(300).astype("datetime64[s]"),
}


@pytest.mark.parametrize("workers", [0, 2])
def test_arrays_that_are_not_numbers_are_decode_errors(workers: int) -> None:
    items = [(np.full(400, 0.1, np.float32), SR)] + [(a, SR) for a in NOT_NUMBERS.values()]
    loaders = {
        "collate_fn": DataLoader(
            items,
            batch_size=3,
            collate_fn=WaveCollate(policy="skip"),
            num_workers=workers,
            multiprocessing_context="fork" if workers else None,
        ),
        "audio_nodes": nodes.Loader(
            audio_nodes(
                items,
                batch_size=3,
                policy="skip",
                num_workers=workers,
                multiprocessing_context="fork" if workers else None,
            )
        ),
    }
    for name, loader in loaders.items():
        counter = SkipCounter()
        lengths = [n for b in counter.wrap(loader) for n in b.lengths.tolist()]
        assert lengths == [400], name
        assert counter.counts == {"decode_error": len(NOT_NUMBERS)}, name
    for kind, array in NOT_NUMBERS.items():
        with pytest.raises(SampleError, match="is not real numbers") as info:
            WaveCollate()([(array, SR)])
        assert info.value.reason == "decode_error" and info.value.key == "0", kind


class _Odd:
    """A sample of a type nothing expects."""


def test_any_exception_a_sample_causes_is_counted_not_a_crash() -> None:
    good = (np.full(400, 0.1, np.float32), SR)
    strange: list[Any] = [
        _Odd(),  # not a sample at all: ValueError
        {"key": "no-rate", "audio": np.zeros(400, np.float32)},  # an array without its rate
        (np.zeros(400, np.float32), None),  # the same as a tuple
        {"key": "bad-rate", "audio": np.zeros(400, np.float32), "sample_rate": "fast"},
        (np.zeros((2, 3, 4), np.float32), SR),  # a 3-D array: channels
        12,
    ]
    for workers in (0, 2):
        ds = AudioDataset([good, *strange, good], policy="skip")
        loader = DataLoader(
            ds,
            batch_size=4,
            collate_fn=ds.collate,
            num_workers=workers,
            multiprocessing_context="fork" if workers else None,
        )
        counter = SkipCounter()
        delivered = sum(len(b) for b in counter.wrap(loader))
        assert delivered == 2
        assert counter.counts == {"unexpected_error": 5, "channels": 1}
    with pytest.raises(SampleError, match=r"sample 'bad-rate': ValueError") as info:
        WaveCollate()([good, strange[3]])
    assert info.value.reason == "unexpected_error"
    assert isinstance(info.value.__cause__, ValueError)  # the original, kept for debugging
    with pytest.raises(SampleError, match=r"sample '1': ValueError: cannot collate"):
        AudioDataset([good, _Odd()])[1]


class _Picky(torch.nn.Module):
    """An STFT that raises on any batch holding an item louder than 10 (or, with ``always``, on
    every batch): a transform that a sample can make fail."""

    def __init__(self, always: bool = False) -> None:
        super().__init__()
        self.stft = _hostile.stft()
        self.always = always

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.always or float(x.abs().max()) > 10:
            raise RuntimeError("picky: amplitude above 10")
        return self.stft(x)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.stft.output_lengths(lengths)


def test_a_sample_that_makes_the_transform_raise_is_that_samples_fault() -> None:
    quiet = [(np.full(500 + 100 * i, 0.1, np.float32), SR, i) for i in range(3)]
    loud = {"key": "loud", "audio": np.full(700, 50.0, np.float32), "sample_rate": SR, "label": 9}
    samples = [quiet[0], loud, quiet[1], quiet[2]]
    for workers in (0, 2):
        loader = DataLoader(
            samples,
            batch_size=4,
            collate_fn=SpecCollate(_Picky(), policy="skip", sample_rate=SR),
            num_workers=workers,
            multiprocessing_context="fork" if workers else None,
        )
        counter = SkipCounter()
        (batch,) = list(counter.wrap(loader))
        assert batch.labels.tolist() == [0, 1, 2] and counter.counts == {"unexpected_error": 1}
        assert batch.lengths.tolist() == [1 + n // HOP for n in (500, 600, 700)]
    with pytest.raises(SampleError, match=r"sample 'loud': RuntimeError: picky.*in the transform"):
        SpecCollate(_Picky(), sample_rate=SR)(samples)
    # an error of the transform itself, on every item: raised as it is, not blamed on a sample
    with pytest.raises(RuntimeError, match="picky"):
        SpecCollate(_Picky(always=True), sample_rate=SR, policy="skip")(samples)
    # alone in its batch, the loud clip cannot be told from a broken transform: raised
    with pytest.raises(RuntimeError, match="picky"):
        SpecCollate(_Picky(), sample_rate=SR, policy="skip")([loud])
