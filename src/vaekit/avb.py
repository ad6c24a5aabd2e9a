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
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.distributions import Distribution

from .encoders import ImplicitPosterior
from .errors import ConfigError
from .implicit import DensityRatioNet, _FrozenUnlessFitting, classifier_epoch, classifier_metrics
from .nets import adam
from .priors import Prior, register_prior, standard_normal

if TYPE_CHECKING:  # pragma: no cover
    from .model import VAE


@register_prior
class AdversarialKL(_FrozenUnlessFitting, Prior):
    """N(0, I) prior whose KL to the implicit encoder is the discriminator's estimate E_q[T_psi(x, z)] (AVB).

    Parameters mirror :class:`vaekit.implicit.ImplicitOptimalPrior`: ``ratio_epochs`` (J2), ``ratio_lr``,
    ``ratio_hidden``, ``ratio_batch_size`` and ``keep_prob`` of the discriminator.
    """

    name = "avb"
    needs_encoder_density = False

    def __init__(
        self,
        latent_dim: int,
        ratio_epochs: int = 10,
        ratio_lr: float = 1e-3,
        ratio_hidden: Sequence[int] = (500, 500),
        ratio_batch_size: int = 100,
        keep_prob: float = 0.5,
    ) -> None:
        super().__init__(latent_dim)
        self._set_schedule(ratio_epochs, ratio_lr, ratio_hidden, ratio_batch_size, keep_prob)
        self._optimiser: torch.optim.Optimizer | None = None

    def bind(self, model: VAE) -> None:
        super().bind(model)
        if model.config.encoder != "implicit":
            raise ConfigError("the avb prior estimates KL(q(z|x) || p(z)) for an implicit encoder: use encoder='implicit'")
        in_features = model.config.x_dim + model.config.n_tasks + self.latent_dim
        self.ratio = DensityRatioNet(in_features, self.ratio_hidden, self.keep_prob)
        self._freeze()

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

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        return list(self.ratio.parameters())

    @torch.no_grad()
    def _pairs(self, train_x: torch.Tensor, train_s: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, z ~ q(z|x)) and (x, z ~ N(0, I)) for every training point, concatenated as discriminator input."""
        model: VAE = self._model  # type: ignore[attr-defined]
        positives, negatives = [], []
        for i in range(0, len(train_x), 1000):
            q = model.encode(train_x[i:i + 1000], None if train_s is None else train_s[i:i + 1000])
            assert isinstance(q, ImplicitPosterior)
            z_q = q.sample()
            positives.append(torch.cat([q.inputs, z_q], -1))
            negatives.append(torch.cat([q.inputs, torch.randn_like(z_q)], -1))
        return torch.cat(positives), torch.cat(negatives)

    def fit_auxiliary(self, train_x: torch.Tensor, train_s: torch.Tensor | None) -> dict[str, float]:
        """J2 discriminator epochs, fresh encoder noise and prior samples in each (theta, phi frozen)."""
        start, cpu_start = time.perf_counter(), time.process_time()
        if self._optimiser is None:
            self._optimiser = adam(self.ratio.parameters(), self.ratio_lr)
        losses = []
        for _ in range(self.ratio_epochs):
            positives, negatives = self._pairs(train_x, train_s)
            self._unfreeze()
            try:
                losses.append(classifier_epoch(self.ratio, self._optimiser, positives, negatives, self.ratio_batch_size))
            finally:
                self._freeze()
        metrics = classifier_metrics(self.ratio, *self._pairs(train_x[:10_000], None if train_s is None else train_s[:10_000]))
        if losses:
            metrics["ratio_train_loss"] = losses[-1]
        metrics["ratio_seconds"] = time.perf_counter() - start
        metrics["ratio_cpu_seconds"] = time.process_time() - cpu_start
        return metrics

    def config(self) -> dict[str, Any]:
        return {"ratio_epochs": self.ratio_epochs, "ratio_lr": self.ratio_lr, "ratio_hidden": list(self.ratio_hidden),
                "ratio_batch_size": self.ratio_batch_size, "keep_prob": self.keep_prob}
