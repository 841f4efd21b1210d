"""Chaining transforms, and applying a transform to a batch with its valid lengths.

Conventions every stage follows (and :class:`Compose` relies on):

* **Lengths in.** A stage that needs the valid lengths of its input (``Normalize``,
  ``AmplitudeToDB``, the masks, the crops) takes them as a keyword argument of its forward:
  ``forward(x, lengths=None)``, lengths ``(batch,)`` in units of the input's time axis (``None``:
  every step valid). :func:`accepts_lengths` detects this from the signature, once per class;
  other stages are called as ``stage(x)``. ``Compose.forward(x, lengths=None)`` follows the same
  convention, so chains nest.
* **Lengths out.** ``stage.output_lengths(lengths)`` maps valid lengths through the stage (the
  identity for stages that do not change the time axis; samples to frames for a spectrogram).
  :func:`output_lengths` falls back to the identity for modules without the method.
* **Sample rate.** A stage that changes the sample rate (``Resample``) has
  ``output_sample_rate(sample_rate)``, which also rejects a rate it was not built for.
* **Output kind.** Each stage declares what it makes (the :class:`Transform` contract): a class
  attribute ``output_kind = "spectrogram"`` or ``"waveform"`` (``None``: the kind of its input),
  and its output's time axis ``time_dim`` (-2 for a Complex ``(batch, freq, frames, 2)`` STFT).
  Nothing is inferred from module or class names; a module without ``output_kind`` is an op.

:func:`apply_to_batch` uses all four: it runs the chain with the batch's lengths, maps lengths and
sample rate, and returns a :class:`SpecBatch` (with the right ``time_dim``) when the chain made a
spectrogram, else a :class:`WaveBatch`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from nnaudio_data._shapes import check_lengths
from nnaudio_data._transform import Transform
from nnaudio_data.batch import SpecBatch, WaveBatch

__all__ = [
    "Compose",
    "accepts_lengths",
    "apply_to_batch",
    "call_with_lengths",
    "output_kind",
    "output_lengths",
    "output_sample_rate",
]

_ACCEPTS_LENGTHS: dict[type, bool] = {}


def accepts_lengths(transform: nn.Module) -> bool:
    """Whether ``transform``'s forward takes a ``lengths`` argument (decided once per class)."""
    cls = type(transform)
    if cls not in _ACCEPTS_LENGTHS:
        try:
            parameters = inspect.signature(cls.forward).parameters
        except (TypeError, ValueError):
            parameters = {}  # type: ignore[assignment]
        _ACCEPTS_LENGTHS[cls] = "lengths" in parameters
    return _ACCEPTS_LENGTHS[cls]


def call_with_lengths(
    transform: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None
) -> torch.Tensor:
    """``transform(x, lengths=lengths)`` if it takes lengths (and some are given), else ``transform(x)``."""
    if lengths is not None and accepts_lengths(transform):
        return transform(x, lengths=lengths)
    return transform(x)


def output_lengths(transform: nn.Module, lengths: torch.Tensor) -> torch.Tensor:
    """Map valid lengths through ``transform`` (identity for modules that do not define it)."""
    mapper = getattr(transform, "output_lengths", None)
    return mapper(lengths) if mapper is not None else torch.as_tensor(lengths)


def output_sample_rate(transform: nn.Module, sample_rate: int) -> int:
    """The sample rate after ``transform`` (unchanged unless it defines ``output_sample_rate``)."""
    mapper = getattr(transform, "output_sample_rate", None)
    return int(mapper(sample_rate)) if mapper is not None else int(sample_rate)


def output_kind(transform: nn.Module) -> tuple[str, int] | None:
    """``("spectrogram", time_dim)`` or ``("waveform", -1)`` if ``transform`` makes one, else
    ``None`` (the output is the same kind as the input)."""
    if isinstance(transform, Compose):
        kind = None
        for t in transform.transforms:
            kind = output_kind(t) or kind
        return kind
    declared = getattr(type(transform), "output_kind", None)
    if declared is None:
        return None
    time_dim = getattr(transform, "time_dim", -1)
    if declared not in ("spectrogram", "waveform") or not isinstance(time_dim, int):
        raise ValueError(
            f"{type(transform).__name__} declares output_kind={declared!r}, time_dim="
            f"{time_dim!r}; expected 'spectrogram' or 'waveform' and an integer axis"
        )
    return (declared, time_dim)


def _check_batch_lengths(x: torch.Tensor, lengths: Any) -> torch.Tensor:
    """``lengths`` checked against the batch ``x``: one whole number per item, within its time
    axis (the last one)."""
    lengths = check_lengths(lengths)
    batch = x.shape[0] if x.ndim > 1 else 1
    if lengths.ndim != 1 or lengths.shape[0] != batch:
        raise ValueError(
            f"lengths has shape {tuple(lengths.shape)}; expected one length per item of the batch "
            f"of shape {tuple(x.shape)}: ({batch},)"
        )
    if batch and int(lengths.max()) > x.shape[-1]:
        raise ValueError(
            f"lengths go up to {int(lengths.max())} but the input has {x.shape[-1]} steps on its "
            "time axis"
        )
    return lengths


class Compose(Transform):
    """Apply ``transforms`` in order, as one ``nn.Module``.

    Valid lengths propagate through each stage's own ``output_lengths``; stages whose forward
    takes ``lengths`` receive the lengths of *their* input (see the module docstring).
    ``.to(device)`` moves every stage's kernels; ``get_config()`` lists every stage's config and
    ``Transform.from_config`` rebuilds the chain from it.

    Args:
        *transforms: the stages (``nn.Module``; every one a :class:`Transform` for the config
            round-trip).

    Shape:
        - Input: what the first stage takes; ``forward(x, lengths)`` takes its valid lengths.
        - Output: what the last stage makes; ``output_lengths`` gives its valid lengths.
    """

    def __init__(self, *transforms: nn.Module) -> None:
        super().__init__()
        for i, t in enumerate(transforms):
            if not isinstance(t, nn.Module):
                raise ValueError(
                    f"transforms[{i}] must be an nn.Module (a Transform), got {type(t).__name__}"
                )
        self.transforms = nn.ModuleList(transforms)

    @classmethod
    def _from_config_kwargs(cls, kwargs: dict[str, Any]) -> Transform:
        unknown = set(kwargs) - {"transforms"}
        if unknown:
            raise ValueError(
                f"unknown Compose config keys {sorted(unknown)}; expected 'transforms'"
            )
        stages = kwargs.get("transforms", [])
        if not isinstance(stages, list | tuple) or not all(isinstance(c, Mapping) for c in stages):
            raise ValueError(f"transforms must be a list of transform configs, got {stages!r}")
        return cls(*(Transform.from_config(c) for c in stages))

    def get_config(self) -> dict[str, Any]:
        """``{"name": "Compose", "transforms": [each stage's config]}``."""
        configs = []
        for i, t in enumerate(self.transforms):
            if not isinstance(t, Transform):
                raise ValueError(
                    f"transforms[{i}] ({type(t).__name__}) is not a Transform, so the chain has "
                    "no config; use nnaudio_data's own classes"
                )
            configs.append(t.get_config())
        return {"name": "Compose", "transforms": configs}

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is not None:
            lengths = _check_batch_lengths(x, lengths)
        for t in self.transforms:
            x = call_with_lengths(t, x, lengths)
            if lengths is not None:
                lengths = output_lengths(t, lengths)
        return x

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            lengths = output_lengths(t, lengths)
        return torch.as_tensor(lengths)

    def output_sample_rate(self, sample_rate: int) -> int:
        """The sample rate after every stage (a ``Resample`` checks the rate it receives)."""
        for t in self.transforms:
            sample_rate = output_sample_rate(t, sample_rate)
        return int(sample_rate)

    def __len__(self) -> int:
        return len(self.transforms)

    def __iter__(self) -> Iterator[nn.Module]:
        return iter(self.transforms)

    def __getitem__(self, index: int) -> nn.Module:
        return self.transforms[index]

    def __repr__(self) -> str:
        if not len(self.transforms):
            return "Compose()"
        lines = []
        for i, t in enumerate(self.transforms):
            body = repr(t).replace("\n", "\n  ")
            lines.append(f"  ({i}): {body}")
        return "Compose(\n" + "\n".join(lines) + "\n)"


def apply_to_batch(transform: nn.Module, batch: WaveBatch | SpecBatch) -> SpecBatch | WaveBatch:
    """Run ``transform`` on a batch's tensor and carry lengths, sample rate and metadata across.

    Stages that take ``lengths`` get the batch's valid lengths (mapped through the stages before
    them). The result is a :class:`SpecBatch` if the chain made a spectrogram (``time_dim`` -2
    for a Complex STFT) or the batch was one already, else a :class:`WaveBatch`; its lengths are
    ``output_lengths(batch.lengths)`` and its sample rate the rate after any ``Resample``.

    Raises:
        ValueError: if the mapped lengths exceed the output's time axis (a stage that changes the
            time axis without an ``output_lengths``), or a ``Resample`` gets the wrong rate.
    """
    if not isinstance(batch, WaveBatch | SpecBatch):
        raise ValueError(f"batch must be a WaveBatch or SpecBatch, got {type(batch).__name__}")
    sample_rate = output_sample_rate(transform, batch.sample_rate)
    out = call_with_lengths(transform, batch.data, batch.lengths)
    lengths = output_lengths(transform, batch.lengths).to(torch.long)
    kind = output_kind(transform)
    if kind is None:
        kind = ("spectrogram", batch.time_dim) if isinstance(batch, SpecBatch) else ("waveform", -1)
    time_dim = kind[1]
    if len(lengths) and int(lengths.max()) > out.shape[time_dim]:
        raise ValueError(
            f"the transform's output has {out.shape[time_dim]} steps on axis {time_dim} but its "
            f"output_lengths give up to {int(lengths.max())}: a stage changes the time axis "
            "without mapping lengths (define output_lengths on it)"
        )
    # keys, labels, meta and any other metadata field the batch types carry
    common: dict[str, Any] = {
        f.name: getattr(batch, f.name)
        for f in dataclasses.fields(batch)
        if f.name not in ("audio", "spec", "time_dim")
    }
    common.update(lengths=lengths, sample_rate=sample_rate)
    if kind[0] == "spectrogram":
        return SpecBatch(spec=out, time_dim=time_dim, **common)
    return WaveBatch(audio=out, **common)
