"""A mixture of diagonal Gaussians whose density is computed by matrix products (VampPrior, log Z proposals)."""

from __future__ import annotations

import math

import torch
from torch.distributions import MixtureSameFamily


class DiagonalGaussianMixture(MixtureSameFamily):
    """``MixtureSameFamily`` of diagonal Gaussians whose ``log_prob`` computes every component's log-density as
    matrix products: with precisions P = 1/sigma^2, -0.5 sum_d (z_d - mu_kd)^2 P_kd = -0.5 (z^2 P^T)_k +
    (z (mu P)^T)_k - 0.5 sum_d mu_kd^2 P_kd. The same density as the parent's broadcast over [rows, K, D], about
    10x faster for K = 500 on CPU and without the [rows, K, D] intermediate. ``z`` and the means are centred on
    the means' average first, which keeps the expansion's cancellation small."""

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        normal = self.component_distribution.base_dist
        centre = normal.loc.mean(0)
        loc, zc = normal.loc - centre, z - centre
        precision = normal.scale.pow(-2)
        constant = (-0.5 * (loc.pow(2) * precision).sum(-1) - normal.scale.log().sum(-1)
                    - 0.5 * loc.shape[-1] * math.log(2 * math.pi))
        flat = zc.reshape(-1, zc.shape[-1])
        components = -0.5 * flat.pow(2) @ precision.T + flat @ (loc * precision).T + constant
        log_weights = torch.log_softmax(self.mixture_distribution.logits, -1)
        return torch.logsumexp(components + log_weights, -1).reshape(z.shape[:-1])
