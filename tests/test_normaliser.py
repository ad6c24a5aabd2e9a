"""The implicit prior's log Z: importance sampling with the aggregated posterior as proposal, checked on mixtures
whose exact T(z) = log q(z) - log N(z) is known, so that log Z = 0."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Independent, Normal

from vaekit.priors.normaliser import MIN_ESS, estimate_log_normaliser
from vaekit.priors import standard_normal
from vaekit.priors.mixture import DiagonalGaussianMixture


def aggregated_posterior(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Posteriors q(z|x_n) like a trained encoder's: means spread over the prior, narrow scales."""
    g = torch.Generator().manual_seed(1000 + seed)
    loc = 0.8 * torch.randn(n, dim, generator=g, dtype=torch.float64)
    scale = 0.1 + 0.2 * torch.rand(n, dim, generator=g, dtype=torch.float64)
    return loc, scale


def exact_log_ratio(loc: torch.Tensor, scale: torch.Tensor):  # type: ignore[no-untyped-def]
    """T*(z) = log q(z) - log N(z; 0, I) for q the uniform mixture of the posteriors (Eq. 4.13)."""
    q = DiagonalGaussianMixture(Categorical(logits=torch.zeros(len(loc), dtype=torch.float64)),
                                Independent(Normal(loc, scale), 1))
    standard = standard_normal(loc.shape[1], loc)
    return lambda z: q.log_prob(z.double()) - standard.log_prob(z.double())


@pytest.mark.parametrize("dim, n", [(2, 300), (40, 2000)])
def test_log_z_of_an_exact_ratio_is_zero_within_its_interval(dim: int, n: int) -> None:
    """T exact, so Z = 1: across 10 seeds the estimate is within 0.05 nats of 0, the 95 % interval covers 0 in at
    least 8 of them, and the effective sample size is large."""
    loc, scale = aggregated_posterior(n, dim, seed=dim)
    t = exact_log_ratio(loc, scale)
    estimates = [estimate_log_normaliser(t, dim, loc, scale, n_samples=2000, seed=seed)
                 for seed in range(10)]
    values = np.array([e.log_z for e in estimates])
    covered = sum(lo <= 0.0 <= hi for lo, hi in (e.interval(0.95) for e in estimates))
    assert np.abs(values).max() < 0.05, values
    assert covered >= 8, [(e.log_z, e.stderr) for e in estimates]
    assert all(e.reliable and e.ess > 1000 for e in estimates)


def test_plain_monte_carlo_on_a_narrow_40d_posterior_is_flagged() -> None:
    """The old estimator (N(0, I) proposal) on the same 40-d case: weights so uneven that the ESS is tiny, and the
    estimate is flagged unreliable instead of reported as sound."""
    loc, scale = aggregated_posterior(2000, 40, seed=40)
    estimate = estimate_log_normaliser(exact_log_ratio(loc, scale), 40, n_samples=2000, seed=0)
    assert estimate.proposal == "standard-normal"
    assert estimate.ess < MIN_ESS and not estimate.reliable


def test_log_z_of_a_shifted_ratio_is_the_shift() -> None:
    """T + c has log Z = c exactly (weights scale by e^c); and with T = 0 the estimate is exactly 0."""
    loc, scale = aggregated_posterior(200, 5, seed=1)
    t = exact_log_ratio(loc, scale)
    base = estimate_log_normaliser(t, 5, loc, scale, n_samples=2000, seed=3)
    shifted = estimate_log_normaliser(lambda z: t(z) + 1.7, 5, loc, scale, n_samples=2000, seed=3)
    assert shifted.log_z == pytest.approx(base.log_z + 1.7, abs=1e-9)
    zero = estimate_log_normaliser(lambda z: torch.zeros(len(z)), 5, loc, scale, n_samples=2000, seed=3)
    assert abs(zero.log_z) < 0.05  # E_r[N/r] = 1; not identically 1 pointwise


def test_log_z_of_a_known_gaussian_ratio() -> None:
    """T(z) = log N(z; m, s^2 I) - log N(z; 0, I) integrates to Z = 1 under N(0, I); a ratio of a *scaled* density,
    T + log 3, to log 3. The proposal here is a single posterior equal to the target."""
    dim = 10
    m, s = torch.full((1, dim), 0.5, dtype=torch.float64), torch.full((1, dim), 0.3, dtype=torch.float64)
    target = Independent(Normal(m[0], s[0]), 1)
    standard = standard_normal(dim, m)
    estimate = estimate_log_normaliser(lambda z: target.log_prob(z.double()) - standard.log_prob(z.double())
                                       + math.log(3), dim, m, s, n_samples=4000, seed=0)
    assert estimate.log_z == pytest.approx(math.log(3), abs=0.02)


def test_the_estimate_is_seeded() -> None:
    loc, scale = aggregated_posterior(100, 3, seed=2)
    t = exact_log_ratio(loc, scale)
    a = estimate_log_normaliser(t, 3, loc, scale, n_samples=1000, seed=5)
    b = estimate_log_normaliser(t, 3, loc, scale, n_samples=1000, seed=5)
    assert a == b


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_estimate_on_a_gpu_is_the_cpu_estimate() -> None:
    """The proposal's density (the estimate's main cost) runs on ``device`` in float64: same draws, same log Z up
    to float64 rounding."""
    loc, scale = aggregated_posterior(500, 4, seed=3)
    t = exact_log_ratio(loc, scale)
    cpu = estimate_log_normaliser(t, 4, loc, scale, n_samples=1000, seed=5)
    gpu = estimate_log_normaliser(lambda z: t(z.cpu()).to(z.device), 4, loc.cuda(), scale.cuda(), n_samples=1000,
                                  seed=5, device="cuda")
    assert gpu.log_z == pytest.approx(cpu.log_z, abs=1e-9) and gpu.ess == pytest.approx(cpu.ess, rel=1e-9)
