"""The base of the filterbank spectrograms (``MelSpectrogram``, ``Gammatonegram``):
``basis @ |STFT(x)| ** power``, the STFT held as ``self.stft`` and the basis under the name the
subclass gives it (nnAudio's ``mel_basis`` / ``gammatone_basis``, so their state_dicts load)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from nnaudio_data._checks import check_float_dtype, check_positive_float
from nnaudio_data._shapes import (
    flatten_waveform,
    frame_count,
    frame_lengths,
    row_lengths_of,
    unflatten,
)
from nnaudio_data._transform import Transform, nnaudio_keys
from nnaudio_data.features._common import check_bool, check_not_transposed, register_kernel
from nnaudio_data.features.stft import STFT
from nnaudio_data.kernels.windows import WindowSpec

__all__: list[str] = []

#: keyword arguments a filterbank spectrogram passes on to its STFT (as nnAudio's ``**kwargs``)
_STFT_KWARGS = frozenset({"iSTFT"})


class _FilterbankSpectrogram(Transform):
    """``basis @ |STFT(x)| ** power``; subclasses build ``self.stft`` (:meth:`_build_stft`),
    then call :meth:`_set_basis`. Not registered for configs (no constructor of its own)."""

    output_kind = "spectrogram"
    time_dim = -1
    #: the attribute name of the filterbank (``(bands, n_fft // 2 + 1)``)
    basis_name: ClassVar[str]
    stft: STFT
    power: float

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.nnaudio_buffers = nnaudio_keys(cls.basis_name)

    def _build_stft(
        self,
        *,
        sr: float,
        n_fft: int,
        win_length: int | None,
        hop_length: int,
        window: WindowSpec,
        center: bool,
        pad_mode: str,
        power: float,
        trainable_STFT: bool,
        verbose: bool,
        dtype: torch.dtype | str,
        backend: str,
        kwargs: dict[str, Any],
    ) -> torch.dtype:
        """Check the STFT part's arguments, build ``self.stft`` (magnitude, linear frequency)
        and copy its framing to ``self`` (nnAudio's attribute names); the kernels' dtype."""
        unknown = sorted(set(kwargs) - _STFT_KWARGS)
        if unknown:
            raise ValueError(
                f"unexpected keyword argument(s) {unknown} for {type(self).__name__}; "
                f"extra keywords accepted for the STFT: {sorted(_STFT_KWARGS)}"
            )
        self.power = check_positive_float("power", power)
        self.trainable_STFT = check_bool("trainable_STFT", trainable_STFT)
        kernel_dtype = check_float_dtype("dtype", dtype)
        self.stft = STFT(
            n_fft=n_fft,
            win_length=win_length,
            freq_bins=None,
            hop_length=hop_length,
            window=window,
            freq_scale="no",
            center=center,
            pad_mode=pad_mode,
            sr=sr,
            trainable=self.trainable_STFT,
            output_format="Magnitude",
            verbose=verbose,
            dtype=kernel_dtype,
            backend=backend,
            **kwargs,
        )
        self.sr = self.stft.sr
        self.n_fft, self.hop_length = self.stft.n_fft, self.stft.hop_length
        self.stride, self.center, self.pad_mode = (
            self.hop_length,
            self.stft.center,
            self.stft.pad_mode,
        )
        return kernel_dtype

    def _set_basis(self, basis: torch.Tensor, trainable: bool) -> None:
        register_kernel(self, self.basis_name, basis, trainable)

    @property
    def basis(self) -> torch.Tensor:
        """The filterbank, ``(bands, n_fft // 2 + 1)``."""
        out: torch.Tensor = getattr(self, self.basis_name)
        return out

    def num_frames(self, n_samples: int) -> int:
        """Frames for a signal of ``n_samples`` samples."""
        return frame_count(n_samples, self.stft.n_fft, self.stft.hop_length, self.stft.center)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid frames for valid sample ``lengths``."""
        return frame_lengths(lengths, self.stft.n_fft, self.stft.hop_length, self.stft.center)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The filterbank spectrogram of ``x``; ``lengths`` ``(batch,)`` valid samples per item
        (each item then padded at its own end, as alone)."""
        check_not_transposed(x, self.stft.n_fft)
        rows, lead = flatten_waveform(x)
        basis = self.basis
        rows = rows.to(torch.promote_types(rows.dtype, basis.dtype))
        row_lengths = row_lengths_of(lengths, lead, rows)
        return unflatten(self.stft.power_spectrogram(rows, self.power, row_lengths, basis), lead)
