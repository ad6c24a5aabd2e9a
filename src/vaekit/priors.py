"""Priors p(z) behind one interface.

A prior is *explicit* when it has a normalised log-density and a sampler (standard Gaussian, VampPrior) and
*implicit* when it is defined through a learned correction that is trained in a phase of its own (the implicit
optimal prior of chapter 4). The model only calls :meth:`Prior.kl` during training and :meth:`Prior.log_prob`
during importance sampling; the trainer calls :meth:`Prior.fit_auxiliary` after each VAE epoch and leaves
:meth:`Prior.auxiliary_parameters` out of the VAE optimiser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal, kl_divergence

from .errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from .model import VAE


def standard_normal(latent_dim: int, like: torch.Tensor | None = None) -> Independent:
    """N(0, I) over ``latent_dim`` dimensions on ``like``'s device and dtype."""
    zeros = torch.zeros(latent_dim) if like is None else like.new_zeros(latent_dim)
    return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1)


class Prior(nn.Module):
    """Base class of priors over the latent space."""

    name: ClassVar[str]
    #: whether :meth:`kl` / evaluation need log q(z|x) (False only for priors that work with implicit encoders)
    needs_encoder_density: ClassVar[bool] = True

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim

    def bind(self, model: VAE) -> None:
        """Called once by the model that owns this prior. The reference is kept unregistered (no cycle in
        ``state_dict``) for priors that reuse the encoder (VampPrior) or sample the aggregated posterior."""
        object.__setattr__(self, "_model", model)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over latent dimensions (unnormalised for implicit priors; see :meth:`log_normaliser`)."""
        raise NotImplementedError

    def kl(self, q: Distribution, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """Per-point estimate of KL(q(z|x) || p(z)) from samples ``z`` of shape ``[L, B, D]``; ``s`` holds the rows'
        task indices (None without tasks) for priors that weight tasks.

        The default is the Monte Carlo estimate mean_l [log q(z_l|x) - log p(z_l)].
        """
        return (q.log_prob(z) - self.log_prob(z)).mean(0)

    def sample(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        """Parameters trained in the prior's own phase, not by the VAE optimiser."""
        return []

    def fit_auxiliary(self, train_x: torch.Tensor, train_s: torch.Tensor | None) -> dict[str, float]:
        """The prior's own training phase, run by the trainer after every VAE epoch; returns metrics."""
        return {}

    def log_normaliser(self) -> float:
        """log of the normalising constant of :meth:`log_prob` (0 for explicit priors)."""
        return 0.0

    def normaliser_metrics(self) -> dict[str, Any]:
        """``log_normaliser`` with its standard error, effective sample size and reliability flag, for priors
        whose :meth:`log_prob` is unnormalised; empty for explicit priors."""
        return {}

    def config(self) -> dict[str, Any]:
        return {}


class StandardNormal(Prior):
    """p(z) = N(0, I) with the closed-form Gaussian KL (Kingma and Welling, 2014)."""

    name = "standard"

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return standard_normal(self.latent_dim, z).log_prob(z)

    def kl(self, q: Distribution, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        return kl_divergence(q, standard_normal(self.latent_dim, z))

    def sample(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim)


PRIORS: dict[str, type[Prior]] = {StandardNormal.name: StandardNormal}


def register_prior(cls: type[Prior]) -> type[Prior]:
    """Class decorator adding a prior to :data:`PRIORS` under its ``name``."""
    PRIORS[cls.name] = cls
    return cls


def make_prior(name: str, latent_dim: int, **kwargs: Any) -> Prior:
    """Build a prior by its registered name."""
    try:
        cls = PRIORS[name]
    except KeyError:
        raise ConfigError(f"unknown prior {name!r}; choose one of {sorted(PRIORS)}") from None
    return cls(latent_dim, **kwargs)


# The learned priors of chapter 4 register themselves on import (after the base classes above exist), so that
# PRIORS, and with it the CLI's --prior choices, always lists them.
from . import avb, implicit, vamp  # noqa: F401
