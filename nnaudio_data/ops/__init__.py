"""Batch transforms other than spectrograms: mono, resample, crop / pad, gain, dB, normalisation,
masking. Length-aware where the time axis changes."""

__all__: list[str] = []
