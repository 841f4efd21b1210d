"""Level ops: gain in dB, amplitude / power to dB with a per-item ``top_db``, and log."""

from __future__ import annotations

import torch

from nnaudio_data._checks import check_choice, check_positive_float, check_range
from nnaudio_data._transform import Transform
from nnaudio_data.functional.level import log, power_to_db
from nnaudio_data.ops._common import check_batched, valid_lengths

__all__ = ["AmplitudeToDB", "Gain", "Log"]


class Gain(Transform):
    """Multiply by ``10 ** (gain_db / 20)``.

    Args:
        gain_db: the gain in decibels (negative attenuates).

    Shape:
        - Input: any tensor (waveforms or magnitude spectrograms).
        - Output: the same shape. Valid lengths are unchanged.
    """

    def __init__(self, gain_db: float = 0.0) -> None:
        super().__init__()
        self.gain_db = check_range("gain_db", gain_db)
        self.factor = 10.0 ** (self.gain_db / 20.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_batched(x, "x", 1, "a floating tensor")
        return x * self.factor

    def extra_repr(self) -> str:
        return f"gain_db={self.gain_db}"


class AmplitudeToDB(Transform):
    """Power or magnitude spectrogram to decibels, as ``librosa.power_to_db`` /
    ``amplitude_to_db`` applied to each item on its own.

    ``stype="power"``: ``10 * log10(max(amin, S)) - 10 * log10(max(amin, ref))``;
    ``stype="magnitude"``: the same on ``S ** 2`` with ``ref ** 2`` and ``amin ** 2`` (librosa's
    definition, i.e. ``20 * log10``). With ``top_db`` every value is raised to at least the item's
    peak minus ``top_db``, the peak taken over the item's valid frames only.

    Args:
        stype: ``"power"`` or ``"magnitude"``.
        ref: a positive reference value, or ``"max"`` for each item's peak over its valid frames
            (librosa's ``ref=np.max``).
        amin: the floor before the log; ``None`` picks librosa's default (``1e-10`` for power,
            ``1e-5`` for magnitude).
        top_db: the dynamic range kept below each item's peak, or ``None`` (or ``inf``) for no
            limit.

    Shape:
        - Input: ``(batch, freq, frames)`` or ``(batch, channels, freq, frames)``, non-negative;
          ``forward(x, lengths)`` takes the valid frames per item ``(batch,)``.
        - Output: the same shape. Valid lengths are unchanged.
    """

    def __init__(
        self,
        stype: str = "power",
        ref: float | str = 1.0,
        amin: float | None = None,
        top_db: float | None = 80.0,
    ) -> None:
        super().__init__()
        self.stype = check_choice("stype", stype, ["power", "magnitude"])
        if isinstance(ref, str):
            self.ref: float | str = check_choice("ref", ref, ["max"])
        else:
            self.ref = check_positive_float("ref", ref)
        if amin is None:
            amin = 1e-10 if stype == "power" else 1e-5
        self.amin = check_positive_float("amin", amin)
        # top_db=inf (what a TOML recipe can say for "none") keeps the whole range
        no_floor = top_db is None or top_db == float("inf")
        self.top_db = None if no_floor else check_positive_float("top_db", top_db)
        self.multiplier = 10.0 if stype == "power" else 20.0

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        check_batched(x, "x", 2, "(batch, freq, frames) or (batch, channels, freq, frames)")
        # 20*log10(max(amin, |S|)) == 10*log10(max(amin**2, S**2)) for the magnitude case.
        return power_to_db(
            x,
            multiplier=self.multiplier,
            ref=self.ref,
            amin=self.amin,
            top_db=self.top_db,
            lengths=valid_lengths(lengths, x),
        )

    def extra_repr(self) -> str:
        return f"stype={self.stype!r}, ref={self.ref!r}, amin={self.amin}, top_db={self.top_db}"


class Log(Transform):
    """Natural log with an offset: ``log(x + eps)``.

    Args:
        eps: the positive offset that keeps silence finite.

    Shape:
        - Input: any non-negative tensor (typically a mel spectrogram).
        - Output: the same shape. Valid lengths are unchanged.
    """

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = check_positive_float("eps", eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_batched(x, "x", 1, "a floating tensor")
        return log(x, offset=self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"
