"""Recipes: the bundled TOML files, reading by name or path, writing, and the checks on them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nnaudio_data.compose import Compose
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
import json, nnaudio_data
from nnaudio_data.recipes import get_recipe, list_recipes
names = list_recipes()
print(json.dumps({
    "file": nnaudio_data.__file__,
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
    assert sorted(p.name for p in (target / "nnaudio_data" / "transforms").glob("*.toml")) == [
        f"{n}.toml" for n in list_recipes()
    ]
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
    assert found["rates"] == {n: get_recipe(n).sample_rate for n in list_recipes()}
    assert found["sources"]["log-mel-80"] == "nnaudio_data.transforms/log-mel-80.toml"
