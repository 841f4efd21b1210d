"""Short-time Fourier transforms: the STFT (complex, magnitude or power) and its inverse.

Two implementations give the same numbers (tests hold them to float32 rounding):

* **kernels** (the definition, and the trainable path): a frame's spectrum is ``wcos @ frame``
  (real part) and ``-wsin @ frame`` (imaginary part), computed as one matrix product over every
  frame of every row or as nnAudio's strided ``conv1d`` of the signal, whichever was the faster
  on the first call of the shape. The kernels may hold any window and any bin frequencies.
* **FFT** (frozen kernels of the plain Fourier basis): a real FFT of each windowed frame, in
  cache-sized blocks on the CPU (:mod:`nnaudio_data.functional._blocked`).

Each function takes a flat ``(rows, time)`` signal; batches and channels are rows.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from nnaudio_data.functional._blocked import stft_fft, stft_fft_power
from nnaudio_data.functional.amplitude import power_spectrum
from nnaudio_data.functional.filterbank import apply_filterbank
from nnaudio_data.functional.framing import center_pad, fill_end_padding, frame, frame_count

__all__ = [
    "istft",
    "istft_lengths",
    "overlap_add",
    "spectrogram",
    "stft",
    "window_sumsquare",
]

#: below this the window envelope is not divided out in the inverse (nnAudio's threshold)
WSS_FLOOR = 1e-10


def _own_ends(
    x: torch.Tensor, lengths: torch.Tensor | None, n_fft: int, center: bool, pad_mode: str
) -> torch.Tensor:
    """``x`` with each row padded at its own end (see :func:`fill_end_padding`) when centred."""
    if lengths is None or not center:
        return x
    return fill_end_padding(x, lengths, n_fft // 2, pad_mode)


def _kernel_spectrum(
    x: torch.Tensor,
    kernels: tuple[torch.Tensor, torch.Tensor],
    n_fft: int,
    hop_length: int,
    center: bool,
    pad_mode: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(wcos @ frames, -wsin @ frames)``, each ``(rows, bins, frames)``: by a strided
    ``conv1d`` of the (padded) signal with each kernel, as nnAudio does, or by one GEMM per kernel
    over all frames of all rows, whichever was the faster on the first call of this shape
    (:data:`_CONV_FASTER`; the same products, the numbers agree to float32 rounding)."""
    wcos, wsin = (k.to(x.dtype) for k in kernels)
    signal = center_pad(x, n_fft // 2, pad_mode) if center else x
    frames = frame(signal, n_fft, hop_length, False, pad_mode)  # (checks the length)
    if not _conv_applies(x) or x.shape[0] == 0:  # (an empty batch measures nothing)
        return _gemm_products(frames, wcos, wsin)
    key = (n_fft, hop_length, wcos.shape[0], x.dtype, torch.get_num_threads())
    conv = _CONV_FASTER.get(key)
    if conv is None:  # first call of this shape: time both forms on it, keep the faster
        t0 = time.perf_counter()
        with torch.no_grad():
            _gemm_products(frames, wcos, wsin)
        t1 = time.perf_counter()
        products = _conv_products(signal, wcos, wsin, hop_length)
        _CONV_FASTER[key] = time.perf_counter() - t1 < t1 - t0
        return products
    if conv:
        return _conv_products(signal, wcos, wsin, hop_length)
    return _gemm_products(frames, wcos, wsin)


def _gemm_products(
    frames: torch.Tensor, wcos: torch.Tensor, wsin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The GEMM form: ``(rows, frames, n_fft)`` frames (copied once into ``(n_fft, rows *
    frames)``), results as views of ``(bins, rows, frames)`` storage (forward and, for a
    trainable kernel, backward)."""
    rows, n_frames, n_fft = frames.shape
    flat = frames.reshape(-1, n_fft).t()
    re = torch.matmul(wcos, flat).view(wcos.shape[0], rows, n_frames).transpose(0, 1)
    im = torch.matmul(wsin, flat).view(wsin.shape[0], rows, n_frames).transpose(0, 1)
    return re, -im


def _conv_products(
    signal: torch.Tensor, wcos: torch.Tensor, wsin: torch.Tensor, hop_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The convolution form of :func:`_gemm_products` on the (padded) ``(rows, time)`` signal
    itself, a strided ``conv1d`` per kernel: the frames are never copied."""
    re = F.conv1d(signal.unsqueeze(1), wcos.unsqueeze(1), stride=hop_length)
    im = F.conv1d(signal.unsqueeze(1), wsin.unsqueeze(1), stride=hop_length)
    return re, -im


def _conv_applies(x: torch.Tensor) -> bool:
    """The convolution form is considered for float32 on the CPU (oneDNN's kernels; its float64
    convolution is a slow fallback), eager only (a compiled graph keeps the GEMM form)."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.compiler.is_compiling()
        and not torch.jit.is_scripting()
    )


#: explicit memo of which form :func:`_kernel_spectrum` takes: ``(n_fft, hop, bins, dtype,
#: threads) -> the convolution form`` (timed against the GEMM form on the first call of a
#: shape, as ``torch.backends.cudnn.benchmark`` does: one extra GEMM-form forward, once).
#: Which wins depends on the machine's libraries: on a 2-core AMD EPYC VM (L1d 48 KiB,
#: AVX-512), 16 x 4 s, one thread, the forward took 213 ms by oneDNN's strided convolution
#: (nnAudio's way) and 245 ms by MKL's GEMMs at n_fft 2048, 64 against 109 ms at n_fft 512
#: (forward + backward at 2048: 330-340 against 500 ms); on the AVX-512 VM of the older
#: figures the GEMM form was 0.70x nnAudio's convolution. (A small synthetic measurement
#: misled: 128 frames at n_fft 2048 favoured the GEMMs.)
_CONV_FASTER: dict[tuple[int, int, int, torch.dtype, int], bool] = {}


def stft(
    x: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    window: torch.Tensor,
    center: bool = True,
    pad_mode: str = "reflect",
    kernels: tuple[torch.Tensor, torch.Tensor] | None = None,
    lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary parts of the STFT of ``x``.

    Args:
        x: ``(rows, time)`` float32 or float64.
        n_fft: frame (and FFT) size.
        hop_length: samples between frames.
        window: ``(n_fft,)`` window (for the FFT path; kernels already hold theirs).
        center: pad ``n_fft // 2`` on both sides (``pad_mode``), frame ``t`` centred on
            ``t * hop_length``.
        pad_mode: see :data:`nnaudio_data.functional.framing.PAD_MODES`.
        kernels: ``(wcos, wsin)`` each ``(bins, n_fft)``; ``None``: the FFT path
            (``n_fft // 2 + 1`` bins).
        lengths: ``(rows,)`` valid samples; each row is then padded at its own end (frames that
            reach past a clip's end read its reflection, not the batch's padding).

    Shape:
        - Input: ``(rows, time)``
        - Output: two ``(rows, bins, frames)``, ``frames`` =
          :func:`~nnaudio_data.functional.framing.frame_count` of ``time``.
    """
    n_frames = frame_count(x.shape[-1], n_fft, hop_length, center)
    x = _own_ends(x, lengths, n_fft, center, pad_mode)
    if kernels is not None:
        re, im = _kernel_spectrum(x, kernels, n_fft, hop_length, center, pad_mode)
    else:
        ri = torch.view_as_real(
            stft_fft(
                x,
                n_fft=n_fft,
                hop_length=hop_length,
                window=window,
                center=center,
                pad_mode=pad_mode,
            )
        )
        re, im = ri[..., 0], ri[..., 1]
    return re[..., :n_frames], im[..., :n_frames]


def spectrogram(
    x: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    window: torch.Tensor,
    center: bool = True,
    pad_mode: str = "reflect",
    power: float = 2.0,
    kernels: tuple[torch.Tensor, torch.Tensor] | None = None,
    lengths: torch.Tensor | None = None,
    filterbank: torch.Tensor | None = None,
    end_zeros: int = 0,
) -> torch.Tensor:
    """``|STFT(x)| ** power`` (1: magnitude, 2: power), real; arguments as :func:`stft`. With
    ``filterbank`` ``(bands, bins)``: that filterbank applied to it (a mel spectrogram), as
    :func:`~nnaudio_data.functional.filterbank.apply_filterbank` would. ``end_zeros``: the
    spectrogram of ``x`` zero-padded by that many samples at its end first (Whisper's padding
    to 30 s; the CPU's FFT path builds no padded copy); not with ``lengths``.

    The FFT path on the CPU computes it block by block without the complex intermediate (and
    applies the filterbank to each block while its power is in the cache).

    Raises:
        ValueError: ``end_zeros`` is negative, or given with ``lengths``.

    Shape:
        - Input: ``(rows, time)``
        - Output: ``(rows, bins, frames)``, or ``(rows, bands, frames)``
    """
    if end_zeros < 0 or (end_zeros and lengths is not None):
        raise ValueError(
            f"end_zeros must be >= 0 and cannot be combined with lengths, got {end_zeros}"
            f" with lengths {'given' if lengths is not None else 'None'}"
        )
    if kernels is not None:
        if end_zeros:
            x = F.pad(x, (0, end_zeros))
        re, im = stft(
            x,
            n_fft=n_fft,
            hop_length=hop_length,
            window=window,
            center=center,
            pad_mode=pad_mode,
            kernels=kernels,
            lengths=lengths,
        )
        spec = power_spectrum(re, im, power)
        return spec if filterbank is None else apply_filterbank(spec, filterbank)
    n_frames = frame_count(x.shape[-1] + end_zeros, n_fft, hop_length, center)
    spec = stft_fft_power(
        x,
        n_fft=n_fft,
        hop_length=hop_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        power=power,
        filterbank=filterbank,
        end_zeros=end_zeros,
        lengths=lengths,
    )
    return spec[..., :n_frames]


def overlap_add(frames: torch.Tensor, hop_length: int) -> torch.Tensor:
    """Overlap-add frames at ``hop_length``.

    Shape:
        - Input: ``(rows, n, frames)``
        - Output: ``(rows, n + hop_length * (frames - 1))``
    """
    n, n_frames = frames.shape[1], frames.shape[2]
    out_len = n + hop_length * (n_frames - 1)
    y = F.fold(frames, (1, out_len), kernel_size=(1, n), stride=(1, hop_length))
    return y.reshape(frames.shape[0], out_len)


def window_sumsquare(window: torch.Tensor, n_frames: int, hop_length: int) -> torch.Tensor:
    """``sum_t window[n - t hop] ** 2`` over ``n_frames`` frames: ``(n + hop (n_frames - 1),)``."""
    w2 = (window * window).reshape(1, -1, 1).expand(1, window.shape[0], n_frames)
    return overlap_add(w2, hop_length)[0]


def istft(
    X: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    window: torch.Tensor,
    center: bool,
    onesided: bool,
    length: int | None,
    kernels: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Inverse STFT.

    ``kernels`` ``(kcos, ksin)`` of shape ``(bins, n_fft)``: frames ``(kcos.T @ re - ksin.T @ im)
    / n_fft`` (the conv definition); ``None``: an inverse real FFT (``onesided``) or the real part
    of an inverse FFT, the same numbers for the plain Fourier basis. Then the window,
    overlap-add, division by the window envelope where it exceeds :data:`WSS_FLOOR`, and the
    ``center`` trim (nnAudio's rule; with ``length`` the output is cut or zero-padded to
    ``length`` samples, as librosa).

    Raises:
        ValueError: ``X`` has the wrong number of bins for ``n_fft`` and ``onesided``.

    Shape:
        - Input: ``(rows, bins, frames, 2)`` (real and imaginary parts last)
        - Output: ``(rows, time)``, ``time`` = :func:`istft_lengths` or ``length``
    """
    bins = X.shape[1]
    expected = n_fft // 2 + 1 if onesided else n_fft
    if bins != expected:
        raise ValueError(
            f"X has {bins} frequency bins; onesided={onesided} with n_fft={n_fft} needs {expected}"
        )
    re, im = X[..., 0], X[..., 1]
    if kernels is None:
        spec = torch.complex(re, im)
        if onesided:
            frames = torch.fft.irfft(spec, n=n_fft, dim=1)
        else:
            frames = torch.fft.ifft(spec, dim=1).real
    else:
        kcos, ksin = kernels
        frames = (torch.matmul(kcos.t(), re) - torch.matmul(ksin.t(), im)) / n_fft
    frames = frames * window[:, None]
    n_frames = X.shape[2]
    y = overlap_add(frames, hop_length)
    wss = window_sumsquare(window, n_frames, hop_length)
    y = torch.where(wss > WSS_FLOOR, y / torch.where(wss > WSS_FLOOR, wss, 1.0), y)
    start = n_fft // 2 if center else 0
    if length is None:
        return y[:, start : y.shape[-1] - start]
    y = y[:, start : start + length]
    if y.shape[-1] < length:
        y = F.pad(y, (0, length - y.shape[-1]))
    return y


def istft_lengths(lengths: torch.Tensor, n_fft: int, hop_length: int, center: bool) -> torch.Tensor:
    """Samples :func:`istft` returns for ``lengths`` frames (``length=None``)."""
    lengths = torch.as_tensor(lengths)
    full = n_fft + hop_length * (lengths - 1)
    if center:
        full = full - 2 * (n_fft // 2)
    return torch.where(lengths > 0, full, torch.zeros_like(full)).clamp_min(0).to(torch.long)
