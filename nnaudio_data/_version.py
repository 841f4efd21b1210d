"""The package version, defined once (read by pyproject.toml and ``nnaudio_data.__version__``)."""

__version__ = "0.1.0"
