"""Analysis windows as tensors: scipy's names (periodic or symmetric), Kaldi's ``'povey'``,
placed centred in ``n_fft`` samples (librosa) or left-aligned (Kaldi, VGGish)."""

from __future__ import annotations

import torch

from nnaudio_data._checks import check_choice
from nnaudio_data.kernels.windows import WindowSpec, get_window, pad_center, pad_left

__all__ = ["PLACEMENTS", "window"]

PLACEMENTS = ("center", "left")


def window(
    spec: WindowSpec,
    win_length: int,
    n_fft: int | None = None,
    *,
    periodic: bool = True,
    placement: str = "center",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A ``win_length`` window zero-padded to ``n_fft`` samples.

    Args:
        spec: as :func:`nnaudio_data.kernels.windows.get_window` (``'hann'``, ``('kaiser', 8)``,
            ``'povey'``, an array, ...).
        win_length: samples of the window itself.
        n_fft: total length (``None``: ``win_length``).
        periodic: scipy's ``fftbins`` (librosa, torch.stft) or the symmetric form (Kaldi).
        placement: ``'center'`` (librosa: ``(n_fft - win_length) // 2`` zeros on the left) or
            ``'left'`` (Kaldi: the window first, zeros after).

    Shape:
        - Output: ``(n_fft,)``
    """
    check_choice("placement", placement, PLACEMENTS)
    w = get_window(spec, win_length, fftbins=periodic)
    size = win_length if n_fft is None else n_fft
    w = pad_center(w, size) if placement == "center" else pad_left(w, size)
    return torch.tensor(w, dtype=dtype, device=device)
