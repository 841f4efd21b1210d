"""The FFT-domain path for frozen Fourier kernels.

A frozen ``STFT`` / ``MelSpectrogram`` computes the same numbers as its conv kernels with one real
FFT per windowed frame. These functions are pure (no module state) and differentiable with respect
to the input; they run on any device and under ``torch.compile``.

Speed (CPU, no gradient, eager): the frames are processed in blocks (2 MiB on one thread, the
fewest of at most 8 MiB on several; see the measurements below), each block windowed into one
reused workspace, transformed, and reduced to magnitude / power straight into one preallocated
output. This avoids what makes ``torch.stft(...).abs()`` slow: large fresh temporaries (glibc hands
blocks over 32 MiB back to the OS, so every call page-faults them in again), a pass through memory
per step, and the slow complex ``abs`` (here ``sqrt(re^2 + im^2)`` on the real view, and no
square root at all for a power spectrogram). Where a gradient is needed, on GPUs and under
``torch.compile`` the same numbers come from one whole-batch expression.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from nnaudio_data.functional.amplitude import power_spectrum
from nnaudio_data.functional.framing import center_pad, frame

__all__ = ["stft_fft", "stft_fft_power"]

# Bytes of windowed frames per block. Measured on a 2-core AVX-512 VM, 16 x 4 s, n_fft 2048:
# - 1 thread, CPU time: blocks of 64 to 512 frames took 15-17 ms at 22.05 kHz and 30-33 ms at
#   44.1 kHz, 2048-frame blocks 18-20 / 45-59 ms, the whole batch at once 21-25 / 70 ms,
#   torch.stft(...).abs() 57 / 121 ms. One thread (e.g. in DataLoader workers) takes blocks of
#   2 MiB (256 frames at n_fft 2048).
# - 2 threads, wall time against torch.stft(...).abs() interleaved: at a load average of 2.5,
#   blocks of 2-8 MiB took 0.3-0.45x at 22.05 kHz (best 9.5-12 ms), 24 MiB (the whole batch)
#   0.6-0.75x (best 22 ms): the cache matters. But each block is a few multi-threaded ops, and on a
#   loaded machine every parallel region waits for a descheduled thread (about 11 ms each at a load
#   average of 4-6, a 16 x 2048 rfft included): there 8 blocks per batch took 1.4-1.9x
#   torch.stft's time, 4 blocks 0.9-1.3x, 2 blocks 0.54-0.84x. Several threads take the fewest
#   blocks of at most 8 MiB (4 at 22.05 kHz, 8 at 44.1 kHz), a compromise between the two. Blocks
#   and their spectra stay under glibc's 32 MiB mmap threshold, so they cause no page faults.
_SERIAL_BLOCK_BYTES = 2 * 2**20
_MAX_BLOCK_BYTES = 8 * 2**20


def _blocked(x: torch.Tensor, window: torch.Tensor) -> bool:
    """Whether the cache-blocked loop applies: CPU, eager, and no gradient to record."""
    if x.device.type != "cpu" or torch.compiler.is_compiling() or torch.jit.is_scripting():
        return False
    return not (torch.is_grad_enabled() and (x.requires_grad or window.requires_grad))


def _blocks(rows: int, frames: int, n_fft: int, itemsize: int) -> Iterator[tuple[slice, slice]]:
    """``(row slice, frame slice)`` pairs covering ``rows x frames`` in the fewest blocks within
    the size limit above, as equal as possible: groups of whole rows when a row fits, otherwise
    frame ranges of one row. Either way an output block ``out[rs, fs]`` of a contiguous
    ``(rows, frames, F)`` is contiguous."""
    limit = _SERIAL_BLOCK_BYTES if torch.get_num_threads() == 1 else _MAX_BLOCK_BYTES
    max_frames = max(1, limit // (n_fft * itemsize))
    if frames <= max_frames:
        step = _even_step(rows, max_frames // frames)
        for i in range(0, rows, step):
            yield slice(i, i + step), slice(0, frames)
    else:
        step = _even_step(frames, max_frames)
        for i in range(rows):
            for j in range(0, frames, step):
                yield slice(i, i + 1), slice(j, j + step)


def _even_step(n: int, most: int) -> int:
    """Step that cuts ``n`` into the fewest pieces of at most ``most``, as equal as possible."""
    pieces = -(-n // most)
    return -(-n // pieces)


def _frame_sources(
    x: torch.Tensor, n_fft: int, hop_length: int, center: bool, pad_mode: str
) -> tuple[list[tuple[int, torch.Tensor]], int]:
    """The frames as ``[(first frame index, (rows, k, n_fft) view), ...]`` in order, and their count.

    With ``center`` the padded signal is not built: the interior frames are a view of ``x``, and
    only the first and last few frames come from small padded copies of the signal's ends. (The
    full padded copy was 11-22% of the time at 22.05 kHz.) ``'circular'`` padding and signals too
    short for an interior frame take the padded copy."""
    n = x.shape[-1]
    pad = n_fft // 2
    t_lo = -(-pad // hop_length)  # first frame inside the signal
    t_hi = (n + pad - n_fft) // hop_length  # last frame inside the signal
    if not center or pad_mode == "circular" or n <= pad or t_lo > t_hi:
        frames = frame(x, n_fft, hop_length, center, pad_mode)
        return [(0, frames)], frames.shape[1]
    n_frames = 1 + (n + 2 * pad - n_fft) // hop_length
    # head: frames 0 .. t_lo - 1 from the padded first m samples (m > pad for the reflection)
    m = min(n, max((t_lo - 1) * hop_length + n_fft - pad, pad + 1))
    head = center_pad(x[:, :m], pad, pad_mode).unfold(-1, n_fft, hop_length)[:, :t_lo]
    start = t_lo * hop_length - pad
    inner = x[:, start:].unfold(-1, n_fft, hop_length)[:, : t_hi - t_lo + 1]
    sources = [(0, head), (t_lo, inner)]
    t1 = t_hi + 1
    if t1 < n_frames:
        # tail: the padded last m2 samples; index q there is index q + n - m2 of the padded signal
        m2 = min(n, max(n + pad - t1 * hop_length, pad + 1))
        q1 = t1 * hop_length - (n - m2)
        tail = center_pad(x[:, n - m2 :], pad, pad_mode)[:, q1:].unfold(-1, n_fft, hop_length)
        sources.append((t1, tail[:, : n_frames - t1]))
    return sources, n_frames


def _windowed_blocks(
    sources: list[tuple[int, torch.Tensor]], n_frames: int, window: torch.Tensor
) -> Iterator[tuple[slice, slice, torch.Tensor]]:
    """``(row slice, frame slice, windowed frames)`` for each block of :func:`_blocks`.

    The windowed frames of every block are written into one workspace, allocated once per call:
    a fresh temporary per block can be handed back to the OS by glibc and fault in again (at
    44.1 kHz, 11,000 page faults per call in the benchmark process; none with the workspace)."""
    rows, _, n_fft = sources[0][1].shape
    if rows == 0:
        return
    like = sources[0][1]
    plan = list(_blocks(rows, n_frames, n_fft, like.element_size()))
    # the first block is the largest: only the last ones are shorter
    size = len(range(rows)[plan[0][0]]) * len(range(n_frames)[plan[0][1]]) * n_fft
    work = torch.empty(size, dtype=like.dtype, device=like.device)
    for rs, fs in plan:
        a, b = fs.start, min(fs.stop, n_frames)
        windowed = work[: len(range(rows)[rs]) * (b - a) * n_fft].view(-1, b - a, n_fft)
        for first, frames in sources:
            lo, hi = max(a, first), min(b, first + frames.shape[1])
            if lo < hi:
                torch.mul(
                    frames[rs, lo - first : hi - first], window, out=windowed[:, lo - a : hi - a]
                )
        yield rs, fs, windowed


def stft_fft(
    x: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    window: torch.Tensor,
    center: bool,
    pad_mode: str,
) -> torch.Tensor:
    """Complex STFT of ``x`` by a real FFT of each windowed frame (``librosa.stft``'s numbers).

    Args:
        x: ``(rows, time)`` float32 or float64.
        n_fft: FFT size.
        hop_length: samples between frames.
        window: ``(n_fft,)`` analysis window, already centre-padded to ``n_fft``.
        center: pad ``n_fft // 2`` on both sides first (``pad_mode``).
        pad_mode: ``'reflect'``, ``'constant'``, ``'replicate'`` or ``'circular'``.

    Raises:
        ValueError: the input is too short for the padding or for one frame.

    Shape:
        - Input: ``(rows, time)``
        - Output: ``(rows, n_fft // 2 + 1, frames)`` complex (a transposed view of a contiguous
          ``(rows, frames, n_fft // 2 + 1)``, as ``torch.stft`` returns it).
    """
    window = window.to(device=x.device, dtype=x.dtype)
    # Blocks pay for the complex result only on one thread (44.1 kHz: 44 vs 57 ms CPU); with two,
    # the copy of each block's spectrum into the output cost more than the cache saved.
    if _blocked(x, window) and torch.get_num_threads() == 1:
        sources, n_frames = _frame_sources(x, n_fft, hop_length, center, pad_mode)
        shape = (x.shape[0], n_frames, n_fft // 2 + 1)
        out = torch.empty(shape, dtype=_complex(x.dtype), device=x.device)
        for rs, fs, windowed in _windowed_blocks(sources, n_frames, window):
            out[rs, fs] = torch.fft.rfft(windowed, dim=-1)
        return out.transpose(1, 2)
    frames = frame(x, n_fft, hop_length, center, pad_mode)
    if frames.numel() == 0:  # MKL refuses an empty batch
        return _empty(frames, n_fft, _complex(x.dtype))
    return torch.fft.rfft(frames * window, dim=-1).transpose(1, 2)


def stft_fft_power(
    x: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    window: torch.Tensor,
    center: bool,
    pad_mode: str,
    power: float,
) -> torch.Tensor:
    """``|STFT(x)| ** power`` (1.0: magnitude, 2.0: power spectrogram), real.

    Arguments as :func:`stft_fft`, plus ``power`` (any float > 0).

    Shape:
        - Input: ``(rows, time)``
        - Output: ``(rows, n_fft // 2 + 1, frames)`` real (a transposed view of a contiguous
          ``(rows, frames, n_fft // 2 + 1)``).
    """
    window = window.to(device=x.device, dtype=x.dtype)
    if _blocked(x, window):
        sources, n_frames = _frame_sources(x, n_fft, hop_length, center, pad_mode)
        out = torch.empty(x.shape[0], n_frames, n_fft // 2 + 1, dtype=x.dtype, device=x.device)
        for rs, fs, windowed in _windowed_blocks(sources, n_frames, window):
            ri = torch.view_as_real(torch.fft.rfft(windowed, dim=-1))
            o = out[rs, fs]
            # re^2, += im^2, sqrt in place on the cached block: 0.47 ms for 4 x 173 frames on 2
            # threads, where hypot took 0.92 ms, vector_norm 1.77 ms and the complex abs 1.55 ms
            torch.mul(ri[..., 0], ri[..., 0], out=o)
            o.addcmul_(ri[..., 1], ri[..., 1])
            if power == 1.0:
                o.sqrt_()
            elif power != 2.0:
                o.pow_(power / 2)
        return out.transpose(1, 2)
    frames = frame(x, n_fft, hop_length, center, pad_mode)
    if frames.numel() == 0:  # MKL refuses an empty batch
        return _empty(frames, n_fft, x.dtype)
    spec = torch.fft.rfft(frames * window, dim=-1).transpose(1, 2)
    ri = torch.view_as_real(spec)
    return power_spectrum(ri[..., 0], ri[..., 1], power)


def _empty(frames: torch.Tensor, n_fft: int, dtype: torch.dtype) -> torch.Tensor:
    """The (empty) result for a batch of no rows, with the transposed layout of the others."""
    rows, n_frames = frames.shape[:2]
    return frames.new_zeros(rows, n_frames, n_fft // 2 + 1, dtype=dtype).transpose(1, 2)


def _complex(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64
