"""``Griffin_Lim`` with nnAudio 0.3.4's name and arguments: magnitude spectrogram to waveform by
the fast Griffin-Lim algorithm (Perraudin, Balazs and Søndergaard, 2013), the iteration of
``librosa.griffinlim``.

Unlike nnAudio's, it works on torch 2 (complex tensors throughout), keeps its window as a buffer
so it moves with ``.to()`` (the ``device`` argument is still accepted), accepts
``(batch, channels, freq, frames)``, and can start from zero phase (``init=None``, deterministic,
as librosa's ``init=None``) as well as from random phase.
"""

from __future__ import annotations

import math
import warnings

import torch

from nnaudio_data._checks import (
    check_choice,
    check_float_dtype,
    check_non_negative_int,
    check_positive_int,
    check_range,
)
from nnaudio_data._transform import Transform
from nnaudio_data.features._common import check_bool, compute_dtype, frame_params
from nnaudio_data.functional.framing import PAD_MODES
from nnaudio_data.functional.spectral import istft, istft_lengths, stft
from nnaudio_data.kernels.fourier import fourier_window
from nnaudio_data.kernels.windows import WindowSpec

__all__ = ["Griffin_Lim"]


class Griffin_Lim(Transform):
    """Waveforms from magnitude spectrograms by fast Griffin-Lim (nnAudio 0.3.4's ``Griffin_Lim``).

    Args:
        n_fft (int > 0): FFT size of the spectrogram.
        n_iter (int >= 0): Iterations. Default 32.
        hop_length (int > 0 or None): ``None``: ``n_fft // 4``.
        win_length (int in [1, n_fft] or None): ``None``: ``n_fft``.
        window, center, pad_mode: As the forward STFT.
        momentum (float >= 0): Momentum of the fast Griffin-Lim update (0: classic Griffin-Lim).
            Default 0.99; above 1 warns (unstable, as librosa says).
        device (str or torch.device): Where to put the window at construction (nnAudio's argument);
            ``.to()`` moves it later.
        init ({'random', None}): Initial phase: uniformly random (``torch``'s global generator) or
            zero.
        dtype (torch.dtype or str): Window dtype (the computation runs in the promotion of it and
            the input's dtype).

    Shape:
        - Input: ``(batch, n_fft // 2 + 1, frames)``, ``(n_fft // 2 + 1, frames)`` or
          ``(batch, channels, n_fft // 2 + 1, frames)``, a magnitude spectrogram.
        - Output: ``(batch, time)`` (``(batch, channels, time)``), ``time`` as :meth:`output_lengths`
          or ``length``.
    """

    output_kind = "waveform"

    time_dim = -1
    window_mask: torch.Tensor

    def __init__(
        self,
        n_fft: int,
        n_iter: int = 32,
        hop_length: int | None = None,
        win_length: int | None = None,
        window: WindowSpec = "hann",
        center: bool = True,
        pad_mode: str = "reflect",
        momentum: float = 0.99,
        device: str | torch.device = "cpu",
        *,
        init: str | None = "random",
        dtype: torch.dtype | str = torch.float32,
    ) -> None:
        super().__init__()
        self.n_fft, self.win_length, self.hop_length = frame_params(
            n_fft, win_length, hop_length, hop_default="n_fft"
        )
        self.n_iter = check_non_negative_int("n_iter", n_iter)
        self.center = check_bool("center", center)
        self.pad_mode = check_choice("pad_mode", pad_mode, PAD_MODES)
        self.momentum = check_range("momentum", momentum, low=0.0)
        if self.momentum > 1:
            warnings.warn(
                f"Griffin_Lim momentum={momentum} > 1 can be unstable", UserWarning, stacklevel=2
            )
        self.init = check_choice("init", init, ("random", None))
        kernel_dtype = check_float_dtype("dtype", dtype)
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise ValueError(f"device must name a torch device, got {device!r}") from e
        w = fourier_window(window, self.n_fft, self.win_length)
        self.register_buffer(
            "window_mask", torch.tensor(w, dtype=kernel_dtype, device=device), persistent=False
        )

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output samples for valid frame ``lengths`` (with ``length=None``)."""
        return istft_lengths(lengths, self.n_fft, self.hop_length, self.center)

    def forward(self, S: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Waveform whose STFT magnitude approximates ``S`` (``length``: output samples)."""
        if not isinstance(S, torch.Tensor) or S.ndim not in (2, 3, 4) or not S.is_floating_point():
            shape = tuple(S.shape) if isinstance(S, torch.Tensor) else type(S).__name__
            raise ValueError(
                f"S must be a real magnitude spectrogram (batch, n_fft // 2 + 1, frames), "
                f"(n_fft // 2 + 1, frames) or (batch, channels, n_fft // 2 + 1, frames), got {shape}"
            )
        half = self.n_fft // 2 + 1
        if S.shape[-2] != half:
            raise ValueError(
                f"S has {S.shape[-2]} frequency bins; n_fft={self.n_fft} needs n_fft // 2 + 1 = {half}"
            )
        if length is not None:
            length = check_positive_int("length", length)
            frames = 1 + (length - (0 if self.center else self.n_fft)) // self.hop_length
            if frames != S.shape[-1]:
                raise ValueError(
                    f"length={length} gives {frames} frames at hop_length={self.hop_length}, "
                    f"but S has {S.shape[-1]}"
                )
        lead = S.shape[:-2] if S.ndim > 2 else (1,)
        mag = S.reshape(-1, *S.shape[-2:]).to(compute_dtype(S, self.window_mask))
        window = self.window_mask.to(mag.dtype)
        if self.init == "random":
            phase = torch.rand(mag.shape, dtype=mag.dtype, device=mag.device) * (2 * math.pi)
            angles = torch.polar(torch.ones_like(mag), phase)
        else:
            angles = torch.complex(torch.ones_like(mag), torch.zeros_like(mag))
        eps = torch.finfo(mag.dtype).tiny
        accel = self.momentum / (1 + self.momentum)
        tprev: torch.Tensor | None = None
        for _ in range(self.n_iter):
            inverse = self._inverse(mag * angles, window, length)
            rebuilt = torch.complex(
                *stft(
                    inverse,
                    n_fft=self.n_fft,
                    hop_length=self.hop_length,
                    window=window,
                    center=self.center,
                    pad_mode=self.pad_mode,
                )
            )
            angles = rebuilt if tprev is None else rebuilt - accel * tprev
            angles = angles / (angles.abs() + eps)
            tprev = rebuilt
        y = self._inverse(mag * angles, window, length)
        return y.reshape(*lead, y.shape[-1])

    def _inverse(
        self, spec: torch.Tensor, window: torch.Tensor, length: int | None
    ) -> torch.Tensor:
        return istft(
            torch.view_as_real(spec),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=window,
            center=self.center,
            onesided=True,
            length=length,
            kernels=None,
        )

    def extra_repr(self) -> str:
        return (
            f"n_fft={self.n_fft}, n_iter={self.n_iter}, hop_length={self.hop_length}, "
            f"momentum={self.momentum}, init={self.init!r}"
        )
