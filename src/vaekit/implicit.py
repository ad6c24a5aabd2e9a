"""Moved to :mod:`vaekit.priors.implicit` in vaekit 0.3; this alias keeps old imports working (see CHANGELOG)."""

from .priors.implicit import ANCESTRAL_MODES, TASK_WEIGHTS, ImplicitOptimalPrior  # noqa: F401
from .priors.ratio import DensityRatioNet, classifier_epoch, classifier_metrics  # noqa: F401
