"""The public API: nnAudio users switch by changing one import, and every export is real."""

from __future__ import annotations

import inspect

import nnAudio.features
import pytest

import nnaudio_data
import nnaudio_data.features
import nnaudio_data.kernels
import nnaudio_data.ops
import nnaudio_data.pipeline

# Defaults we change on purpose, each documented in the class docstring.
DOCUMENTED_DEVIATIONS = {
    # nnAudio's fmin=220 with n_bins=84 puts the top bins above Nyquist at sr=22050: it raises.
    ("CQT1992", "fmin"),
}


# Our transforms that nnAudio 0.3.4 does not have.
EXTRA_NAMES = {"iCQT", "KaldiFbank", "WhisperLogMel"}
SHARED_NAMES = sorted(set(nnaudio_data.features.__all__) - EXTRA_NAMES)


def test_every_nnaudio_transform_is_here() -> None:
    theirs = {"STFT", "iSTFT", "MelSpectrogram", "MFCC", "Griffin_Lim", "CQT", "CQT1992"}
    theirs |= {"CQT2010", "CQT1992v2", "CQT2010v2", "VQT", "Gammatonegram", "CFP"}
    theirs |= {"Combined_Frequency_Periodicity"}
    assert all(hasattr(nnAudio.features, n) for n in theirs)
    assert set(SHARED_NAMES) == theirs


@pytest.mark.parametrize("name", SHARED_NAMES)
def test_nnaudio_signature_is_kept(name: str) -> None:
    """Each class nnAudio 0.3.4 also has accepts every nnAudio parameter with the same default."""
    ours = getattr(nnaudio_data.features, name)
    theirs = inspect.signature(getattr(nnAudio.features, name).__init__).parameters
    mine = inspect.signature(ours.__init__).parameters
    for param, spec in theirs.items():
        if param == "self" or spec.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        assert param in mine, f"{name} lacks nnAudio's parameter {param!r}"
        if (name, param) in DOCUMENTED_DEVIATIONS:
            assert mine[param].default != spec.default
            continue
        # a tuple default where nnAudio has a (mutable) list default is the same value
        plain = [
            list(d) if isinstance(d, tuple) else d for d in (mine[param].default, spec.default)
        ]
        assert plain[0] == plain[1], (
            f"{name}({param}=...) default {mine[param].default!r} != nnAudio's {spec.default!r}"
        )


@pytest.mark.parametrize(
    "module",
    [
        nnaudio_data,
        nnaudio_data.features,
        nnaudio_data.kernels,
        nnaudio_data.ops,
        nnaudio_data.pipeline,
    ],
)
def test_all_names_exist(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert names, f"{module} exports nothing"
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{module} lists missing names {missing}"
    assert len(set(names)) == len(names)


def test_version_is_single_sourced() -> None:
    from importlib.metadata import version

    assert nnaudio_data.__version__ == version("nnaudio-data")
