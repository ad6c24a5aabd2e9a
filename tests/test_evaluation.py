"""Importance-sampled log-likelihood: exact on a linear-Gaussian VAE, increasing with K."""

import math

import numpy as np
import torch
from scipy import stats
from torch import nn
from torch.distributions import Independent, Normal

from vaekit import VAE, log_likelihood
from vaekit.likelihoods import LOG_SCALE_BOUND, Gaussian


class FixedGaussianEncoder(nn.Module):
    """q(z|x) = N(A x + c, diag(s^2)) with fixed parameters."""

    def __init__(self, a, c, s):
        super().__init__()
        self.a, self.c, self.s = a, c, s

    def forward(self, x):
        return Independent(Normal(x @ self.a.T + self.c, self.s.expand(x.shape[0], -1)), 1)


def linear_gaussian_vae(shift: float = 0.0, widen: float = 1.0):
    """p(z) = N(0, I), p(x|z) = N(W z + b, sigma^2 I) with orthogonal W columns; q is the exact posterior
    (optionally shifted / widened). Returns the model and the exact marginal N(b, W W^T + sigma^2 I)."""
    torch.set_default_dtype(torch.float64)
    try:
        d_x, d_z, sigma2 = 4, 2, 0.5
        w = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
        b = torch.tensor([0.5, -1.0, 0.2, 0.0])
        model = VAE(d_x, d_z, likelihood="gaussian", hidden=(3,))
        model.decoder_body = nn.Identity()
        head = Gaussian(d_z, d_x)
        with torch.no_grad():
            head.mean.weight.copy_(w)
            head.mean.bias.copy_(b)
            head.log_variance.weight.zero_()
            # the head squashes its raw output smoothly into [-B, B]; invert that to decode exactly sigma2
            head.log_variance.bias.fill_(LOG_SCALE_BOUND * math.atanh(math.log(sigma2) / LOG_SCALE_BOUND))
        model.likelihood = head
        cov = torch.linalg.inv(torch.eye(d_z) + w.T @ w / sigma2)  # diagonal because W's columns are orthogonal
        a = cov @ w.T / sigma2
        model.encoder = FixedGaussianEncoder(a, -(a @ b) + shift, torch.sqrt(torch.diag(cov)) * widen)
        marginal = stats.multivariate_normal(b.numpy(), (w @ w.T + sigma2 * torch.eye(d_x)).numpy())
    finally:
        torch.set_default_dtype(torch.float32)
    return model.double(), marginal


def test_exact_with_true_posterior():
    model, marginal = linear_gaussian_vae()
    x = torch.tensor(marginal.rvs(50, random_state=0))
    for k in (1, 7):
        ll = log_likelihood(model, x, n_samples=k, batch_size=16)
        np.testing.assert_allclose(ll.numpy(), marginal.logpdf(x.numpy()), rtol=1e-9, atol=1e-9)


def test_bound_increases_with_k_and_converges():
    model, marginal = linear_gaussian_vae(shift=0.4, widen=1.5)
    x = torch.tensor(marginal.rvs(200, random_state=1))
    exact = marginal.logpdf(x.numpy()).mean()
    torch.manual_seed(0)
    estimates = [float(log_likelihood(model, x, n_samples=k, max_rows=997).mean()) for k in (1, 10, 100, 2000)]
    assert all(a < b for a, b in zip(estimates, estimates[1:])), estimates
    assert estimates[0] < exact
    assert abs(estimates[-1] - exact) < 0.01


def test_chunked_samples_merge_exactly():
    """With the exact posterior every weight equals p(x); any error in merging sample chunks
    (uneven chunks of 3 rows here) or in the log K normalisation breaks exactness."""
    model, marginal = linear_gaussian_vae()
    x = torch.tensor(marginal.rvs(20, random_state=2))
    ll = log_likelihood(model, x, n_samples=64, batch_size=7, max_rows=20)
    np.testing.assert_allclose(ll.numpy(), marginal.logpdf(x.numpy()), rtol=1e-9, atol=1e-9)
