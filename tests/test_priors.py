"""Prior interface: the closed-form KL against Monte Carlo, and log-densities."""

import numpy as np
import torch
from scipy import stats
from torch.distributions import Independent, Normal

from vaekit.priors import StandardNormal, make_prior


def test_closed_form_kl_matches_monte_carlo():
    torch.manual_seed(1)
    mean, scale = torch.randn(5, 3, dtype=torch.float64), torch.rand(5, 3, dtype=torch.float64) + 0.3
    q = Independent(Normal(mean, scale), 1)
    prior = StandardNormal(3)
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - prior.log_prob(z)).mean(0)
    closed = prior.kl(q, z[:1])
    # 0.5 * sum(mu^2 + s^2 - 1 - log s^2)
    formula = 0.5 * (mean**2 + scale**2 - 1 - torch.log(scale**2)).sum(1)
    torch.testing.assert_close(closed, formula)
    torch.testing.assert_close(closed, mc, atol=0.02, rtol=0.01)


def test_standard_normal_log_prob_matches_scipy():
    z = torch.randn(10, 4, dtype=torch.float64)
    expected = stats.multivariate_normal(np.zeros(4), np.eye(4)).logpdf(z.numpy())
    np.testing.assert_allclose(make_prior("standard", 4).log_prob(z).numpy(), expected, rtol=1e-10)


def test_default_prior_kl_is_monte_carlo_estimate():
    """The base-class KL is mean_l[log q - log p], which the closed form must agree with in expectation."""
    torch.manual_seed(2)
    q = Independent(Normal(torch.randn(4, 2), torch.rand(4, 2) + 0.5), 1)
    prior = StandardNormal(2)
    z = q.sample((100_000,))
    generic = super(StandardNormal, prior).kl(q, z)
    torch.testing.assert_close(generic, prior.kl(q, z), atol=0.02, rtol=0.02)
