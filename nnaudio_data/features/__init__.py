"""Spectrogram transforms with nnAudio 0.3.4's names and signatures (``from nnaudio_data.features
import STFT`` replaces ``from nnAudio.features import STFT``)."""

__all__: list[str] = []
