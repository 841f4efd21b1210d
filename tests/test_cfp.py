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

# In float64 both implementations compute the same sums: ~1e-14 seen.
TOL64 = 1e-11
# In float32 CFP is ill-conditioned: ``|X| ** 0.24`` lifts the FFT noise floor of a tonal
# spectrum (the sweep, the chord) to a visible level, so float32 output differs from the float64
# answer by 2e-3 - 8e-3 whatever computes it, and two float32 implementations agree only to
# the extent that their FFTs round alike (4e-7 on one CPU, 2.6e-4 on another; a 1e-7 change of the
# input moves it by 4e-3). What holds everywhere: ours is no less accurate than nnAudio's own
# float32 (within 1.5x of its error; a wrong window or band matrix is off by 1e-1 or more), and
# the well-conditioned white-noise row matches nnAudio's float32 closely.
WORSE32 = 1.5
TOL_NOISE32 = 1e-4


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


def _check_float32(got: torch.Tensor, ref32: torch.Tensor, ref64: torch.Tensor) -> None:
    """Ours (float32) against nnAudio's float32 and float64 outputs (rows: sweep, chord, noise)."""
    assert got.shape == ref32.shape == ref64.shape
    assert rel_err(got, ref64) <= WORSE32 * rel_err(ref32, ref64) + 1e-6
    assert rel_err(got[2], ref32[2]) < TOL_NOISE32


@pytest.mark.parametrize(
    "kw", [{}, dict(hop_length=160, NumPerOct=24, g=[0.2, 0.6, 0.9, 0.9]), dict(fr=4, fc=100)]
)
def test_cfp_matches_nnaudio(patched_nnaudio: object, x: torch.Tensor, kw: dict) -> None:
    ref = nn_cfp.CFP(**kw)
    ref32 = ref(x)
    ref64 = ref.double()(x.double())
    m = CFP(**kw)
    got64 = m(x.double())
    assert got64.dtype == torch.float64
    assert got64.shape == ref64.shape
    assert rel_err(got64, ref64) < TOL64
    _check_float32(m(x), ref32, ref64)
    assert ref64.shape[-1] == int(m.output_lengths(torch.tensor(x.shape[-1])))


def test_combined_matches_nnaudio(patched_nnaudio: object, x: torch.Tensor) -> None:
    ref = nn_cfp.Combined_Frequency_Periodicity()
    ref32 = ref(x)
    ref64 = ref.double()(x.double())
    m = Combined_Frequency_Periodicity()
    got64, got32 = m(x.double()), m(x)
    assert len(got64) == len(got32) == 4
    for a, b in zip(got64, ref64, strict=True):
        assert a.shape == b.shape
        assert rel_err(a, b) < TOL64
    for a, b32, b64 in zip(got32, ref32, ref64, strict=True):
        _check_float32(a, b32, b64)
    assert got32[0].shape[-1] == int(m.output_lengths(torch.tensor(x.shape[-1])))


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
