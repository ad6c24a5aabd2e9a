"""Inference networks q(z|x[, s])."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Independent, Normal

from .likelihoods import bounded_log_scale
from .nets import MLP, glorot_init


class GaussianEncoder(nn.Module):
    """Diagonal Gaussian q(z|x) = N(mu_phi(x), diag sigma_phi^2(x)) (section 2.1).

    ``in_features`` includes any task one-hot appended by the model; sampling is reparameterised (``rsample``).
    """

    def __init__(
        self,
        in_features: int,
        latent_dim: int,
        hidden: Sequence[int] = (500, 500),
        activation: str = "tanh",
        dropout: float = 0.0,
        gated: bool = False,
    ) -> None:
        super().__init__()
        self.body = MLP(in_features, hidden, activation, dropout, gated)
        self.mean = nn.Linear(self.body.out_features, latent_dim)
        self.log_variance = nn.Linear(self.body.out_features, latent_dim)
        glorot_init(self.mean)
        glorot_init(self.log_variance)

    def forward(self, x: torch.Tensor) -> Independent:
        h = self.body(x)
        scale = torch.exp(0.5 * bounded_log_scale(self.log_variance(h)))
        return Independent(Normal(self.mean(h), scale, validate_args=False), 1)
