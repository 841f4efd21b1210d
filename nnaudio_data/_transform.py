"""The base class of every transform: an ``nn.Module`` that declares what it returns, knows its
own configuration and maps valid lengths.

The contract every stage declares (read by ``Compose``, the collate functions and recipes; never
inferred from module or class names):

* ``output_kind`` (class attribute): ``"spectrogram"`` or ``"waveform"`` if the transform makes
  one, ``None`` (the default) if its output is the same kind as its input (an op).
* ``time_dim``: the time axis of the output (``-1``; ``-2`` for a complex ``(..., frames, 2)``).
* ``output_lengths(lengths)`` maps the valid lengths of the input's time axis (samples, or frames
  for a transform that takes a spectrogram) to those of the output. The default is the identity;
  every transform that changes the time axis overrides it.
* ``get_config()`` (alias ``to_config()``) returns ``{"name": ClassName, **constructor arguments}`` as plain TOML/JSON
  values, recorded automatically from the call to ``__init__``; ``Transform.from_config(cfg)``
  rebuilds the object. ``Compose`` (in ``nnaudio_data.compose``) chains these.

Names. Every subclass is registered under its import path ``"package.module:ClassName"`` and,
where no other class has it, under its short class name. A user's own subclass is therefore
built from a config or a recipe by its import path (``"mypkg.front:MyStage"``, imported on
demand); two classes with the same short name make that short name an error that lists both
paths, never a silent replacement.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

__all__ = [
    "OUTPUT_KINDS",
    "Transform",
    "import_path",
    "lookup_transform",
    "nnaudio_keys",
    "registered_transforms",
]

_REGISTRY: dict[str, type[Transform]] = {}
#: short names claimed by more than one class: name -> their import paths
_AMBIGUOUS: dict[str, list[str]] = {}
OUTPUT_KINDS = ("spectrogram", "waveform", None)


def import_path(cls: type) -> str:
    """``"package.module:QualName"``, the name that finds ``cls`` from anywhere."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _register(cls: type[Transform]) -> None:
    path = import_path(cls)
    _REGISTRY[path] = cls
    name = cls.__name__
    if name in _AMBIGUOUS:
        if path not in _AMBIGUOUS[name]:
            _AMBIGUOUS[name].append(path)
        return
    other = _REGISTRY.get(name)
    if other is None or import_path(other) == path:  # new, or the same class defined again
        _REGISTRY[name] = cls
        return
    del _REGISTRY[name]
    _AMBIGUOUS[name] = [import_path(other), path]


def registered_transforms() -> dict[str, type[Transform]]:
    """Every public transform class by short name and by import path (what ``from_config``
    builds without importing anything)."""
    return dict(_REGISTRY)


def lookup_transform(name: str) -> type[Transform]:
    """The class a config's ``name`` means: a short name, or an import path (imported here)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _AMBIGUOUS:
        raise ValueError(
            f"transform name {name!r} is ambiguous: classes {_AMBIGUOUS[name]} all have it; "
            "name one by its import path"
        )
    if ":" in name:
        module_name, _, qualname = name.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"transform {name!r} cannot be imported: {e}") from e
        if not (isinstance(obj, type) and issubclass(obj, Transform)):
            raise ValueError(f"{name!r} is {obj!r}, not a Transform subclass")
        return obj
    short = sorted(k for k in _REGISTRY if ":" not in k)
    raise ValueError(
        f"unknown transform name {name!r}; known: {short}, or an import path "
        "'package.module:ClassName'"
    )


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
    #: what the transform makes: ``"spectrogram"``, ``"waveform"``, or ``None`` (the input's kind)
    output_kind: ClassVar[str | None] = None
    #: the time axis of the output
    time_dim: int = -1
    #: nnAudio 0.3.4's state_dict keys of this module that we do not save: key -> the attribute
    #: whose value a checkpoint's entry must equal (a frozen kernel, rebuilt here from the
    #: arguments), or ``None`` for a key that carries nothing (nnAudio's misspelt ``lenghts``).
    #: So ``ours.load_state_dict(nnaudio_layer.state_dict())`` works with ``strict=True``.
    nnaudio_buffers: Mapping[str, str | None] = types.MappingProxyType({})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("output_kind", None) not in OUTPUT_KINDS:
            raise ValueError(
                f"{cls.__name__}.output_kind must be one of {OUTPUT_KINDS}, got "
                f"{cls.__dict__['output_kind']!r}"
            )
        if not cls.__name__.startswith("_"):
            _register(cls)
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
        """``{"name": class name, **constructor arguments}`` as plain values; the name is the
        short class name for this library's classes, the import path for others."""
        config = getattr(self, "_config", {})
        cls = type(self)
        own = cls.__module__.split(".")[0] == "nnaudio_data"
        name = cls.__name__ if own and _REGISTRY.get(cls.__name__) is cls else import_path(cls)
        return {"name": name, **config}

    to_config = get_config

    @staticmethod
    def from_config(config: Mapping[str, Any]) -> Transform:
        """Build the transform that :meth:`get_config` described."""
        if "name" not in config:
            raise ValueError(f"a transform config needs a 'name' key, got keys {sorted(config)}")
        name = config["name"]
        if not isinstance(name, str):
            raise ValueError(f"a transform config's 'name' must be a string, got {name!r}")
        cls = lookup_transform(name)
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

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Recognise the frozen kernels an nnAudio checkpoint stores (see ``nnaudio_buffers``):
        each is checked against ours and dropped; trainable ones load as parameters."""
        for key, attr in self.nnaudio_buffers.items():
            full = prefix + key
            if full not in state_dict:
                continue
            value = state_dict.pop(full)
            param = self._parameters.get(attr or key)
            if param is not None:  # trainable here: a trained (or frozen) kernel loads into it
                same = value.numel() == param.numel()
                state_dict[prefix + (attr or key)] = value.reshape(param.shape) if same else value
            elif attr is not None and _holds(self, attr):  # (the DFT of a frozen spectral
                # CQT is an FFT here: a kernel we do not hold at all is dropped)
                message = _compare_kernel(getattr(self, attr), value)
                if message:
                    error_msgs.append(
                        f"{full}: {message}; the checkpoint's {type(self).__name__} was built with "
                        "other arguments, or its kernels were trained (then build this one with "
                        "the trainable option)"
                    )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


def nnaudio_keys(*names: str, ignored: tuple[str, ...] = ()) -> Mapping[str, str | None]:
    """A read-only ``nnaudio_buffers`` table: each of ``names`` is checked against the attribute
    of the same name, each of ``ignored`` is dropped unchecked."""
    table: dict[str, str | None] = {n: n for n in names}
    table.update(dict.fromkeys(ignored))
    return types.MappingProxyType(table)


def _holds(module: nn.Module, name: str) -> bool:
    try:
        getattr(module, name)
    except AttributeError:
        return False
    return True


def _compare_kernel(ours: Any, theirs: Any) -> str:
    """``""`` if a checkpoint's frozen kernel equals ours (to float32 rounding), else why not."""
    a = torch.as_tensor(ours).detach().to("cpu", torch.float64)
    b = torch.as_tensor(theirs).detach().to("cpu", torch.float64)
    if a.numel() != b.numel() and a.ndim == b.ndim and a.shape[:-1] == b.shape[:-1]:
        # nnAudio zero-pads kernels to a common length, centred; ours keep only the support
        extra = b.shape[-1] - a.shape[-1]
        start = (extra + 1) // 2
        if extra > 0 and not b[..., :start].any() and not b[..., start + a.shape[-1] :].any():
            b = b[..., start : start + a.shape[-1]]
    a, b = a.reshape(-1), b.reshape(-1)
    if a.shape != b.shape:
        return f"the checkpoint holds {b.numel()} values where this module has {a.numel()}"
    scale = float(a.abs().max()) if a.numel() else 0.0
    worst = float((a - b).abs().max()) if a.numel() else 0.0
    if worst > 1e-5 * max(scale, 1e-30) + 1e-12:
        return f"its values differ from this module's by up to {worst:.3g} (largest {scale:.3g})"
    return ""
