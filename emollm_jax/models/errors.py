"""The error a bad config raises; a leaf, so the model modules can raise it without importing
``config.py`` (which imports their registries)."""


class ConfigError(ValueError):
    """A config field is missing, unknown or holds a bad value; the message names the field."""
