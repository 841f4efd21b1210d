"""``features.griffin_lim.Griffin_Lim`` against librosa 0.11's ``griffinlim``; convergence, shapes,
devices and errors."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch
from conftest import rel_err

from nnaudio_data._transform import Transform
from nnaudio_data.features.griffin_lim import Griffin_Lim
from nnaudio_data.features.stft import STFT

# Same iteration from the same (zero) phase in float64: only rounding differs (~5e-12 seen).
TOL64 = 1e-9
# In float32 rounding differences grow through the iterations (8e-5 seen after 32).
TOL32 = 1e-3


def _magnitude(signals: np.ndarray, **kw: object) -> np.ndarray:
    return np.abs(librosa.stft(signals, pad_mode="reflect", **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n_fft", "hop", "win_length", "center", "momentum"),
    [
        (512, 128, None, True, 0.99),
        (256, 64, 200, True, 0.0),
        (511, 100, None, True, 0.5),
        (256, 64, None, False, 0.99),
    ],
)
def test_matches_librosa_from_zero_phase(
    signals: np.ndarray, n_fft: int, hop: int, win_length: int | None, center: bool, momentum: float
) -> None:
    sig = signals[:, :6000]
    S = _magnitude(sig, n_fft=n_fft, hop_length=hop, win_length=win_length, center=center)
    kw = {
        "n_fft": n_fft,
        "hop_length": hop,
        "win_length": win_length,
        "center": center,
        "momentum": momentum,
    }
    ref = librosa.griffinlim(S, n_iter=16, init=None, pad_mode="reflect", **kw)  # type: ignore[arg-type]
    gl = Griffin_Lim(n_iter=16, init=None, dtype=torch.float64, **kw)  # type: ignore[arg-type]
    ours = gl(torch.tensor(S))
    assert ours.shape == ref.shape and ours.dtype == torch.float64
    assert rel_err(ours, ref) <= TOL64
    assert ours.shape[-1] == gl.output_lengths(torch.tensor(S.shape[-1])).item()
    ref32 = librosa.griffinlim(S.astype(np.float32), n_iter=16, init=None, pad_mode="reflect", **kw)  # type: ignore[arg-type]
    assert (
        rel_err(
            Griffin_Lim(n_iter=16, init=None, **kw)(torch.tensor(S, dtype=torch.float32)), ref32
        )
        <= TOL32
    )  # type: ignore[arg-type]


def test_length_matches_librosa(signals: np.ndarray) -> None:
    S = _magnitude(signals[:, :6000], n_fft=512, hop_length=128)
    ref = librosa.griffinlim(
        S, n_iter=8, hop_length=128, n_fft=512, init=None, length=6000, pad_mode="reflect"
    )
    ours = Griffin_Lim(512, n_iter=8, hop_length=128, init=None, dtype="float64")(
        torch.tensor(S), length=6000
    )
    assert ours.shape == (3, 6000) and rel_err(ours, ref) <= TOL64
    with pytest.raises(ValueError, match="length=100 gives 1 frames"):
        Griffin_Lim(512, hop_length=128)(torch.tensor(S), length=100)


def test_random_phase_converges(device: str, signals: np.ndarray) -> None:
    """Spectral convergence ||  |STFT(y)| - S || / ||S|| falls with iterations from random phase."""
    torch.manual_seed(0)
    stft = STFT(n_fft=512, hop_length=128, output_format="Magnitude").to(device)
    S = stft(torch.tensor(signals[:, :4000], dtype=torch.float32, device=device))
    errors = []
    for n_iter in (0, 32):
        y = Griffin_Lim(512, n_iter=n_iter, hop_length=128, device=device)(S)
        errors.append(rel_err(stft(y), S))
    assert errors[1] < 0.5 * errors[0]
    assert errors[1] < 0.25


def test_shapes_channels_and_batch(signals: np.ndarray) -> None:
    S = torch.tensor(_magnitude(signals[:, :4000], n_fft=256, hop_length=64))
    gl = Griffin_Lim(256, n_iter=4, hop_length=64, init=None, dtype="float64")
    batched = gl(S)
    assert batched.shape == (3, 64 * (S.shape[-1] - 1))
    torch.testing.assert_close(gl(S[1]), batched[1:2], rtol=1e-9, atol=1e-9)  # (F, T) -> (1, time)
    stereo = torch.stack([S[:2], S[1:]], dim=1)
    out = gl(stereo)
    assert out.shape == (2, 2, batched.shape[-1])
    torch.testing.assert_close(out[1, 1], batched[2], rtol=1e-9, atol=1e-9)


def test_moves_with_to_and_keeps_nothing_in_state_dict(device: str) -> None:
    gl = Griffin_Lim(64, n_iter=2, device="cpu")
    assert gl.state_dict() == {} and gl.window_mask.device.type == "cpu"
    gl.to(device)
    assert gl.window_mask.device.type == device
    S = torch.rand(1, 33, 10, device=device)
    assert gl(S).device.type == device


def test_torch_compile_equals_eager() -> None:
    gl = Griffin_Lim(64, n_iter=1, hop_length=16, init=None)
    S = torch.rand(2, 33, 12)
    torch.testing.assert_close(torch.compile(gl, dynamic=False)(S), gl(S), rtol=1e-4, atol=1e-5)


def test_config_round_trip_excludes_device() -> None:
    gl = Griffin_Lim(128, n_iter=4, window=("tukey", 0.5), device="cpu", init=None)
    cfg = gl.get_config()
    assert "device" not in cfg and cfg["window"] == ["tukey", 0.5]
    S = torch.rand(1, 65, 9)
    assert torch.equal(Transform.from_config(cfg)(S), gl(S))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_fft": 0}, "n_fft"),
        ({"n_fft": 64, "n_iter": -1}, "n_iter"),
        ({"n_fft": 64, "hop_length": 0}, "hop_length"),
        ({"n_fft": 64, "win_length": 100}, "win_length"),
        ({"n_fft": 64, "momentum": -0.5}, "momentum"),
        ({"n_fft": 64, "init": "zeros"}, "init"),
        ({"n_fft": 64, "pad_mode": "wrap"}, "pad_mode"),
        ({"n_fft": 64, "center": 1}, "center"),
        ({"n_fft": 64, "window": "nonsense"}, "window"),
        ({"n_fft": 64, "dtype": "int8"}, "dtype"),
        ({"n_fft": 64, "device": "nowhere"}, "device"),
    ],
)
def test_bad_parameters_raise(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Griffin_Lim(**kwargs)  # type: ignore[arg-type]


def test_momentum_above_one_warns() -> None:
    with pytest.warns(UserWarning, match="momentum=1.5"):
        Griffin_Lim(64, momentum=1.5)


def test_bad_inputs_raise() -> None:
    gl = Griffin_Lim(64, n_iter=1)
    with pytest.raises(ValueError, match="S has 20 frequency bins"):
        gl(torch.rand(2, 20, 5))
    with pytest.raises(ValueError, match=r"got \(33,\)"):
        gl(torch.rand(33))
    with pytest.raises(ValueError, match="real magnitude"):
        gl(torch.rand(1, 33, 5, dtype=torch.complex64))
    with pytest.raises(ValueError, match="length"):
        gl(torch.rand(1, 33, 5), length=-3)


def test_nnaudio_griffin_lim_fails_on_torch_2_where_ours_runs() -> None:
    """nnAudio 0.3.4 passes a real (..., 2) tensor to torch.istft, which torch 2 refuses; the
    same call here returns a waveform of the right length."""
    import nnAudio.features as nnaudio

    S = torch.rand(1, 33, 10)
    with pytest.raises(RuntimeError, match="complex"):
        nnaudio.Griffin_Lim(64, n_iter=2)(S)
    assert Griffin_Lim(64, n_iter=2)(S).shape == (1, 16 * 9)
