"""Every decoder density against scipy, and the heads' parameterisation."""

import numpy as np
import pytest
import torch
from scipy import stats

from vaekit.errors import ConfigError, DataError
from vaekit.likelihoods import LIKELIHOODS, Bernoulli, Gaussian, MAPGaussian, StudentT, make_likelihood


def _head_output(head, h):
    with torch.no_grad():
        return head(h)


@pytest.fixture
def features():
    return torch.randn(7, 5, dtype=torch.float64)


def test_gaussian_log_prob_matches_scipy(features):
    head = Gaussian(5, 3).double()
    p = _head_output(head, features)
    x = torch.randn(7, 3, dtype=torch.float64)
    mean, sd = p.base_dist.loc.numpy(), p.base_dist.scale.numpy()
    expected = stats.norm.logpdf(x.numpy(), mean, sd).sum(1)
    np.testing.assert_allclose(p.log_prob(x).numpy(), expected, rtol=1e-10)
    # Eq. 3.7 written out
    var = sd**2
    eq37 = (-(x.numpy() - mean) ** 2 / (2 * var) - 0.5 * np.log(2 * np.pi * var)).sum(1)
    np.testing.assert_allclose(p.log_prob(x).numpy(), eq37, rtol=1e-10)


def test_student_t_log_prob_matches_scipy_and_eq_311(features):
    head = StudentT(5, 3, nu_init=3.0).double()
    p = _head_output(head, features)
    x = torch.randn(7, 3, dtype=torch.float64) * 3
    nu, mu, scale = p.base_dist.df.numpy(), p.base_dist.loc.numpy(), p.base_dist.scale.numpy()
    expected = stats.t.logpdf(x.numpy(), nu, mu, scale).sum(1)
    np.testing.assert_allclose(p.log_prob(x).numpy(), expected, rtol=1e-10)
    lam = scale**-2  # precision lambda of Eq. 3.11
    from scipy.special import gammaln

    eq311 = (gammaln((nu + 1) / 2) - gammaln(nu / 2) + 0.5 * np.log(lam / (np.pi * nu))
             - (nu + 1) / 2 * np.log1p(lam * (x.numpy() - mu) ** 2 / nu)).sum(1)
    np.testing.assert_allclose(p.log_prob(x).numpy(), eq311, rtol=1e-10)


def test_student_t_log_density_is_accurate_in_float32_for_every_nu_up_to_the_cap(features):
    """Reviewer-found: with the cap at nu = 1e6, torch's float32 normaliser (terms of size nu log nu that cancel) was
    0.08 nats per dimension off at the cap and up to 0.6 in [1e4, 1e6]; below the cap of 1e3 it is within 1e-3."""
    from vaekit.likelihoods import NU_MAX

    x = np.linspace(-4.0, 4.0, 9)[:, None]
    nu = np.concatenate([[0.5, 1.0, 3.0, 30.0], np.logspace(2, np.log10(NU_MAX), 20)])
    got = torch.distributions.StudentT(torch.tensor(nu, dtype=torch.float32)).log_prob(
        torch.tensor(x, dtype=torch.float32))
    np.testing.assert_allclose(got.double().numpy(), stats.t.logpdf(x, nu[None, :]), rtol=0, atol=1e-3)
    off = torch.distributions.StudentT(torch.tensor(1e6)).log_prob(torch.tensor(x, dtype=torch.float32))
    assert np.abs(off.double().numpy() - stats.t.logpdf(x, 1e6)).min() > 0.05  # why the cap is not 1e6
    head = StudentT(5, 3).double()
    with torch.no_grad():
        head.raw_nu.bias.fill_(1e5)  # a decoder pushing nu far beyond the cap
    assert float(_head_output(head, features).base_dist.df.max()) == NU_MAX


def test_bernoulli_log_prob_matches_scipy(features):
    head = Bernoulli(5, 3).double()
    p = _head_output(head, features)
    x = torch.randint(0, 2, (7, 3)).double()
    probs = torch.sigmoid(p.base_dist.logits).numpy()
    np.testing.assert_allclose(p.log_prob(x).numpy(), stats.bernoulli.logpmf(x.numpy(), probs).sum(1), rtol=1e-9)


def test_map_penalty_is_gamma_log_prior_up_to_constant(features):
    b = 0.3
    head = MAPGaussian(5, 3, b=b).double()
    p = _head_output(head, features)
    tau = p.base_dist.scale.pow(-2).numpy()
    gamma = stats.gamma.logpdf(tau, a=1.0, scale=1 / b).sum(1)  # ln b - b tau  (Eq. 3.9)
    np.testing.assert_allclose(head.log_parameter_prior(p).numpy(), gamma - 3 * np.log(b), rtol=1e-10)


def test_student_t_starts_at_nu_init_and_respects_floor():
    head = StudentT(5, 4, nu_init=12.0, nu_min=2.0)
    torch.nn.init.zeros_(head.raw_nu.weight)
    nu = head(torch.randn(3, 5)).base_dist.df
    torch.testing.assert_close(nu, torch.full_like(nu, 12.0))
    with torch.no_grad():
        head.raw_nu.bias.fill_(-1e4)
    assert float(head(torch.randn(3, 5)).base_dist.df.min().detach()) >= 2.0


def test_student_t_finite_far_outside_training_range():
    head = StudentT(5, 2)
    p = head(torch.randn(4, 5))
    assert torch.isfinite(p.log_prob(torch.full((4, 2), 1e6))).all()


def test_bounded_mean_lies_in_unit_interval():
    head = Gaussian(5, 3, bounded_mean=True)
    mean = head(torch.randn(50, 5) * 100).base_dist.loc
    assert mean.min() >= 0 and mean.max() <= 1


def test_bernoulli_rejects_non_binary_data():
    with pytest.raises(DataError, match="binary"):
        Bernoulli(5, 3).check_data(torch.tensor([[0.0, 0.5, 1.0]]))
    Bernoulli(5, 3).check_data(torch.tensor([[0.0, 1.0, 1.0]]))


@pytest.mark.parametrize("bad", [dict(name="nope"), dict(name="map", b=0.0), dict(name="student-t", nu_init=0.1)])
def test_bad_likelihood_options_raise(bad):
    bad = dict(bad)  # the parameter is shared between runs of the test: do not consume it
    name = bad.pop("name")
    with pytest.raises(ConfigError):
        make_likelihood(name, 4, 2, **bad)


def test_registry_names():
    assert set(LIKELIHOODS) == {"bernoulli", "gaussian", "map", "student-t"}


def test_fast_bernoulli_log_prob_equals_torch_for_extreme_logits_and_broadcast_samples():
    from torch.distributions import Bernoulli as TorchBernoulli

    from vaekit.likelihoods import LogitBernoulli

    logits = torch.tensor([-200.0, -30.0, -1.0, 0.0, 2.5, 40.0, 300.0], dtype=torch.float64).expand(3, 2, 7)
    x = (torch.rand(2, 7, generator=torch.Generator().manual_seed(0)) > 0.5).double()  # broadcast over 3 samples
    fast, reference = LogitBernoulli(logits=logits).log_prob(x), TorchBernoulli(logits=logits).log_prob(x)
    assert fast.shape == (3, 2, 7) and torch.isfinite(fast).all()
    torch.testing.assert_close(fast, reference, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- edges found by mutation testing (issue 13)
@pytest.mark.parametrize("kind, options", [(Bernoulli, {}), (Gaussian, {}), (MAPGaussian, {"b": 2.0, "variance_floor": 0.01, "bounded_mean": True}), (StudentT, {})],
                         ids=lambda k: getattr(k, "__name__", ""))
def test_every_head_records_its_shape(kind, options):
    """Mutation caught: a head constructor passing None for either size, or dropping its options, on the way to
    its base class."""
    head = kind(5, 3, **options)
    assert (head.in_features, head.out_features) == (5, 3)
    assert head(torch.randn(2, 5)).event_shape == (3,)
    assert all(head.config()[k] == v for k, v in options.items())


def test_student_t_default_floor_is_one_half_and_the_bounds_are_strict():
    """nu = nu_min + softplus(raw) with the documented default nu_min = 0.5 (mutation caught: 1.5), and
    0 < nu_min < nu_init enforced strictly (caught: ``>=`` in either check)."""
    head = StudentT(5, 2)
    with torch.no_grad():
        head.raw_nu.bias.fill_(-1e4)
    nu = head(torch.randn(3, 5)).base_dist.df
    torch.testing.assert_close(nu, torch.full_like(nu, 0.5))
    assert head.diagnostics(head(torch.randn(3, 5)))["mean_nu"] == pytest.approx(0.5)
    for bad in (dict(nu_min=0.0), dict(nu_min=2.0, nu_init=2.0)):
        with pytest.raises(ConfigError, match="0 < nu_min < nu_init"):
            StudentT(5, 2, **bad)


@pytest.mark.parametrize("shape", [(5, 3, 7), (2, 4, 3, 7), (1, 3, 7), (3, 7)])
def test_bernoulli_rows_log_prob_equals_the_elementwise_sum_for_broadcast_samples(shape):
    """The batched-product log-density of data broadcast over sample dimensions (importance sampling) equals
    torch's Bernoulli summed over the last dimension, for several sample shapes and extreme logits; data of the
    logits' own shape take the elementwise path."""
    from torch.distributions import Bernoulli as TorchBernoulli

    from vaekit.likelihoods import BernoulliRows

    g = torch.Generator().manual_seed(1)
    logits = (torch.randn(shape, generator=g, dtype=torch.float64) * 50).requires_grad_()
    x = (torch.rand(shape[-2:], generator=g) > 0.5).double()
    fast = BernoulliRows(logits).log_prob(x)
    reference = TorchBernoulli(logits=logits).log_prob(x.expand(shape)).sum(-1)
    assert fast.shape == shape[:-1]
    torch.testing.assert_close(fast, reference, rtol=1e-11, atol=1e-9)
    grad, = torch.autograd.grad(fast.sum(), logits)
    torch.testing.assert_close(grad, torch.sigmoid(-logits.detach()) * x - torch.sigmoid(logits.detach()) * (1 - x))


def test_bernoulli_rows_keeps_the_elementwise_path_for_one_sample():
    """Training (one sample: logits [1, B, D]) must give exactly the previous elementwise log-density, so
    training's numbers do not move by even a rounding error; the product path is for K > 1 only."""
    from torch.distributions import Independent

    from vaekit.likelihoods import BernoulliRows, LogitBernoulli

    g = torch.Generator().manual_seed(3)
    logits = torch.randn(1, 64, 784, generator=g) * 3
    x = (torch.rand(64, 784, generator=g) > 0.5).float()
    elementwise = Independent(LogitBernoulli(logits=logits, validate_args=False), 1).log_prob(x)
    assert torch.equal(BernoulliRows(logits).log_prob(x), elementwise)
    several = torch.cat([logits, logits])  # K = 2: the product path, equal to rounding only
    torch.testing.assert_close(BernoulliRows(several).log_prob(x)[0], elementwise[0], rtol=1e-5, atol=1e-3)


def test_unknown_component_options_are_refused_naming_the_accepted_ones():
    """Reviewer-found: fit(X, likelihood_kwargs={"nu": 3}) raised a bare TypeError from deep in the constructor."""
    from vaekit import VAE
    from vaekit.errors import ConfigError

    with pytest.raises(ConfigError, match="student-t likelihood: .*unexpected keyword.*'nu'.*; its options: nu_init"):
        VAE(3, 2, "student-t", likelihood_kwargs={"nu": 3})
    with pytest.raises(ConfigError, match="map likelihood: .*'bb'; its options: b, variance_floor"):
        VAE(3, 2, "map", likelihood_kwargs={"bb": 1})  # MAP passes **kwargs on to the Gaussian head
    with pytest.raises(ConfigError, match="implicit prior: .*'ratio_epoch'; its options: ratio_epochs"):
        VAE(3, 2, prior="implicit", prior_kwargs={"ratio_epoch": 1})
    assert VAE(3, 2, "map", likelihood_kwargs={"b": 0.5, "bounded_mean": True}).likelihood is not None
