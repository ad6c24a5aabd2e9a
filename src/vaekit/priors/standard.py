"""The standard Gaussian prior p(z) = N(0, I)."""

from __future__ import annotations

import torch
from torch.distributions import Distribution, kl_divergence

from .base import Prior, register_prior, standard_normal


@register_prior
class StandardNormal(Prior):
    """p(z) = N(0, I) with the closed-form Gaussian KL (Kingma and Welling, 2014)."""

    name = "standard"

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return standard_normal(self.latent_dim, z).log_prob(z)

    def kl(self, q: Distribution, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        return kl_divergence(q, standard_normal(self.latent_dim, z))

    def sample(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim)
