"""What every constant-Q transform shares: padding, normalisation, output format, frame rule, and
the FFT-domain ("folded spectrum") path for frozen kernels.

One implementation for the whole family (``CQT1992v2``, ``CQT2010v2``, ``CQT1992``, ``CQT2010``,
``VQT``): a class computes the complex response ``(rows, n_bins, frames)`` as a real and an
imaginary part (nnAudio's sign: ``sum_n x[t + n] * conj(kernel[n])``) and :class:`_ConstantQ`
does the rest.

The folded-spectrum path
------------------------
Bin ``k`` of a frozen CQT is the cross-correlation of the padded signal with wavelet ``k``, sampled
every ``hop`` samples. With ``N = M * hop`` at least the padded length, the correlation's DFT is
``X * conj(K_k)`` (``X`` the length-``N`` FFT of the signal), and keeping every ``hop``-th lag is,
in the frequency domain, summing the ``hop`` length-``M`` pieces of that product ("folding") and
taking one inverse FFT of length ``M``. ``K_k`` is a band-pass around the bin's frequency: only
the coefficients that hold all but ``tol**2`` of its energy are kept, so the work per bin is its
bandwidth, not the kernel width. Short (high) wavelets have wide spectra but few taps, so groups
of them (lengths within a factor of two) are applied in the time domain, each as one matrix product
with strided frames of the group's width; a cost model picks the path per group. Both paths are exact up to the truncation ``tol`` (3e-5 relative amplitude by default).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from nnaudio_data._checks import check_choice
from nnaudio_data._shapes import flatten_waveform, frame_lengths, unflatten
from nnaudio_data._transform import Transform
from nnaudio_data.features._common import PAD_MODES, center_pad

__all__ = [
    "BACKENDS",
    "NORMALIZATION_TYPES",
    "OUTPUT_FORMATS",
    "FoldPlan",
    "TimeGroup",
    "apply_fold_plan",
    "format_output",
    "make_fold_plan",
    "normalization_scale",
    "pad_signal",
]

OUTPUT_FORMATS = ("Magnitude", "Complex", "Phase")
NORMALIZATION_TYPES = ("librosa", "convolutional", "wrap")
BACKENDS = ("auto", "conv", "fft")


def pad_signal(x: torch.Tensor, left: int, right: int, pad_mode: str) -> torch.Tensor:
    """Pad the last axis of ``(rows, time)``; ``'reflect'`` works for any length (the reflection
    repeats, as ``numpy.pad(mode='reflect')``), so inputs shorter than the kernels still work."""
    check_choice("pad_mode", pad_mode, PAD_MODES)
    n = x.shape[-1]
    if n == 0:
        raise ValueError("input has 0 samples; a constant-Q transform needs at least one")
    if left == right and (pad_mode != "reflect" or n > left):
        return center_pad(x, left, pad_mode)
    if pad_mode == "constant":
        return F.pad(x, (left, right))
    idx = torch.arange(-left, n + right, device=x.device)
    if pad_mode == "reflect":
        period = max(2 * (n - 1), 1)
        idx = idx.remainder(period)
        idx = torch.where(idx >= n, period - idx, idx)
    elif pad_mode == "replicate":
        idx = idx.clamp(0, n - 1)
    else:  # circular
        idx = idx.remainder(n)
    return x[..., idx]


def normalization_scale(
    lengths: torch.Tensor, normalization_type: str, dtype: torch.dtype
) -> torch.Tensor | None:
    """Per-bin output scale: ``sqrt(lengths)`` (``'librosa'``), 2 (``'wrap'``: a unit sine gives 1
    in its bin with L1-normalised kernels) or none (``'convolutional'``)."""
    check_choice("normalization_type", normalization_type, NORMALIZATION_TYPES)
    if normalization_type == "librosa":
        return lengths.to(dtype).sqrt().view(-1, 1)
    if normalization_type == "wrap":
        return torch.full_like(lengths, 2.0, dtype=dtype).view(-1, 1)
    return None


def format_output(
    real: torch.Tensor, imag: torch.Tensor, output_format: str, eps: float = 0.0
) -> torch.Tensor:
    """``'Magnitude'`` ``(..., F, T)``; ``'Complex'`` and ``'Phase'`` (cos, sin of the phase)
    ``(..., F, T, 2)``. ``eps`` is added under the square root (nnAudio adds 1e-8 when trainable so
    that the gradient at zero is finite)."""
    check_choice("output_format", output_format, OUTPUT_FORMATS)
    if output_format == "Magnitude":
        power = real.pow(2) + imag.pow(2)
        return (power + eps).sqrt() if eps else power.sqrt()
    if output_format == "Complex":
        return torch.stack((real, imag), -1)
    phase = torch.atan2(imag, real)
    return torch.stack((phase.cos(), phase.sin()), -1)


def _smooth(n: int) -> int:
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
class FoldPlan:
    """Everything the folded-spectrum path needs for one padded length, device and dtype."""

    n_frames: int
    offset: int  # first column any wavelet touches
    n_cols: int
    hop: int
    order: torch.Tensor  # output position of [time-group bins..., folded bins...]
    groups: list[TimeGroup]
    gather: torch.Tensor | None  # (n_seg * n_cols,) indices into the extended spectrum
    ext_low: int  # mirrored bins prepended (negative frequencies)
    ext_high: int  # mirrored bins appended (above Nyquist)
    weights: torch.Tensor | None  # (n_seg, n_cols) complex
    owner: torch.Tensor | None  # (n_seg,) the folded bin each segment adds to
    n_fold: int


#: cost model, in units of one real multiply-add of a matrix product: one gathered, multiplied
#: and folded complex coefficient, and one frame sample copied out of the strided view
_FOLD_COST = 24.0
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
    n_cols = _smooth(-(-((n_frames - 1) * hop + width) // hop))
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
    gather = weights = owner = None
    ext_low = ext_high = 0
    if fold_bins:
        idx, wts, owners = [], [], []
        for row, k in enumerate(fold_bins):
            spec, peak, reach = supports[k]
            lo, hi = peak - reach, peak + reach + 1
            a0 = (lo // n_cols) * n_cols
            r = -(-(hi - a0) // n_cols)
            j = np.arange(a0, a0 + r * n_cols)
            w = np.where((j >= lo) & (j < hi), np.conj(spec[j % n]), 0.0)
            # zero weights outside the support: point them at bin 0
            idx.append(np.where(w != 0, j, 0))
            wts.append(w.reshape(r, n_cols))
            owners.append(np.full(r, row))
        j_all = np.concatenate(idx)
        # the rfft holds bins 0 .. n // 2: a support reaching below 0 Hz or above Nyquist reads
        # mirrored (conjugated) bins, appended to the spectrum once per call
        ext_low = int(max(0, -j_all.min()))
        ext_high = int(max(0, j_all.max() - n // 2))
        if ext_low >= n // 2 or ext_high >= n // 2:
            raise ValueError("a wavelet's spectrum is wider than the signal's: use backend='conv'")
        cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        gather = torch.as_tensor(j_all + ext_low, device=device)
        weights = torch.as_tensor(np.concatenate(wts), dtype=cdtype, device=device)
        owner = torch.as_tensor(np.concatenate(owners), device=device)
    return FoldPlan(
        n_frames=n_frames,
        offset=offset,
        n_cols=n_cols,
        hop=hop,
        order=order,
        groups=groups,
        gather=gather,
        ext_low=ext_low,
        ext_high=ext_high,
        weights=weights,
        owner=owner,
        n_fold=len(fold_bins),
    )


#: rows per chunk are chosen so that the largest temporary stays near this many bytes (big
#: temporaries cost page faults on every call; small ones stay in cache)
_CHUNK_BYTES = 4 << 20


def _apply_rows(xp: torch.Tensor, plan: FoldPlan) -> tuple[torch.Tensor, torch.Tensor]:
    rows = xp.shape[0]
    xp = xp[:, plan.offset :]

    parts_re, parts_im = [], []
    m = plan.n_frames
    for group in plan.groups:
        frames = xp[:, group.start :].unfold(-1, group.width, plan.hop)[:, :m]
        out = torch.matmul(frames, group.kernel).transpose(1, 2)
        half = out.shape[1] // 2
        parts_re.append(out[:, :half])
        parts_im.append(out[:, half:])
    if plan.gather is not None:
        assert plan.weights is not None and plan.owner is not None
        n = plan.n_cols * plan.hop
        spec = torch.fft.rfft(xp, n=n)
        if plan.ext_low or plan.ext_high:
            low = spec[:, 1 : plan.ext_low + 1].flip(1).conj()
            high = spec[:, n // 2 - plan.ext_high : n // 2].flip(1).conj()
            spec = torch.cat((low, spec, high), 1)
        prod = spec.index_select(1, plan.gather).view(rows, -1, plan.n_cols).mul_(plan.weights)
        del spec
        folded = prod.new_zeros(rows, plan.n_fold, plan.n_cols).index_add_(1, plan.owner, prod)
        del prod
        resp = torch.fft.ifft(folded, dim=-1)[..., :m]
        resp = resp / plan.hop
        parts_re.append(resp.real)
        parts_im.append(resp.imag)
    real = torch.cat(parts_re, 1) if len(parts_re) > 1 else parts_re[0]
    imag = torch.cat(parts_im, 1) if len(parts_im) > 1 else parts_im[0]
    return real, imag


def apply_fold_plan(xp: torch.Tensor, plan: FoldPlan) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary responses ``(rows, n_bins, frames)`` of padded ``xp`` ``(rows, n)``,
    computed a few rows at a time (see ``_CHUNK_BYTES``)."""
    per_row = (
        2
        * xp.element_size()
        * max(
            plan.n_cols * plan.hop,
            0 if plan.gather is None else plan.gather.numel(),
            max((plan.n_frames * g.width // 2 for g in plan.groups), default=0),
        )
    )
    step = max(1, _CHUNK_BYTES // per_row)
    if step >= xp.shape[0]:
        real, imag = _apply_rows(xp, plan)
    else:
        parts = [_apply_rows(xp[i : i + step], plan) for i in range(0, xp.shape[0], step)]
        real = torch.cat([p[0] for p in parts])
        imag = torch.cat([p[1] for p in parts])
    return real[:, plan.order], imag[:, plan.order]


class _ConstantQ(Transform):
    """Shared forward of the family: flatten, respond, normalise, format, unflatten.

    Subclasses set ``n_bins``, ``hop_length``, ``output_format``, ``trainable``, register a
    ``lengths`` buffer (for ``'librosa'`` normalisation) and implement :meth:`_response`,
    :meth:`_frame_width` and :meth:`_frame_center`.
    """

    _config_exclude: ClassVar[frozenset[str]] = frozenset({"verbose", "device"})
    lengths: torch.Tensor
    output_format: str
    trainable: bool
    hop_length: int

    def _init_format(self, output_format: str) -> None:
        self.output_format = check_choice("output_format", output_format, OUTPUT_FORMATS)
        #: the output's time axis: -2 for (..., F, T, 2) outputs, -1 for magnitudes
        self.time_dim = -1 if output_format == "Magnitude" else -2

    def _response(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _frame_width(self) -> int:
        """The ``n_fft`` of the frame rule ``1 + (n + 2 * (w // 2) - w) // hop``."""
        raise NotImplementedError

    def _frame_center(self) -> bool:
        return True

    def forward(
        self,
        x: torch.Tensor,
        output_format: str | None = None,
        normalization_type: str = "librosa",
    ) -> torch.Tensor:
        """Constant-Q transform of a batch of waveforms.

        Args:
            x: ``(time,)``, ``(batch, time)``, ``(batch, 1, time)`` or ``(batch, channels, time)``.
            output_format: overrides the constructor's ``'Magnitude'``, ``'Complex'`` or
                ``'Phase'`` for this call.
            normalization_type: ``'librosa'`` (times ``sqrt(length)`` of each wavelet, as
                ``librosa.cqt``), ``'convolutional'`` (the plain correlation with L1-normalised
                wavelets: a unit sine gives 0.5) or ``'wrap'`` (times 2: a unit sine gives 1).
        """
        fmt = self.output_format if output_format is None else output_format
        check_choice("output_format", fmt, OUTPUT_FORMATS)
        scale = normalization_scale(self.lengths, normalization_type, x.dtype)
        flat, lead = flatten_waveform(x)
        real, imag = self._response(flat)
        if scale is not None:
            real, imag = real * scale, imag * scale
        eps = 1e-8 if self.trainable else 0.0
        return unflatten(format_output(real, imag, fmt, eps), lead)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames for inputs of ``lengths`` samples: ``1 + n // hop_length`` (centred frames)."""
        return frame_lengths(
            torch.as_tensor(lengths), self._frame_width(), self.hop_length, self._frame_center()
        )


class _PlanCache:
    """A small LRU of fold plans, keyed by padded length, device and dtype."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self.plans: OrderedDict[Any, FoldPlan] = OrderedDict()

    def get(self, key: Any, build: Any) -> FoldPlan:
        plan = self.plans.get(key)
        if plan is None:
            plan = build()
            self.plans[key] = plan
            while len(self.plans) > self.size:
                self.plans.popitem(last=False)
        else:
            self.plans.move_to_end(key)
        return plan
