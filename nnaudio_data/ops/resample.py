"""Band-limited resampling by a windowed-sinc polyphase filter (a strided convolution)."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from nnaudio_data._checks import check_positive_float, check_positive_int, check_range
from nnaudio_data._transform import Transform
from nnaudio_data.ops._common import check_batched

__all__ = ["CHUNK_BYTES", "MAX_RESAMPLE_TERMS", "Resample", "polyphase", "sinc_resample_kernel"]

#: The largest ``up * down`` of a reduced rate ratio :class:`Resample` accepts. The polyphase
#: filter holds about ``up * (down + 35)`` coefficients: every pair of the usual rates (8 kHz to
#: 192 kHz, 11025 -> 32000 being the largest at 1280 * 441) stays under 600,000, while a rate
#: from a corrupt or crafted header (44101 -> 22050 Hz: 22050 * 44101) would need gigabytes (and
#: a worker building it would be killed, whatever the fault policy).
MAX_RESAMPLE_TERMS = 2**20

#: The bytes of strided windows :func:`polyphase` copies at a time (the matrix product needs
#: them contiguous: ``taps / down`` times the input's size in one go, 700 MB for a 10-minute
#: 8 kHz clip upsampled to 16 kHz). Under glibc's 32 MiB threshold, so the block is reused
#: without page faults; not much smaller, since every chunk is a few parallel regions, which
#: cost milliseconds each on a loaded machine (4 MiB made a batch of 32 rows 3-6x slower).
CHUNK_BYTES = 16 << 20


@functools.lru_cache(maxsize=16)
def _kernel(up: int, down: int, width: int, rolloff: float, beta: float) -> tuple[np.ndarray, int]:
    cutoff = 0.5 * rolloff * min(1.0, up / down)  # cycles per input sample
    half = width / (2.0 * cutoff)  # half-length of the filter in input samples
    pad = math.ceil(half)
    taps = np.arange(-pad, down + pad + 1, dtype=np.float64)  # offsets from k * down
    delays = np.arange(up, dtype=np.float64) * down / up  # phase p sits at k * down + p*down/up
    t = taps[None, :] - delays[:, None]
    inside = np.abs(t) <= half
    window = np.where(inside, np.i0(beta * np.sqrt(np.clip(1 - (t / half) ** 2, 0, 1))), 0.0)
    kernel = np.sinc(2 * cutoff * t) * window
    kernel /= kernel.sum(axis=1, keepdims=True)  # unit gain at DC for every phase
    kernel.setflags(write=False)
    return kernel, pad


def sinc_resample_kernel(
    up: int, down: int, width: int = 16, rolloff: float = 0.945, beta: float = 8.6
) -> tuple[np.ndarray, int]:
    """The polyphase kernel that resamples by ``up / down`` (coprime), and its left padding.

    Row ``p`` of the ``(up, taps)`` float64 kernel computes output samples ``k * up + p`` from
    input samples ``k * down - pad ... k * down - pad + taps - 1``: a Kaiser-windowed
    (``beta``) ideal low-pass ``2 fc sinc(2 fc t)`` with cut-off ``fc = rolloff * min(1, up/down)
    / 2`` cycles per input sample and ``width`` zero crossings on each side, evaluated at the
    fractional delay ``p * down / up`` of that output sample, each row scaled to unit gain at DC
    (so no phase is louder than another). Cached.
    """
    return _kernel(up, down, width, rolloff, beta)


def _chunk_frames(rows: torch.Tensor, taps: int) -> int:
    """Output frames per chunk so that the windows copied stay within :data:`CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // (rows.shape[0] * taps * rows.element_size()))


def polyphase(
    rows: torch.Tensor, kernel: torch.Tensor, down: int, frames: int, chunk: int
) -> torch.Tensor:
    """``conv1d(rows, kernel, stride=down)`` over ``frames`` output frames, as strided windows
    times the kernel matrix (the same sums as the convolution, 1.5x faster on the CPU: one matrix
    product), ``chunk`` frames at a time so that the windows copied stay small.

    Args:
        rows: ``(rows, n)`` signals, already padded so that ``frames`` windows fit.
        kernel: ``(up, taps)`` polyphase filters.
        down: the stride.
        frames: output frames (each ``up`` samples, the phases).
        chunk: frames per matrix product (``>= frames``: all at once).

    Returns:
        ``(rows, frames, up)``: output sample ``k * up + p`` of a row at ``[k, p]``.
    """
    windows = rows.unfold(-1, kernel.shape[-1], down)  # (rows, >= frames, taps), a view
    if chunk >= frames:
        return windows[:, :frames] @ kernel.T
    out = rows.new_empty(rows.shape[0], frames, kernel.shape[0])
    for start in range(0, frames, chunk):
        stop = min(start + chunk, frames)
        out[:, start:stop] = windows[:, start:stop] @ kernel.T
    return out


class Resample(Transform):
    """Resample from ``orig_sr`` to ``new_sr`` with a band-limited (windowed-sinc) filter.

    The ratio is reduced to coprime ``up / down``; the ``up`` polyphase filters are the output
    channels of one convolution with stride ``down`` (see :func:`sinc_resample_kernel`; computed
    by :func:`polyphase` as strided windows times the ``(up, taps)`` kernel matrix,
    :data:`CHUNK_BYTES` of windows at a time), the phases are interleaved, and the output is cut to
    ``ceil(n * new_sr / orig_sr)`` samples (``scipy.signal.resample_poly``'s length). Samples
    outside the signal count as zeros, so a zero-padded item's valid part comes out the same as
    when it is resampled on its own.

    Args:
        orig_sr: the input sample rate (Hz, integer).
        new_sr: the output sample rate.
        lowpass_filter_width: zero crossings of the sinc on each side (longer: sharper cut-off,
            more compute).
        rolloff: the cut-off as a fraction of the lower Nyquist frequency (below 1 leaves room for
            the transition band, so little aliases).
        beta: the Kaiser window's shape (8.6: about 90 dB stop-band attenuation;
            ``scipy.signal.resample_poly`` uses 5.0 with 10 zero crossings and rolloff 1.0).

    Shape:
        - Input: ``(..., time)`` waveforms, e.g. ``(batch, time)`` or ``(batch, channels, time)``.
        - Output: ``(..., ceil(time * new_sr / orig_sr))``; valid lengths map the same way.

    Raises:
        ValueError: a rate is not a positive integer, or the ratio reduces to ``up / down`` with
            ``up * down`` above :data:`MAX_RESAMPLE_TERMS` (e.g. 44101 Hz to 22050 Hz): its
            filter would need gigabytes (an odd rate often comes from a corrupt header).
    """

    kernel: torch.Tensor

    def __init__(
        self,
        orig_sr: int,
        new_sr: int,
        lowpass_filter_width: int = 16,
        rolloff: float = 0.945,
        beta: float = 8.6,
    ) -> None:
        super().__init__()
        self.orig_sr = check_positive_int("orig_sr", orig_sr)
        self.new_sr = check_positive_int("new_sr", new_sr)
        self.lowpass_filter_width = check_positive_int("lowpass_filter_width", lowpass_filter_width)
        self.rolloff = check_range("rolloff", rolloff, 0.0, 1.0)
        if self.rolloff == 0:
            raise ValueError(f"rolloff must be > 0, got {rolloff!r}")
        self.beta = check_positive_float("beta", beta, allow_zero=True)
        g = math.gcd(self.orig_sr, self.new_sr)
        self.up, self.down = self.new_sr // g, self.orig_sr // g
        if self.up * self.down > MAX_RESAMPLE_TERMS:
            raise ValueError(
                f"cannot resample {self.orig_sr} Hz to {self.new_sr} Hz (orig_sr={self.orig_sr}, "
                f"new_sr={self.new_sr}): the ratio reduces to {self.up}/{self.down}, whose "
                f"polyphase filter would need about {self.up * self.down:.2e} coefficients (more "
                f"than MAX_RESAMPLE_TERMS = {MAX_RESAMPLE_TERMS}); an unusual rate often means a "
                "corrupt header"
            )
        kernel, self.pad = sinc_resample_kernel(
            self.up, self.down, self.lowpass_filter_width, self.rolloff, self.beta
        )
        self.register_buffer(
            "kernel", torch.from_numpy(kernel.astype(np.float32)).unsqueeze(1), persistent=False
        )

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        lengths = torch.as_tensor(lengths)
        return torch.div(lengths * self.up + self.down - 1, self.down, rounding_mode="floor")

    def output_sample_rate(self, sample_rate: int) -> int:
        """``new_sr``; a ``ValueError`` if ``sample_rate`` is not ``orig_sr``."""
        if int(sample_rate) != self.orig_sr:
            raise ValueError(
                f"Resample expects sample_rate {self.orig_sr} (orig_sr), got {sample_rate}"
            )
        return self.new_sr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_batched(x, "x", 1, "(..., time)")
        if self.up == self.down:
            return x
        lead, n = x.shape[:-1], x.shape[-1]
        rows = x.reshape(-1, n)
        n_out = -(-n * self.up // self.down)
        frames = -(-n_out // self.up)
        taps = self.kernel.shape[-1]
        right = max(0, (frames - 1) * self.down + taps - self.pad - n)
        rows = F.pad(rows, (self.pad, right))
        kernel = self.kernel[:, 0].to(dtype=x.dtype)  # (up, taps)
        y = polyphase(rows, kernel, self.down, frames, _chunk_frames(rows, taps))
        return y.reshape(rows.shape[0], -1)[:, :n_out].reshape(*lead, n_out)

    def extra_repr(self) -> str:
        return (
            f"orig_sr={self.orig_sr}, new_sr={self.new_sr}, "
            f"lowpass_filter_width={self.lowpass_filter_width}, rolloff={self.rolloff}, "
            f"beta={self.beta}"
        )
