"""Moved to :mod:`vaekit.priors.normaliser` in vaekit 0.3; this alias keeps old imports working (see CHANGELOG)."""

from .priors.normaliser import MIN_ESS, LogNormaliser, estimate_log_normaliser  # noqa: F401
