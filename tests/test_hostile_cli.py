"""The command on hostile input (issue 10), as a real subprocess.

A folder of lying headers, gzip, a FIFO, a folder, a device link, a dangling link and a name that
is not UTF-8, all named as audio; a file that is not a tar named as a shard; a clip that
overflows the spectrogram. Under ``--on-error skip`` every one is counted by reason
(clips + skipped == given); under ``--on-error raise`` and for every other error path, the command
ends with one line on stderr naming the problem, no traceback, and a non-zero status.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import _faults
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]  # each run imports torch: ~3-6 s

RATE = 22050  # the stft-1024 recipe's rate


def _run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nnaudio_data.cli", "run", "--recipe", "stft-1024", "-q", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        errors="backslashreplace",
    )


def _one_line_error(proc: subprocess.CompletedProcess[str], status: int) -> str:
    assert proc.returncode == status, (proc.returncode, proc.stderr)
    assert proc.stdout == "" and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("nnaudio-data: error")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str | None]]:
    """The hostile folder and what each entry is: ``{name stem: reason or None}`` (the 1 Hz clip
    would be resampled to 8.8e8 samples: ``too_large``)."""
    root = tmp_path_factory.mktemp("cli-hostile")
    expected: dict[str, str | None] = {}
    for c in _faults.hostile_cases(RATE):
        (root / f"{c.key}.{c.ext}").write_bytes(c.data)
        expected[c.key] = c.reason
    good = next(c for c in _faults.hostile_cases(RATE) if c.key == "good").data
    special = _faults.write_special_files(root / "special", good)
    for key, (_, reason) in special.items():
        expected[key] = reason
    return root, expected


def test_skip_counts_every_hostile_entry(folder: tuple[Path, dict[str, str | None]]) -> None:
    root, expected = folder
    # a folder named x.wav is a folder to the command's scan (it looks inside): not an input
    given = {k: r for k, r in expected.items() if k != "folder"}
    proc = _run(str(root), "--json", "--batch-size", "3", "--workers", "2", timeout=170)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    want: dict[str, int] = {}
    for reason in given.values():
        if reason is not None:
            want[reason] = want.get(reason, 0) + 1
    assert summary["skipped"] == dict(sorted(want.items()))
    assert summary["clips"] == sum(r is None for r in given.values())
    assert summary["clips"] + summary["skipped_total"] == len(given)
    assert "fifo.wav" in proc.stderr and "not a regular file (a FIFO)" in proc.stderr
    assert "\\udcff\\udcfe-not-utf8" not in proc.stderr  # delivered, so not logged
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("entry", ["claims-2e36.flac", "special/fifo.wav"])
def test_raise_ends_in_one_line_naming_the_file(
    entry: str, folder: tuple[Path, dict[str, str | None]], tmp_path: Path
) -> None:
    root, _ = folder
    given = tmp_path / "in"
    given.mkdir()
    os.symlink(root / "good.wav", given / "a-good.wav")
    target = root / entry
    if entry.endswith("fifo.wav"):
        os.mkfifo(given / "b-bad.wav")
    else:
        os.symlink(target, given / "b-bad.wav")
    line = _one_line_error(_run(str(given), "--on-error", "raise", "--workers", "0"), 1)
    assert "b-bad.wav" in line, line


def test_every_other_error_path_is_one_line(tmp_path: Path) -> None:
    not_tar = tmp_path / "fake.tar"
    not_tar.write_bytes(b"this is not a tar file\n" * 40)
    line = _one_line_error(_run(str(not_tar), "--on-error", "raise", "--workers", "0"), 1)
    assert "fake.tar" in line  # a stream error under raise: named, not a traceback
    fifo = tmp_path / "pipe.tar"
    os.mkfifo(fifo)  # a FIFO named as a shard: refused before opening (it would block)
    assert "not a regular file" in _one_line_error(_run(str(fifo)), 2)
