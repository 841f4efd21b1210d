"""Shards made with ordinary ``tar`` and tar members an attacker would write (issue 10).

Hard links and symbolic links (made by the system ``tar`` from a folder, and by :mod:`tarfile`
pointing outside the shard), a FIFO member, folders, a member whose header claims 2 GiB, gzip
members (valid, cut, and a bomb), a compressed shard holding links. Through ``audio_pipeline`` in a
``WebLoader`` with 0 and 2 workers and through the command, under both policies: each link to a
member of the shard is delivered as that member's audio, the rest counted under its reason, and
delivered + counted == given.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import _faults
import pytest
import torch
from _faults import SR

from nnaudio_data.io import MAX_ENCODED_BYTES, SampleError
from nnaudio_data.pipeline import audio_pipeline
from nnaudio_data.pipeline.wds import TarSamples

pytestmark = pytest.mark.timeout(120)


def _clip(seed: int, n: int = 2000) -> bytes:
    return _faults._encode(_faults._noise(n, seed=seed), SR, "WAV", "PCM_16")


@pytest.fixture(scope="module")
def system_tar(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A shard made by the system ``tar`` from a folder of clips, hard links and symlinks.

    8 audio names: 4 files, 2 hard links and 2 symbolic links to them (webdataset alone delivers
    4); plus a dangling link, a FIFO and a sub-folder (its clip delivered under its path).
    """
    root = tmp_path_factory.mktemp("systar")
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    for i in range(4):
        (src / f"clip{i}.wav").write_bytes(_clip(i, 1000 + 100 * i))
    os.link(src / "clip0.wav", src / "hard0.wav")
    os.link(src / "clip1.wav", src / "hard1.wav")
    os.symlink("clip2.wav", src / "sym2.wav")
    os.symlink("../clip3.wav", src / "sub" / "sym3.wav")  # relative, through the parent
    os.symlink("gone.wav", src / "zdangling.wav")
    os.mkfifo(src / "zfifo.wav")
    names = [
        "clip0.wav",
        "clip1.wav",
        "clip2.wav",
        "clip3.wav",
        "hard0.wav",
        "hard1.wav",
        "sub",  # the folder, and sub/sym3.wav in it
        "sym2.wav",
        "zdangling.wav",
        "zfifo.wav",
    ]
    shard = root / "system.tar"
    subprocess.run(["tar", "-cf", str(shard), "-C", str(src), *names], check=True, timeout=60)
    listing = subprocess.run(
        ["tar", "-tvf", str(shard)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert listing.count("link to") == 2 and listing.count(" -> ") == 3  # what tar made
    lengths = {f"clip{i}": 1000 + 100 * i for i in range(4)}
    lengths.update(hard0=1000, hard1=1100, sym2=1200, **{"sub/sym3": 1300})
    return {
        "shard": str(shard),
        "lengths": lengths,  # delivered: name -> samples
        "counted": {"zdangling": "not_regular_file", "zfifo": "not_regular_file"},
    }


def _drain_lengths(batches: Any) -> tuple[dict[str, int], Any]:
    from nnaudio_data.pipeline import SkipCounter

    counter = SkipCounter()
    out: dict[str, int] = {}
    for batch in counter.wrap(batches):
        for key, n in zip(batch.keys, batch.lengths.tolist()):
            assert key not in out
            out[key] = n
    return out, counter


def test_links_in_a_system_tar_shard_are_followed(system_tar: dict[str, Any]) -> None:
    import webdataset as wds

    for workers in (0, 1):
        pipeline = audio_pipeline(
            [system_tar["shard"]], batch_size=3, policy="skip", sample_rate=SR
        )
        loader = wds.WebLoader(pipeline, batch_size=None, num_workers=workers)
        delivered, counter = _drain_lengths(loader)
        assert delivered == system_tar["lengths"]  # each link: the audio of its target
        assert counter.counts == {"not_regular_file": 2}
        assert counter.samples + counter.total == len(system_tar["lengths"]) + 2
    # control: webdataset's own reader drops every link and the FIFO, counting nothing
    plain = wds.DataPipeline(
        wds.SimpleShardList([system_tar["shard"]]),
        wds.tarfile_to_samples(),
        wds.to_tuple("__key__"),
    )
    assert sorted(k for (k,) in plain) == ["clip0", "clip1", "clip2", "clip3"]
    # under "raise": the first member that cannot be followed, by name
    with pytest.raises(SampleError, match=r"zdangling.*gone\.wav") as info:
        list(audio_pipeline([system_tar["shard"]], batch_size=3, sample_rate=SR))
    assert info.value.reason == "not_regular_file"


def _tar_with(path: Path, build: Any, mode: str = "w") -> str:
    with tarfile.open(path, mode) as tar:
        build(tar)
    return str(path)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _link(tar: tarfile.TarFile, name: str, target: str, kind: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    tar.addfile(info)


def _hostile_members(tar: tarfile.TarFile) -> None:
    _add(tar, "a.wav", _clip(1))
    _link(tar, "b.wav", "a.wav", tarfile.LNKTYPE)  # delivered as a.wav
    _link(tar, "c.wav", "b.wav", tarfile.SYMTYPE)  # a link to a link: a.wav
    _link(tar, "etc.wav", "/etc/passwd", tarfile.SYMTYPE)  # outside the shard: never read
    _link(tar, "up.wav", "../../../etc/passwd", tarfile.SYMTYPE)
    _link(tar, "ahead.wav", "z.wav", tarfile.LNKTYPE)  # a member that comes later
    _link(tar, "self.wav", "self.wav", tarfile.SYMTYPE)  # a loop
    dev = tarfile.TarInfo("dev.wav")
    dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 5  # /dev/zero
    tar.addfile(dev)
    folder = tarfile.TarInfo("d.wav")
    folder.type = tarfile.DIRTYPE  # a folder named like audio: not a sample, passed over
    tar.addfile(folder)
    _add(tar, "z.wav", _clip(2, 1500))


HOSTILE_DELIVERED = {"a": 2000, "b": 2000, "c": 2000, "z": 1500}
HOSTILE_COUNTED = {"etc", "up", "ahead", "self", "dev"}


def test_hostile_link_and_device_members(tmp_path: Path) -> None:
    import webdataset as wds

    shard = _tar_with(tmp_path / "hostile.tar", _hostile_members)
    for workers in (0, 1):
        loader = wds.WebLoader(
            audio_pipeline([shard], batch_size=4, policy="skip", sample_rate=SR),
            batch_size=None,
            num_workers=workers,
        )
        delivered, counter = _drain_lengths(loader)
        assert delivered == HOSTILE_DELIVERED
        assert counter.counts == {"not_regular_file": len(HOSTILE_COUNTED)}
        assert counter.samples + counter.total == 9  # the folder is not a sample
    # the same shard gzip-compressed: links are counted, not followed (no random access)
    compressed = _tar_with(tmp_path / "hostile.tar.gz", _hostile_members, "w:gz")
    delivered, counter = _drain_lengths(
        audio_pipeline([compressed], batch_size=4, policy="skip", sample_rate=SR)
    )
    assert delivered == {"a": 2000, "z": 1500}
    assert counter.counts == {"not_regular_file": 7}
    for name in HOSTILE_COUNTED:  # under "raise", each by name
        members = [m for m in tarfile.open(shard).getmembers() if m.name != f"{name}.wav"]
        only = _tar_with(
            tmp_path / f"only-{name}.tar",
            lambda tar, n=name, ms=members: _copy_members(tar, shard, [n], ms),
        )
        with pytest.raises(SampleError, match=rf"'{name}\.wav'") as info:
            list(audio_pipeline([only], batch_size=4, sample_rate=SR))
        assert info.value.reason == "not_regular_file"


def _copy_members(tar: tarfile.TarFile, shard: str, first: list[str], rest: Any) -> None:
    """``a.wav`` and the member ``first`` of ``shard`` (the one under test), in that order."""
    with tarfile.open(shard) as source:
        for member in source.getmembers():
            if member.name == "a.wav" or member.name[:-4] in first:
                data = source.extractfile(member) if member.isreg() else None
                tar.addfile(member, data)


def test_member_sizes_and_gzip_members_are_bounded(tmp_path: Path) -> None:
    good = _clip(3, 1800)
    import gzip

    def members(tar: tarfile.TarFile) -> None:
        _add(tar, "plain.wav", good)
        _add(tar, "packed.wav.gz", gzip.compress(good))
        _add(tar, "cut.flac.gz", gzip.compress(good)[:-30])
        _add(tar, "twice.wav.gz", gzip.compress(gzip.compress(good)))  # gzip of gzip: not audio
        _add(tar, "meta.json.gz", gzip.compress(b'{"a": 1}'))  # not audio: left as it is
        # a header claiming 2 GiB, then the end of the file: not read, and the cut counted
        huge = tarfile.TarInfo("huge.wav")
        huge.size = 2 * MAX_ENCODED_BYTES
        tar.fileobj.write(huge.tobuf(format=tarfile.GNU_FORMAT))  # type: ignore[union-attr]
        tar.offset += tarfile.BLOCKSIZE

    shard = _tar_with(tmp_path / "gz.tar", members)
    delivered, counter = _drain_lengths(
        audio_pipeline([shard], batch_size=8, policy="skip", sample_rate=SR)
    )
    assert delivered == {"plain": 1800, "packed": 1800}
    assert counter.counts == {
        "decode_error": 3,  # cut, twice, meta (no audio field)
        "too_large": 1,  # huge
        "stream_error": 1,  # the shard ends inside huge's declared data
    }
    # the gzip member decodes to exactly the plain one
    batches = list(audio_pipeline([shard], batch_size=8, policy="skip", sample_rate=SR))
    batch = next(b for b in batches if len(b))
    rows = {k: batch.audio[i, :n] for i, (k, n) in enumerate(zip(batch.keys, batch.lengths))}
    torch.testing.assert_close(rows["packed"], rows["plain"], rtol=0, atol=0)

    def huge_only(tar: tarfile.TarFile) -> None:
        _add(tar, "plain.wav", good)
        huge = tarfile.TarInfo("huge.wav")
        huge.size = 2 * MAX_ENCODED_BYTES
        tar.fileobj.write(huge.tobuf(format=tarfile.GNU_FORMAT))  # type: ignore[union-attr]
        tar.offset += tarfile.BLOCKSIZE

    strict = _tar_with(tmp_path / "huge.tar", huge_only)
    with pytest.raises(SampleError, match=r"huge\.wav.*MAX_ENCODED_BYTES") as info:
        list(audio_pipeline([strict], batch_size=8, sample_rate=SR))
    assert info.value.reason == "too_large"
    with pytest.raises(SampleError, match=r"sample 'cut' .*cut short") as info:
        list(audio_pipeline([shard], batch_size=8, sample_rate=SR))
    assert info.value.reason == "decode_error"


def test_tar_samples_is_a_picklable_stage(system_tar: dict[str, Any]) -> None:
    import pickle

    stage = pickle.loads(pickle.dumps(TarSamples("skip")))
    samples = list(stage([{"url": system_tar["shard"]}]))
    keys = sorted(s["__key__"] for s in samples)
    assert len(keys) == 10 and stage.handler.skips
    assert all(s["__url__"] == system_tar["shard"] for s in samples)


def test_cli_reads_system_tar_shards_and_counts(system_tar: dict[str, Any], tmp_path: Path) -> None:
    run = [sys.executable, "-m", "nnaudio_data.cli", "run", "--recipe", "stft-1024", "-q"]
    proc = subprocess.run(
        [*run, system_tar["shard"], "--json", "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["clips"] == len(system_tar["lengths"])
    assert summary["skipped"] == {"not_regular_file": 2}
    strict = subprocess.run(
        [*run, system_tar["shard"], "--on-error", "raise"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert strict.returncode == 1 and strict.stdout == ""
    assert "zdangling" in strict.stderr and "Traceback" not in strict.stderr
