"""The FFT-domain path for frozen Fourier kernels.

A frozen ``STFT`` / ``MelSpectrogram`` computes the same numbers as its conv kernels with one real
FFT per windowed frame. These functions are pure (no module state) and differentiable with respect
to the input; they run on any device and under ``torch.compile``.

Speed (CPU, no gradient, eager): the frames are processed in blocks sized from the machine's
caches (:mod:`nnaudio_data.functional._blocksize`), shared out to single-threaded workers on a
busy machine (one wake-up per thread and call instead of a parallel region per operation) or,
on a quiet one, run with each operation parallel (:mod:`nnaudio_data.functional._pool`). Each
block is windowed into a reused workspace, transformed (``rfft``'s ``out=`` variant would copy
from a temporary: its block-sized result is new, and malloc reuses it from block to block), and
reduced to magnitude / power straight into the preallocated output, or, for a filterbank (mel,
Kaldi), to the filterbank applied to that power while it is in the cache. This avoids what makes
``torch.stft(...).abs()`` slow: large fresh temporaries (glibc hands large blocks back to the
OS, so every call page-faults them in again), a pass through memory per step, and the slow
complex ``abs``. The reduction is three vectorised passes over cache-resident data: the spectrum
squared in place (contiguous), the strided sum of its real and imaginary parts into the output,
and for a magnitude the square root in place (a block of 64 frames at n_fft 2048 on one
AVX-512 core: 40 + 28 us, where ``re * re`` then ``addcmul`` on the strided views took 85 + 28 us,
the complex ``abs`` 245 us, ``hypot`` 221 us and ``vector_norm`` 307 us). Where a gradient is
needed, on GPUs and under ``torch.compile`` the same numbers come from one whole-batch expression.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from nnaudio_data.functional._blocksize import block_frames
from nnaudio_data.functional._memory import empty
from nnaudio_data.functional._pool import by_operations, run_shared
from nnaudio_data.functional.amplitude import power_spectrum
from nnaudio_data.functional.filterbank import apply_filterbank, band_groups
from nnaudio_data.functional.framing import _pad_index, center_pad, fill_end_padding, frame

__all__ = ["blocked_applies", "frames_fft_power", "stft_fft", "stft_fft_power"]


def blocked_applies(x: torch.Tensor, *params: torch.Tensor) -> bool:
    """Whether the cache-blocked loop applies to ``x`` (and ``params``, e.g. the window): CPU,
    eager, and no gradient to record."""
    if x.device.type != "cpu" or torch.compiler.is_compiling() or torch.jit.is_scripting():
        return False
    grad = torch.is_grad_enabled()
    return not (grad and any(t.requires_grad for t in (x, *params)))


#: the most bytes of windowed frames in one block when each operation runs parallel (so that
#: many threads do not make a block, and its spectrum, hundreds of MB)
_OPS_BLOCK_BYTES = 16 << 20


def _blocks(rows: int, frames: int, max_frames: int) -> Iterator[tuple[slice, slice]]:
    """``(row slice, frame slice)`` pairs covering ``rows x frames`` in the fewest blocks of at most
    ``max_frames`` frames, as equal as possible: groups of whole rows when a row fits, otherwise
    frame ranges of one row. Either way an output block ``out[rs, fs]`` of a contiguous
    ``(rows, frames, F)`` is contiguous."""
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
    x: torch.Tensor, n_fft: int, hop_length: int, center: bool, pad_mode: str, end_zeros: int = 0
) -> tuple[list[tuple[int, torch.Tensor]], int]:
    """The frames as ``[(first frame index, (rows, k, n_fft) view), ...]`` in order, and their count.

    With ``center`` the padded signal is not built: the interior frames are a view of ``x``, and
    only the first and last few frames come from small padded copies of the signal's ends. (The
    full padded copy was 11-22% of the time at 22.05 kHz.) ``end_zeros``: the signal is ``x``
    followed by that many zeros (before the centre padding), which only the last frames' small
    copy holds (Whisper's zero padding to 30 s; the copy of the whole batch was 7-11% of its
    call). ``'circular'`` padding and signals too short for an interior frame take the padded
    copy."""
    n = x.shape[-1]
    pad = n_fft // 2
    t_lo = -(-pad // hop_length)  # first frame inside the signal
    t_hi = (n + pad - n_fft) // hop_length  # last frame inside x (before any end zeros)
    if not center or pad_mode == "circular" or n <= pad or t_lo > t_hi:
        signal = F.pad(x, (0, end_zeros)) if end_zeros else x
        frames = frame(signal, n_fft, hop_length, center, pad_mode)
        return [(0, frames)], frames.shape[1]
    total = n + end_zeros  # the extended signal's length
    n_frames = 1 + (total + 2 * pad - n_fft) // hop_length
    # head: frames 0 .. t_lo - 1 from the padded first m samples (m > pad for the reflection)
    m = min(n, max((t_lo - 1) * hop_length + n_fft - pad, pad + 1))
    head = center_pad(x[:, :m], pad, pad_mode).unfold(-1, n_fft, hop_length)[:, :t_lo]
    start = t_lo * hop_length - pad
    inner = x[:, start:].unfold(-1, n_fft, hop_length)[:, : t_hi - t_lo + 1]
    sources = [(0, head), (t_lo, inner)]
    t1 = t_hi + 1
    if t1 < n_frames:
        # tail: the padded last m2 samples of the extended signal (at least its end zeros);
        # index q there is index q + total - m2 of the padded signal
        m2 = min(total, max(total + pad - t1 * hop_length, pad + 1, end_zeros + 1))
        ends = x[:, n - (m2 - end_zeros) :]
        ends = F.pad(ends, (0, end_zeros)) if end_zeros else ends
        q1 = t1 * hop_length - (total - m2)
        tail = center_pad(ends, pad, pad_mode)[:, q1:].unfold(-1, n_fft, hop_length)
        sources.append((t1, tail[:, : n_frames - t1]))
    return sources, n_frames


#: ``(row, first frame, (1, k, n_fft) frames)``: frames of one row that replace those of the
#: shared sources (a clip padded at its own end)
OwnEnd = tuple[int, int, torch.Tensor]


def _own_end_frames(
    x: torch.Tensor, lengths: torch.Tensor, n_fft: int, hop_length: int, pad_mode: str
) -> list[OwnEnd] | None:
    """For each row shorter than the batch, its centred frames that read samples past its length,
    from a small copy of that stretch padded at the row's own end (one gather for all rows), so
    that the batch is not copied: the numbers of
    :func:`~nnaudio_data.functional.framing.fill_end_padding` on the whole batch. ``None`` where
    a stretch would not give them: a row too short for one reflection, or whose own padding
    reaches the batch's end padding (the caller then copies the batch)."""
    time, pad = x.shape[-1], n_fft // 2
    n_frames = 1 + time // hop_length
    rows, ends, firsts, counts, starts = [], [], [], [], []
    for r, n in enumerate(lengths.tolist()):
        if n <= 0 or n >= time:  # a full row's own padding is the batch's; an empty one is left
            continue
        t1 = (n + pad - n_fft) // hop_length + 1  # the first frame that reads sample n
        t2 = min(n_frames - 1, -(-(n + 2 * pad) // hop_length) - 1)  # the last before n + pad
        start, stop = t1 * hop_length - pad, t2 * hop_length - pad + n_fft
        if start < 0 or start > n - pad - 1 or stop > time or n + 2 * pad + 1 > time:
            return None
        rows.append(r)
        ends.append(n)
        firsts.append(t1)
        counts.append(t2 - t1 + 1)
        starts.append(start)
    if not rows:
        return []
    width = max(c - 1 for c in counts) * hop_length + n_fft
    device = x.device
    n_t = torch.tensor(ends, device=device).unsqueeze(1)
    pos = torch.tensor(starts, device=device).unsqueeze(1) + torch.arange(width, device=device)
    own = (pos >= n_t) & (pos < n_t + pad)  # the row's own padding
    src = pos if pad_mode == "constant" else torch.where(own, _pad_index(pos, n_t, pad_mode), pos)
    stretch = x[torch.tensor(rows, device=device).unsqueeze(1), src.clamp_max(time - 1)]
    if pad_mode == "constant":
        stretch = stretch.masked_fill_(own, 0.0)
    frames = stretch.unfold(-1, n_fft, hop_length)
    return [
        (r, t1, frames[i : i + 1, :k]) for i, (r, t1, k) in enumerate(zip(rows, firsts, counts))
    ]


#: ``reduce(spectrum, rows, frames)``: what the spectrum of block ``(rows, frames)`` becomes in
#: the output (the spectrum's workspace is the reduction's to overwrite)
Reduce = Callable[[torch.Tensor, slice, slice], None]
#: ``prepare(frames, out)``: a block's frames ``(rows, k, frame_length)`` made ready for the FFT
#: into ``out`` ``(rows, k, n_fft)`` (windowed; Kaldi's: conditioned). Where ``n_fft`` is longer
#: than the frames, ``out[..., frame_length:]`` is zero on entry (the loop zeroes its workspace's
#: padding once) and must stay zero
Prepare = Callable[[torch.Tensor, torch.Tensor], object]


def _windowing(window: torch.Tensor) -> Prepare:
    """``out = frames * window`` (``window`` as long as the FFT)."""

    def prepare(frames: torch.Tensor, out: torch.Tensor) -> None:
        torch.mul(frames, window, out=out)

    return prepare


def _run_blocks(
    sources: list[tuple[int, torch.Tensor]],
    n_frames: int,
    prepare: Prepare,
    reduce: Reduce,
    *,
    n_fft: int | None = None,
    block: int | None = None,
    threads: int | None = None,
    own_ends: list[OwnEnd] | None = None,
) -> None:
    """For each block of :func:`_blocks`: ``prepare`` its frames (window them), rfft them
    (``n_fft`` points, default the frame length), and ``reduce`` the spectrum ``(block rows,
    block frames, n_fft // 2 + 1)`` into the output.

    Blocks of ``block`` frames (default :func:`~nnaudio_data.functional._blocksize.block_frames`)
    go to ``threads`` single-threaded workers (default: torch's thread count), or on a quiet
    machine run in the caller, ``threads`` times larger, with each operation parallel over
    torch's threads (:func:`~nnaudio_data.functional._pool.by_operations`). Each worker windows
    into a workspace of its own, allocated once per call (a whole-batch temporary would be
    handed back to the OS by glibc and fault in again on every call); the spectrum of a block is
    rfft's own result (with ``out=`` rfft copies from a temporary: 5-8 % of the call). The
    numbers do not depend on ``block``, ``threads`` or the parallel mode (each frame's FFT is the
    same whatever the batch it is in)."""
    rows, _, length = sources[0][1].shape
    if rows == 0:
        return
    n_fft = length if n_fft is None else n_fft
    like = sources[0][1]
    threads = torch.get_num_threads() if threads is None else threads
    # a quiet machine: each operation parallel over torch's threads, each with a block's share
    by_ops = threads == torch.get_num_threads() and by_operations(threads)
    if block is None:
        block = block_frames(n_fft, like.dtype, threads)
        if by_ops:  # a block's share per thread, within a bound on the block's workspace
            cap = _OPS_BLOCK_BYTES // (n_fft * like.element_size())
            block = max(block, min(block * threads, cap))
    plan = list(_blocks(rows, n_frames, block))
    # the first block is the largest: only the last ones are shorter
    size = len(range(rows)[plan[0][0]]) * len(range(n_frames)[plan[0][1]])

    def work(blocks: Iterator[tuple[slice, slice]]) -> None:
        windowed_ws = torch.empty(size * n_fft, dtype=like.dtype, device=like.device)
        # every block's frames start at multiples of n_fft here: their zero padding, written
        # once, is every block's (per block it had been 0.7 ms of a 16 x 10 s call at n_fft 512)
        windowed_ws.view(size, n_fft)[:, length:].zero_()
        for rs, fs in blocks:
            a, b = fs.start, min(fs.stop, n_frames)
            shape = (len(range(rows)[rs]), b - a)
            windowed = windowed_ws[: shape[0] * shape[1] * n_fft].view(*shape, n_fft)
            for first, frames in sources:
                lo, hi = max(a, first), min(b, first + frames.shape[1])
                if lo < hi:
                    prepare(frames[rs, lo - first : hi - first], windowed[:, lo - a : hi - a])
            for row, first, frames in own_ends or ():  # rows padded at their own end
                lo, hi = max(a, first), min(b, first + frames.shape[1])
                if rs.start <= row < rs.stop and lo < hi:
                    dest = windowed[row - rs.start : row - rs.start + 1, lo - a : hi - a]
                    prepare(frames[:, lo - first : hi - first], dest)
            # a new spectrum per block: rfft's out= variant computes into a temporary and copies
            # it (an extra pass over the block); this block-sized allocation is reused by malloc
            reduce(torch.fft.rfft(windowed, dim=-1), rs, fs)

    if by_ops:
        work(iter(plan))
    else:
        run_shared(plan, work, min(threads, len(plan)))


def _copy_into(out: torch.Tensor) -> Reduce:
    """``out[rows, frames] = spectrum`` for a ``(rows, frames, n_fft // 2 + 1)`` complex ``out``."""

    def reduce(spec: torch.Tensor, rs: slice, fs: slice) -> None:
        out[rs, fs] = spec

    return reduce


def _power_into(out: torch.Tensor, power: float) -> Reduce:
    """``out[rows, :, frames] = |spectrum| ** power`` for a contiguous ``(rows, n_fft // 2 + 1,
    frames)`` real ``out``: the spectrum squared in place (contiguous, in the cache), the sum of
    its real and imaginary parts written transposed into ``out`` (within the cache: a whole-output
    ``contiguous()`` afterwards took 4-7 ms at 22.05 kHz), then for ``power != 2`` the root in
    place (128 frames at n_fft 2048, one core: 13 + 132 + 57 us, where a root in a contiguous
    workspace and a transposed copy took 13 + 59 + 57 + 130 us)."""

    def reduce(spec: torch.Tensor, rs: slice, fs: slice) -> None:
        dest = out[rs, :, fs].transpose(1, 2)
        _power_of(spec, power, dest)

    return reduce


def _power_of(spec: torch.Tensor, power: float, out: torch.Tensor | None = None) -> torch.Tensor:
    """``|spec| ** power`` of a block's spectrum (which it overwrites), into ``out`` or a new
    contiguous tensor."""
    ri = torch.view_as_real(spec)
    torch.mul(ri, ri, out=ri)
    dest = torch.add(ri[..., 0], ri[..., 1], out=out)
    if power == 1.0:
        dest.sqrt_()
    elif power != 2.0:
        dest.pow_(power / 2)
    return dest


def _filterbank_into(out: torch.Tensor, filterbank: torch.Tensor, power: float) -> Reduce:
    """``out[rows, :, frames] = filterbank @ |spectrum| ** power`` for a contiguous ``(rows,
    bands, frames)`` ``out``: the power of a block stays in the cache and only its ``bands``
    rows reach memory, written by the product itself.

    The power is written bins-first into a block workspace, and a banded filterbank (mel, Kaldi:
    :func:`~nnaudio_data.functional.filterbank.band_groups`) is applied as a sparse matrix, one
    call a row of the block, straight into the output (a dense one by a dense product; a product
    of the whole block into a temporary, then copied out row by row, had cost 125 us a copy of a
    2-row block at 2 threads, a quarter of the call). One 998-frame block at n_fft 512 with 128
    Kaldi bands (504 non-zeros), one AVX-512 core: power 168 us and product 58 us, where the power
    frames-first (91 us) took 200 us in 16 banded group products, and the whole-batch product
    afterwards 233 us a row, reading back the 16 MB power of 16 x 10 s, which is never written
    now. One call instead of 16 also matters on two workers: each call's Python dispatch holds
    the GIL."""
    filterbank = filterbank.to(out.dtype)
    bins = filterbank.shape[1]
    product = _product(filterbank)

    def reduce(spec: torch.Tensor, rs: slice, fs: slice) -> None:
        nr, k = spec.shape[:2]
        block = spec.new_empty((nr, bins, k), dtype=out.dtype)  # each row's power, bins first
        _power_of(spec, power, block.transpose(1, 2))
        for r in range(nr):  # straight into out: a (bands, k) view with the output's row stride
            dest = out[rs.start + r, :, fs]
            torch.addmm(dest, product, block[r], beta=0, out=dest)

    return reduce


#: explicit memo of :func:`_product`: ``id(filterbank) -> (weak reference, version, sparse
#: product or None for a dense one)``, the oldest dropped past :data:`_PRODUCTS_KEPT`
_PRODUCTS: dict[int, tuple[weakref.ref[torch.Tensor], int, torch.Tensor | None]] = {}
_PRODUCTS_KEPT = 32


def _product(filterbank: torch.Tensor) -> torch.Tensor:
    """The matrix the blocked loop multiplies by: a banded filterbank as a sparse tensor (exact
    zeros skipped), a dense one as itself. Sparse CSR where torch has MKL (its ``addmm`` is MKL's
    sparse product: a 2-row, 998-frame block with 128 Kaldi bands, 107 us at 2 threads and 155 at
    one, where the coalesced COO's own kernel took 207 and 189, zeroing its output first; the
    same numbers bit for bit; whole recipes 0.4-1.4 ms faster a call at 16 x 10 s), coalesced
    COO otherwise. Memoised per filterbank tensor while it is alive and unmodified (its version
    counter; finding the bands and converting took 0.65 ms for 128 mel bands of n_fft 2048, half
    of a 1 s clip's call); a tensor without a version counter (made in inference mode) is
    converted each time."""
    try:
        version = filterbank._version
    except RuntimeError:  # an inference tensor
        return _sparse_or_dense(filterbank)
    key = id(filterbank)
    hit = _PRODUCTS.get(key)
    if hit is not None and hit[0]() is filterbank and hit[1] == version:
        return filterbank if hit[2] is None else hit[2]
    product = _sparse_or_dense(filterbank)
    while len(_PRODUCTS) >= _PRODUCTS_KEPT:
        _PRODUCTS.pop(next(iter(_PRODUCTS)))
    _PRODUCTS[key] = (weakref.ref(filterbank), version, None if product is filterbank else product)
    return product


def _sparse_or_dense(filterbank: torch.Tensor) -> torch.Tensor:
    if not band_groups(filterbank):
        return filterbank
    if filterbank.device.type == "cpu" and torch.backends.mkl.is_available():
        with warnings.catch_warnings():  # "sparse CSR support is in beta", at construction
            warnings.simplefilter("ignore", UserWarning)
            return filterbank.to_sparse_csr()  # addmm by MKL's sparse routines
    return filterbank.to_sparse().coalesce()


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
    if blocked_applies(x, window):
        sources, n_frames = _frame_sources(x, n_fft, hop_length, center, pad_mode)
        shape = (x.shape[0], n_frames, n_fft // 2 + 1)
        out = empty(shape, dtype=_complex(x.dtype), device=x.device)
        _run_blocks(sources, n_frames, _windowing(window), _copy_into(out))
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
    filterbank: torch.Tensor | None = None,
    end_zeros: int = 0,
    lengths: torch.Tensor | None = None,
    **blocking: int,
) -> torch.Tensor:
    """``|STFT(x)| ** power`` (1.0: magnitude, 2.0: power spectrogram), real, or with
    ``filterbank`` ``(bands, n_fft // 2 + 1)`` that filterbank applied to it (on the blocked
    path block by block, so the power is never written out).

    Arguments as :func:`stft_fft`, plus ``power`` (any float > 0), ``end_zeros``: the STFT
    of ``x`` zero-padded by that many samples at its end (before the centre padding; on the
    blocked path without a padded copy), and ``lengths`` ``(rows,)``: with ``center``, each row
    padded at its own end (:func:`~nnaudio_data.functional.framing.fill_end_padding`; on the
    blocked path the frames past a short row's end come from a small copy, not a copy of the
    batch; not with ``end_zeros``). ``blocking`` (``block``, ``threads``) overrides the
    block size and thread count of the blocked path (for the tuner and the tests; the numbers
    do not change).

    Shape:
        - Input: ``(rows, time)``
        - Output: ``(rows, n_fft // 2 + 1, frames)`` real, or ``(rows, bands, frames)``
          (contiguous on the blocked path), the frames of ``time + end_zeros`` samples.
    """
    window = window.to(device=x.device, dtype=x.dtype)
    if lengths is not None and not center:
        lengths = None  # uncentred frames never read past a row's end padding of their own
    if blocked_applies(x, window):
        sources, n_frames = _frame_sources(x, n_fft, hop_length, center, pad_mode, end_zeros)
        own = None
        if lengths is not None and len(sources) > 1 and not end_zeros:  # views of x: no copy
            own = _own_end_frames(x, lengths, n_fft, hop_length, pad_mode)
        if lengths is not None and own is None:  # each row padded at its end in a copy
            x = fill_end_padding(x, lengths, n_fft // 2, pad_mode)
            sources, n_frames = _frame_sources(x, n_fft, hop_length, center, pad_mode, end_zeros)
        fused = filterbank if _fuses(x, filterbank) else None
        out, reduce = _reduction(x, n_fft, n_frames, power, fused)
        _run_blocks(sources, n_frames, _windowing(window), reduce, own_ends=own, **blocking)
        return out if filterbank is None or fused is not None else apply_filterbank(out, filterbank)
    if lengths is not None:
        x = fill_end_padding(x, lengths, n_fft // 2, pad_mode)
    frames = frame(
        F.pad(x, (0, end_zeros)) if end_zeros else x, n_fft, hop_length, center, pad_mode
    )
    if frames.numel() == 0:  # MKL refuses an empty batch
        spec = _empty(frames, n_fft, x.dtype)
    else:
        ri = torch.view_as_real(torch.fft.rfft(frames * window, dim=-1).transpose(1, 2))
        spec = power_spectrum(ri[..., 0], ri[..., 1], power)
    return spec if filterbank is None else apply_filterbank(spec, filterbank)


def frames_fft_power(
    frames: torch.Tensor,
    *,
    n_fft: int,
    prepare: Prepare,
    power: float,
    filterbank: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``|rfft(prepare(frames), n_fft)| ** power`` of ready-cut frames, or ``filterbank`` applied
    to it, in cache-sized blocks on the shared single-threaded workers (CPU, no gradient to
    record: the caller checks :func:`blocked_applies`; a filterbank of a wider dtype than the
    frames is applied afterwards). ``out``: write the result there (a view into a larger
    buffer is fine: its last dimension must be contiguous).

    ``prepare(frames, out)`` writes a block of frames, ready for the FFT, into ``out`` (Kaldi's
    :func:`~nnaudio_data.functional.preprocess.condition_frames`); where ``n_fft`` is longer than
    the frames, ``out``'s columns past them are zero already and must stay so.

    Shape:
        - Input: ``(rows, frames, frame_length)``, ``filterbank`` ``(bands, n_fft // 2 + 1)``
        - Output: ``(rows, n_fft // 2 + 1, frames)`` or ``(rows, bands, frames)``, contiguous
          (or ``out``).
    """
    fused = filterbank if _fuses(frames, filterbank) else None
    final = filterbank is None or fused is not None  # the loop writes the result itself
    n_frames = frames.shape[1]
    result, reduce = _reduction(frames, n_fft, n_frames, power, fused, out if final else None)
    if n_frames:
        _run_blocks([(0, frames)], n_frames, prepare, reduce, n_fft=n_fft)
    if filterbank is not None and fused is None:  # applied afterwards, in the wider dtype
        result = apply_filterbank(result, filterbank)
        return result if out is None else out.copy_(result)
    return result


def _fuses(x: torch.Tensor, filterbank: torch.Tensor | None) -> bool:
    """Whether ``filterbank`` goes into the blocked loop over ``x`` (which applies): given, on
    ``x``'s device, of its dtype or a narrower one (as the product would promote it), and not
    being trained."""
    if filterbank is None or filterbank.device != x.device:
        return False
    return torch.promote_types(x.dtype, filterbank.dtype) == x.dtype and blocked_applies(
        x, filterbank
    )


def _reduction(
    like: torch.Tensor,
    n_fft: int,
    n_frames: int,
    power: float,
    filterbank: torch.Tensor | None,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, Reduce]:
    """The blocked loop's output (``out`` when given) and its reduction: the power, or
    ``filterbank`` applied to it."""
    rows, bins = like.shape[0], n_fft // 2 + 1
    if filterbank is not None and filterbank.shape[-1] != bins:
        raise ValueError(
            f"filterbank has shape {tuple(filterbank.shape)} but the spectrum has {bins} bins"
        )
    bands = bins if filterbank is None else filterbank.shape[0]
    shape = (rows, bands, n_frames)
    if out is None:
        out = empty(shape, dtype=like.dtype, device=like.device)
    elif out.shape != shape or out.dtype != like.dtype or (n_frames and out.stride(-1) != 1):
        raise ValueError(
            f"out must be a {like.dtype} tensor of shape {shape} with contiguous frames, got "
            f"{out.dtype} {tuple(out.shape)} with strides {out.stride()}"
        )
    if filterbank is None:
        return out, _power_into(out, power)
    return out, _filterbank_into(out, filterbank, power)


def _empty(frames: torch.Tensor, n_fft: int, dtype: torch.dtype) -> torch.Tensor:
    """The (empty) result for a batch of no rows, with the transposed layout of the others."""
    rows, n_frames = frames.shape[:2]
    return frames.new_zeros(rows, n_frames, n_fft // 2 + 1, dtype=dtype).transpose(1, 2)


def _complex(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64
