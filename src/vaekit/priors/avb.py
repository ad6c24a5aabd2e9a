"""Adversarial variational Bayes (Mescheder et al., 2017; section 4.4) as a prior with an adversarial KL.

The encoder is implicit, z = f_phi(x, eps) with eps ~ N(0, I_10) (:class:`vaekit.encoders.ImplicitEncoder`), so
KL(q(z|x) || N(0, I)) has no closed form. A discriminator T_psi(x, z) is trained to tell (x, z ~ q(z|x)) from
(x, z ~ N(0, I)); at its optimum T*(x, z) = log q(z|x) - log N(z), so

    ELBO(x) ~= E_q(z|x)[log p(x|z) - T_psi(x, z)].

As for the implicit optimal prior, psi is frozen in the VAE step while the pathwise gradient through z reaches the
encoder, and the discriminator is trained for ``ratio_epochs`` epochs after every VAE epoch (the thesis's "almost
the same" settings). The prior itself is N(0, I).

There is no importance-sampled log-likelihood: the implicit encoder has no density q(z|x), so
:func:`vaekit.evaluation.log_likelihood` raises and :meth:`vaekit.trained.TrainedModel.evaluate` reports only the
ELBO estimate (which is itself an estimate, through T_psi; Rosca et al., 2018, show it is unreliable for images).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from torch.distributions import Distribution

from ..encoders import ImplicitPosterior
from ..errors import ConfigError
from .base import Prior, register_prior, standard_normal
from .ratio import DensityRatioNet, RatioClassifierPhase


@register_prior
class AdversarialKL(RatioClassifierPhase, Prior):
    """N(0, I) prior whose KL to the implicit encoder is the discriminator's estimate E_q[T_psi(x, z)] (AVB).

    Parameters mirror :class:`vaekit.priors.implicit.ImplicitOptimalPrior`: ``ratio_epochs`` (J2), ``ratio_lr``,
    ``ratio_hidden``, ``ratio_batch_size`` and ``keep_prob`` of the discriminator; ``x_dim`` and ``n_tasks`` (the
    encoder's input width, from the owning model) size its input.
    """

    name = "avb"
    needs_encoder_density = False
    encoder = "implicit"
    encoder_required = True

    def __init__(
        self,
        latent_dim: int,
        ratio_epochs: int = 10,
        ratio_lr: float = 1e-3,
        ratio_hidden: Sequence[int] = (500, 500),
        ratio_batch_size: int = 100,
        keep_prob: float = 0.5,
        *,
        x_dim: int,
        n_tasks: int = 0,
    ) -> None:
        super().__init__(latent_dim)
        self.set_schedule(ratio_epochs, ratio_lr, ratio_hidden, ratio_batch_size, keep_prob)
        self.ratio = DensityRatioNet(x_dim + n_tasks + latent_dim, self.ratio_hidden, self.keep_prob)
        self.freeze_ratio()

    def discriminator(self, inputs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """T_psi(x, z) for encoder inputs ``[B, F]`` and samples ``[..., B, D]``."""
        return self.ratio(torch.cat([inputs.expand(*z.shape[:-1], inputs.shape[-1]), z], -1))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return standard_normal(self.latent_dim, z).log_prob(z)

    def kl(self, q: Distribution, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """mean_l T_psi(x, z_l), the adversarial estimate of KL(q(z|x) || N(0, I))."""
        if not isinstance(q, ImplicitPosterior):
            raise ConfigError("the avb prior needs the implicit encoder's posterior (it carries x for T(x, z))")
        return self.discriminator(q.inputs, z).mean(0)

    def sample(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim)

    @torch.no_grad()
    def _pairs(self, train_x: torch.Tensor, train_s: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, z ~ q(z|x)) and (x, z ~ N(0, I)) for every training point, concatenated as discriminator input."""
        positives, negatives = [], []
        for i in range(0, len(train_x), 1000):
            q = self.host.encode(train_x[i:i + 1000], None if train_s is None else train_s[i:i + 1000])
            assert isinstance(q, ImplicitPosterior)
            z_q = q.sample()
            positives.append(torch.cat([q.inputs, z_q], -1))
            negatives.append(torch.cat([q.inputs, torch.randn_like(z_q)], -1))
        return torch.cat(positives), torch.cat(negatives)

    def fit_auxiliary(self, train_x: torch.Tensor, train_s: torch.Tensor | None) -> dict[str, float]:
        """J2 discriminator epochs, fresh encoder noise and prior samples in each (theta, phi frozen)."""
        started = time.perf_counter(), time.process_time()
        held_out_s = None if train_s is None else train_s[:10_000]
        return self.train_ratio(lambda: self._pairs(train_x, train_s),
                                lambda: self._pairs(train_x[:10_000], held_out_s), started)

    def config(self) -> dict[str, Any]:
        return self.schedule_config()
