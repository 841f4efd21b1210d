"""The ``nnaudio-data`` command, run as a real process over real files and tar shards.

Expected values come from outside the code under test: durations and rates read with soundfile,
recipe settings read from the TOML files with tomllib, frame counts from the ``center=True`` rule
``1 + samples // hop``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from nnaudio_data import data
from nnaudio_data.cli import CliError, main, resolve_inputs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "transforms"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nnaudio_data.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def parse_json(stdout: str) -> dict:
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must be one JSON object, got {stdout!r}"
    return json.loads(lines[0])


def run_in_process(capsys, *args: str) -> tuple[int, str, str]:
    """``main(args)`` in this process (real worker processes still fork from it)."""
    try:
        status = main(list(args))
    except SystemExit as exit:  # argparse's own errors
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def run_json(capsys, *args: str) -> dict:
    status, out, err = run_in_process(capsys, "run", "--json", *args)
    assert status == 0, err
    return parse_json(out)


def recipe_toml(name: str) -> dict:
    return tomllib.loads((RECIPES / f"{name}.toml").read_text())


def resampled_length(frames: int, orig_sr: int, new_sr: int) -> int:
    # band-limited polyphase resampling keeps ceil(frames * new / orig) samples
    return -(-frames * new_sr // orig_sr)


def test_run_on_bundled_data_counts_durations_and_shapes():
    # The installed command's code path, as a separate process: `python -m nnaudio_data.cli`.
    proc = run_cli("run", "--json", "--batch-size", "16")
    assert proc.returncode == 0, proc.stderr
    summary = parse_json(proc.stdout)
    files = data.files()
    infos = [sf.info(str(p)) for p in files]
    mel = recipe_toml("log-mel-80")["transforms"][0]
    sr = recipe_toml("log-mel-80")["sample_rate"]
    assert summary["recipe"] == "log-mel-80" and summary["sample_rate"] == sr
    assert summary["inputs"] == {"files": len(files), "shards": 0, "default": True}
    assert summary["clips"] == len(files) == len(data.index()["clips"]) == 43
    assert summary["batches"] == math.ceil(len(files) / 16)
    # Each clip is resampled to the recipe's rate, so its duration can be off by < 1 sample.
    expected_seconds = sum(i.frames / i.samplerate for i in infos)
    assert summary["audio_seconds"] == pytest.approx(expected_seconds, abs=len(files) / sr)
    lengths = [resampled_length(i.frames, i.samplerate, sr) for i in infos]
    frames = [1 + n // mel["hop_length"] for n in lengths]
    out = summary["output"]
    assert out["feature_shape"] == [mel["n_mels"]]
    assert out["first_batch_shape"][:2] == [16, mel["n_mels"]]
    assert out["frames_min"] == min(frames) and out["frames_max"] == max(frames)
    assert out["dtype"] == "float32" and out["device"] == "cpu"
    assert summary["skipped"] == {} and summary["skipped_total"] == 0
    assert summary["clips_per_second"] > 0
    assert summary["audio_seconds_per_second"] == pytest.approx(
        summary["audio_seconds"] / summary["elapsed_seconds"], rel=1e-3
    )


def test_shard_patterns_give_the_same_clips_as_the_files(capsys):
    pattern = data.shard_pattern()
    assert pattern.endswith("shard-{000..001}.tar")
    by_brace = run_json(capsys, pattern, "--recipe", "mel-128")
    shard_glob = str(data.DATA_DIR / "shard-*.tar")
    by_glob = run_json(capsys, shard_glob, "--recipe", "mel-128", "--workers", "1")
    files = run_json(capsys, "--recipe", "mel-128", "--workers", "0")
    for summary in (by_brace, by_glob):
        assert summary["inputs"]["shards"] == 2 and summary["inputs"]["files"] == 0
        assert summary["clips"] == files["clips"] == 43
        assert summary["audio_seconds"] == pytest.approx(files["audio_seconds"], rel=1e-9)
        assert summary["output"]["feature_shape"] == [128]
        assert summary["output"]["frames_max"] == files["output"]["frames_max"]
        assert summary["skipped_total"] == 0


def _corrupt_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (sr, seconds) in enumerate([(16000, 0.5), (16000, 0.25), (8000, 0.75)]):
        pcm = (rng.uniform(-0.5, 0.5, int(sr * seconds)) * 32767).astype(np.int16)
        sf.write(folder / f"good-{i}.wav", pcm, sr, subtype="PCM_16")
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 10)
    sf.write(folder / "silent.wav", np.zeros(0, dtype=np.int16), 16000)  # 0 samples
    return folder


def test_corrupt_and_empty_files_are_skipped_and_counted(tmp_path, capsys):
    folder = _corrupt_folder(tmp_path)
    summary = run_json(capsys, str(folder), "--on-error", "skip")
    assert summary["inputs"]["files"] == 5
    assert summary["clips"] == 3
    assert summary["skipped"] == {"decode_error": 1, "empty": 1}
    assert summary["skipped_total"] == 2
    # 0.5 + 0.25 + 0.75 s, each within one sample at 16 kHz of its true length
    assert summary["audio_seconds"] == pytest.approx(1.5, abs=3 / 16000)


def test_corrupt_file_raises_with_its_name(tmp_path, capsys):
    folder = _corrupt_folder(tmp_path)
    status, out, err = run_in_process(capsys, "run", "--json", str(folder), "--on-error", "raise")
    assert status == 1
    assert out == ""
    # raised in a worker process, reported as one line naming the file
    assert f"error: cannot decode audio '{folder / 'broken.wav'}'" in err


def test_mixed_rates_rejected_without_resampling(capsys):
    summary = run_json(capsys, "--no-resample", "--recipe", "log-mel-80")
    kinds = [c["sample_rate"] for c in data.index()["clips"]]
    assert summary["clips"] == kinds.count(16000) == 40
    assert summary["skipped"] == {"sample_rate": kinds.count(22050)} == {"sample_rate": 3}


def test_png_and_text_summary(tmp_path, capsys):
    import matplotlib.image

    png = tmp_path / "first.png"
    status, text, err = run_in_process(
        capsys, "run", "--limit", "6", "--batch-size", "4", "--png", str(png), "--quiet"
    )
    assert status == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(png).shape
    assert width > height > 100  # a grid of 4 panels, one row
    assert "6 in 2 batch(es)" in text  # --limit 6 with batches of 4
    assert "skipped  0" in text and str(png) in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "no/such/file.wav"], "no such file or folder: 'no/such/file.wav'"),
        (["run", "--recipe", "no-such-recipe"], "unknown recipe 'no-such-recipe'"),
        (["run", "--batch-size", "0"], "expected a positive integer, got '0'"),
        (["run", "nothing-{0..1}.tar"], "no such file or folder: 'nothing-0.tar'"),
    ],
)
def test_bad_input_exits_2_with_a_message(args, message, capsys):
    status, out, err = run_in_process(capsys, *args)
    assert status == 2
    assert message in err
    assert out == ""


def test_recipes_lists_the_bundled_recipes(capsys):
    status, out, err = run_in_process(capsys, "recipes", "--json")
    assert status == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    on_disk = sorted(p.stem for p in RECIPES.glob("*.toml"))
    assert sorted(rows) == on_disk and {"log-mel-80", "mel-128", "stft-1024"} <= set(rows)
    for name in on_disk:
        assert rows[name]["sample_rate"] == recipe_toml(name)["sample_rate"]


def test_resolve_inputs(tmp_path):
    assert resolve_inputs([]).files == [str(p) for p in data.files()]
    shards = resolve_inputs([data.shard_pattern()])
    assert shards.shards == [str(p) for p in data.shards()] and shards.files == []
    # a folder with audio gives its audio files (its shards are the same clips)
    bundled = resolve_inputs([str(data.DATA_DIR)])
    assert bundled.files == [str(p) for p in data.files()] and bundled.shards == []
    only_shards = tmp_path / "shards"
    only_shards.mkdir()
    (only_shards / "a.tar").write_bytes(b"")
    assert resolve_inputs([str(only_shards)]).shards == [str(only_shards / "a.tar")]
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(CliError, match="neither an audio file"):
        resolve_inputs([str(tmp_path / "notes.txt")])
    with pytest.raises(CliError, match="no file matches"):
        resolve_inputs([str(tmp_path / "*.flac")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CliError, match="holds no audio file"):
        resolve_inputs([str(tmp_path / "empty")])


def test_run_on_each_device(device, capsys):
    # cpu: the recipe runs in the 2 workers; cuda: workers pad, the device stage computes on the GPU
    words = str(data.DATA_DIR / "word-*.flac")
    summary = run_json(capsys, words, "--device", device, "--workers", "2", "--batch-size", "8")
    speech = data.files("speech")
    assert summary["device"] == device
    assert summary["output"]["device"].startswith(device)
    assert summary["clips"] == len(speech) == 40 and summary["batches"] == 5
    hop = recipe_toml("log-mel-80")["transforms"][0]["hop_length"]
    frames = [1 + sf.info(str(p)).frames // hop for p in speech]  # 16 kHz files: no resampling
    assert summary["output"]["frames_max"] == max(frames)
    assert summary["output"]["frames_min"] == min(frames)


def test_folder_with_no_usable_clip(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.wav").write_bytes(b"not audio at all" * 8)
    (folder / "b.flac").write_bytes(b"fLaC" + b"\x00" * 40)
    png = tmp_path / "never.png"
    status, out, err = run_in_process(
        capsys, "run", "--json", str(folder), "--png", str(png), "--batch-size", "1"
    )
    assert status == 1 and "no clip made it through (2 skipped)" in err  # not a success
    summary = parse_json(out)
    assert summary["clips"] == 0 and summary["batches"] == 0
    assert summary["skipped"] == {"decode_error": 2}
    assert summary["png"] is None and not png.exists()
    assert summary["output"]["first_batch_shape"] is None


def _faulty_shards(tmp_path: Path) -> Path:
    """shard-000: 2 good clips and one corrupt FLAC; shard-001: 3 clips, cut inside the third."""
    import io
    import tarfile

    def add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))

    words = data.files("speech")[:5]
    with tarfile.open(tmp_path / "shard-000.tar", "w") as tar:
        for p in words[:2]:
            add(tar, f"{p.stem}.flac", p.read_bytes())
            add(tar, f"{p.stem}.cls", b"1")
        add(tar, "broken.flac", b"fLaC" + b"\x01" * 500)
        add(tar, "broken.cls", b"2")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in words[2:5]:
            add(tar, f"{p.stem}.flac", p.read_bytes())
            add(tar, f"{p.stem}.cls", b"1")
    raw = buf.getvalue()
    cut = raw.index(words[4].stem.encode()) + 512 + 1000  # inside the last FLAC's data
    (tmp_path / "shard-001.tar").write_bytes(raw[:cut])
    return tmp_path


def test_faulty_shards_skip_and_raise(tmp_path, capsys):
    folder = _faulty_shards(tmp_path)
    pattern = str(folder / "shard-{000..001}.tar")
    summary = run_json(capsys, pattern, "--on-error", "skip")
    assert summary["clips"] == 4  # 2 + the 2 whole clips before the cut
    assert summary["skipped"]["decode_error"] == 1
    # the cut is reported as a stream error (webdataset may report it at the tar and url levels)
    assert summary["skipped"]["stream_error"] >= 1
    assert set(summary["skipped"]) == {"decode_error", "stream_error"}
    status, out, err = run_in_process(
        capsys, "run", "--json", str(folder / "shard-000.tar"), "--on-error", "raise"
    )
    assert status == 1 and out == ""
    assert "sample 'broken'" in err and "shard-000.tar" in err


def test_skipped_files_named_and_zero_byte_file_is_empty(tmp_path, capsys):
    folder = _corrupt_folder(tmp_path)
    (folder / "zero.flac").write_bytes(b"")  # a 0-byte file: no audio, not a corrupt one
    summary = run_json(capsys, str(folder), "--batch-size", "2")
    assert summary["skipped"] == {"decode_error": 1, "empty": 2}
    assert summary["skipped_files"] == {
        "decode_error": [str(folder / "broken.wav")],
        "empty": [str(folder / "silent.wav"), str(folder / "zero.flac")],
    }
    status, text, _ = run_in_process(capsys, "run", str(folder), "--quiet")
    assert status == 0 and "empty: silent.wav, zero.flac" in text


def test_checks_before_work_and_recipe_files_named(tmp_path, capsys):
    png = tmp_path / "missing" / "first.png"
    status, out, err = run_in_process(capsys, "run", "--png", str(png))
    assert status == 2 and out == ""
    assert f"--png: the folder {str(png.parent)!r} does not exist" in err
    wav = tmp_path / "some.wav"
    sf.write(wav, np.zeros(1600), 16000)
    status, out, err = run_in_process(capsys, "run", "--recipe", str(wav))
    assert status == 2 and str(wav) in err and "Traceback" not in err


def test_picture_axes_in_seconds_hz_and_notes():
    import torch

    from nnaudio_data.batch import SpecBatch
    from nnaudio_data.cli import draw_batch, note_name, plot_axes
    from nnaudio_data.recipes import get_recipe

    assert [note_name(f) for f in (32.70, 440.0, 261.63, 3951.07)] == ["C1", "A4", "C4", "B7"]
    mel = plot_axes(get_recipe("log-mel-80"))
    assert mel.seconds_per_frame == 160 / 16000 and mel.values == "log" and not mel.notes
    assert len(mel.frequencies) == 80 and 0 < mel.frequencies[0] < mel.frequencies[-1] < 8000
    cqt = plot_axes(get_recipe("cqt-84"))
    assert cqt.notes and cqt.values == "dB" and cqt.seconds_per_frame == 512 / 22050
    assert note_name(cqt.frequencies[0]) == "C1" and note_name(cqt.frequencies[-1]) == "B7"
    stft = plot_axes(get_recipe("stft-1024"))
    assert stft.frequencies[1] == 22050 / 1024 and stft.values == "value"
    batch = SpecBatch(
        spec=-torch.rand(2, 84, 50), lengths=torch.tensor([50, 30]), sample_rate=22050
    )
    batch.keys = ["a.flac", "b.flac"]
    fig = draw_batch(batch, axes=cqt)
    images = [ax for ax in fig.axes if ax.get_title()]
    assert len(images) == 2 and len(fig.axes) == 4  # each picture has its colour bar
    assert images[0].get_xlabel() == "time (s)" and images[0].get_ylabel() == "note"
    assert images[1].get_xlim() == pytest.approx((0, 30 * 512 / 22050))  # its valid frames
    labels = [t.get_text() for t in images[0].get_yticklabels()]
    assert labels[0] == "C1" and labels[-1] == "B7"
    assert {ax.get_ylabel() for ax in fig.axes if not ax.get_title()} == {"dB"}
    hz = draw_batch(batch, axes=plot_axes(get_recipe("log-mel-80")))  # 84 bins: not 80 mels
    assert [ax.get_ylabel() for ax in hz.axes if ax.get_title()] == ["bin", "bin"]
    mel = SpecBatch(spec=torch.rand(1, 80, 20), lengths=torch.tensor([20]), sample_rate=16000)
    mel.keys = ["c.wav"]
    (image,) = [ax for ax in draw_batch(mel, axes=plot_axes(get_recipe("log-mel-80"))).axes
                if ax.get_title()]  # fmt: skip
    assert image.get_ylabel() == "Hz" and image.get_xlim() == pytest.approx((0, 0.2))
