"""Transform recipes (TOML), installed as ``nnaudio_data.transforms``; see ``nnaudio_data.recipes``."""
