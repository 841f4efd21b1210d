"""Combined frequency and periodicity (CFP) features (Su & Yang 2015), nnAudio 0.3.4's ``CFP`` and
``Combined_Frequency_Periodicity``.

An STFT magnitude with a Blackman-Harris window, then alternating power-law nonlinearities and
real FFTs (spectrum -> generalised cepstrum -> spectrum), each mapped onto log-spaced bands; the
feature ``Z`` is the product of the frequency and the periodicity (quefrency) band energies.
What differs from nnAudio: it runs on scipy >= 1.13 (nnAudio calls the removed
``scipy.signal.blackmanharris``), a zero cut-off index no longer zeroes the whole spectrum, and the
band matrices are built vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from nnaudio_data._checks import check_positive_float, check_positive_int
from nnaudio_data._shapes import flatten_waveform, unflatten
from nnaudio_data._transform import Transform
from nnaudio_data.functional.amplitude import magnitude
from nnaudio_data.functional.windows import window

__all__ = ["CFP", "Combined_Frequency_Periodicity"]

_EPS = 1e-8


def _log_bands(
    f: np.ndarray, fr: float, fc: float, tc: float, per_octave: int, fs: float, n_quef: int
) -> tuple[np.ndarray, np.ndarray]:
    """Triangular maps from linear frequency bins ``f`` and from quefrency bins (``n_quef`` of
    them, ``q = k / fs``) onto log-spaced bands ``fc * 2 ** (i / per_octave)`` below ``1 / tc``
    (nnAudio's ``create_logfreq_matrix``)."""
    stop = 1.0 / tc
    n_est = int(np.ceil(np.log2(stop / fc)) * per_octave)
    cf = fc * 2.0 ** (np.arange(n_est) / per_octave)
    cf = cf[cf < stop]
    n = len(cf)
    freq_map = np.zeros((max(n - 1, 0), len(f)))
    quef_map = np.zeros((max(n - 1, 0), n_quef))
    with np.errstate(divide="ignore"):
        fq = fs / np.arange(n_quef, dtype=np.float64)  # 1 / q; inf at q = 0 is never in a band

    def triangle(x: np.ndarray, i: int) -> np.ndarray:
        lo, mid, hi = cf[i - 1], cf[i], cf[i + 1]
        up = np.where((x > lo) & (x < mid), (x - lo) / (mid - lo), 0.0)
        return up + np.where((x > mid) & (x < hi), (hi - x) / (hi - mid), 0.0)

    for i in range(1, n - 1):
        left, right = round(cf[i - 1] / fr), int(round(cf[i + 1] / fr) + 1)
        if left >= right - 1:
            freq_map[i, left] = 1.0
        else:
            freq_map[i, left:right] = triangle(f[left:right], i)
        qlo, qhi = round(fs / cf[i + 1]), int(round(fs / cf[i - 1]) + 1)
        quef_map[i, qlo:qhi] = triangle(fq[qlo:qhi], i)
    return freq_map, quef_map


class _CFPBase(Transform):
    """The parameters and features :class:`CFP` and :class:`Combined_Frequency_Periodicity` share
    (their constructor, arguments as :class:`CFP`)."""

    output_kind = "spectrogram"

    time_dim = -1

    def __init__(
        self,
        fr: float = 2,
        fs: float = 16000,
        hop_length: int = 320,
        window_size: int = 2049,
        fc: float = 80,
        tc: float = 1 / 1000,
        g: Sequence[float] = (0.24, 0.6, 1),
        NumPerOct: int = 48,
    ) -> None:
        super().__init__()
        fr = check_positive_float("fr", fr)
        fs = check_positive_float("fs", fs)
        self.hop_length = check_positive_int("hop_length", hop_length)
        self.window_size = check_positive_int("window_size", window_size)
        fc = check_positive_float("fc", fc)
        tc = check_positive_float("tc", tc)
        per_octave = check_positive_int("NumPerOct", NumPerOct)
        self.g = [float(v) for v in g]
        if len(self.g) < 2:
            raise ValueError(f"g needs at least 2 exponents (spectrum, cepstrum), got {list(g)}")
        if 1 / tc <= fc:
            raise ValueError(f"1 / tc ({1 / tc:g} Hz) must be above fc ({fc:g} Hz)")
        self.N = int(fs / fr)
        if self.window_size > self.N:
            raise ValueError(
                f"window_size={window_size} must not exceed fs / fr = {self.N} (the FFT size)"
            )
        self.tc_idx = round(fs * tc)
        self.fc_idx = round(fc / fr)
        self.HighFreqIdx = int(round((1 / tc) / fr) + 1)
        self.HighQuefIdx = int(round(fs / fc) + 1)
        self.f = (fs * np.linspace(0, 0.5, self.N // 2, endpoint=True))[: self.HighFreqIdx]
        self.q = np.arange(self.HighQuefIdx) / fs
        # nnAudio's symmetric Blackman-Harris window
        h = window("blackmanharris", self.window_size, periodic=False, dtype=torch.float32)
        self.register_buffer("h", h, persistent=False)
        fmap, qmap = _log_bands(self.f, fr, fc, tc, per_octave, fs, self.HighQuefIdx)
        self.register_buffer(
            "freq2logfreq_matrix", torch.tensor(fmap, dtype=torch.float32), persistent=False
        )
        self.register_buffer(
            "quef2logfreq_matrix", torch.tensor(qmap, dtype=torch.float32), persistent=False
        )

    h: torch.Tensor
    freq2logfreq_matrix: torch.Tensor
    quef2logfreq_matrix: torch.Tensor

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames for valid sample ``lengths``: ``1 + n // hop_length``."""
        return torch.div(torch.as_tensor(lengths), self.hop_length, rounding_mode="floor") + 1

    def _nonlinear(self, x: torch.Tensor, g: float, cutoff: int) -> torch.Tensor:
        x = x.relu().pow(g) if g != 0 else torch.log(x.relu() + _EPS)
        if cutoff > 0:
            keep = torch.ones(x.shape[-1], dtype=x.dtype, device=x.device)
            keep[:cutoff] = 0
            keep[-cutoff:] = 0
            x = x * keep
        return x

    def _features(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(rows, time)`` -> Z, tfrL0, tfrLF, tfrLQ, each ``(rows, bands, frames)``."""
        if x.shape[0] == 0:  # an empty batch: the shape it would have
            bands = self.freq2logfreq_matrix.shape[0]
            empty = x.new_zeros(0, bands, 1 + x.shape[-1] // self.hop_length)
            return empty, empty, empty, empty
        h = self.h.to(x.dtype)
        spec = torch.stft(
            x,
            self.N,
            hop_length=self.hop_length,
            win_length=self.window_size,
            window=h,
            center=True,
            pad_mode="constant",
            onesided=False,
            return_complex=True,
        )
        ri = torch.view_as_real(spec)
        tfr0 = (magnitude(ri[..., 0], ri[..., 1]) / h.norm()).transpose(1, 2)  # (rows, frames, N)
        tfr = tfr0.relu().pow(self.g[0])
        ceps = tfr
        scale = float(np.sqrt(self.N))
        for i, g in enumerate(self.g[1:], start=1):
            if i % 2 == 1:
                ceps = self._nonlinear(torch.fft.fft(tfr).real / scale, g, self.tc_idx)
            else:
                tfr = self._nonlinear(torch.fft.fft(ceps).real / scale, g, self.fc_idx)
        half = round(self.N / 2)
        tfr0 = tfr0[..., :half][..., : self.HighFreqIdx]
        tfr = tfr[..., :half][..., : self.HighFreqIdx]
        ceps = ceps[..., :half][..., : self.HighQuefIdx]
        fmap = self.freq2logfreq_matrix.to(x.dtype)
        tfr_l0 = torch.matmul(fmap, tfr0.transpose(1, 2))
        tfr_lf = torch.matmul(fmap, tfr.transpose(1, 2))
        tfr_lq = torch.matmul(self.quef2logfreq_matrix.to(x.dtype), ceps.transpose(1, 2))
        return tfr_lf * tfr_lq, tfr_l0, tfr_lf, tfr_lq


class CFP(_CFPBase):
    """Combined frequency and periodicity feature ``Z`` (nnAudio 0.3.4's ``CFP``).

    Args:
        fr: frequency resolution in Hz (the FFT size is ``fs / fr``).
        fs: sample rate in Hz.
        hop_length: samples between frames.
        window_size: Blackman-Harris window length (<= ``fs / fr``).
        fc: lowest band frequency in Hz.
        tc: ``1 / tc`` is the highest band frequency.
        g: exponents of the alternating nonlinearities (0 means log).
        NumPerOct: bands per octave.

    Shape:
        - Input: ``(time,)``, ``(batch, time)``, ``(batch, 1, time)`` or ``(batch, channels, time)``
        - Output: ``(batch, bands, 1 + time // hop_length)``
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Z`` of ``x`` (see the class docstring)."""
        rows, lead = flatten_waveform(x)
        return unflatten(self._features(rows)[0], lead)


class Combined_Frequency_Periodicity(_CFPBase):
    """CFP returning ``(Z, tfrL0, tfrLF, tfrLQ)`` without the first and last frames (nnAudio
    0.3.4's ``Combined_Frequency_Periodicity``); arguments as :class:`CFP`.

    Shape:
        - Input: as :class:`CFP`
        - Output: four tensors ``(batch, bands, time // hop_length - 1)``: ``Z``, the log-band
          STFT magnitude, the frequency feature and the periodicity feature.
    """

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames for valid sample ``lengths``: ``n // hop_length - 1`` (first and last dropped)."""
        return (super().output_lengths(lengths) - 2).clamp_min(0)

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Z, tfrL0, tfrLF, tfrLQ)`` of ``x`` (see the class docstring)."""
        rows, lead = flatten_waveform(x)
        return tuple(  # type: ignore[return-value]
            unflatten(t[..., 1:-1], lead) for t in self._features(rows)
        )
