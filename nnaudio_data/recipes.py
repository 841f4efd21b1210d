"""Named transform chains ("recipes") stored as TOML in the top-level ``transforms/`` folder.

The folder installs as the package ``nnaudio_data.transforms`` (see ``pyproject.toml``), so the
bundled recipes are found with :mod:`importlib.resources` after a plain, non-editable
``pip install``. A recipe file is::

    description = "log-mel, 80 bands, for 16 kHz speech"
    sample_rate = 16000          # the rate the chain expects; pipelines resample to it

    [[transforms]]               # one table per stage, in order: Transform.get_config() values
    name = "MelSpectrogram"
    sr = 16000
    ...

    [[transforms]]
    name = "Log"
    eps = 1e-06

``transforms`` is exactly ``Compose(...).get_config()["transforms"]`` of the chain it builds, less
the arguments whose value is ``None`` (TOML has no null; an absent argument takes its default,
and :func:`recipe_dict` only drops ``None`` where that default is ``None``). A stage that has a
sample-rate argument (``sr``) must agree with ``sample_rate``, and a ``Resample`` stage moves it.

Typical use::

    recipe = get_recipe("log-mel-80")        # or a path to a .toml file
    front_end = recipe.build()               # a Compose; load_recipe(...) does both
    recipe.sample_rate, recipe.description
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.resources
import inspect
import json
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from nnaudio_data._checks import check_positive_int
from nnaudio_data._transform import Transform, lookup_transform
from nnaudio_data.compose import Compose

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "Recipe",
    "dump_recipe",
    "get_recipe",
    "list_recipes",
    "load_recipe",
    "recipe_dict",
]

_PACKAGE = "nnaudio_data.transforms"
_KEYS = {"description", "sample_rate", "transforms"}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A recipe as read from its TOML file.

    Attributes:
        name: the file name without ``.toml``.
        description: one line saying what the chain is for.
        sample_rate: the sample rate (Hz) the chain expects at its input.
        transforms: the stages' configs, in order (``Transform.from_config`` input).
        source: where it was read from (a path, or ``nnaudio_data.transforms/<file>``).
    """

    name: str
    description: str
    sample_rate: int
    transforms: list[dict[str, Any]]
    source: str

    def build(self) -> Compose:
        """The chain as a :class:`~nnaudio_data.compose.Compose`."""
        chain = Transform.from_config({"name": "Compose", "transforms": self.transforms})
        return cast(Compose, chain)


def list_recipes() -> list[str]:
    """The names of the bundled recipes, sorted."""
    root = importlib.resources.files(_PACKAGE)
    return sorted(p.name[: -len(".toml")] for p in root.iterdir() if p.name.endswith(".toml"))


def _read(name_or_path: str | Path) -> tuple[str, str, str]:
    """``(name, text, source)`` of a bundled recipe name or a path to a TOML file."""
    text_arg = str(name_or_path)
    looks_like_path = (
        isinstance(name_or_path, Path) or text_arg.endswith(".toml") or "/" in text_arg
    )
    if looks_like_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise ValueError(f"recipe file {text_arg!r} does not exist")
        return path.stem, path.read_text(encoding="utf-8"), str(path)
    resource = importlib.resources.files(_PACKAGE) / f"{text_arg}.toml"
    if not resource.is_file():
        raise ValueError(
            f"unknown recipe {text_arg!r}; bundled recipes: {list_recipes()} (or give a path "
            "to a .toml file)"
        )
    return text_arg, resource.read_text(encoding="utf-8"), f"{_PACKAGE}/{text_arg}.toml"


def _check_rates(stages: list[Any], rate: int, where: str) -> int:
    """Follow the sample rate through the stage configs; a mismatched ``sr`` is an error."""
    for i, stage in enumerate(stages):
        if not isinstance(stage, Mapping) or not isinstance(stage.get("name"), str):
            raise ValueError(f"{where}[{i}] must be a table with a 'name' string, got {stage!r}")
        if stage["name"] == "Compose":
            rate = _check_rates(list(stage.get("transforms", [])), rate, f"{where}[{i}].transforms")
        elif stage["name"] == "Resample":
            if stage.get("orig_sr") != rate:
                raise ValueError(
                    f"{where}[{i}] Resample has orig_sr={stage.get('orig_sr')!r} but receives "
                    f"audio at {rate} Hz"
                )
            rate = int(stage.get("new_sr", rate))
        else:
            for key in ("sr", "sample_frequency"):  # nnAudio's name, Kaldi's name
                if key in stage and stage[key] != rate:
                    raise ValueError(
                        f"{where}[{i}] {stage['name']} has {key}={stage[key]!r} but receives "
                        f"audio at {rate} Hz (sample_rate)"
                    )
    return rate


def get_recipe(name_or_path: str | Path) -> Recipe:
    """Read a bundled recipe by name (``"log-mel-80"``) or a recipe file by path.

    Raises:
        ValueError: unknown name, missing file, invalid TOML, or a recipe whose keys, sample rate
            or stages are wrong (the message names the key or stage).
    """
    name, text, source = _read(name_or_path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"recipe {source} is not valid TOML: {exc}") from None
    unknown = set(data) - _KEYS
    if unknown:
        raise ValueError(f"recipe {source} has unknown keys {sorted(unknown)}; expected {_KEYS}")
    if "sample_rate" not in data:
        raise ValueError(f"recipe {source} needs sample_rate (the rate the chain expects)")
    try:
        sample_rate = check_positive_int("sample_rate", data["sample_rate"])
    except ValueError as exc:
        raise ValueError(f"recipe {source}: {exc}") from None
    transforms = data.get("transforms")
    if not isinstance(transforms, list) or not transforms:
        raise ValueError(f"recipe {source} needs a non-empty [[transforms]] list")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"recipe {source}: description must be a string, got {description!r}")
    _check_rates(transforms, sample_rate, f"recipe {source}: transforms")
    return Recipe(name, description, sample_rate, transforms, source)


def load_recipe(name_or_path: str | Path) -> Compose:
    """The chain a recipe describes (``get_recipe(name_or_path).build()``)."""
    return get_recipe(name_or_path).build()


def _without_none(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` less its ``None`` arguments, checking each has ``None`` as its default."""
    name = config["name"]
    cls = lookup_transform(name)
    params = inspect.signature(cls.__init__).parameters
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "transforms" and name == "Compose":
            value = [_without_none(c) for c in value]
        elif value is None:
            default = params[key].default if key in params else inspect.Parameter.empty
            if default is not None:
                raise ValueError(
                    f"{name}.{key} is None but its default is {default!r}: TOML has no null, so "
                    "this chain cannot be written as a recipe"
                )
            continue
        out[key] = value
    return out


def recipe_dict(chain: Transform, sample_rate: int, description: str = "") -> dict[str, Any]:
    """The recipe of ``chain`` as the dict its TOML file parses to."""
    config = chain.get_config()
    stages = config["transforms"] if config["name"] == "Compose" else [config]
    stages = [_without_none(c) for c in stages]
    return {
        "description": str(description),
        "sample_rate": check_positive_int("sample_rate", sample_rate),
        "transforms": stages,
    }


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{" + items + "}"
    raise ValueError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def dump_recipe(chain: Transform, sample_rate: int, description: str = "") -> str:
    """The TOML text of a recipe for ``chain`` (save it as ``<name>.toml``).

    Raises:
        ValueError: a stage argument that TOML cannot hold (``None`` where the default is not
            ``None``, or a value that is not a plain number, string, list or table).
    """
    data = recipe_dict(chain, sample_rate, description)
    lines = [
        f"description = {_toml_value(data['description'])}",
        f"sample_rate = {data['sample_rate']}",
    ]
    for stage in data["transforms"]:
        lines += ["", "[[transforms]]"]
        lines += [f"{_toml_key(key)} = {_toml_value(value)}" for key, value in stage.items()]
    return "\n".join(lines) + "\n"
