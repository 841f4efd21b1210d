"""Bundled default data: a few short real recordings as FLAC files and WebDataset shards."""
