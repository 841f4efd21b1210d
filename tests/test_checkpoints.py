"""nnAudio 0.3.4 checkpoints load into our classes: ``ours.load_state_dict(theirs.state_dict())``
with ``strict=True``, frozen kernels recognised and checked, trained kernels loaded, and the
loaded module then gives nnAudio's numbers. Our own checkpoints keep not carrying frozen kernels."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nnAudio.features as N
import pytest
import torch
from torch import nn

import nnaudio_data.features as F

# (name, kwargs shared by both, nnAudio-only kwargs for trainable, ours for trainable)
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("STFT", {"n_fft": 256, "hop_length": 64, "output_format": "Magnitude", "iSTFT": True},
     {"trainable": True}),
    ("MelSpectrogram", {"sr": 16000, "n_fft": 256, "hop_length": 64, "n_mels": 20},
     {"trainable_mel": True, "trainable_STFT": True}),
    ("Gammatonegram", {"sr": 16000, "n_fft": 256, "hop_length": 64, "n_bins": 20},
     {"trainable_bins": True, "trainable_STFT": True}),
    ("MFCC", {"sr": 16000, "n_mfcc": 10, "n_mels": 20, "n_fft": 256, "hop_length": 64}, {}),
]  # fmt: skip


def quiet(make: Callable[[], nn.Module]) -> nn.Module:
    with contextlib.redirect_stdout(io.StringIO()):  # nnAudio prints in its constructors
        return make()


def _pair(name: str, kw: dict[str, Any], train: dict[str, Any]) -> tuple[nn.Module, nn.Module]:
    theirs = quiet(lambda: getattr(N, name)(**kw, **train))
    ours = getattr(F, name)(**kw, **train)
    return theirs, ours


def _train(module: nn.Module) -> None:
    """What training does to a checkpoint: every parameter moves."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.01 * p.abs().mean() * torch.randn(p.shape, generator=g))


# every class frozen, and trainable where nnAudio has the option (its MFCC has none)
GRID = [(*c, t) for c in CASES for t in (False, True) if c[2] or not t]


@pytest.mark.parametrize(
    ("name", "kw", "train", "trainable"), GRID, ids=[f"{g[0]}-{g[3]}" for g in GRID]
)
def test_nnaudio_state_dict_loads_strictly_and_gives_nnaudios_output(
    name: str, kw: dict[str, Any], train: dict[str, Any], trainable: bool
) -> None:
    theirs, ours = _pair(name, kw, train if trainable else {})
    if trainable:
        _train(theirs)
    result = ours.load_state_dict(theirs.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(3, 4000) * 0.5
    with torch.no_grad():
        expected, got = theirs(x), ours(x)
    # float32 conv kernels both ways; nnAudio's trainable magnitude adds 1e-8 under the root
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    if trainable:  # the trained values are ours now, as parameters
        for key, value in theirs.state_dict().items():
            if dict(theirs.named_parameters()).get(key) is not None:
                torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=0)


def test_istft_and_its_window_load() -> None:
    kw = {"n_fft": 256, "hop_length": 64}
    theirs = quiet(lambda: N.iSTFT(**kw, trainable_kernels=True, trainable_window=True))
    ours = F.iSTFT(**kw, trainable_kernels=True, trainable_window=True)
    _train(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    for key in ("kernel_cos", "kernel_sin", "window_mask"):
        # nnAudio keeps its window in float64; ours holds the same values in float32
        torch.testing.assert_close(
            getattr(ours, key), getattr(theirs, key).float(), rtol=0, atol=0, check_dtype=False
        )
    frozen = quiet(lambda: N.iSTFT(**kw))
    F.iSTFT(**kw).load_state_dict(frozen.state_dict(), strict=True)


def test_a_frozen_kernel_built_otherwise_is_a_clear_error() -> None:
    theirs = quiet(lambda: N.MelSpectrogram(sr=16000, n_fft=256, n_mels=20, fmax=4000))
    ours = F.MelSpectrogram(sr=16000, n_fft=256, n_mels=20)
    with pytest.raises(RuntimeError, match=r"mel_basis: its values differ.*other arguments"):
        ours.load_state_dict(theirs.state_dict(), strict=True)
    trained = quiet(lambda: N.STFT(n_fft=256, trainable=True))
    _train(trained)
    with pytest.raises(RuntimeError, match="trainable option"):
        F.STFT(n_fft=256).load_state_dict(trained.state_dict(), strict=True)


def test_a_model_saved_with_an_nnaudio_layer_loads_after_the_import_switch(tmp_path: Path) -> None:
    kw = {"sr": 16000, "n_fft": 256, "hop_length": 64, "n_mels": 20, "trainable_mel": True}

    def model(front: nn.Module) -> nn.Module:
        return nn.Sequential(front, nn.Flatten(), nn.LazyLinear(4))

    theirs = model(quiet(lambda: N.MelSpectrogram(**kw)))
    x = torch.randn(2, 4000)
    theirs(x)  # materialise the lazy layer
    _train(theirs)
    torch.save(theirs.state_dict(), tmp_path / "model.pt")
    ours = model(F.MelSpectrogram(**kw))
    ours(x)
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    ours.load_state_dict(state, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-4)


def test_our_checkpoints_carry_no_frozen_kernels() -> None:
    assert F.MelSpectrogram(sr=16000, n_fft=256, n_mels=20).state_dict() == {}
    assert set(
        F.MelSpectrogram(sr=16000, n_fft=256, n_mels=20, trainable_mel=True).state_dict()
    ) == {"mel_basis"}
    assert F.STFT(n_fft=256, iSTFT=True, backend="conv").state_dict() == {}


CQT_KW = {"sr": 8000, "n_bins": 24, "fmin": 100.0, "hop_length": 256}
CQT_CASES = [
    ("CQT1992v2", {}, {"trainable": True}),
    ("CQT2010v2", {}, {"trainable": True}),
    ("CQT1992", {}, {"trainable_STFT": True, "trainable_CQT": True}),
    ("CQT2010", {}, {"trainable_STFT": True, "trainable_CQT": True}),
    ("VQT", {"gamma": 5.0}, {}),
]
CQT_GRID = [(*c, t) for c in CQT_CASES for t in (False, True) if c[2] or not t]


@pytest.mark.parametrize(
    ("name", "kw", "train", "trainable"), CQT_GRID, ids=[f"{g[0]}-{g[3]}" for g in CQT_GRID]
)
def test_constant_q_checkpoints_load(
    name: str, kw: dict[str, Any], train: dict[str, Any], trainable: bool
) -> None:
    args = {**CQT_KW, **kw, **(train if trainable else {})}
    theirs = quiet(lambda: getattr(N, name)(**args))
    ours = getattr(F, name)(**args)
    if trainable:
        _train(theirs)
    result = ours.load_state_dict(theirs.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    if trainable:  # the trained kernels are ours now (reshaped to our layout where it differs)
        theirs_params = dict(theirs.named_parameters())
        ours_params = dict(ours.named_parameters())
        assert len(ours_params) == len(theirs_params)
        for key, value in theirs_params.items():
            mine = ours_params.get(key)
            if mine is None:  # our name for nnAudio's one DFT of CQT2010 carries its width
                (mine,) = [p for k, p in ours_params.items() if k.startswith(key + "_")]
            torch.testing.assert_close(mine.reshape(-1), value.reshape(-1), rtol=0, atol=0)
    elif name == "VQT":  # its per-octave banks are nnAudio's layout only: dropped, rebuilt here
        assert any(k.startswith("cqt_kernels_real_") for k in theirs.state_dict())
        assert ours.state_dict() == {}
    else:  # a frozen bank built otherwise is refused: one more bin changes every kernel
        other = getattr(F, name)(**{**args, "n_bins": 25})
        with pytest.raises(RuntimeError, match="cqt_kernels_real"):
            other.load_state_dict(theirs.state_dict(), strict=True)
