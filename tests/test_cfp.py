"""``features.cfp`` (CFP, Combined_Frequency_Periodicity) against nnAudio 0.3.4, whose module is
patched in the test for scipy >= 1.13 (``scipy.signal.blackmanharris`` moved to
``scipy.signal.windows``)."""

from __future__ import annotations

import warnings

import nnAudio.features.cfp as nn_cfp
import pytest
import scipy.signal
import scipy.signal.windows
import torch
from conftest import make_signals, rel_err

from nnaudio_data.features.cfp import CFP, Combined_Frequency_Periodicity

# same float32 STFT (torch.stft) and band matrices; ~4e-7 seen
TOL = 1e-5


@pytest.fixture
def patched_nnaudio(monkeypatch: pytest.MonkeyPatch) -> object:
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", "divide by zero", RuntimeWarning)  # nnAudio's 1 / q
    monkeypatch.setattr(
        nn_cfp.scipy.signal, "blackmanharris", scipy.signal.windows.blackmanharris, raising=False
    )
    return nn_cfp


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.tensor(make_signals(16000, 1.0), dtype=torch.float32)


def test_bug_nnaudio_cfp_needs_old_scipy() -> None:
    """nnAudio's CFP calls scipy.signal.blackmanharris, gone from scipy >= 1.13; ours works."""
    assert CFP().h.shape == (2049,)
    if not hasattr(scipy.signal, "blackmanharris"):  # scipy >= 1.13 (the pinned test set)
        with pytest.raises(AttributeError):
            nn_cfp.CFP()


@pytest.mark.parametrize(
    "kw", [{}, dict(hop_length=160, NumPerOct=24, g=[0.2, 0.6, 0.9, 0.9]), dict(fr=4, fc=100)]
)
def test_cfp_matches_nnaudio(patched_nnaudio: object, x: torch.Tensor, kw: dict) -> None:
    ref = nn_cfp.CFP(**kw)(x)
    m = CFP(**kw)
    got = m(x)
    assert got.shape == ref.shape
    assert rel_err(got, ref) < TOL
    assert got.shape[-1] == int(m.output_lengths(torch.tensor(x.shape[-1])))


def test_combined_matches_nnaudio(patched_nnaudio: object, x: torch.Tensor) -> None:
    ref = nn_cfp.Combined_Frequency_Periodicity()(x)
    m = Combined_Frequency_Periodicity()
    got = m(x)
    assert len(got) == 4
    for a, b in zip(got, ref, strict=True):
        assert a.shape == b.shape
        assert rel_err(a, b) < TOL
    assert got[0].shape[-1] == int(m.output_lengths(torch.tensor(x.shape[-1])))


def test_channels_and_errors(x: torch.Tensor) -> None:
    m = CFP()
    out = m(torch.stack([x, x], 1))
    assert out.shape[:2] == (3, 2)
    torch.testing.assert_close(out[:, 0], m(x))
    with pytest.raises(ValueError, match="window_size"):
        CFP(window_size=9000)
    with pytest.raises(ValueError, match="g needs"):
        CFP(g=[0.5])
    with pytest.raises(ValueError, match="tc"):
        CFP(fc=2000, tc=1 / 1000)


def test_config_round_trip(x: torch.Tensor) -> None:
    from nnaudio_data._transform import Transform

    for m in (CFP(hop_length=160, g=[0.2, 0.6, 0.9]), Combined_Frequency_Periodicity(fr=4)):
        again = Transform.from_config(m.get_config())
        assert again.get_config() == m.get_config()
        out, ref = again(x[:1]), m(x[:1])
        for a, b in zip(
            out if isinstance(out, tuple) else (out,),
            ref if isinstance(ref, tuple) else (ref,),
            strict=True,
        ):
            torch.testing.assert_close(a, b)


def test_empty_batch() -> None:
    for out in Combined_Frequency_Periodicity()(torch.zeros(0, 16000)):
        assert out.shape == (0, 174, 49)
