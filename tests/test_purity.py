"""``forward`` is pure for every transform: calling it writes no attribute, buffer, parameter or
submodule (caches are explicit memos built up front), so ``torch.compile`` and threads see the
same module every call. The check would catch a ``self.x = ...`` or a cache filled in forward."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import nnaudio_data.features as F
import nnaudio_data.ops as O
from nnaudio_data._transform import registered_transforms

SR = 16000
WAVE = {
    "STFT": lambda: F.STFT(n_fft=256, hop_length=64),
    "MelSpectrogram": lambda: F.MelSpectrogram(sr=SR, n_fft=256, n_mels=20),
    "MFCC": lambda: F.MFCC(sr=SR, n_mels=20, n_fft=256),
    "Gammatonegram": lambda: F.Gammatonegram(sr=SR, n_fft=256, n_bins=20),
    "KaldiFbank": lambda: F.KaldiFbank(num_mel_bins=20, dither=0.1, seed=3),
    "WhisperLogMel": lambda: F.WhisperLogMel(),
    "CFP": lambda: F.CFP(fs=SR),
    "Combined_Frequency_Periodicity": lambda: F.Combined_Frequency_Periodicity(fs=SR),
    "ToMono": lambda: O.ToMono(),
    "Resample": lambda: O.Resample(SR, 8000),
    "CropOrPad": lambda: O.CropOrPad(3000),
    "RandomCrop": lambda: O.RandomCrop(3000, seed=1),
    "Gain": lambda: O.Gain(-6.0),
}  # fmt: skip
SPEC = {
    "AmplitudeToDB": lambda: O.AmplitudeToDB(),
    "Log": lambda: O.Log(),
    "Normalize": lambda: O.Normalize(),
    "TimeMasking": lambda: O.TimeMasking(5, seed=1),
    "FrequencyMasking": lambda: O.FrequencyMasking(3, seed=1),
    "Patches": lambda: O.Patches(4),
}
MAG = {
    "Griffin_Lim": lambda: F.Griffin_Lim(n_fft=256, n_iter=2),
}
COMPLEX = {
    "iSTFT": lambda: F.iSTFT(n_fft=256, hop_length=64),
}


def _state(module: nn.Module) -> dict[str, Any]:
    """Everything forward could write: attribute identities and tensor values, recursively."""
    out: dict[str, Any] = {}
    for name, sub in module.named_modules():
        out[f"{name}.__dict__"] = {k: id(v) for k, v in sub.__dict__.items()}
        for key in ("_buffers", "_parameters", "_modules"):
            out[f"{name}.{key}"] = {k: id(v) for k, v in getattr(sub, key).items()}
    for name, t in list(module.named_buffers()) + list(module.named_parameters()):
        out[f"value:{name}"] = t.detach().clone()
    return out


def _assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert before.keys() == after.keys()
    for key, value in before.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(after[key], value, rtol=0, atol=0, msg=key)
        else:
            assert after[key] == value, f"forward changed {key}"


CASES: dict[str, tuple[Callable[[], nn.Module], Callable[[], torch.Tensor]]] = {
    **{k: (v, lambda: torch.randn(2, 4000) * 0.3) for k, v in WAVE.items()},
    **{k: (v, lambda: torch.rand(2, 20, 40)) for k, v in SPEC.items()},
    **{k: (v, lambda: torch.rand(2, 129, 20)) for k, v in MAG.items()},
    **{k: (v, lambda: torch.randn(2, 256, 20, 2)) for k, v in COMPLEX.items()},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_writes_nothing(name: str) -> None:
    make, data = CASES[name]
    module = make()
    x = data()
    module(x)  # a first call may not fill anything either
    before = _state(module)
    module(x)
    module(x)
    _assert_same(before, _state(module))


def test_every_registered_transform_is_checked() -> None:
    # Compose is a container (checked through its stages); the constant-Q family is checked
    # in tests/test_cqt*.py by its owners' purity test.
    skipped = {"Compose", "CQT", "CQT1992", "CQT1992v2", "CQT2010", "CQT2010v2", "VQT", "iCQT"}
    ours = registered_transforms().items()
    public = {n for n, c in ours if ":" not in n and c.__module__.startswith("nnaudio_data.")}
    assert public - skipped <= set(CASES), sorted(public - skipped - set(CASES))
