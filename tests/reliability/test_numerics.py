"""Property tests: log-densities, KLs and the importance-sampled bound stay finite for extreme parameters."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vaekit import VAE, log_likelihood
from vaekit.likelihoods import LIKELIHOODS, make_likelihood
from vaekit.priors import StandardNormal

extreme = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)
data_values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32)


def _set_biases(module: torch.nn.Module, value: float) -> None:
    """Zero weights and a constant bias in every linear layer: decoded parameters become ``value``-driven."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
                layer.bias.fill_(value)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(LIKELIHOODS)), bias=extreme, x=data_values)
def test_log_density_finite_for_extreme_parameters(name, bias, x):
    head = make_likelihood(name, 3, 2)
    _set_biases(head, bias)
    p = head(torch.zeros(5, 3))
    data = torch.full((5, 2), float(x) if name != "bernoulli" else float(x > 0))
    log_p = p.log_prob(data)
    assert torch.isfinite(log_p).all(), (name, bias, x, log_p)
    penalty = head.log_parameter_prior(p)
    assert penalty is None or torch.isfinite(penalty).all()


@settings(max_examples=40, deadline=None)
@given(mean=extreme, log_var_bias=extreme)
def test_kl_finite_for_extreme_posteriors(mean, log_var_bias):
    model = VAE(2, 2, hidden=(4,))
    with torch.no_grad():
        model.encoder.mean.weight.zero_()
        model.encoder.mean.bias.fill_(mean)
        model.encoder.log_variance.weight.zero_()
        model.encoder.log_variance.bias.fill_(log_var_bias)
    q = model.encode(torch.zeros(3, 2))
    kl = StandardNormal(2).kl(q, q.rsample((1,)))
    assert torch.isfinite(kl).all() and (kl >= 0).all()


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(["gaussian", "map", "student-t"]), bias=extreme, x=data_values)
def test_importance_sampled_log_likelihood_never_nan(name, bias, x):
    model = VAE(2, 2, likelihood=name, hidden=(4,))
    _set_biases(model.likelihood, bias)
    ll = log_likelihood(model, torch.full((4, 2), float(x)), n_samples=3)
    assert not torch.isnan(ll).any() and torch.isfinite(ll).all()


def test_student_t_is_finite_where_gaussian_log_density_is_hugely_negative():
    """Far outliers: both finite, the Student-t orders of magnitude less negative (robustness, section 3.4.2)."""
    g, t = make_likelihood("gaussian", 3, 1), make_likelihood("student-t", 3, 1, nu_init=3.0)
    _set_biases(g, 0.0)
    _set_biases(t, 0.0)
    x = torch.full((1, 1), 1e5)
    lg, lt = g(torch.zeros(1, 3)).log_prob(x), t(torch.zeros(1, 3)).log_prob(x)
    assert math.isfinite(lg.item()) and math.isfinite(lt.item())
    assert lt.item() > lg.item() / 1e6
