"""A mixture of diagonal Gaussians whose density is computed by matrix products (VampPrior, log Z proposals)."""

from __future__ import annotations

import math

import torch
from torch.distributions import MixtureSameFamily


class DiagonalGaussianMixture(MixtureSameFamily):
    """``MixtureSameFamily`` of diagonal Gaussians whose ``log_prob`` computes every component's log-density as
    one matrix product: with precisions P = 1/sigma^2, -0.5 sum_d (z_d - mu_kd)^2 P_kd = -0.5 (z^2 P^T)_k +
    (z (mu P)^T)_k - 0.5 sum_d mu_kd^2 P_kd, so [-z^2/2, z, 1] times [P, mu P, c_k + log w_k] is every component's
    weighted log-density. The same density as the parent's broadcast over [rows, K, D], about 10x faster for
    K = 500 on CPU and without the [rows, K, D] intermediate. ``z`` and the means are centred on
    the means' average first, which keeps the expansion's cancellation small."""

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        normal = self.component_distribution.base_dist
        centre = normal.loc.mean(0)
        loc, zc = normal.loc - centre, z - centre
        precision = normal.scale.pow(-2)
        log_weights = torch.log_softmax(self.mixture_distribution.logits, -1)
        constant = (-0.5 * (loc.pow(2) * precision).sum(-1) - normal.scale.log().sum(-1)
                    - 0.5 * loc.shape[-1] * math.log(2 * math.pi) + log_weights)
        flat = zc.reshape(-1, zc.shape[-1])
        # one product gives log w_k + log N(z | mu_k, sigma_k) for every row and component
        features = torch.cat([-0.5 * flat.pow(2), flat, flat.new_ones(len(flat), 1)], -1)
        coefficients = torch.cat([precision, loc * precision, constant.unsqueeze(-1)], -1)
        return _logsumexp_rows(features @ coefficients.T).reshape(z.shape[:-1])


def _logsumexp_rows(x: torch.Tensor) -> torch.Tensor:
    """``torch.logsumexp(x, -1)``; without gradients in place on ``x`` (about 4x faster on CPU for the
    [rows, N] matrix of a log Z proposal, whose copies dominated the estimate's time)."""
    if x.requires_grad:
        return torch.logsumexp(x, -1)
    top = x.amax(-1, keepdim=True)
    top = torch.where(top.isfinite(), top, torch.zeros_like(top))  # rows of -inf (or +inf) need no shift
    return x.sub_(top).exp_().sum(-1).log_().add_(top.squeeze(-1))
