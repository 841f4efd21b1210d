"""The base class of every transform: an ``nn.Module`` that knows its own configuration and how
it maps valid lengths.

* ``output_lengths(lengths)`` maps the valid lengths of the input's time axis (samples, or frames
  for a transform that takes a spectrogram) to those of the output. The default is the identity;
  every transform that changes the time axis overrides it.
* ``get_config()`` (alias ``to_config()``) returns ``{"name": ClassName, **constructor arguments}`` as plain TOML/JSON
  values, recorded automatically from the call to ``__init__``; ``Transform.from_config(cfg)``
  rebuilds the object. ``Compose`` (in ``nnaudio_data.compose``) chains these.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

__all__ = ["Transform", "registered_transforms"]

_REGISTRY: dict[str, type[Transform]] = {}


def registered_transforms() -> dict[str, type[Transform]]:
    """Every public transform class by name (what ``from_config`` can build)."""
    return dict(_REGISTRY)


def _plain(value: Any) -> Any:
    """A constructor argument as a TOML/JSON value (tuples -> lists, dtypes -> names)."""
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Transform):
        return value.get_config()
    if getattr(value, "ndim", 0) and hasattr(value, "tolist"):  # numpy / torch arrays
        return value.tolist()
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return value.item()
    return value


class Transform(nn.Module):
    """Base class: records constructor arguments and maps valid lengths (identity by default).

    Subclasses whose name starts with ``_`` are not registered for ``from_config``.
    """

    _config: dict[str, Any]
    #: constructor arguments left out of the config (e.g. ``verbose``, ``device``)
    _config_exclude: ClassVar[frozenset[str]] = frozenset({"verbose", "device"})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            _REGISTRY[cls.__name__] = cls
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self: Transform, *args: Any, **kw: Any) -> None:
            depth = self.__dict__.get("_init_depth", 0)
            object.__setattr__(self, "_init_depth", depth + 1)
            try:
                init(self, *args, **kw)
            finally:
                object.__setattr__(self, "_init_depth", depth)
            if depth == 0:  # the outermost __init__ (the class's own, or the one it inherits)
                del self.__dict__["_init_depth"]
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                config: dict[str, Any] = {}
                for name, value in list(bound.arguments.items())[1:]:
                    kind = signature.parameters[name].kind
                    if kind is inspect.Parameter.VAR_KEYWORD:
                        config.update({k: _plain(v) for k, v in value.items()})
                    elif kind is inspect.Parameter.VAR_POSITIONAL:
                        config[name] = _plain(value)
                    elif name not in cls._config_exclude:
                        config[name] = _plain(value)
                object.__setattr__(self, "_config", config)

        cls.__init__ = recording_init  # type: ignore[method-assign,assignment]

    def get_config(self) -> dict[str, Any]:
        """``{"name": class name, **constructor arguments}`` as plain values."""
        config = getattr(self, "_config", {})
        return {"name": type(self).__name__, **config}

    to_config = get_config

    @staticmethod
    def from_config(config: Mapping[str, Any]) -> Transform:
        """Build the transform that :meth:`get_config` described."""
        if "name" not in config:
            raise ValueError(f"a transform config needs a 'name' key, got keys {sorted(config)}")
        name = config["name"]
        if name not in _REGISTRY:
            raise ValueError(f"unknown transform name {name!r}; known: {sorted(_REGISTRY)}")
        cls = _REGISTRY[name]
        kwargs = {k: v for k, v in config.items() if k != "name"}
        return cls._from_config_kwargs(kwargs)

    @classmethod
    def _from_config_kwargs(cls, kwargs: dict[str, Any]) -> Transform:
        """Hook for classes whose arguments need rebuilding (e.g. nested transforms)."""
        params = inspect.signature(cls.__init__).parameters
        var_positional = [
            n for n, p in params.items() if p.kind is inspect.Parameter.VAR_POSITIONAL
        ]
        if var_positional and var_positional[0] in kwargs:
            args = kwargs.pop(var_positional[0])
            return cls(*args, **kwargs)
        return cls(**kwargs)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid lengths of the output's time axis for inputs of valid ``lengths``."""
        return torch.as_tensor(lengths)
