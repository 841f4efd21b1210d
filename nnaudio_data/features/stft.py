"""``STFT`` and ``iSTFT`` with nnAudio 0.3.4's names, arguments, defaults and output formats.

The Fourier kernels of :mod:`nnaudio_data.kernels.fourier` are the definition: a frame's
spectrum is ``wcos @ frame`` (real part) and ``-wsin @ frame`` (imaginary part), applied to every
frame at once as one matrix product over the unfolded signal (the same numbers as nnAudio's
``conv1d``, faster). When the kernels are frozen and ``freq_scale='no'``, the same numbers come
from a real FFT of each windowed frame (``backend='auto'``, see
:mod:`nnaudio_data.functional.spectral`); ``backend='conv'`` keeps the kernel path.

Differences from nnAudio, all additive: multi-channel input ``(batch, channels, time)`` gives
``(batch, channels, ...)``; ``dtype=`` (e.g. ``torch.float64`` kernels); float64 input works (the
computation runs in the promotion of the input's and the kernels' dtypes); frozen kernels are
non-persistent buffers (not in ``state_dict``); ``forward`` writes no attributes (so
``torch.compile`` works); a magnitude has a zero, not NaN, gradient at zero without nnAudio's
``+ 1e-8``; bad arguments raise ``ValueError``; ``verbose`` prints nothing; ``output_lengths`` maps
sample lengths to frames. Reflect padding needs an input longer than ``n_fft // 2`` samples:
a shorter one raises ``ValueError`` (use ``pad_mode='constant'`` for very short clips).
"""

from __future__ import annotations

from typing import Any

import torch

from nnaudio_data._checks import (
    check_choice,
    check_float_dtype,
    check_positive_float,
    check_positive_int,
)
from nnaudio_data._shapes import (
    flatten_waveform,
    frame_count,
    frame_lengths,
    row_lengths_of,
    unflatten,
)
from nnaudio_data._transform import Transform, nnaudio_keys
from nnaudio_data.features._common import (
    check_bool,
    check_not_transposed,
    compute_dtype,
    frame_params,
    register_kernel,
)
from nnaudio_data.functional.framing import PAD_MODES
from nnaudio_data.functional.spectral import istft, istft_lengths, spectrogram, stft
from nnaudio_data.kernels.fourier import (
    FREQ_SCALES,
    fourier_basis,
    fourier_bins,
    fourier_kernels,
    fourier_window,
    inverse_fourier_basis,
)
from nnaudio_data.kernels.windows import WindowSpec

__all__ = ["BACKENDS", "OUTPUT_FORMATS", "STFT", "iSTFT"]

_LAZY_KERNELS = frozenset({"wcos", "wsin", "kernel_cos_inv", "kernel_sin_inv"})

OUTPUT_FORMATS = ("Complex", "Magnitude", "Phase")
#: ``'auto'``: the FFT path where the kernels allow it (frozen, ``freq_scale='no'``), else conv.
BACKENDS = ("auto", "fft", "conv")


def _resolve_backend(backend: str, fft_possible: bool, why_not: str) -> bool:
    """Whether to use the FFT path for ``backend`` (``'fft'`` where it is impossible is an error)."""
    check_choice("backend", backend, BACKENDS)
    if backend == "fft" and not fft_possible:
        raise ValueError(f"backend='fft' needs {why_not}; use backend='auto' or 'conv'")
    return backend != "conv" and fft_possible


def _fold_onesided(kcos: torch.Tensor, ksin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Full ``(n_fft, n_fft)`` synthesis kernels folded onto the ``n_fft // 2 + 1`` bins of a
    one-sided spectrum: bin ``k`` in ``1 .. (n_fft - 1) // 2`` also stands for bin ``n_fft - k``
    (conjugate: cosine added, sine subtracted), as nnAudio's ``extend_fbins`` does."""
    n = kcos.shape[-1]
    half = n // 2 + 1
    m = n - half
    mirror = slice(n - m, n)
    kc = torch.cat([kcos[:1], kcos[1 : m + 1] + kcos[mirror].flip(0), kcos[m + 1 : half]])
    ks = torch.cat([ksin[:1], ksin[1 : m + 1] - ksin[mirror].flip(0), ksin[m + 1 : half]])
    return kc, ks


def _check_spectrum(X: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """A complex spectrogram as ``(rows, bins, frames, 2)`` real, and the leading shape.

    Accepts nnAudio's ``(batch, bins, frames, 2)``, ``(bins, frames, 2)``, a multi-channel
    ``(batch, channels, bins, frames, 2)``, or the same shapes without the last axis as a complex
    tensor."""
    if not isinstance(X, torch.Tensor):
        raise ValueError(f"X must be a torch.Tensor, got {type(X).__name__}")
    if X.is_complex():
        X = torch.view_as_real(X)
    if X.ndim not in (3, 4, 5) or X.shape[-1] != 2 or not X.is_floating_point():
        raise ValueError(
            f"X has shape {tuple(X.shape)} and dtype {X.dtype}; expected a complex spectrogram "
            "(batch, freq_bins, frames, 2) as STFT(output_format='Complex') returns, "
            "(batch, channels, freq_bins, frames, 2), or a complex tensor without the last axis "
            "(for a magnitude spectrogram use Griffin_Lim)"
        )
    if X.ndim == 3:
        return X.unsqueeze(0), (1,)
    if X.ndim == 4:
        return X, (X.shape[0],)
    return X.reshape(-1, *X.shape[2:]), (X.shape[0], X.shape[1])


class STFT(Transform):
    """Short-time Fourier transform by Fourier kernels (nnAudio 0.3.4's ``STFT``).

    Args:
        n_fft (int > 0): FFT size (kernel length). Default 2048.
        win_length (int in [1, n_fft] or None): Window length, centred in ``n_fft`` samples;
            ``None``: ``n_fft``.
        freq_bins (int > 0 or None): Number of frequency rows; ``None``: ``n_fft // 2 + 1``.
        hop_length (int > 0 or None): Samples between frames; ``None``: ``win_length // 4``.
        window (str, tuple, list, callable or array): As
            :func:`nnaudio_data.kernels.windows.get_window`. Default ``'hann'``.
        freq_scale ({'no', 'linear', 'log', 'log2'}): Bin spacing
            (:mod:`nnaudio_data.kernels.fourier`); ``fmin``, ``fmax``, ``sr`` set it.
        center (bool): Pad ``n_fft // 2`` samples on both sides (``pad_mode``) so frame ``t`` is
            centred at ``t * hop_length``.
        pad_mode ({'reflect', 'constant', 'replicate', 'circular'}):
        iSTFT (bool): Build the synthesis kernels that :meth:`inverse` needs.
        fmin, fmax (float): Lowest and highest frequency (Hz) for the ``'linear'`` / ``'log'`` /
            ``'log2'`` scales.
        sr (float > 0): Sampling rate.
        trainable (bool): Kernels ``wcos`` / ``wsin`` as ``nn.Parameter`` (else non-persistent
            buffers).
        output_format ({'Complex', 'Magnitude', 'Phase'}): Default format of :meth:`forward`.
        verbose (bool): Accepted for compatibility; nothing is printed.
        dtype (torch.dtype or str): Kernel dtype (``torch.float64`` for float64 kernels).
        backend ({'auto', 'fft', 'conv'}): ``'auto'``: FFT path when the kernels are frozen and
            ``freq_scale='no'`` (the attribute ``use_fft`` holds the decision and may be changed),
            ``'conv'``: always the kernels.

    Shape:
        - Input: ``(time,)``, ``(batch, time)``, ``(batch, 1, time)`` or ``(batch, channels, time)``.
        - Output: ``(batch, freq_bins, frames, 2)`` for Complex, ``(batch, freq_bins, frames)`` for
          Magnitude and Phase, with ``(batch, channels, ...)`` for multi-channel input and
          ``batch = 1`` for ``(time,)``. ``frames = 1 + time // hop_length`` with ``center`` (see
          :meth:`num_frames`). ``time_dim`` says which axis is time for the default format.
    """

    output_kind = "spectrogram"
    nnaudio_buffers = nnaudio_keys(
        "wsin", "wcos", "window_mask", "kernel_sin_inv", "kernel_cos_inv"
    )

    wcos: torch.Tensor
    wsin: torch.Tensor
    window_mask: torch.Tensor
    kernel_cos_inv: torch.Tensor
    kernel_sin_inv: torch.Tensor

    def __init__(
        self,
        n_fft: int = 2048,
        win_length: int | None = None,
        freq_bins: int | None = None,
        hop_length: int | None = None,
        window: WindowSpec = "hann",
        freq_scale: str = "no",
        center: bool = True,
        pad_mode: str = "reflect",
        iSTFT: bool = False,
        fmin: float = 50,
        fmax: float = 6000,
        sr: float = 22050,
        trainable: bool = False,
        output_format: str = "Complex",
        verbose: bool = True,
        *,
        dtype: torch.dtype | str = torch.float32,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        n_fft, win_length, hop_length = frame_params(n_fft, win_length, hop_length)
        if freq_bins is not None:
            freq_bins = check_positive_int("freq_bins", freq_bins)
        check_choice("freq_scale", freq_scale, FREQ_SCALES)
        self.center = check_bool("center", center)
        self.pad_mode = check_choice("pad_mode", pad_mode, PAD_MODES)
        self.iSTFT = check_bool("iSTFT", iSTFT)
        self.trainable = check_bool("trainable", trainable)
        self.output_format = check_choice("output_format", output_format, OUTPUT_FORMATS)
        check_bool("verbose", verbose)
        sr = check_positive_float("sr", sr)
        kernel_dtype = check_float_dtype("dtype", dtype)

        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = self.stride = hop_length
        self.pad_amount = n_fft // 2
        self.freq_scale = freq_scale
        self.window = window
        self.fmin, self.fmax, self.sr = fmin, fmax, sr
        self.dtype = kernel_dtype
        self.time_dim = -2 if output_format == "Complex" else -1

        bins = fourier_bins(n_fft, freq_bins, freq_scale, fmin, fmax, sr)
        self.freq_bins = bins.shape[0]
        self.bin_list = bins.tolist()
        self.bins2freq = (bins * (sr / n_fft)).tolist()
        w = fourier_window(window, n_fft, win_length)
        self.register_buffer("window_mask", torch.tensor(w, dtype=kernel_dtype), persistent=False)

        half = n_fft // 2 + 1
        if self.iSTFT and self.freq_bins != half:
            raise ValueError(
                f"iSTFT=True needs freq_bins = n_fft // 2 + 1 = {half}, got {freq_bins!r}"
            )
        # the kernels are built when the conv path (or a user) needs them: a frozen STFT on the
        # FFT path holds only its window (n_fft=16384: 13 s and 1 GiB of kernels otherwise)
        self._kernel_args: dict[str, Any] = {
            "n_fft": n_fft,
            "win_length": win_length,
            "freq_bins": freq_bins,
            "window": window,
            "freq_scale": freq_scale,
            "fmin": fmin,
            "fmax": fmax,
            "sr": sr,
        }
        self.backend = backend
        self.use_fft = _resolve_backend(
            backend,
            not self.trainable and freq_scale == "no" and self.freq_bins <= half,
            "frozen kernels (trainable=False), freq_scale='no' and freq_bins <= n_fft // 2 + 1",
        )

    @property
    def use_fft(self) -> bool:
        """Whether the FFT path computes the transform (may be switched off: the kernels are then
        built)."""
        return bool(self.__dict__["_use_fft"])

    @use_fft.setter
    def use_fft(self, value: bool) -> None:
        self.__dict__["_use_fft"] = check_bool("use_fft", value)
        if not value:
            self._build_kernels()

    def __getattr__(self, name: str) -> Any:
        lazy = name in _LAZY_KERNELS and "_kernel_args" in self.__dict__
        if lazy and not self.__dict__.get("_building", False):
            if name not in self._buffers and name not in self._parameters:
                self._build_kernels()
        return super().__getattr__(name)

    def _build_kernels(self) -> None:
        """Register ``wcos`` / ``wsin`` (and the synthesis kernels with ``iSTFT``) if missing."""
        if "wcos" in self._buffers or "wcos" in self._parameters:
            return
        self.__dict__["_building"] = True
        try:
            self._register_kernels()
        finally:
            self.__dict__["_building"] = False

    def _register_kernels(self) -> None:
        like = self.window_mask
        wcos, wsin = fourier_kernels(**self._kernel_args)
        # nnAudio's shapes (freq_bins, 1, n_fft), so a trained nnAudio state_dict loads
        for name, kernel in (("wsin", wsin), ("wcos", wcos)):
            tensor = torch.tensor(kernel, dtype=like.dtype, device=like.device).unsqueeze(1)
            register_kernel(self, name, tensor, self.trainable)
        if self.iSTFT:
            args = self._kernel_args
            icos, isin = inverse_fourier_basis(
                args["n_fft"],
                self.freq_bins,
                args["freq_scale"],
                args["fmin"],
                args["fmax"],
                args["sr"],
                onesided=False,
            )
            for name, kernel in (("kernel_cos_inv", icos), ("kernel_sin_inv", isin)):
                tensor = torch.tensor(kernel, dtype=like.dtype, device=like.device)
                self.register_buffer(name, tensor, persistent=False)

    def num_frames(self, n_samples: int) -> int:
        """Frames for a signal of ``n_samples`` samples."""
        return frame_count(n_samples, self.n_fft, self.hop_length, self.center)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid frames for valid sample ``lengths``."""
        return frame_lengths(lengths, self.n_fft, self.hop_length, self.center)

    def _kernels(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(wcos, wsin)`` as ``(freq_bins, n_fft)`` for the kernel path, ``None`` for the FFT."""
        if self.use_fft:
            return None
        return self.wcos.squeeze(1).to(dtype), self.wsin.squeeze(1).to(dtype)

    def _framing(self, x: torch.Tensor) -> dict[str, Any]:
        """The framing arguments of :mod:`nnaudio_data.functional.spectral` for ``x``."""
        return {
            "n_fft": self.n_fft,
            "hop_length": self.hop_length,
            "window": self.window_mask.to(x.dtype),
            "center": self.center,
            "pad_mode": self.pad_mode,
            "kernels": self._kernels(x.dtype),
        }

    def power_spectrogram(
        self,
        x: torch.Tensor,
        power: float = 2.0,
        lengths: torch.Tensor | None = None,
        filterbank: torch.Tensor | None = None,
        end_zeros: int = 0,
    ) -> torch.Tensor:
        """``|STFT(x)| ** power`` of a flat ``(rows, time)`` signal, ``(rows, freq_bins, frames)``
        (in the promotion of the input's and the kernels' dtypes), or with ``filterbank``
        ``(bands, freq_bins)`` that filterbank applied to it, ``(rows, bands, frames)``.

        ``lengths`` ``(rows,)``: each row is padded at its own end (see
        :func:`~nnaudio_data.functional.framing.fill_end_padding`). ``end_zeros``: of ``x``
        zero-padded by that many samples first (see
        :func:`~nnaudio_data.functional.spectral.spectrogram`)."""
        x = x.to(compute_dtype(x, self.window_mask))
        framing = self._framing(x)
        full = self.n_fft // 2 + 1
        if filterbank is None:
            spec = spectrogram(x, power=power, lengths=lengths, end_zeros=end_zeros, **framing)
            return spec[:, : self.freq_bins]
        if framing["kernels"] is None and filterbank.shape[-1] == self.freq_bins < full:
            # the FFT gives every bin: those past freq_bins get no weight
            filterbank = torch.nn.functional.pad(filterbank, (0, full - self.freq_bins))
        return spectrogram(
            x, power=power, lengths=lengths, filterbank=filterbank, end_zeros=end_zeros, **framing
        )

    def forward(
        self,
        x: torch.Tensor,
        output_format: str | None = None,
        onesided: bool = True,
        *,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Spectrogram of ``x`` in ``output_format`` (default: the constructor's).

        ``onesided=False`` returns all ``n_fft`` bins of the (conjugate-symmetric) spectrum; it
        needs ``freq_scale='no'`` and the default ``freq_bins``. ``lengths`` ``(batch,)``: the
        valid samples of each item, which is then padded at its own end (``pad_mode``) as it
        would be alone, instead of reading the batch's zero padding.
        """
        fmt = (
            self.output_format
            if output_format is None
            else check_choice("output_format", output_format, OUTPUT_FORMATS)
        )
        check_not_transposed(x, self.n_fft)
        rows, lead = flatten_waveform(x)
        rows = rows.to(compute_dtype(rows, self.window_mask))
        row_lengths = row_lengths_of(lengths, lead, rows)
        if fmt == "Magnitude":
            out = self.power_spectrogram(rows, 1.0, row_lengths)
        else:
            re, im = stft(rows, lengths=row_lengths, **self._framing(rows))
            re, im = re[:, : self.freq_bins], im[:, : self.freq_bins]
            # + 0.0 turns -0.0 into 0.0, as nnAudio does, so the phase of a real value is 0 or pi
            out = torch.stack((re, im), -1) if fmt == "Complex" else torch.atan2(im + 0.0, re)
        if not check_bool("onesided", onesided):
            out = self._two_sided(out, fmt)
        return unflatten(out.contiguous(), lead)

    def _two_sided(self, out: torch.Tensor, fmt: str) -> torch.Tensor:
        if self.freq_scale != "no" or self.freq_bins != self.n_fft // 2 + 1:
            raise ValueError(
                "onesided=False needs freq_scale='no' and freq_bins = n_fft // 2 + 1, got "
                f"freq_scale={self.freq_scale!r}, freq_bins={self.freq_bins}"
            )
        m = self.n_fft - self.freq_bins
        mirror = out[:, 1 : m + 1].flip(1)
        if fmt == "Complex":
            mirror = mirror * torch.tensor([1.0, -1.0], dtype=out.dtype, device=out.device)
        elif fmt == "Phase":
            mirror = -mirror
        return torch.cat([out, mirror], 1)

    def inverse(
        self,
        X: torch.Tensor,
        onesided: bool = True,
        length: int | None = None,
        refresh_win: bool = True,
    ) -> torch.Tensor:
        """Waveform from a complex spectrogram (needs ``iSTFT=True``).

        Args:
            X (Tensor ``(batch, freq_bins, frames, 2)`` (or multi-channel, or complex)):
            onesided (bool): ``X`` holds ``n_fft // 2 + 1`` bins (else all ``n_fft``).
            length (int or None): Output samples; ``None`` trims ``n_fft // 2`` from each end (with
                ``center``).
            refresh_win (bool): Accepted for compatibility (the window envelope is always
                computed).

        Returns:
            Tensor ``(batch, time)`` (``(batch, channels, time)`` for multi-channel ``X``).
        """
        if not self.iSTFT:
            raise ValueError("inverse needs the synthesis kernels: construct STFT with iSTFT=True")
        check_bool("refresh_win", refresh_win)
        onesided = check_bool("onesided", onesided)
        if length is not None:
            length = check_positive_int("length", length)
        rows, lead = _check_spectrum(X)
        rows = rows.to(compute_dtype(rows, self.window_mask))
        kernels = None
        if not self.use_fft:
            kcos, ksin = self.kernel_cos_inv.to(rows.dtype), self.kernel_sin_inv.to(rows.dtype)
            kernels = _fold_onesided(kcos, ksin) if onesided else (kcos, ksin)
        y = istft(
            rows,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window_mask.to(rows.dtype),
            center=self.center,
            onesided=onesided,
            length=length,
            kernels=kernels,
        )
        return unflatten(y, lead)

    def extra_repr(self) -> str:
        return (
            f"n_fft={self.n_fft}, hop_length={self.hop_length}, freq_bins={self.freq_bins}, "
            f"freq_scale={self.freq_scale!r}, trainable={self.trainable}, iSTFT={self.iSTFT}, "
            f"use_fft={self.use_fft}"
        )


class iSTFT(Transform):
    """Inverse STFT by Fourier kernels (nnAudio 0.3.4's ``iSTFT``): complex spectrogram to waveform.

    Parameters are those of :class:`STFT` (they must match the forward transform), plus
    ``trainable_kernels`` (the ``(n_fft, n_fft)`` synthesis kernels ``kernel_cos`` /
    ``kernel_sin`` as parameters), ``trainable_window`` (``window_mask`` as a parameter) and
    ``refresh_win`` (accepted for compatibility). ``freq_bins`` must be ``None`` or
    ``n_fft // 2 + 1``. ``backend`` as :class:`STFT`: the inverse FFT where the kernels are frozen
    and ``freq_scale='no'``.

    A frame is ``(kernel_cos.T @ re - kernel_sin.T @ im) / n_fft`` (the adjoint of the analysis
    kernels; a one-sided spectrum is mirrored as nnAudio's ``extend_fbins`` does), windowed,
    overlap-added and divided by the window envelope where it exceeds 1e-10. For
    ``freq_scale='no'`` that is the exact inverse and nnAudio's numbers; for the other scales
    nnAudio 0.3.4's conv2d applies its kernel transposed (``kernel_cos @ re``), which is not the
    adjoint, so there the two differ (neither is an exact inverse).

    Shape:
        - Input: ``(batch, freq_bins, frames, 2)``, ``(freq_bins, frames, 2)`` or
          ``(batch, channels, freq_bins, frames, 2)`` (or a complex tensor without the last axis),
          ``freq_bins = n_fft // 2 + 1`` with ``onesided=True``, else ``n_fft``.
        - Output: ``(batch, time)`` (``(batch, channels, time)``), ``time = hop_length * (frames -
          1)`` with ``center`` and an even ``n_fft`` (see :meth:`output_lengths`), or ``length``.
    """

    output_kind = "waveform"
    nnaudio_buffers = nnaudio_keys("kernel_sin", "kernel_cos", "window_mask")

    time_dim = -1
    kernel_cos: torch.Tensor
    kernel_sin: torch.Tensor
    window_mask: torch.Tensor

    def __init__(
        self,
        n_fft: int = 2048,
        win_length: int | None = None,
        freq_bins: int | None = None,
        hop_length: int | None = None,
        window: WindowSpec = "hann",
        freq_scale: str = "no",
        center: bool = True,
        fmin: float = 50,
        fmax: float = 6000,
        sr: float = 22050,
        trainable_kernels: bool = False,
        trainable_window: bool = False,
        verbose: bool = True,
        refresh_win: bool = True,
        *,
        dtype: torch.dtype | str = torch.float32,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        n_fft, win_length, hop_length = frame_params(n_fft, win_length, hop_length)
        half = n_fft // 2 + 1
        if freq_bins is not None and freq_bins != half:
            raise ValueError(
                f"freq_bins must be None or n_fft // 2 + 1 = {half}, got {freq_bins!r}"
            )
        check_choice("freq_scale", freq_scale, FREQ_SCALES)
        self.center = check_bool("center", center)
        self.trainable_kernels = check_bool("trainable_kernels", trainable_kernels)
        self.trainable_window = check_bool("trainable_window", trainable_window)
        self.refresh_win = check_bool("refresh_win", refresh_win)
        check_bool("verbose", verbose)
        sr = check_positive_float("sr", sr)
        kernel_dtype = check_float_dtype("dtype", dtype)
        self.n_fft, self.win_length = n_fft, win_length
        self.hop_length = self.stride = hop_length
        self.pad_amount = n_fft // 2
        self.freq_scale = freq_scale
        self.dtype = kernel_dtype
        # nnAudio's synthesis kernels: n_fft rows at the scale's frequencies, unwindowed
        kcos, ksin = fourier_basis(n_fft, n_fft, freq_scale, fmin, fmax, sr)
        shape = (n_fft, 1, n_fft, 1)  # nnAudio's conv2d shapes
        register_kernel(
            self,
            "kernel_cos",
            torch.tensor(kcos, dtype=kernel_dtype).reshape(shape),
            self.trainable_kernels,
        )
        register_kernel(
            self,
            "kernel_sin",
            torch.tensor(ksin, dtype=kernel_dtype).reshape(shape),
            self.trainable_kernels,
        )
        w = torch.tensor(fourier_window(window, n_fft, win_length), dtype=kernel_dtype)
        register_kernel(self, "window_mask", w.reshape(1, n_fft, 1), self.trainable_window)
        self.backend = backend
        self.use_fft = _resolve_backend(
            backend,
            not self.trainable_kernels and freq_scale == "no",
            "frozen kernels (trainable_kernels=False) and freq_scale='no'",
        )

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output samples for valid frame ``lengths`` (with ``length=None``)."""
        return istft_lengths(lengths, self.n_fft, self.hop_length, self.center)

    def forward(
        self,
        X: torch.Tensor,
        onesided: bool = False,
        length: int | None = None,
        refresh_win: bool | None = None,
    ) -> torch.Tensor:
        """Waveform of the complex spectrogram ``X``.

        ``onesided`` (default ``False`` as in nnAudio): ``X`` holds ``n_fft // 2 + 1`` bins,
        else all ``n_fft``. ``length``: output samples (``None`` trims ``n_fft // 2`` from each
        end with ``center``). ``refresh_win`` is accepted for compatibility.
        """
        onesided = check_bool("onesided", onesided)
        if refresh_win is not None:
            check_bool("refresh_win", refresh_win)
        if length is not None:
            length = check_positive_int("length", length)
        rows, lead = _check_spectrum(X)
        rows = rows.to(compute_dtype(rows, self.window_mask))
        kernels = None
        if not self.use_fft:
            n = self.n_fft
            kcos = self.kernel_cos.reshape(n, n).to(rows.dtype)
            ksin = self.kernel_sin.reshape(n, n).to(rows.dtype)
            kernels = _fold_onesided(kcos, ksin) if onesided else (kcos, ksin)
        y = istft(
            rows,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window_mask.reshape(-1).to(rows.dtype),
            center=self.center,
            onesided=onesided,
            length=length,
            kernels=kernels,
        )
        return unflatten(y, lead)

    def extra_repr(self) -> str:
        return (
            f"n_fft={self.n_fft}, hop_length={self.hop_length}, freq_scale={self.freq_scale!r}, "
            f"trainable_kernels={self.trainable_kernels}, use_fft={self.use_fft}"
        )
