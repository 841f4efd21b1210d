"""Parameter validation shared by every layer.

Each helper returns the validated (and normalised) value or raises a ``ValueError`` that names the
parameter and the value it was given, so that bad parameters fail at construction time.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import torch

__all__ = [
    "check_bool",
    "check_choice",
    "check_float_dtype",
    "check_non_negative_int",
    "check_positive_float",
    "check_positive_int",
    "check_range",
]

_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "float": torch.float32,
    "double": torch.float64,
}


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool (numpy bools too), else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {value!r}")


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an ``int`` > 0, else ``ValueError`` naming ``name``."""
    if not _is_int(value) or int(value) <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_non_negative_int(name: str, value: Any) -> int:
    """``value`` as an ``int`` >= 0, else ``ValueError`` naming ``name``."""
    if not _is_int(value) or int(value) < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def check_positive_float(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """``value`` as a finite ``float`` > 0 (or >= 0 with ``allow_zero``)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(f) or f < 0 or (f == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return f


def check_range(
    name: str, value: Any, low: float | None = None, high: float | None = None
) -> float:
    """``value`` as a finite ``float`` with ``low <= value <= high`` (either bound optional)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(f):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if (low is not None and f < low) or (high is not None and f > high):
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value!r}")
    return f


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices`` (strings compared case-sensitively)."""
    options = list(choices)
    if value not in options:
        raise ValueError(f"{name} must be one of {options!r}, got {value!r}")
    return value


def check_float_dtype(name: str, value: Any) -> torch.dtype:
    """A floating ``torch.dtype`` from a dtype, a numpy dtype or its name (``'float64'``)."""
    if isinstance(value, torch.dtype):
        if value.is_floating_point:
            return value
    elif isinstance(value, str) and value.removeprefix("torch.") in _DTYPES:
        return _DTYPES[value.removeprefix("torch.")]
    else:
        try:
            import numpy as np

            key = np.dtype(value).name
        except TypeError:
            key = ""
        if key in _DTYPES:
            return _DTYPES[key]
    raise ValueError(
        f"{name} must be a floating dtype ({', '.join(sorted(_DTYPES))}), got {value!r}"
    )
