"""Inference networks q(z|x[, s]): the diagonal Gaussian encoder and AVB's implicit encoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from .errors import ConfigError
from .likelihoods import bounded_log_scale
from .nets import MLP, glorot_init


class GaussianEncoder(nn.Module):
    """Diagonal Gaussian q(z|x) = N(mu_phi(x), diag sigma_phi^2(x)) (section 2.1).

    ``in_features`` includes any task one-hot appended by the model; sampling is reparameterised (``rsample``).
    """

    has_density = True

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


class ImplicitPosterior(Distribution):
    """q(z|x) defined only by a sampler z = f_phi(x, eps), eps ~ N(0, I) (AVB's implicit encoder).

    There is no density: :meth:`log_prob` raises, so priors whose KL needs log q(z|x) and the importance-sampled
    log-likelihood are unavailable. ``inputs`` (the encoder input, task one-hot included) is kept for the
    adversarial discriminator T(x, z).
    """

    arg_constraints: ClassVar[dict] = {}
    has_rsample = True

    def __init__(self, net: nn.Module, inputs: torch.Tensor, noise_dim: int, latent_dim: int) -> None:
        self.net, self.inputs, self.noise_dim = net, inputs, noise_dim
        super().__init__(inputs.shape[:-1], torch.Size([latent_dim]), validate_args=False)

    def rsample(self, sample_shape: torch.Size | tuple[int, ...] = ()) -> torch.Tensor:
        shape = torch.Size(sample_shape) + self.inputs.shape[:-1]
        eps = torch.randn(*shape, self.noise_dim, dtype=self.inputs.dtype, device=self.inputs.device)
        return self.net(torch.cat([self.inputs.expand(*shape, self.inputs.shape[-1]), eps], -1))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        raise ConfigError(
            "the implicit (AVB) encoder has no density q(z|x): the importance-sampled log-likelihood and priors "
            "that need log q(z|x) are unavailable; report the ELBO estimate instead (vaekit.evaluation.elbo)"
        )


class ImplicitEncoder(nn.Module):
    """AVB's implicit encoder z = f_phi(x, eps) with ``noise_dim``-dimensional Gaussian noise eps
    (Mescheder et al., 2017; section 4.4). The noise is concatenated to the input of an MLP."""

    has_density = False

    def __init__(
        self,
        in_features: int,
        latent_dim: int,
        hidden: Sequence[int] = (500, 500),
        activation: str = "tanh",
        dropout: float = 0.0,
        gated: bool = False,
        noise_dim: int = 10,
    ) -> None:
        super().__init__()
        if noise_dim < 1:
            raise ConfigError(f"noise_dim must be >= 1, got {noise_dim}")
        self.noise_dim, self.latent_dim = int(noise_dim), latent_dim
        body = MLP(in_features + noise_dim, hidden, activation, dropout, gated)
        head = nn.Linear(body.out_features, latent_dim)
        glorot_init(head)
        self.net = nn.Sequential(body, head)

    def forward(self, x: torch.Tensor) -> ImplicitPosterior:
        return ImplicitPosterior(self.net, x, self.noise_dim, self.latent_dim)


ENCODERS: dict[str, type[nn.Module]] = {"gaussian": GaussianEncoder, "implicit": ImplicitEncoder}


def make_encoder(name: str, in_features: int, latent_dim: int, **kwargs: Any) -> nn.Module:
    """Build an encoder by name (``gaussian`` or ``implicit``)."""
    if name not in ENCODERS:
        raise ConfigError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    return ENCODERS[name](in_features, latent_dim, **kwargs)
