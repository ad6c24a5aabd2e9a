"""Moved to :mod:`vaekit.priors.avb` in vaekit 0.3; this alias keeps old imports working (see CHANGELOG)."""

from .priors.avb import AdversarialKL  # noqa: F401
