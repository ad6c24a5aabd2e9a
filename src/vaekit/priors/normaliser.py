"""log Z of an unnormalised prior N(z) exp T(z) by importance sampling, with a standard error and an ESS.

The implicit optimal prior's density is p(z) = N(z) exp T(z) / Z with Z = E_{N(0,I)}[exp T(z)]. Plain Monte
Carlo from N(0, I) is unreliable: exp T ~ q(z)/N(z) is heavy-tailed wherever the aggregated posterior q(z) is
narrow, so the estimate is biased low and its standard error is itself wrong. Here Z is estimated by importance
sampling with a *defensive mixture* proposal (Hesterberg, 1995)

    r(z) = delta N(z; 0, I) + (1 - delta) (1/M) sum_m q(z | x_m),

where the q(z|x_m) are the M training posteriors (all of them: in many dimensions a subset of narrow posteriors
misses the mass of the others, which no weight can reveal): the aggregated posterior in closed form, which N(z) exp T(z) approximates, so the weights w = N(z) exp T(z) / r(z) are near 1; the N(0, I) part bounds
them by exp T(z) / delta where q(z) is small. Samples are drawn from the two parts in fixed proportions
(stratified), which leaves the estimate unbiased for Z since r is the mixture density.

Z_hat = mean(w); log Z_hat carries the delta-method standard error sd(w) / (mean(w) sqrt(n)); the effective sample
size (sum w)^2 / sum w^2 says how far the proposal is from N(z) exp T(z). An estimate with ESS below
:data:`MIN_ESS` is flagged as unreliable (``reliable`` is False) rather than reported as if it were sound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from scipy import stats
from torch.distributions import Categorical, Independent, Normal

from .base import standard_normal
from .mixture import DiagonalGaussianMixture

#: Fewest effective samples for an estimate to count as reliable.
MIN_ESS = 100.0


@dataclass(frozen=True)
class LogNormaliser:
    """An estimate of log Z with its standard error, effective sample size and the proposal that produced it."""

    log_z: float
    stderr: float
    ess: float
    n_samples: int
    proposal: str  #: "defensive-mixture" or "standard-normal"

    @property
    def reliable(self) -> bool:
        return math.isfinite(self.log_z) and math.isfinite(self.stderr) and self.ess >= MIN_ESS

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Normal-approximation confidence interval for log Z."""
        half = float(stats.norm.ppf(0.5 + level / 2)) * self.stderr
        return self.log_z - half, self.log_z + half

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reliable": self.reliable}

    def metrics(self, prefix: str = "log_normaliser") -> dict[str, Any]:
        """The estimate as result metrics: ``prefix`` (log Z) and ``prefix_stderr``, ``_ess``, ``_reliable``."""
        return {prefix: self.log_z, f"{prefix}_stderr": self.stderr, f"{prefix}_ess": self.ess,
                f"{prefix}_reliable": self.reliable}


def _mixture_log_prob(mixture: DiagonalGaussianMixture, z: torch.Tensor, max_elements: int = 20_000_000
                      ) -> torch.Tensor:
    """``mixture.log_prob(z)`` in row chunks of at most ``max_elements`` component densities (bounded memory)."""
    k = mixture.mixture_distribution.logits.shape[-1]
    step = max(1, max_elements // k)
    return torch.cat([mixture.log_prob(z[i:i + step]) for i in range(0, len(z), step)])


@torch.no_grad()
def estimate_log_normaliser(
    log_ratio: Callable[[torch.Tensor], torch.Tensor],
    latent_dim: int,
    loc: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    *,
    n_samples: int = 10_000,
    defensive: float = 0.2,
    seed: int = 0,
    chunk: int = 10_000,
    device: torch.device | str = "cpu",
) -> LogNormaliser:
    """log Z = log E_{N(0,I)}[exp T(z)] for ``log_ratio`` = T, by importance sampling (see the module docstring).

    ``loc``/``scale`` ([N, D]) are the posteriors q(z|x_n) of the training rows and ``weights`` their sampling
    weights (None: uniform); the proposal mixes all N of them (cost n_samples x N x D). Without them the proposal is N(0, I) alone (plain Monte Carlo). Seeded: the same
    inputs give the same estimate. ``log_ratio`` is called on float32 batches of at most ``chunk`` rows on
    ``device``, where the proposal's density is evaluated too (in float64); the draws are made on the CPU.
    """
    if n_samples < 2:
        raise ValueError(f"n_samples must be >= 2, got {n_samples}")
    if not 0.0 < defensive <= 1.0:
        raise ValueError(f"defensive must be in (0, 1], got {defensive}")
    generator = torch.Generator().manual_seed(seed)
    standard = standard_normal(latent_dim, torch.zeros((), dtype=torch.float64))
    if loc is None or scale is None or defensive == 1.0:
        z = torch.randn(n_samples, latent_dim, generator=generator, dtype=torch.float64)
        log_proposal_gap = torch.zeros(n_samples, dtype=torch.float64)  # r = N: the weights are exp T
        proposal = "standard-normal"
    else:
        mu, sigma = loc.detach().double().cpu(), scale.detach().double().cpu()
        probs = (torch.full((len(mu),), 1.0 / len(mu), dtype=torch.float64) if weights is None
                 else weights.detach().double().cpu() / weights.sum())
        # the proposal's density (n_samples x N x D, the estimate's main cost) on ``device``, still in float64
        mixture = DiagonalGaussianMixture(Categorical(probs=probs.to(device)), Independent(
            Normal(mu.to(device), sigma.to(device), validate_args=False), 1))
        n_standard = max(1, round(defensive * n_samples))
        n_mixture = n_samples - n_standard
        component = torch.multinomial(probs, n_mixture, replacement=True, generator=generator)
        z = torch.cat([
            torch.randn(n_standard, latent_dim, generator=generator, dtype=torch.float64),
            mu[component] + sigma[component] * torch.randn(n_mixture, latent_dim, generator=generator,
                                                           dtype=torch.float64),
        ])
        log_n = standard.log_prob(z)
        log_mixture = _mixture_log_prob(mixture, z.to(device)).cpu()
        log_r = torch.logaddexp(math.log(defensive) + log_n, math.log1p(-defensive) + log_mixture)
        log_proposal_gap = log_n - log_r  # log N(z) - log r(z)
        proposal = "defensive-mixture"
    t = torch.cat([log_ratio(z[i:i + chunk].float().to(device)).double().cpu() for i in range(0, len(z), chunk)])
    return from_log_weights(t + log_proposal_gap, proposal)


def from_log_weights(log_w: torch.Tensor, proposal: str) -> LogNormaliser:
    """log Z = log mean(w) from log importance weights, with the delta-method standard error and the ESS."""
    n = len(log_w)
    log_z = float(torch.logsumexp(log_w, 0) - math.log(n))
    w = torch.exp(log_w - log_w.max())
    stderr = float(w.std() / (w.mean() * math.sqrt(n)))
    ess = float(w.sum() ** 2 / w.pow(2).sum())
    return LogNormaliser(log_z, stderr, ess, n, proposal)
