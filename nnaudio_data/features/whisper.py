"""``WhisperLogMel``: Whisper's log-mel front end (openai-whisper's ``log_mel_spectrogram`` of
``pad_or_trim(x)``; transformers' ``WhisperFeatureExtractor``), batched and length-aware.

Per clip: zero-pad or trim to 30 s (``n_samples``), STFT with n_fft 400 (not a power of two),
hop 160, periodic hann, centred with reflection; drop the last frame; power; librosa's Slaney mel
(area-normalised, 0-8 kHz); ``log10(max(x, 1e-10))``; ``max(x, peak - 8)`` with the peak over
*the clip's own* frames (openai's batched call takes one peak over the whole batch); ``(x + 4) / 4``.

Frames that lie wholly in the 30 s zero padding are ``log10(1e-10) = -10`` before the clamp, a
known value: they are filled, not computed, so padding a 10 s clip to 30 s costs almost nothing.
"""

from __future__ import annotations

import torch

from nnaudio_data._checks import check_float_dtype, check_positive_int
from nnaudio_data._shapes import check_lengths, flatten_waveform, row_lengths_of, unflatten
from nnaudio_data._transform import Transform
from nnaudio_data.features._common import check_bool, full_precision, register_kernel
from nnaudio_data.features.stft import STFT
from nnaudio_data.functional._memory import empty
from nnaudio_data.functional.level import (
    dynamic_range_clamp,
    fill_past_end,
    log,
    masked_amax,
    writable,
)
from nnaudio_data.functional.normalization import normalize
from nnaudio_data.kernels.mel import mel_filterbank

__all__ = ["WhisperLogMel"]

_FLOOR = 1e-10
_DYNAMIC_RANGE = 8.0


class WhisperLogMel(Transform):
    """Whisper's log-mel spectrogram.

    Args:
        n_mels (int > 0): 80 (Whisper up to large-v2) or 128 (large-v3).
        pad (bool): Pad or trim each clip to ``n_samples`` first (Whisper's model input,
            ``n_samples // hop`` frames); ``False``: the clip's own ``n // hop`` frames
            (``log_mel_spectrogram(x)``).
        n_samples (int > 0): Samples of the padded input, 480000 (30 s at 16 kHz).
        sr, n_fft, hop_length (int): 16000, 400, 160.
        trainable_mel, trainable_STFT (bool): The mel filterbank (``mel_basis``) / the STFT kernels
            (``stft.wcos``, ``stft.wsin``) as ``nn.Parameter``, initialised to Whisper's.
        dtype (torch.dtype or str): Kernel dtype.

    Shape:
        - Input: ``(time,)``, ``(batch, time)``, ``(batch, 1, time)`` or ``(batch, channels, time)``;
          ``forward(x, lengths)`` takes the valid samples per item.
        - Output: ``(batch, n_mels, frames)``, ``frames = n_samples // hop_length`` with ``pad``,
          else ``time // hop_length``. :meth:`output_lengths` gives the frames that hold the clip
          (``ceil(n / hop)``, at most ``frames``, as transformers' attention mask, with ``pad``;
          ``n // hop`` without).
    """

    output_kind = "spectrogram"
    time_dim = -1
    mel_basis: torch.Tensor

    def __init__(
        self,
        n_mels: int = 80,
        pad: bool = True,
        n_samples: int = 480000,
        sr: int = 16000,
        n_fft: int = 400,
        hop_length: int = 160,
        trainable_mel: bool = False,
        trainable_STFT: bool = False,
        *,
        dtype: torch.dtype | str = torch.float32,
    ) -> None:
        super().__init__()
        self.n_mels = check_positive_int("n_mels", n_mels)
        self.pad = check_bool("pad", pad)
        self.n_samples = check_positive_int("n_samples", n_samples)
        self.sr = check_positive_int("sr", sr)
        self.trainable_mel = check_bool("trainable_mel", trainable_mel)
        kernel_dtype = check_float_dtype("dtype", dtype)
        self.stft = STFT(
            n_fft=n_fft,
            hop_length=hop_length,
            window="hann",
            center=True,
            pad_mode="reflect",
            sr=self.sr,
            trainable=check_bool("trainable_STFT", trainable_STFT),
            output_format="Magnitude",
            dtype=kernel_dtype,
        )
        self.n_fft, self.hop_length = self.stft.n_fft, self.stft.hop_length
        basis = mel_filterbank(self.sr, self.n_fft, self.n_mels, 0.0, None, False, 1)
        register_kernel(
            self, "mel_basis", torch.tensor(basis, dtype=kernel_dtype), self.trainable_mel
        )

    @property
    def frames(self) -> int:
        """Output frames with ``pad``: ``n_samples // hop_length`` (3000)."""
        return self.n_samples // self.hop_length

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames holding each clip of valid sample ``lengths`` (see the class docstring)."""
        lengths = check_lengths(lengths).to(torch.long)
        if self.pad:
            frames = torch.div(
                lengths + self.hop_length - 1, self.hop_length, rounding_mode="floor"
            )
            return frames.clamp(0, self.frames)
        return torch.div(lengths, self.hop_length, rounding_mode="floor")

    def _log_mel(
        self, rows: torch.Tensor, lengths: torch.Tensor | None, end_zeros: int = 0
    ) -> torch.Tensor:
        mel = self.stft.power_spectrogram(rows, 2.0, lengths, self.mel_basis, end_zeros)
        return log(mel, floor=_FLOOR, base=10, out=mel if writable(mel) else None)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Whisper's log-mel of ``x``; ``lengths`` ``(batch,)`` valid samples per item."""
        rows, lead = flatten_waveform(x)
        rows = rows.to(torch.promote_types(rows.dtype, self.mel_basis.dtype))
        row_lengths = row_lengths_of(lengths, lead, rows)
        with full_precision(rows.device):
            out = self._padded(rows, row_lengths) if self.pad else self._own(rows, row_lengths)
        return unflatten(out, lead)

    def _padded(self, rows: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        n, hop = self.n_samples, self.hop_length
        rows = rows[:, :n]
        time = rows.shape[-1]
        rows = _zero_tails(rows, lengths)
        if time + self.n_fft >= n:  # the clip reaches the end: Whisper's own computation
            return self._finish(self._log_mel(rows, None, n - time)[..., :-1])
        # frames from ceil((time + n_fft / 2) / hop) on see only zeros: their value is known
        computed = -(-(time + self.n_fft // 2) // hop)
        head = self._log_mel(rows, None, self.n_fft)[..., :computed]
        silence = float(torch.log10(torch.tensor(_FLOOR, dtype=head.dtype)))
        # the clip's peak over all its frames: the computed ones and the silent rest
        floor = masked_amax(head, None).clamp_min(silence) - _DYNAMIC_RANGE
        out = empty((*head.shape[:-1], self.frames), dtype=head.dtype, device=head.device)
        if writable(head):  # clamp and normalise straight into the output
            body = torch.maximum(head, floor, out=out[..., :computed])
            normalize(body, -4.0, 4.0, out=body)
        else:
            out[..., :computed] = normalize(torch.maximum(head, floor), -4.0, 4.0)
        out[..., computed:] = normalize(floor.clamp_min(silence), -4.0, 4.0)
        return out

    def _own(self, rows: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        log_mel = self._log_mel(rows, lengths)[..., :-1]
        valid = None if lengths is None else self.output_lengths(lengths)
        out = self._finish(log_mel, valid)
        if valid is not None:  # frames past a clip's end: the clip's floor
            floor = masked_amax(out, valid) - _DYNAMIC_RANGE / 4
            out = fill_past_end(out, valid, floor, out=out if writable(out) else None)
        return out

    def _finish(self, log_mel: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        clamped = dynamic_range_clamp(log_mel, _DYNAMIC_RANGE, valid)
        return normalize(clamped, -4.0, 4.0, out=clamped if writable(clamped) else None)

    def extra_repr(self) -> str:
        return (
            f"n_mels={self.n_mels}, pad={self.pad}, n_samples={self.n_samples}, "
            f"trainable_mel={self.trainable_mel}, trainable_STFT={self.stft.trainable}"
        )


def _zero_tails(rows: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """``rows`` with each row zero from its own length on (a clip never reads its neighbours'
    padding, whatever the batch holds there): ``rows`` itself when those tails are zero already
    (a collate's padding; reading them is cheaper than copying the batch), else a copy with the
    short rows' tails zeroed."""
    if lengths is None:
        return rows
    time = rows.shape[-1]
    tails = [(i, max(n, 0)) for i, n in enumerate(lengths.tolist()) if n < time]
    if not any(bool(rows[i, n:].any()) for i, n in tails):
        return rows
    rows = rows.clone()
    for i, n in tails:
        rows[i, n:] = 0
    return rows
