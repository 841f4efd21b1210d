"""The device stage: move each batch a loader yields to the device and run the transform there,
in the main process.

Interface: :class:`DeviceStage` ``(loader, transform=None, device=None, non_blocking=True)``.
Workers decode and collate on the CPU (nothing in them touches CUDA); the stage, in the main
process, copies each batch to the device (``non_blocking``: from pinned memory when the loader has
``pin_memory=True``) and runs the transform there. On CUDA the copy of the next batch runs on a
side stream while the current batch is being computed; on the CPU it is a plain loop. Every batch's
``skipped`` counts are summed in ``stage.counter`` (a
:class:`~nnaudio_data.pipeline.policy.SkipCounter`); empty batches (every sample skipped) are
counted and not passed on.

The transform runs under the caller's grad mode: a trainable front end gets gradients when the
training loop has them on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from nnaudio_data.batch import SpecBatch, WaveBatch
from nnaudio_data.pipeline.collate import apply_transform
from nnaudio_data.pipeline.policy import FaultPolicy, SkipCounter, add_counts

__all__ = ["DeviceStage"]

Batch = WaveBatch | SpecBatch


def _module_device(module: nn.Module | None) -> torch.device | None:
    if module is None:
        return None
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return None


def _checked(loader: Iterable[Any]) -> Iterator[Batch]:
    """The loader's batches, a ``ValueError`` naming the type of anything else."""
    for batch in loader:
        if not isinstance(batch, WaveBatch | SpecBatch):
            raise ValueError(
                f"DeviceStage needs WaveBatch or SpecBatch batches, the loader gave a "
                f"{type(batch).__name__}; give the DataLoader collate_fn=WaveCollate(...) (or a "
                "dataset wrapper's ds.collate)"
            )
        yield batch


class DeviceStage:
    """Wrap any iterable of batches: move each to ``device`` and apply ``transform`` there.

    Args:
        loader: any iterable of :class:`~nnaudio_data.batch.WaveBatch` (or ``SpecBatch``), e.g. a
            ``DataLoader(..., collate_fn=WaveCollate(), pin_memory=True)``, a WebLoader or a
            ``torchdata.nodes.Loader``.
        transform: an ``nn.Module`` applied to each batch on the device (``None``: only move). It
            is moved to ``device`` here.
        device: where to compute (default: the transform's device, else the CPU).
        non_blocking: asynchronous host-to-device copies (effective from pinned memory).
        policy: checks the transform's output as the collate functions do (``"raise"`` or
            ``"skip"``): an item whose valid frames are not finite is raised or dropped and
            counted as ``'non_finite'``, an item the transform fails on alone as
            ``'unexpected_error'``. ``None`` (default): no checks, the batch as it comes.

    Attributes:
        counter: the :class:`~nnaudio_data.pipeline.policy.SkipCounter` of the batches seen.

    Yields:
        the batches on ``device`` (``SpecBatch`` when the transform makes a spectrogram).

    Raises:
        ValueError: ``device`` is CUDA and this torch has no CUDA device; a batch the loader
            yields is not a ``WaveBatch`` / ``SpecBatch`` (e.g. a list: the loader lacks
            ``collate_fn=WaveCollate(...)``).
    """

    def __init__(
        self,
        loader: Iterable[Any],
        transform: nn.Module | None = None,
        device: torch.device | str | None = None,
        *,
        non_blocking: bool = True,
        policy: FaultPolicy | str | None = None,
    ) -> None:
        if transform is not None and not isinstance(transform, nn.Module):
            raise ValueError(f"transform must be an nn.Module or None, got {type(transform)!r}")
        if device is None:
            device = _module_device(transform) or torch.device("cpu")
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise ValueError(f"device must name a torch device, got {device!r}") from error
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r}: this torch has no CUDA device (torch.cuda.is_available() "
                f"is False; torch {torch.__version__}); use device='cpu'"
            )
        self.loader = loader
        self.transform = None if transform is None else transform.to(self.device)
        self.non_blocking = bool(non_blocking)
        self.policy = None if policy is None else FaultPolicy.of(policy)
        self.counter = SkipCounter()

    @property
    def skipped(self) -> dict[str, int]:
        """``{reason: samples skipped}`` so far (all batches, all workers)."""
        return dict(self.counter.counts)

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"DeviceStage(device={self.device}, transform={type(self.transform).__name__})"

    def _compute(self, batch: Batch) -> Batch:
        if self.transform is None:
            return batch
        out = apply_transform(self.transform, batch, self.policy)
        # the input's counts were taken as it arrived; add what the output check dropped
        new = {k: v - batch.skipped.get(k, 0) for k, v in out.skipped.items()}
        add_counts(self.counter.counts, {k: v for k, v in new.items() if v > 0})
        return out

    def __iter__(self) -> Iterator[Batch]:
        batches = self.counter.wrap(_checked(self.loader))
        if self.device.type == "cuda":
            yield from self._cuda(batches)
            return
        for batch in batches:
            yield self._compute(batch.to(self.device, non_blocking=self.non_blocking))

    def _cuda(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        """Copy batch i+1 on a side stream while batch i is computed on the current stream."""
        copy_stream = torch.cuda.Stream(self.device)

        def fetch() -> Batch | None:
            batch = next(batches, None)
            if batch is None:
                return None
            with torch.cuda.stream(copy_stream):
                return batch.to(self.device, non_blocking=self.non_blocking)

        ahead = fetch()
        while ahead is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_stream(copy_stream)
            batch = ahead
            for value in vars(batch).values():  # memory made on the side stream, used here
                if isinstance(value, torch.Tensor) and value.device.type == "cuda":
                    value.record_stream(current)
            out = self._compute(batch)  # queued on the current stream
            ahead = fetch()  # the host waits for the loader while the device computes
            yield out
