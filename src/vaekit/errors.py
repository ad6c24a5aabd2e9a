"""Exceptions with messages that say what went wrong and what to do about it."""

from __future__ import annotations


class VaekitError(Exception):
    """Base class of every error vaekit raises on purpose; the CLI prints its message as one line."""


class DataError(VaekitError, ValueError):
    """The data are unusable as given (NaN, wrong shape, wrong type, non-binary for Bernoulli, ...)."""


class DatasetNotFoundError(VaekitError, FileNotFoundError):
    """A named dataset's file is not in the data directory or the cache."""


class ConfigError(VaekitError, ValueError):
    """A hyper-parameter or option is out of range."""


class CheckpointError(VaekitError):
    """A checkpoint is missing, truncated, foreign, or from an incompatible format."""
