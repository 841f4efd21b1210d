"""Parts every spectrogram transform shares: centre padding with a clear error for short inputs,
and kernels held as trainable parameters or as non-persistent buffers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nnaudio_data._checks import check_choice

__all__ = ["PAD_MODES", "center_pad", "register_kernel"]

PAD_MODES = ("reflect", "constant", "replicate", "circular")


def center_pad(x: torch.Tensor, pad: int, pad_mode: str) -> torch.Tensor:
    """Pad the last axis of ``(rows, time)`` by ``pad`` samples on both sides.

    ``'reflect'`` needs more than ``pad`` samples; a shorter input is a ``ValueError`` that says
    how long it must be (use ``pad_mode='constant'`` for very short clips).
    """
    check_choice("pad_mode", pad_mode, PAD_MODES)
    if pad == 0:
        return x
    n = x.shape[-1]
    if pad_mode in ("reflect", "circular") and n <= pad:
        raise ValueError(
            f"input has {n} samples but pad_mode={pad_mode!r} with center=True needs more than "
            f"{pad} (n_fft // 2); pad the input or use pad_mode='constant'"
        )
    if pad_mode == "constant":
        return F.pad(x, (pad, pad))
    return F.pad(x.unsqueeze(1), (pad, pad), mode=pad_mode).squeeze(1)


def register_kernel(module: nn.Module, name: str, kernel: torch.Tensor, trainable: bool) -> None:
    """Hold ``kernel`` on ``module`` as an ``nn.Parameter`` (trainable) or as a non-persistent
    buffer (frozen: moves with ``.to()`` but stays out of ``state_dict``)."""
    if trainable:
        module.register_parameter(name, nn.Parameter(kernel))
    else:
        module.register_buffer(name, kernel, persistent=False)
