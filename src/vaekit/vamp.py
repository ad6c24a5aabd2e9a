"""Moved to :mod:`vaekit.priors.vamp` in vaekit 0.3; this alias keeps old imports working (see CHANGELOG)."""

from .priors.vamp import VampPrior  # noqa: F401
from .priors.mixture import DiagonalGaussianMixture  # noqa: F401
