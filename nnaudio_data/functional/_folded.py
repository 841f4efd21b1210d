"""The folded-spectrum path of a frozen constant-Q transform (the fold engine).

Bin ``k`` of a frozen CQT is the cross-correlation of the padded signal with wavelet ``k``, sampled
every ``hop`` samples. With ``N = M * hop`` at least the padded length, the correlation's DFT is
``X * conj(K_k)`` (``X`` the length-``N`` FFT of the signal), and keeping every ``hop``-th lag is,
in the frequency domain, summing the ``hop`` length-``M`` pieces of that product ("folding") and
taking one inverse FFT of length ``M``. ``K_k`` is a band-pass around the bin's frequency: only
the coefficients that hold all but ``tol**2`` of its energy are kept, so the work per bin is its
bandwidth, not the kernel width. Short (high) wavelets have wide spectra but few taps, so groups
of them (lengths within a factor of two) are applied in the time domain, each as one matrix product
with strided frames of the group's width; a cost model picks the path per group. Both paths are
exact up to the truncation ``tol`` (3e-5 relative amplitude by default). Rows are computed four at
a time, so that the temporaries do not grow with the batch.

:func:`make_fold_plan` plans it for one kernel bank, padded length, device and dtype;
:func:`apply_fold_plan` runs it; :func:`fold_plan` is the explicit memo of plans (a pure
function's cache, keyed by value: a transform's ``forward`` stays free of state).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import scipy.fft
import torch

from nnaudio_data.functional._pool import run_shared
from nnaudio_data.functional.framing import pad_signal

__all__ = [
    "FoldBin",
    "FoldPlan",
    "TimeGroup",
    "adjoint_fold_plan",
    "apply_fold_plan",
    "fold_plan",
    "make_fold_plan",
    "memo",
    "memo_plans",
    "smooth_size",
]


def smooth_size(n: int) -> int:
    """The smallest 2-3-5-smooth integer >= ``n`` (fast FFT sizes)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


@dataclass
class TimeGroup:
    """Bins applied in the time domain: one matrix product with strided frames."""

    start: int  # first kernel column
    width: int  # frame width
    kernel: torch.Tensor  # (width, 2 * n): [real | imag] responses


@dataclass
class FoldBin:
    """One bin on the folded-spectrum path: ``rows`` pieces of ``n_cols`` spectral coefficients
    from ``start`` of the rfft (``source`` 0), of the extended low spectrum (1) or of the
    extended high spectrum (2)."""

    start: int
    rows: int
    weights: torch.Tensor  # (rows, n_cols) complex, zero outside the kept support
    source: int


@dataclass
class FoldPlan:
    """Everything the folded-spectrum path needs for one padded length, device and dtype."""

    n_frames: int
    offset: int  # first column any wavelet touches
    n_cols: int
    hop: int
    order: torch.Tensor  # output position of [time-group bins..., folded bins...]
    groups: list[TimeGroup]
    folds: list[FoldBin]
    ext_low: int  # extended low spectrum: this many mirrored negative frequencies,
    low_end: int  # then bins < low_end
    high_start: int  # extended high spectrum: bins >= high_start, then mirrored ones
    n_coef: int  # spectral coefficients read per row


#: cost model, in units of one real multiply-add of a matrix product: one gathered, multiplied
#: and folded complex coefficient, and one frame sample copied out of the strided view
_FOLD_COST = 64.0
_COPY_COST = 4.0


def _support(kernel: np.ndarray, n: int, tol: float) -> tuple[np.ndarray, int, int]:
    """Length-``n`` spectrum of ``kernel``, its peak, and the half-width around the peak that
    holds all but ``tol ** 2`` of its energy."""
    spec = np.fft.fft(kernel, n)
    energy = np.abs(spec) ** 2
    peak = int(energy.argmax())
    cs = np.concatenate(([0.0], np.cumsum(np.roll(energy, n // 2 - peak))))
    c = n // 2
    d = np.arange(0, n // 2)
    inside = cs[np.minimum(c + d + 1, n)] - cs[np.maximum(c - d, 0)]
    reach = int(np.searchsorted(inside, cs[-1] * (1 - tol**2)))
    return spec, peak, min(reach, n // 2 - 1)


def make_fold_plan(
    kernels: np.ndarray,
    padded_length: int,
    hop: int,
    *,
    device: torch.device,
    dtype: torch.dtype,
    tol: float = 3e-5,
) -> FoldPlan:
    """Plan the folded-spectrum path for complex ``kernels`` ``(n_bins, width)`` applied with
    stride ``hop`` to ``(rows, padded_length)`` inputs (see the module docstring).

    Bins are grouped by length (within a factor of two); each group goes to the time domain or to
    the folded spectrum, whichever the cost model says is cheaper.
    """
    width = kernels.shape[1]
    n_frames = 1 + (padded_length - width) // hop
    nz = np.abs(kernels) > 0
    first = np.where(nz.any(1), nz.argmax(1), width // 2)
    last = np.where(nz.any(1), width - nz[:, ::-1].argmax(1), width // 2 + 1)
    # only columns some wavelet touches matter: trim the rest (and that much of the signal)
    offset, stop = int(first.min()), int(last.max())
    kernels, first, last = kernels[:, offset:stop], first - offset, last - offset
    width = stop - offset
    n_cols = smooth_size(-(-((n_frames - 1) * hop + width) // hop))
    n = n_cols * hop
    by_len = np.argsort(last - first, kind="stable")
    groups_idx: list[list[int]] = []
    for k in by_len:
        if groups_idx and (last - first)[k] <= 2 * (last - first)[groups_idx[-1][0]]:
            groups_idx[-1].append(int(k))
        else:
            groups_idx.append([int(k)])
    supports: dict[int, tuple[np.ndarray, int, int]] = {}
    time_bins: list[int] = []
    fold_bins: list[int] = []
    groups: list[TimeGroup] = []
    for members in groups_idx:
        g = np.array(sorted(members))
        start, stop = int(first[g].min()), int(last[g].max())
        time_cost = n_frames * (stop - start) * (2.0 * len(g) + _COPY_COST)
        fold_cost = 0.0
        for k in g:
            supports[k] = _support(kernels[k], n, tol)
            fold_cost += _FOLD_COST * (-(-(2 * supports[k][2] + 1) // n_cols) + 1) * n_cols
            if fold_cost > time_cost:
                break
        if time_cost <= fold_cost:
            ks = kernels[g, start:stop]
            kernel = np.concatenate([ks.real, -ks.imag]).T.copy()
            groups.append(TimeGroup(start, stop - start, torch.as_tensor(kernel, dtype=dtype)))
            groups[-1].kernel = groups[-1].kernel.to(device)
            time_bins += g.tolist()
        else:
            fold_bins += g.tolist()
    order = torch.as_tensor(np.argsort(np.array(time_bins + fold_bins)), device=device)
    cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    pieces = []
    for k in fold_bins:
        spec, peak, reach = supports[k]
        lo, hi = peak - reach, peak + reach + 1
        a0 = (lo // n_cols) * n_cols
        r = -(-(hi - a0) // n_cols)
        j = np.arange(a0, a0 + r * n_cols)
        w = np.where((j >= lo) & (j < hi), np.conj(spec[j % n]), 0.0).reshape(r, n_cols)
        pieces.append((a0, r, w))
    # the rfft holds bins 0 .. n // 2; a support reaching below 0 Hz or above Nyquist reads
    # mirrored (conjugated) bins from a small extended copy of that end of the spectrum
    nf = n // 2 + 1
    low = [a0 + r * n_cols for a0, r, _ in pieces if a0 < 0]
    high = [a0 for a0, r, _ in pieces if a0 >= 0 and a0 + r * n_cols > nf]
    low_end = max(low, default=0)
    high_start = min(high, default=nf)
    ext_low = max([0] + [-a0 for a0, _, _ in pieces])
    if low_end > nf or high_start < 0 or ext_low >= nf - 1 or (high and high_start < nf // 2):
        raise ValueError("no folded-spectrum plan for this length / kernel; use backend='conv'")
    folds = []
    for a0, r, w in pieces:
        source = 1 if a0 < 0 else (2 if a0 + r * n_cols > nf else 0)
        start = a0 + ext_low if source == 1 else (a0 - high_start if source == 2 else a0)
        folds.append(FoldBin(start, r, torch.as_tensor(w, dtype=cdtype, device=device), source))
    return FoldPlan(
        n_frames=n_frames,
        offset=offset,
        n_cols=n_cols,
        hop=hop,
        order=order,
        groups=groups,
        folds=folds,
        ext_low=ext_low if low else 0,
        low_end=low_end,
        high_start=high_start,
        n_coef=sum(f.rows for f in folds) * n_cols,
    )


#: rows computed together: the temporaries (padded rows, their spectrum, strided frames) stay the
#: same whatever the batch size (about 1.5 MB per row at 22.05 kHz x 4 s), while each FFT call's
#: fixed cost (~2 ms for 2e5 points with MKL) is shared by 4 rows
_CHUNK_ROWS = 4


def _rfft(x: torch.Tensor, n: int) -> torch.Tensor:
    """``torch.fft.rfft(x, n=n)``; on the CPU without autograd, scipy's FFT, which caches its
    plans: MKL through torch sets up each call anew (~2 ms at 2e5 points, per 4-row chunk)."""
    if x.device.type != "cpu" or (torch.is_grad_enabled() and x.requires_grad):
        return torch.fft.rfft(x, n=n)
    out = scipy.fft.rfft(x.detach().numpy(), n=n, axis=-1, workers=torch.get_num_threads())
    return torch.from_numpy(out)


def _apply_rows(xp: torch.Tensor, plan: FoldPlan) -> tuple[torch.Tensor, torch.Tensor]:
    rows = xp.shape[0]  # xp: the padded signal from the plan's offset, n_cols * hop samples

    parts_re, parts_im = [], []
    m = plan.n_frames
    for group in plan.groups:
        frames = xp[:, group.start :].unfold(-1, group.width, plan.hop)[:, :m]
        out = torch.matmul(frames, group.kernel).transpose(1, 2)
        half = out.shape[1] // 2
        parts_re.append(out[:, :half])
        parts_im.append(out[:, half:])
    if plan.folds:
        n, c = plan.n_cols * plan.hop, plan.n_cols
        spec = _rfft(xp, n)
        sources = [spec, spec, spec]
        if plan.ext_low:
            mirror = spec[:, 1 : plan.ext_low + 1].flip(1).conj()
            sources[1] = torch.cat((mirror, spec[:, : plan.low_end]), 1)
        if any(f.source == 2 for f in plan.folds):
            top = spec[:, plan.high_start :]
            sources[2] = torch.cat((top, spec[:, 1 : n // 2].flip(1).conj()), 1)
        folded = []
        for f in plan.folds:
            piece = sources[f.source][:, f.start : f.start + f.rows * c].view(rows, f.rows, c)
            folded.append((piece * f.weights).sum(1) if f.rows > 1 else piece[:, 0] * f.weights[0])
        resp = torch.fft.ifft(torch.stack(folded, 1), dim=-1)[..., :m]
        resp = resp / plan.hop
        parts_re.append(resp.real)
        parts_im.append(resp.imag)
    real = torch.cat(parts_re, 1) if len(parts_re) > 1 else parts_re[0]
    imag = torch.cat(parts_im, 1) if len(parts_im) > 1 else parts_im[0]
    return real, imag


def _padded_window(x: torch.Tensor, left: int, pad_mode: str, start: int, n: int) -> torch.Tensor:
    """``pad_signal(x, left, left, pad_mode)[:, start : start + n]``, zero-extended to ``n``
    samples, written into one new buffer (no padded copy, then no zero-padded copy for the FFT)."""
    rows, t = x.shape
    total = t + 2 * left
    stop = min(start + n, total)
    if pad_mode not in ("reflect", "constant") or (pad_mode == "reflect" and t <= left):
        out = x.new_zeros(rows, n)
        out[:, : stop - start] = pad_signal(x, left, left, pad_mode)[:, start:stop]
        return out
    out = x.new_zeros(rows, n)
    a, b = max(start, left), min(stop, left + t)  # the signal itself
    if b > a:
        out[:, a - start : b - start] = x[:, a - left : b - left]
    if pad_mode == "reflect":
        a, b = start, min(left, stop)  # xp[i] = x[left - i]
        if b > a:
            out[:, : b - a] = x[:, left - b + 1 : left - a + 1].flip(1)
        a, b = max(left + t, start), stop  # xp[i] = x[2 t + left - 2 - i]
        if b > a:
            out[:, a - start : b - start] = x[:, 2 * t + left - 1 - b : 2 * t + left - 1 - a].flip(
                1
            )
    return out


def apply_fold_plan(
    x: torch.Tensor, plan: FoldPlan, left: int = 0, pad_mode: str = "constant"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary responses ``(rows, n_bins, frames)`` of ``x`` ``(rows, n)`` padded by
    ``left`` samples on both sides (``pad_mode``), computed ``_CHUNK_ROWS`` rows at a time,
    padding included; on the CPU the chunks go to torch's threads as single-threaded workers
    (:mod:`nnaudio_data.functional._pool`)."""
    n = plan.n_cols * plan.hop
    step = _CHUNK_ROWS
    done: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def work(chunks: Iterator[int]) -> None:
        for i in chunks:
            xw = _padded_window(x[i : i + step], left, pad_mode, plan.offset, n)
            done[i] = _apply_rows(xw, plan)

    starts = range(0, x.shape[0], step)
    threads = torch.get_num_threads() if x.device.type == "cpu" else 1
    run_shared(starts, work, min(threads, len(starts)))
    parts = [done[i] for i in starts]
    real = torch.cat([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    imag = torch.cat([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    return real[:, plan.order], imag[:, plan.order]


def adjoint_fold_plan(
    real: torch.Tensor, imag: torch.Tensor, plan: FoldPlan, length: int
) -> torch.Tensor:
    """The transpose of :func:`apply_fold_plan` (``left=0``, zero padding) as a real-linear map:
    the ``(rows, length)`` signal ``A^T [real; imag]``, for responses ``(rows, n_bins, frames)``.

    Each folded bin's response goes back through the adjoint of its inverse FFT (an FFT of the
    fold length), its spectral weights (conjugated) and the fold (the pieces it summed), into one
    full-length spectrum, and one inverse real FFT brings the whole spectrum back to the time
    domain; the time-domain groups are a matrix product and an overlap-add. It costs what the
    forward costs (an iterative inverse does one of each per iteration)."""
    rows, n_bins, m = real.shape
    n, c, hop = plan.n_cols * plan.hop, plan.n_cols, plan.hop
    resp = real.new_zeros(2, rows, n_bins, m)
    resp[:, :, plan.order] = torch.stack((real, imag))  # back to the plan's bin order
    out = real.new_zeros(rows, n)
    k = 0
    for group in plan.groups:  # frames @ kernel: adjoint kernel.T, then overlap-add
        half = group.kernel.shape[1] // 2
        g = torch.cat((resp[0, :, k : k + half], resp[1, :, k : k + half]), 1)
        frames = torch.matmul(g.transpose(1, 2), group.kernel.t().to(g.dtype))  # (rows, m, w)
        span = (m - 1) * hop + group.width
        added = torch.nn.functional.fold(
            frames.transpose(1, 2), (1, span), kernel_size=(1, group.width), stride=(1, hop)
        )
        out[:, group.start : group.start + span] += added.view(rows, span)[:, : n - group.start]
        k += half
    if plan.folds:
        cdtype = torch.complex128 if real.dtype == torch.float64 else torch.complex64
        z = torch.zeros(rows, len(plan.folds), c, dtype=cdtype, device=real.device)
        z[..., :m] = torch.complex(resp[0, :, k:], resp[1, :, k:]) / hop
        y = torch.fft.fft(z, dim=-1) / c  # the adjoint of ifft
        spec = torch.zeros(rows, n, dtype=cdtype, device=real.device)
        for i, f in enumerate(plan.folds):
            a0 = f.start - plan.ext_low if f.source == 1 else f.start
            a0 = a0 + plan.high_start if f.source == 2 else a0
            pieces = (y[:, i, None, :] * f.weights.conj()).reshape(rows, -1)
            idx = torch.arange(a0, a0 + f.rows * c, device=real.device).remainder_(n)
            spec.index_add_(1, idx, pieces)
        # Re(F^H S) = n * irfft of the Hermitian part of S
        mirror = torch.cat((spec[:, :1], spec[:, n // 2 :].flip(1)), 1)[:, : n // 2 + 1]
        half_spec = 0.5 * (spec[:, : n // 2 + 1] + mirror.conj())
        out += n * torch.fft.irfft(half_spec, n=n)
    signal = real.new_zeros(rows, length)
    stop = min(length, plan.offset + n)
    signal[:, plan.offset : stop] = out[:, : stop - plan.offset]
    return signal


#: entries kept by :func:`memo` (fold plans and the like: a few MB each at most)
_MEMO_SIZE = 16
_MEMO: OrderedDict[Hashable, Any] = OrderedDict()
_MEMO_LOCK = threading.Lock()
T = TypeVar("T")


def memo(key: Hashable, build: Callable[[], T]) -> T:
    """The value for ``key`` from a small process-wide LRU memo, ``build()`` on a miss.

    ``key`` must determine the value: for a transform's frozen kernels it holds a token the
    transform made at construction, plus the lengths, device and dtype the value depends on."""
    with _MEMO_LOCK:
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return cast(T, _MEMO[key])
    value = build()
    with _MEMO_LOCK:
        _MEMO[key] = value
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    return value


def fold_plan(key: Hashable, build: Callable[[], FoldPlan]) -> FoldPlan:
    """The fold plan for ``key`` (the kernel bank's token, padded length, hop, device, dtype)
    from :func:`memo`."""
    return memo(("fold plan", key), build)


def memo_plans(bank: Hashable) -> list[FoldPlan]:
    """The plans in the memo whose key starts with ``bank`` (e.g. to count their memory)."""
    with _MEMO_LOCK:
        return [
            value
            for key, value in _MEMO.items()
            if isinstance(value, FoldPlan) and isinstance(key, tuple) and key[1][0] == bank
        ]
