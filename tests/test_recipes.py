"""Recipes: the bundled TOML files, reading by name or path, writing, and the checks on them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from conftest import make_signals, rel_err

from nnaudio_data import SpecBatch, Transform, WaveBatch
from nnaudio_data.compose import Compose, apply_to_batch
from nnaudio_data.ops import AmplitudeToDB, CropOrPad, Normalize, Resample, TimeMasking, ToMono
from nnaudio_data.recipes import dump_recipe, get_recipe, list_recipes, load_recipe, recipe_dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

TRANSFORMS = Path(__file__).resolve().parents[1] / "transforms"

EXPECTED = {
    # name: (sample rate, first stage, its key parameters)
    "log-mel-80": (16000, "MelSpectrogram", {"n_fft": 400, "hop_length": 160, "n_mels": 80}),
    "mel-128": (22050, "MelSpectrogram", {"n_fft": 2048, "hop_length": 512, "n_mels": 128}),
    "stft-1024": (22050, "STFT", {"n_fft": 1024, "hop_length": 256}),
}


def test_bundled_recipes_are_listed_and_read() -> None:
    names = list_recipes()
    assert set(EXPECTED) <= set(names)
    assert names == sorted(p.stem for p in TRANSFORMS.glob("*.toml"))
    for name, (rate, first, params) in EXPECTED.items():
        recipe = get_recipe(name)
        assert recipe.name == name
        assert recipe.sample_rate == rate
        assert recipe.description
        assert recipe.transforms[0]["name"] == first
        assert {k: recipe.transforms[0][k] for k in params} == params
        assert recipe.transforms[0]["sr"] == rate
        # by path, the same recipe
        assert get_recipe(TRANSFORMS / f"{name}.toml").transforms == recipe.transforms
        assert get_recipe(str(TRANSFORMS / f"{name}.toml")).sample_rate == rate
    assert get_recipe("stft-1024").transforms[0]["output_format"] == "Magnitude"


def _ops_chain() -> Compose:
    return Compose(
        ToMono(),
        Resample(22050, 16000),
        CropOrPad(16000, "center"),
        Compose(TimeMasking(5, seed=3)),
        AmplitudeToDB("magnitude", ref="max"),  # amin None: its default, so left out
        Normalize("global"),
    )


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    chain = _ops_chain()
    text = dump_recipe(chain, 22050, 'ops "only"')
    path = tmp_path / "ops.toml"
    path.write_text(text)
    assert tomllib.loads(text) == recipe_dict(chain, 22050, 'ops "only"')
    recipe = get_recipe(path)
    assert (recipe.name, recipe.sample_rate, recipe.description) == ("ops", 22050, 'ops "only"')
    rebuilt = load_recipe(path)
    assert rebuilt.get_config() == chain.get_config()
    assert "amin" not in recipe.transforms[4]  # None is written as absent
    x = torch.rand(2, 2, 30000)
    lengths = torch.tensor([30000, 9000])
    torch.testing.assert_close(rebuilt(x, lengths), chain(x, lengths))


def test_dump_rejects_what_toml_cannot_hold() -> None:
    with pytest.raises(ValueError, match=r"AmplitudeToDB\.top_db is None"):
        dump_recipe(Compose(AmplitudeToDB(top_db=None)), 16000)
    with pytest.raises(ValueError, match="sample_rate"):
        dump_recipe(Compose(ToMono()), 0)


RECIPE_HEAD = 'description = "x"\nsample_rate = 16000\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sample_rate = 16000\n[[transforms]\n", "not valid TOML"),
        ('description = "x"\n[[transforms]]\nname = "ToMono"\n', "needs sample_rate"),
        ('sample_rate = 0\n[[transforms]]\nname = "ToMono"\n', "sample_rate"),
        ('sample_rate = 16000\nrate = 1\n[[transforms]]\nname = "ToMono"\n', "unknown keys"),
        (RECIPE_HEAD, "non-empty"),
        (RECIPE_HEAD + "[[transforms]]\ngain_db = 3.0\n", r"transforms\[0\].*'name'"),
        (
            RECIPE_HEAD + '[[transforms]]\nname = "Resample"\norig_sr = 22050\nnew_sr = 16000\n',
            "orig_sr=22050",
        ),
        (
            RECIPE_HEAD + '[[transforms]]\nname = "Resample"\norig_sr = 16000\nnew_sr = 8000\n'
            '[[transforms]]\nname = "MelSpectrogram"\nsr = 16000\n',
            r"transforms\[1\] MelSpectrogram has sr=16000 but receives audio at 8000",
        ),
    ],
)
def test_bad_recipe_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        get_recipe(path)


def test_unknown_names_and_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown recipe 'log-mel-81'.*log-mel-80"):
        get_recipe("log-mel-81")
    with pytest.raises(ValueError, match="does not exist"):
        get_recipe(tmp_path / "missing.toml")
    path = tmp_path / "stage.toml"
    path.write_text(RECIPE_HEAD + '[[transforms]]\nname = "NoSuchStage"\n')
    with pytest.raises(ValueError, match="unknown transform name 'NoSuchStage'"):
        load_recipe(path)


ROOT = Path(__file__).resolve().parents[1]

INSTALLED_CHECK = """
import json, torch, nnaudio_data
from nnaudio_data.recipes import get_recipe, list_recipes, load_recipe
names = list_recipes()
print(json.dumps({
    "file": nnaudio_data.__file__,
    "shape": list(load_recipe("log-mel-80")(torch.zeros(1, 16000)).shape),
    "names": names,
    "rates": {n: get_recipe(n).sample_rate for n in names},
    "sources": {n: get_recipe(n).source for n in names},
}))
"""


@pytest.mark.slow
def test_recipes_found_after_a_plain_install(tmp_path: Path) -> None:
    # A non-editable install from a copy of the project (so no build files land in the tree),
    # then a fresh interpreter that sees only the installed copy.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "setup.cfg"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "nnaudio_data", source / "nnaudio_data", ignore=ignore)
    shutil.copytree(ROOT / "transforms", source / "transforms", ignore=ignore)
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    pip += ["--no-build-isolation", "--no-compile", "--target", str(target), str(source)]
    subprocess.run(pip, check=True, cwd=tmp_path, capture_output=True, timeout=240)
    installed = (target / "nnaudio_data" / "transforms").glob("*.toml")
    assert sorted(p.stem for p in installed) == list_recipes()
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", INSTALLED_CHECK],
        check=True,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = json.loads(result.stdout)
    assert Path(found["file"]).resolve().is_relative_to(target.resolve())
    assert found["names"] == list_recipes()
    assert found["shape"] == [1, 80, 101]  # built from the installed copy: 1 s at hop 160
    assert found["rates"] == {n: get_recipe(n).sample_rate for n in list_recipes()}
    assert found["sources"]["log-mel-80"] == "nnaudio_data.transforms/log-mel-80.toml"


# ---------------------------------------------------------------- the chains the recipes build


def test_each_bundled_recipe_is_its_chains_config() -> None:
    for name in list_recipes():
        text = (TRANSFORMS / f"{name}.toml").read_text()
        data = tomllib.loads(text)
        chain = load_recipe(name)
        config = chain.get_config()
        assert config["name"] == "Compose"
        assert len(config["transforms"]) == len(data["transforms"])
        for stage, written in zip(config["transforms"], data["transforms"]):
            # every constructor argument is in the file, except those whose value is None
            # (TOML has no null; they take their default, None)
            assert {k: v for k, v in stage.items() if v is not None} == written, name
        assert recipe_dict(chain, data["sample_rate"], data["description"]) == data


def _clips(sr: int) -> np.ndarray:
    """Sweep, chord and noise, 0.5 s each, float32, at ``sr``."""
    return make_signals(sr, 0.5).astype(np.float32)


def test_log_mel_80_matches_librosa() -> None:
    x = _clips(16000)
    out = load_recipe("log-mel-80")(torch.from_numpy(x)).numpy()
    mel = librosa.feature.melspectrogram(
        y=x.astype(np.float64), sr=16000, n_fft=400, hop_length=160, n_mels=80, pad_mode="reflect"
    )
    expected = np.log(mel + 1e-6)
    assert out.shape == expected.shape == (3, 80, 51)
    # float32 kernels against librosa's float64: where the power is well above eps the log
    # differs by the relative error of the power (~1e-5); the chord's bands far from its three
    # tones sit near eps, where the log magnifies float32 rounding (measured 1.6e-4 at most)
    np.testing.assert_allclose(out, expected, atol=2e-3, rtol=0)


def test_mel_128_matches_librosa_in_db() -> None:
    x = _clips(22050)
    out = load_recipe("mel-128")(torch.from_numpy(x)).numpy()
    for i in range(3):  # top_db is per clip
        mel = librosa.feature.melspectrogram(
            y=x[i].astype(np.float64), sr=22050, pad_mode="reflect"
        )
        expected = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=80.0)
        assert out[i].shape == expected.shape == (128, 22)
        # float32 kernels against librosa's float64: the weakest bands kept above the 80 dB
        # floor carry up to ~2e-4 relative error in power, 7e-4 dB measured; bound 2e-3 dB
        np.testing.assert_allclose(out[i], expected, atol=2e-3, rtol=0)


def test_stft_1024_matches_librosa() -> None:
    x = _clips(22050)
    out = load_recipe("stft-1024")(torch.from_numpy(x)).numpy()
    expected = np.abs(
        librosa.stft(x.astype(np.float64), n_fft=1024, hop_length=256, pad_mode="reflect")
    )
    assert out.shape == expected.shape == (3, 513, 44)
    # float32 kernels against librosa's float64 (both pad by reflection, nnAudio's default):
    # relative error of the whole magnitude spectrogram, measured 1e-7
    assert rel_err(out, expected) < 1e-6


@pytest.mark.parametrize("name", ["log-mel-80", "mel-128", "stft-1024"])
def test_recipe_on_a_batch_equals_per_item_on_interior_frames(name: str) -> None:
    recipe = get_recipe(name)
    chain = recipe.build()
    x = torch.from_numpy(_clips(recipe.sample_rate))
    lengths = torch.tensor([x.shape[-1], 5000, 3001])
    audio = x.clone()
    for i, n in enumerate(lengths.tolist()):
        audio[i, n:] = 0
    batch = WaveBatch(
        audio=audio, lengths=lengths, sample_rate=recipe.sample_rate, keys=["a", "b", "c"]
    )
    out = apply_to_batch(chain, batch)
    assert isinstance(out, SpecBatch) and out.time_dim == -1
    stage = chain[0]
    n_fft, hop = stage.n_fft, stage.hop_length
    assert out.lengths.tolist() == [1 + n // hop for n in lengths.tolist()]  # center=True
    for i, n in enumerate(lengths.tolist()):
        single = chain(x[i : i + 1, :n])
        assert single.shape[-1] == int(out.lengths[i])
        # frames whose window ends inside the item see the same samples batched or not (the
        # last ones see reflect padding alone, zeros then reflection in the batch); mel-128's
        # per-clip 80 dB floor is taken over valid frames in both cases. float32 throughout:
        # the batched and single calls may block the work differently, hence 1e-4
        interior = max(0, (n - n_fft // 2) // hop)
        torch.testing.assert_close(
            out.spec[i, :, :interior], single[0, :, :interior], atol=1e-4, rtol=1e-4
        )


def test_complex_stft_batch_has_time_on_the_second_to_last_axis() -> None:
    stft = Transform.from_config(
        {**get_recipe("stft-1024").transforms[0], "output_format": "Complex"}
    )
    batch = WaveBatch(
        audio=torch.randn(2, 4096), lengths=torch.tensor([4096, 1000]), sample_rate=22050
    )
    out = apply_to_batch(Compose(stft), batch)
    assert isinstance(out, SpecBatch)
    assert out.spec.shape == (2, 513, 17, 2) and out.time_dim == -2
    assert out.lengths.tolist() == [17, 4]
    assert out.mask.shape == (2, 17)
