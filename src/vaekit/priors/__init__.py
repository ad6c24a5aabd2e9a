"""Priors p(z): the interface and registry (:mod:`.base`) and one module per prior.

Importing this package registers every prior in :data:`PRIORS` (the CLI's ``--prior`` choices): the standard
Gaussian, the VampPrior (Eq. 4.8), the implicit optimal prior (Eqs. 4.9-4.19) and AVB (section 4.4).
"""

from .base import HOST_FACTS, PRIORS, Prior, PriorHost, make_prior, prior_class, register_prior, standard_normal
from .standard import StandardNormal
from .vamp import VampPrior
from .implicit import ImplicitOptimalPrior
from .avb import AdversarialKL

__all__ = ["HOST_FACTS", "PRIORS", "AdversarialKL", "ImplicitOptimalPrior", "Prior", "PriorHost", "StandardNormal",
           "VampPrior", "make_prior", "prior_class", "register_prior", "standard_normal"]
