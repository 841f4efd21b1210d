"""``features.mel.MelSpectrogram`` and ``MFCC`` against librosa 0.11 and nnAudio 0.3.4; shapes,
lengths, trainability, gradients and errors."""

from __future__ import annotations

import librosa
import nnAudio.features as nnaudio
import numpy as np
import pytest
import torch
from conftest import rel_err

from nnaudio_data._transform import Transform
from nnaudio_data.features.mel import MFCC, MelSpectrogram

# float32 STFT + filterbank sums: ~3e-7 seen against librosa's float64; the bar is 1e-5.
TOL32 = 1e-5
# MFCCs: dB of float32 powers, then a DCT; ~1e-6 seen; the bar is 1e-4.
MFCC_TOL = 1e-4
# float64 kernels against librosa in float64: rounding only.
TOL64 = 1e-10

# nnAudio's norm=1 is librosa 0.7's area normalisation == librosa 0.11's norm='slaney'
NORMS = [(None, None), (1, "slaney"), ("slaney", "slaney"), (np.inf, np.inf), (2, 2)]


def _librosa_mel(signals: np.ndarray, **kw: object) -> np.ndarray:
    kw = {"sr": 22050, "pad_mode": "reflect", **kw}
    if kw.get("window") == "ones":
        kw["window"] = "boxcar"
    return librosa.feature.melspectrogram(y=signals, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["conv", "fft"])
@pytest.mark.parametrize(("norm", "librosa_norm"), NORMS)
@pytest.mark.parametrize("htk", [False, True])
def test_mel_norms_and_scales_match_librosa(
    signals: np.ndarray, backend: str, norm: object, librosa_norm: object, htk: bool
) -> None:
    m = MelSpectrogram(
        n_fft=1024,
        hop_length=256,
        n_mels=80,
        fmin=30.0,
        fmax=9000.0,
        htk=htk,
        norm=norm,
        backend=backend,
    )
    ref = _librosa_mel(
        signals,
        n_fft=1024,
        hop_length=256,
        n_mels=80,
        fmin=30.0,
        fmax=9000.0,
        htk=htk,
        norm=librosa_norm,
    )
    out = m(torch.tensor(signals, dtype=torch.float32))
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert rel_err(out, ref) <= TOL32


@pytest.mark.parametrize("backend", ["conv", "fft"])
@pytest.mark.parametrize(
    ("n_fft", "hop", "window", "win_length", "n_mels", "power"),
    [
        (256, 64, "hann", None, 40, 2.0),
        (512, 128, "hamming", 400, 64, 2.0),  # nnAudio's mel_win_parameters
        (1024, 512, "ones", 1000, 128, 1.0),
        (2048, 512, "hann", None, 128, 2.0),
        (2048, 128, "hamming", 1500, 96, 1.0),
        (511, 100, "hann", None, 50, 1.5),
    ],
)
def test_mel_grid_matches_librosa(
    signals: np.ndarray,
    backend: str,
    n_fft: int,
    hop: int,
    window: str,
    win_length: int | None,
    n_mels: int,
    power: float,
) -> None:
    m = MelSpectrogram(
        n_fft=n_fft,
        hop_length=hop,
        window=window,
        win_length=win_length,
        n_mels=n_mels,
        power=power,
        backend=backend,
    )
    ref = _librosa_mel(
        signals,
        n_fft=n_fft,
        hop_length=hop,
        window=window,
        win_length=win_length,
        n_mels=n_mels,
        power=power,
    )
    assert rel_err(m(torch.tensor(signals, dtype=torch.float32)), ref) <= TOL32


@pytest.mark.parametrize("backend", ["conv", "fft"])
def test_float64_mel_and_mfcc_match_librosa_float64(signals: np.ndarray, backend: str) -> None:
    kw = {"n_fft": 512, "hop_length": 128, "n_mels": 40}
    m = MelSpectrogram(**kw, dtype="float64", backend=backend)
    x = torch.tensor(signals)
    out = m(x)
    assert out.dtype == torch.float64
    assert rel_err(out, _librosa_mel(signals, **kw, dtype=np.float64)) <= TOL64
    c = MFCC(n_mfcc=13, **kw, dtype=torch.float64, backend=backend)
    ref = np.stack(
        [
            librosa.feature.mfcc(
                y=s, sr=22050, n_mfcc=13, pad_mode="reflect", dtype=np.float64, **kw
            )
            for s in signals
        ]
    )
    assert rel_err(c(x), ref) <= TOL64


@pytest.mark.parametrize("htk", [False, True])
@pytest.mark.parametrize("norm", [1, None])
def test_mel_matches_nnaudio(signals: np.ndarray, htk: bool, norm: object) -> None:
    kw = {
        "n_fft": 1024,
        "hop_length": 256,
        "n_mels": 64,
        "fmin": 20.0,
        "fmax": 8000.0,
        "htk": htk,
        "norm": norm,
        "win_length": 1000,
    }
    ref = nnaudio.MelSpectrogram(**kw, verbose=False)
    x = torch.tensor(signals, dtype=torch.float32)
    # nnAudio's float32 conv1d and our FFT round differently: ~6e-7 seen
    assert rel_err(MelSpectrogram(**kw)(x), ref(x)) <= TOL32
    assert rel_err(MelSpectrogram(**kw, trainable_mel=True)(x), ref(x)) <= TOL32


@pytest.mark.parametrize(
    ("kw", "mfcc_kw"),
    [
        ({"n_fft": 2048, "hop_length": 512, "n_mels": 128}, {"n_mfcc": 20}),
        ({"n_fft": 512, "hop_length": 160, "n_mels": 40, "htk": True}, {"n_mfcc": 13}),
        (
            {"n_fft": 1024, "hop_length": 256, "n_mels": 64, "fmax": 8000.0},
            # no top_db floor: amin must sit above float32 rounding noise (~1e-7 of the peak power),
            # else bands ~100 dB down are noise in any float32 computation
            {"n_mfcc": 40, "top_db": None, "amin": 1e-5},
        ),
        (
            {"n_fft": 1024, "hop_length": 256, "n_mels": 64},
            {"n_mfcc": 30, "ref": 10.0, "top_db": 40.0},
        ),
    ],
)
@pytest.mark.parametrize("backend", ["conv", "fft"])
def test_mfcc_matches_librosa(
    signals: np.ndarray, kw: dict[str, object], mfcc_kw: dict[str, object], backend: str
) -> None:
    c = MFCC(**kw, **mfcc_kw, backend=backend)  # type: ignore[arg-type]
    ref = []
    for s in signals:  # librosa's top_db floor is per call, so one item at a time
        mel = _librosa_mel(s, **kw)
        db = librosa.power_to_db(
            mel,
            ref=mfcc_kw.get("ref", 1.0),
            amin=mfcc_kw.get("amin", 1e-10),
            top_db=mfcc_kw.get("top_db", 80.0),
        )  # type: ignore[arg-type]
        ref.append(librosa.feature.mfcc(S=db, n_mfcc=mfcc_kw["n_mfcc"]))
    out = c(torch.tensor(signals, dtype=torch.float32))
    assert out.shape == np.shape(ref)
    assert rel_err(out, np.stack(ref)) <= MFCC_TOL


def test_mfcc_unnormalised_dct_matches_librosa(signals: np.ndarray) -> None:
    c = MFCC(n_mfcc=20, norm=None, n_fft=1024, hop_length=256, n_mels=64)
    ref = np.stack(
        [
            librosa.feature.mfcc(
                y=s,
                sr=22050,
                n_mfcc=20,
                norm=None,
                n_fft=1024,
                hop_length=256,
                n_mels=64,
                pad_mode="reflect",
            )
            for s in signals
        ]
    )
    assert rel_err(c(torch.tensor(signals, dtype=torch.float32)), ref) <= MFCC_TOL


def test_mfcc_matches_nnaudio(signals: np.ndarray) -> None:
    kw = {"n_mfcc": 20, "n_fft": 1024, "hop_length": 256, "n_mels": 64}
    x = torch.tensor(signals, dtype=torch.float32)
    ref = nnaudio.MFCC(**kw, verbose=False)(x)
    # nnAudio's DCT runs through an FFT in float32: ~1e-6 seen
    assert rel_err(MFCC(**kw)(x), ref) <= TOL32


@pytest.mark.parametrize("cls", [MelSpectrogram, MFCC])
def test_batch_channels_and_lengths(device: str, signals: np.ndarray, cls: type) -> None:
    t = cls(n_fft=256, hop_length=64, n_mels=32).to(device)
    x = torch.tensor(signals, dtype=torch.float32, device=device)
    batched = t(x)
    n_out = 32 if cls is MelSpectrogram else 20
    assert batched.shape == (3, n_out, t.num_frames(x.shape[-1]))
    torch.testing.assert_close(batched, torch.cat([t(row) for row in x]), rtol=1e-5, atol=1e-4)
    stereo = torch.stack([x[:2], x[1:]], dim=1)
    out = t(stereo)
    assert out.shape == (2, 2, n_out, batched.shape[-1])
    if cls is MelSpectrogram:
        torch.testing.assert_close(out[1, 1], batched[2], rtol=1e-5, atol=1e-6)
    lengths = torch.tensor([1000, 5000, 22050])
    assert t.output_lengths(lengths).tolist() == [
        t(torch.randn(n, device=device)).shape[-1] for n in lengths.tolist()
    ]
    assert t.time_dim == -1


def test_trainable_parameters_learn_and_frozen_are_buffers() -> None:
    frozen = MelSpectrogram(n_fft=64, hop_length=16, n_mels=8)
    assert list(frozen.parameters()) == [] and frozen.state_dict() == {}
    t = MelSpectrogram(n_fft=64, hop_length=16, n_mels=8, trainable_mel=True, trainable_STFT=True)
    assert {n for n, _ in t.named_parameters()} == {"mel_basis", "stft.wcos", "stft.wsin"}
    assert not t.stft.use_fft and frozen.stft.use_fft
    torch.manual_seed(0)
    x = torch.randn(4, 512)
    opt = torch.optim.Adam(t.parameters(), lr=2e-2)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = t(x).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]
    only_mel = MelSpectrogram(n_fft=64, hop_length=16, n_mels=8, trainable_mel=True)
    assert only_mel.stft.use_fft  # a frozen STFT part keeps the FFT path
    only_mel(x).sum().backward()
    assert only_mel.mel_basis.grad is not None


@pytest.mark.parametrize("power", [1.0, 2.0, 0.5])
def test_no_nan_gradient_for_silence(power: float) -> None:
    t = MelSpectrogram(
        n_fft=64, hop_length=16, n_mels=8, power=power, trainable_mel=True, trainable_STFT=True
    )
    x = torch.zeros(2, 256, requires_grad=True)
    t(x).sum().backward()
    for g in (x.grad, t.mel_basis.grad, t.stft.wcos.grad):
        assert g is not None and torch.isfinite(g).all()
    c = MFCC(n_fft=64, hop_length=16, n_mels=8, n_mfcc=4, trainable_STFT=True)
    x2 = torch.zeros(2, 256, requires_grad=True)
    c(x2).sum().backward()
    assert torch.isfinite(x2.grad).all()  # type: ignore[arg-type]


@pytest.mark.parametrize("trainable", [False, True])
def test_gradcheck_float64(trainable: bool) -> None:
    kw = {"n_fft": 16, "hop_length": 4, "n_mels": 4, "sr": 1000, "dtype": "float64"}
    m = MelSpectrogram(**kw, trainable_mel=trainable, trainable_STFT=trainable)  # type: ignore[arg-type]
    x = torch.randn(2, 40, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: m(inp), (x,), fast_mode=True)
    c = MFCC(n_mfcc=3, top_db=None, **kw)  # type: ignore[arg-type]
    assert torch.autograd.gradcheck(lambda inp: c(inp), (x,), fast_mode=True)
    if trainable:
        assert torch.autograd.gradcheck(
            lambda basis: torch.func.functional_call(m, {"mel_basis": basis}, (x.detach(),)),
            (m.mel_basis.detach().clone().requires_grad_(),),
            fast_mode=True,
        )


@pytest.mark.parametrize("cls", [MelSpectrogram, MFCC])
def test_torch_compile_equals_eager(cls: type) -> None:
    t = cls(n_fft=128, hop_length=32, n_mels=16, **({"n_mfcc": 8} if cls is MFCC else {}))
    x = torch.randn(2, 1000)
    torch.testing.assert_close(torch.compile(t, dynamic=False)(x), t(x), rtol=1e-5, atol=1e-4)


def test_config_round_trip_quiet_and_pure(
    capsys: pytest.CaptureFixture[str], signals: np.ndarray
) -> None:
    c = MFCC(
        n_mfcc=13, n_mels=40, n_fft=512, hop_length=128, window=["kaiser", 5.0], dtype=torch.float64
    )
    cfg = c.get_config()
    assert cfg["n_mels"] == 40 and cfg["window"] == ["kaiser", 5.0] and cfg["dtype"] == "float64"
    rebuilt = Transform.from_config(cfg)
    x = torch.tensor(signals)
    before = dict(vars(c))
    assert torch.equal(rebuilt(x), c(x))
    assert vars(c).keys() == before.keys()
    m = MelSpectrogram(norm=np.inf, verbose=True)
    assert Transform.from_config(m.get_config()).get_config() == m.get_config()
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (MelSpectrogram, {"n_mels": 0}, "n_mels"),
        (MelSpectrogram, {"power": 0}, "power"),
        (MelSpectrogram, {"norm": "l1"}, "norm"),
        (MelSpectrogram, {"fmin": 9000.0, "fmax": 100.0}, "fmax"),
        (MelSpectrogram, {"htk": "yes"}, "htk"),
        (MelSpectrogram, {"hop_length": 0}, "hop_length"),
        (MelSpectrogram, {"trainable_mel": "no"}, "trainable_mel"),
        (MelSpectrogram, {"trainable_STFT": 0}, "trainable_STFT"),
        (MelSpectrogram, {"freq_scale": "log"}, "freq_scale"),
        (MelSpectrogram, {"backend": "fft", "trainable_STFT": True}, "backend"),
        (MFCC, {"n_mfcc": 200}, "n_mfcc"),
        (MFCC, {"n_mfcc": 0}, "n_mfcc"),
        (MFCC, {"norm": "l2"}, "norm"),
        (MFCC, {"amin": 0}, "amin"),
        (MFCC, {"top_db": -1.0}, "top_db"),
        (MFCC, {"ref": "max"}, "ref"),
        (MFCC, {"n_mels": -2}, "n_mels"),
    ],
)
def test_bad_parameters_raise(cls: type, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [MelSpectrogram, MFCC])
def test_bad_inputs_raise(cls: type) -> None:
    t = cls(n_fft=256, hop_length=64, n_mels=32)
    with pytest.raises(ValueError, match=r"shape \(1, 1, 1, 400\)"):
        t(torch.randn(1, 1, 1, 400))
    with pytest.raises(ValueError, match="0 samples"):
        t(torch.randn(0))
