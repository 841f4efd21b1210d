"""Regenerate the bundled default data in ``nnaudio_data/data/``.

Two kinds of real recordings:

* **spoken words**: ten command words spoken by espeak-ng in two voices at two speeds, silence
  trimmed, resampled to 16 kHz mono (``resample_poly``);
* **music-like clips**: plucked strings (Karplus-Strong) and chords, 22.05 kHz stereo, 1 s each.

Every clip is also written into two WebDataset shards (``shard-000.tar``, ``shard-001.tar``), each
sample holding ``<key>.flac`` and ``<key>.cls`` (the class index as text). ``index.json`` lists
every clip with its label, class, voice, speed, sample rate, channels, frames and shard. The output is deterministic for a given
espeak-ng version: fixed seeds, sorted keys, tar members with fixed mtime/owner.

Needs ``espeak-ng`` on PATH (``apt-get install espeak-ng``). Run from the repository root::

    python scripts/make_default_data.py
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
# (short name used in keys, espeak-ng voice, pitch 0-99)
VOICES = [("us", "en-us", 45), ("gbf", "en-gb+f3", 60)]
SPEEDS = [150, 210]  # words per minute
# Samples are rounded to 12 significant bits inside 16-bit FLAC (FLAC stores the unused low bits
# for free): about 72 dB SNR, and half the size of full 16-bit espeak-ng output.
BITS = 12
SPEECH_SR = 16_000
MUSIC_SR = 22_050
MUSIC_CLASS_OFFSET = len(WORDS)
OUT = Path(__file__).resolve().parent.parent / "nnaudio_data" / "data"


def speak(word: str, voice: str, pitch: int, speed: int) -> tuple[np.ndarray, int]:
    """espeak-ng's output for ``word`` as float32 mono and its sample rate."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(path), word],
            check=True,
        )
        audio, sr = sf.read(path, dtype="float32")
    return audio, sr


def trim(audio: np.ndarray, sr: int, threshold: float = 0.02, margin_s: float = 0.02) -> np.ndarray:
    """Cut leading and trailing silence, keeping ``margin_s`` around the voiced part."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    margin = int(margin_s * sr)
    return audio[max(0, loud[0] - margin) : loud[-1] + 1 + margin]


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    g = gcd(sr_in, sr_out)
    return resample_poly(audio, sr_out // g, sr_in // g).astype(np.float32)


def pluck(freq: float, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A Karplus-Strong plucked string."""
    n = int(seconds * sr)
    period = round(sr / freq)
    noise = rng.uniform(-1.0, 1.0, period + 1)
    buf = 0.5 * (noise[1:] + noise[:-1])  # a softer (low-passed) pluck
    out = np.empty(n)
    for i in range(n):
        out[i] = buf[i % period]
        buf[i % period] = 0.996 * 0.5 * (buf[i % period] + buf[(i + 1) % period])
    return out


def music_clips(rng: np.random.Generator) -> list[tuple[str, str, np.ndarray]]:
    """(key, label, audio (channels, time)) for the music-like clips."""
    sr = MUSIC_SR

    def midi(m: int) -> float:
        return 440.0 * 2.0 ** ((m - 69) / 12)

    def place(parts: list[tuple[np.ndarray, float, float]], seconds: float) -> np.ndarray:
        """Mix (mono, onset_s, pan 0..1) parts into a stereo clip."""
        out = np.zeros((2, int(seconds * sr)))
        for sig, onset, pan in parts:
            start = int(onset * sr)
            seg = sig[: out.shape[1] - start]
            out[0, start : start + len(seg)] += np.sqrt(1 - pan) * seg
            out[1, start : start + len(seg)] += np.sqrt(pan) * seg
        return out

    clips = []
    # An arpeggio (C major), notes panned left to right.
    notes = [60, 64, 67, 72]
    parts = [(pluck(midi(m), 0.8, sr, rng), 0.2 * i, i / 3) for i, m in enumerate(notes)]
    clips.append(("music-arpeggio", "arpeggio", place(parts, 1.0)))
    # A strummed A minor chord.
    chord = [57, 64, 69, 72, 76]
    parts = [(pluck(midi(m), 1.0, sr, rng), 0.02 * i, 0.3 + 0.1 * i) for i, m in enumerate(chord)]
    clips.append(("music-chord", "chord", place(parts, 1.0)))
    # A low bass line under a held tone, both centred (a mono mix in a stereo file).
    t = np.arange(sr) / sr
    tone = 0.3 * np.sin(2 * np.pi * midi(67) * t) * np.exp(-t)
    bass = [(pluck(midi(m), 0.25, sr, rng), 0.25 * i, 0.5) for i, m in enumerate([36, 43, 41, 38])]
    clips.append(("music-bass", "bass", place([*bass, (tone, 0.0, 0.5)], 1.0)))
    for i, (key, label, audio) in enumerate(clips):
        clips[i] = (key, label, (0.8 * audio / np.abs(audio).max()).astype(np.float32))
    return clips


def flac_bytes(audio: np.ndarray, sr: int) -> bytes:
    """16-bit FLAC of ``audio`` ((time,) or (channels, time))."""
    step = 2.0 ** (1 - BITS)
    audio = np.round(audio / step) * step
    buf = io.BytesIO()
    sf.write(buf, audio.T if audio.ndim == 2 else audio, sr, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not on PATH: apt-get install espeak-ng")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("*.flac"), *out.glob("shard-*.tar")]:
        old.unlink()

    samples = []  # (key, flac bytes, index entry)
    for w, word in enumerate(WORDS):
        for vname, voice, pitch in VOICES:
            for speed in SPEEDS:
                audio, sr = speak(word, voice, pitch, speed)
                audio = resample(trim(audio, sr), sr, SPEECH_SR)
                audio = (0.8 * audio / np.abs(audio).max()).astype(np.float32)
                key = f"word-{word}-{vname}-s{speed}"
                entry = {
                    "key": key,
                    "file": f"{key}.flac",
                    "label": word,
                    "class": w,
                    "kind": "speech",
                    "voice": voice,
                    "speed_wpm": speed,
                    "sample_rate": SPEECH_SR,
                    "channels": 1,
                    "frames": len(audio),
                }
                samples.append((key, flac_bytes(audio, SPEECH_SR), entry))
    music = music_clips(np.random.default_rng(0))
    for c, (key, label, audio) in enumerate(music):
        entry = {
            "key": key,
            "file": f"{key}.flac",
            "label": label,
            "class": MUSIC_CLASS_OFFSET + c,
            "kind": "music",
            "sample_rate": MUSIC_SR,
            "channels": audio.shape[0],
            "frames": audio.shape[1],
        }
        samples.append((key, flac_bytes(audio, MUSIC_SR), entry))

    samples.sort(key=lambda s: s[0])
    shards: list[list[str]] = [[], []]
    for i, (key, data, entry) in enumerate(samples):
        (out / entry["file"]).write_bytes(data)
        shard = i % 2
        entry["shard"] = f"shard-{shard:03d}.tar"
        shards[shard].append(key)
    by_key = {key: (data, entry) for key, data, entry in samples}
    for s, keys in enumerate(shards):
        with tarfile.open(out / f"shard-{s:03d}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            for key in keys:
                data, entry = by_key[key]
                add_member(tar, f"{key}.flac", data)
                add_member(tar, f"{key}.cls", str(entry["class"]).encode())
    index = {
        "classes": WORDS + [label for _, label, _ in music],
        "speech_classes": WORDS,
        "clips": [entry for _, _, entry in samples],
        "shards": [f"shard-{s:03d}.tar" for s in range(len(shards))],
    }
    (out / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in out.iterdir() if p.suffix in (".flac", ".tar"))
    print(f"wrote {len(samples)} clips and {len(shards)} shards to {out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
