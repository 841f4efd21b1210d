"""``iCQT``: the inverse of ``CQT1992v2`` by preconditioned conjugate gradients (the solver)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from nnaudio_data._checks import check_choice, check_non_negative_int
from nnaudio_data._transform import Transform
from nnaudio_data.features._cqt_common import (
    BACKENDS,
    NORMALIZATION_TYPES,
    _conv_response,
    normalization_scale,
)
from nnaudio_data.features.cqt1992 import CQT1992v2
from nnaudio_data.functional._folded import FoldPlan, adjoint_fold_plan, apply_fold_plan, memo
from nnaudio_data.functional._pool import run_shared

__all__ = ["iCQT"]


class iCQT(Transform):
    """Inverse of :class:`CQT1992v2`: the least-squares waveform whose CQT is closest to the given
    complex CQT, by preconditioned conjugate gradients on the normal equations.

    The start is the kernels' adjoint divided, per frequency, by the filter bank's power
    ``sum_k |K_k(f)|^2 / hop`` (the frequency-domain diagonal that ``librosa.icqt`` also divides
    by); each of ``n_iter`` iterations then costs one forward and one adjoint pass and lowers the
    error further. With frozen wavelets both passes run in the FFT domain (the forward CQT's
    folded spectrum and its exact transpose, :func:`~nnaudio_data.functional._folded.
    adjoint_fold_plan`), so an iteration costs about two forward CQTs; trainable wavelets (or
    ``backend='conv'``) use the conv kernels and their transposed convolution. Content outside
    the bank's band (below ``fmin``, above the top bin) cannot come back.

    Args:
        sr, hop_length, fmin, fmax, n_bins, bins_per_octave, filter_scale, norm, window, q_mode,
        dtype: those of the :class:`CQT1992v2` whose output is inverted (``center=True``).
        n_iter: conjugate-gradient iterations (0: the diagonal inverse only).
        normalization_type: the one the CQT was computed with.
        trainable: hold the wavelets as parameters.
        backend: ``'auto'`` (the FFT-domain passes for frozen wavelets), ``'conv'`` or ``'fft'``.

    Shape:
        - Input: ``(batch, n_bins, frames, 2)`` (``output_format='Complex'``) or complex
          ``(batch, n_bins, frames)``; ``(batch, channels, ...)`` too.
        - Output: ``(batch, length)`` with ``length = (frames - 1) * hop_length`` unless given.
    """

    output_kind = "waveform"

    def __init__(
        self,
        sr: float = 22050,
        hop_length: int = 512,
        fmin: float = 32.70,
        fmax: float | None = None,
        n_bins: int = 84,
        bins_per_octave: int = 12,
        filter_scale: float = 1,
        norm: float | None = 1,
        window: Any = "hann",
        n_iter: int = 16,
        normalization_type: str = "librosa",
        trainable: bool = False,
        *,
        q_mode: str = "nnaudio",
        dtype: Any = "float32",
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.n_iter = check_non_negative_int("n_iter", n_iter)
        self.normalization_type = check_choice(
            "normalization_type", normalization_type, NORMALIZATION_TYPES
        )
        self.cqt = CQT1992v2(
            sr,
            hop_length,
            fmin,
            fmax,
            n_bins,
            bins_per_octave,
            filter_scale,
            norm,
            window,
            trainable=trainable,
            q_mode=q_mode,
            backend=check_choice("backend", backend, BACKENDS),
            dtype=dtype,
            output_format="Complex",
        )
        self.hop_length = self.cqt.hop_length
        self.time_dim = -1

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Samples for ``lengths`` frames: ``(frames - 1) * hop_length``."""
        return (torch.as_tensor(lengths) - 1).clamp_min(0) * self.hop_length

    def _plan(self, n_pad: int, like: torch.Tensor) -> FoldPlan | None:
        """The folded-spectrum plan for padded signals of ``n_pad`` samples on ``like``'s device
        and dtype (frozen wavelets), else None (the conv kernels)."""
        if not self.cqt.uses_fft_path:
            return None
        return self.cqt.fold_plan(n_pad, like.device, like.dtype)

    def _forward_op(self, xp: torch.Tensor) -> torch.Tensor:
        """The CQT's real-linear operator on the padded signal: ``(rows, 2 * bins, frames)``."""
        plan = self._plan(xp.shape[-1], xp)
        if plan is not None:
            return torch.cat(apply_fold_plan(xp, plan), 1)
        frames = 1 + (xp.shape[-1] - self.cqt.kernel_width) // self.hop_length
        re, im = _conv_response(
            xp[:, self.cqt._kernel_offset :],
            self.cqt.cqt_kernels_real,  # type: ignore[arg-type]
            self.cqt.cqt_kernels_imag,  # type: ignore[arg-type]
            self.hop_length,
        )
        return torch.cat((re[..., :frames], im[..., :frames]), 1)

    def _adjoint(self, c: torch.Tensor) -> torch.Tensor:
        """The transpose of :meth:`_forward_op`: ``(rows, (frames - 1) * hop + kernel_width)``."""
        n_pad = (c.shape[-1] - 1) * self.hop_length + self.cqt.kernel_width
        plan = self._plan(n_pad, c)
        if plan is not None:
            k = c.shape[1] // 2
            return adjoint_fold_plan(c[:, :k], c[:, k:], plan, n_pad)
        k = c.shape[1] // 2
        real_k: torch.Tensor = self.cqt.cqt_kernels_real  # type: ignore[assignment]
        imag_k: torch.Tensor = self.cqt.cqt_kernels_imag  # type: ignore[assignment]
        weight = torch.cat((real_k, imag_k)).to(c.dtype)
        signed = torch.cat((c[:, :k], -c[:, k:]), 1)
        y = F.conv_transpose1d(signed, weight, stride=self.hop_length)[:, 0]
        n_pad = (c.shape[-1] - 1) * self.hop_length + self.cqt.kernel_width
        offset = self.cqt._kernel_offset
        return F.pad(y, (offset, n_pad - offset - y.shape[-1]))

    def _preconditioner(self, n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The regularised inverse of the bank's power per frequency (memoised for frozen
        wavelets: a pure function of them and ``n``)."""
        if self.cqt.trainable:
            return self._build_preconditioner(n, device, dtype)
        key = ("icqt preconditioner", self.cqt._bank, n, device, dtype)
        return memo(key, lambda: self._build_preconditioner(n, device, dtype))

    def _build_preconditioner(
        self, n: int, device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        real_k: torch.Tensor = self.cqt.cqt_kernels_real  # type: ignore[assignment]
        imag_k: torch.Tensor = self.cqt.cqt_kernels_imag  # type: ignore[assignment]
        k = torch.complex(real_k[:, 0].detach(), imag_k[:, 0].detach()).to(device)
        # (the trimmed frozen kernels' offset only shifts the phase: the power is the same)
        k = k.to(torch.complex128 if dtype == torch.float64 else torch.complex64)
        spec = torch.fft.fft(k, n=n)
        power = spec.abs().pow(2)
        # a real signal sees each wavelet at f and -f
        power = 0.5 * (power + power.roll(-1, -1).flip(-1)).sum(0)[: n // 2 + 1]
        power = power / self.hop_length
        # regularised: where the bank is weak the diagonal is a poor inverse (aliasing of
        # the decimated bins); 0.1 of the peak converged fastest on tones and noise
        return 1.0 / (power + 0.1 * power.max())

    def _solve(self, c: torch.Tensor, n_pad: int, precond: torch.Tensor) -> torch.Tensor:
        """The padded waveforms ``(rows, n_pad)`` of responses ``c`` ``(rows, 2 * bins, frames)``:
        the preconditioned start, then ``n_iter`` conjugate-gradient steps (each row its own)."""

        def apply_p(r: torch.Tensor) -> torch.Tensor:
            return torch.fft.irfft(torch.fft.rfft(r, n=n_pad) * precond, n=n_pad)

        def normal(v: torch.Tensor) -> torch.Tensor:
            return self._adjoint(self._forward_op(v))

        b = self._adjoint(c)
        xp = apply_p(b)
        if self.n_iter:
            r = b - normal(xp)
            z = apply_p(r)
            p = z
            rz = (r * z).sum(-1, keepdim=True)
            for _ in range(self.n_iter):
                q = normal(p)
                alpha = rz / (p * q).sum(-1, keepdim=True).clamp_min(1e-30)
                xp = xp + alpha * p
                r = r - alpha * q
                z = apply_p(r)
                rz_new = (r * z).sum(-1, keepdim=True)
                p = z + rz_new / rz.clamp_min(1e-30) * p
                rz = rz_new
        return xp

    def forward(self, x: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Waveforms ``(batch, length)`` from complex CQTs (see the class docstring)."""
        if x.is_complex():
            x = torch.view_as_real(x)
        if x.ndim not in (4, 5) or x.shape[-1] != 2 or x.shape[-3] != self.cqt.n_bins:
            raise ValueError(
                f"x has shape {tuple(x.shape)}; expected (batch, {self.cqt.n_bins}, frames, 2) "
                "or (batch, channels, ...) (a CQT1992v2 output with output_format='Complex')"
            )
        lead = x.shape[:-3]
        x = x.reshape(-1, *x.shape[-3:])
        scale = normalization_scale(self.cqt.lengths, self.normalization_type, x.dtype)
        c = x if scale is None else x / scale.unsqueeze(-1)
        c = torch.cat((c[..., 0], c[..., 1]), 1)  # (rows, 2 * bins, frames)
        frames = c.shape[-1]
        n = (frames - 1) * self.hop_length if length is None else int(length)
        n_pad = (frames - 1) * self.hop_length + self.cqt.kernel_width
        precond = self._preconditioner(n_pad, x.device, x.dtype)

        # rows are independent problems: they are shared out to single-threaded workers (each
        # iteration is a few hundred small operations, which as OpenMP regions on a busy 2-core
        # machine cost 2-20x their work)
        step = -(-c.shape[0] // max(1, torch.get_num_threads()))
        parts: dict[int, torch.Tensor] = {}

        def work(chunks: Iterator[int]) -> None:
            for i in chunks:
                parts[i] = self._solve(c[i : i + step], n_pad, precond)

        run_shared(range(0, c.shape[0], step), work, -(-c.shape[0] // step))
        xp = torch.cat([parts[i] for i in sorted(parts)]) if len(parts) > 1 else parts[0]
        half = self.cqt.kernel_width // 2
        out = xp[:, half : half + n]
        if out.shape[-1] < n:
            out = F.pad(out, (0, n - out.shape[-1]))
        return out.reshape(*lead, n)
