"""``features.cqt.CQT1992`` and ``CQT2010`` (Brown & Puckette spectral kernels) against nnAudio 0.3.4
and against their time-domain counterparts; nnAudio's bugs in them; trainable parts."""

from __future__ import annotations

import warnings

import nnAudio.features as nnaudio
import numpy as np
import pytest
import torch
from conftest import make_signals, rel_err

from nnaudio_data.features.cqt import CQT1992, CQT2010, CQT1992v2, CQT2010v2

# same float32 kernels and products as nnAudio, summed in another order: ~2e-6 seen
TOL_NNAUDIO = 1e-4
# spectral kernels use the non-negative frequencies only: the wavelets' negative-frequency
# leakage (~1e-4 of the response) is what separates them from the time-domain classes
TOL_V2 = 5e-4
KW = dict(fmin=220.0, n_bins=48)  # kernel_width 2048: nnAudio builds its DFT kernels quickly


@pytest.fixture(autouse=True)
def _quiet_nnaudio() -> None:
    warnings.filterwarnings("ignore", category=SyntaxWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="nnAudio")


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.tensor(make_signals(22050, 1.0), dtype=torch.float32)


def _complex(t: torch.Tensor) -> torch.Tensor:
    return torch.complex(t[..., 0], t[..., 1])


def test_cqt1992_matches_nnaudio(x: torch.Tensor) -> None:
    ref = nnaudio.CQT1992(output_format="Complex", **KW)
    ours = CQT1992(output_format="Complex", **KW)
    for norm in ("librosa", "wrap"):
        assert rel_err(ours(x, normalization_type=norm), ref(x, normalization_type=norm)) < (
            TOL_NNAUDIO
        )
    # nnAudio's 'convolutional' is kernel_width times the rest of the family's; ours is not
    conv = ours(x, normalization_type="convolutional") * ours.kernel_width
    assert rel_err(conv, ref(x, normalization_type="convolutional")) < TOL_NNAUDIO


def test_cqt2010_matches_nnaudio(x: torch.Tensor) -> None:
    """nnAudio's CQT2010 returns the conjugate of its CQT1992's complex output; ours is the same
    convention as the rest of the family, so compare magnitudes and conjugated complex values."""
    ref = nnaudio.CQT2010(output_format="Complex", verbose=False)
    ours = CQT2010(output_format="Complex")
    assert ours.downsample_factor == 1
    got, expected = _complex(ours(x)), _complex(ref(x))
    assert rel_err(got, expected.conj().resolve_conj()) < TOL_NNAUDIO


@pytest.mark.parametrize(("cls", "v2"), [(CQT1992, CQT1992v2), (CQT2010, CQT2010v2)])
def test_spectral_equals_time_domain(x: torch.Tensor, cls: type, v2: type) -> None:
    a = cls(output_format="Complex", **KW)(x)
    b = v2(output_format="Complex", **KW)(x)
    assert rel_err(a, b) < TOL_V2


def test_bug_cqt1992_defaults_work(x: torch.Tensor) -> None:
    """nnAudio's CQT1992 defaults (fmin 220 Hz, 84 bins) put the top bin above Nyquist at
    22.05 kHz and raise; ours default to the documented 32.70 Hz and equal CQT1992v2's."""
    with pytest.raises(ValueError):
        nnaudio.CQT1992()
    got = CQT1992()(x[:1])
    assert got.shape == (1, 84, 44)
    assert rel_err(got, CQT1992v2()(x[:1])) < TOL_V2


def test_bug_cqt2010_early_downsampling_scale() -> None:
    """nnAudio's CQT2010 is 0.35x - 0.70x too small when it downsamples early (44.1 kHz)."""
    y = torch.tensor(make_signals(44100, 1.0), dtype=torch.float32)
    full = CQT1992v2(sr=44100)(y)
    ours = CQT2010(sr=44100)
    assert ours.downsample_factor > 1
    sl = slice(20, -20)
    assert rel_err(ours(y)[..., sl], full[..., sl]) < 2e-2
    theirs = nnaudio.CQT2010(sr=44100, verbose=False)(y)
    n = min(theirs.shape[-1], full.shape[-1])
    assert float(theirs[..., 20 : n - 20].norm() / full[..., 20 : n - 20].norm()) < 0.75


@pytest.mark.parametrize("cls", [CQT1992, CQT2010])
def test_trainable_parts(x: torch.Tensor, cls: type) -> None:
    m = cls(sr=8000, fmin=220.0, n_bins=24, hop_length=128, trainable_STFT=True, trainable_CQT=True)
    names = {n for n, _ in m.named_parameters()}
    assert {"cqt_kernels_real", "cqt_kernels_imag"} <= names
    assert any(n.startswith("wcos") for n in names) and any(n.startswith("wsin") for n in names)
    frozen = cls(sr=8000, fmin=220.0, n_bins=24, hop_length=128)
    y = x[:2, :4000]
    # the DFT as matrix products equals the FFT to float32 rounding
    assert rel_err(m(y, output_format="Complex"), frozen(y, output_format="Complex")) < 1e-4
    m(y).sum().backward()
    for p in m.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    assert len(list(frozen.parameters())) == 0


@pytest.mark.parametrize("cls", [CQT1992, CQT2010])
def test_shapes_lengths_and_hops(cls: type) -> None:
    m = cls(hop_length=300, **KW)
    for n in (100, 4000, 22050):
        out = m(torch.zeros(2, n))
        assert out.shape == (2, 48, int(m.output_lengths(torch.tensor(n))))
    assert cls(output_format="Phase", **KW).time_dim == -2


def test_cqt1992_float64() -> None:
    y = torch.tensor(make_signals(22050, 0.5))
    m = CQT1992(dtype="float64", **KW)
    out = m(y)
    assert out.dtype == torch.float64
    assert rel_err(out, CQT1992(**KW)(y.float())) < 1e-5
    assert np.isfinite(out.numpy()).all()


@pytest.mark.parametrize("cls", [CQT1992, CQT2010])
def test_config_round_trip(x: torch.Tensor, cls: type) -> None:
    from nnaudio_data._transform import Transform

    m = cls(output_format="Complex", q_mode="librosa", **KW)
    again = Transform.from_config(m.get_config())
    assert type(again) is cls and again.get_config() == m.get_config()
    torch.testing.assert_close(again(x[:1]), m(x[:1]))
