"""Names the command line offers before any heavy module (torch, scikit-learn) is imported.

``vaekit --help``/``--version`` build the parser from these; tests check they equal the registries
(:data:`vaekit.likelihoods.LIKELIHOODS`, :data:`vaekit.priors.PRIORS`, ...).
"""

from __future__ import annotations

import os

LIKELIHOOD_NAMES = ("bernoulli", "gaussian", "map", "student-t")
PRIOR_NAMES = ("avb", "implicit", "standard", "vamp")
DIVERGENCE_POLICIES = ("stop", "rollback")
ACTIVATION_NAMES = ("elu", "leaky_relu", "relu", "softplus", "tanh")  #: :data:`vaekit.nets.ACTIVATIONS`
BACKENDS = ("local", "ray")
BUDGETS = ("quick", "intermediate", "full")  #: "intermediate": only where a target names it


def cpu_count() -> int:
    """Cores this process may use (as :func:`vaekit.experiments.engine.cpu_count`)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
