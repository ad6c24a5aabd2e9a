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


# ------------------------------------------------------------------------------------ the prior protocol (issue 16)
def test_kl_is_a_pure_function_and_the_trainer_feeds_observe():
    """The implicit prior's components arrive through observe() only: a training-mode kl() with gradients leaves
    the prior untouched, and a Trainer epoch hands over exactly one posterior per training row."""
    from vaekit import TrainConfig, Trainer, VAE

    torch.manual_seed(0)
    x = torch.randn(50, 3)
    model = VAE(3, 2, prior="implicit", hidden=(8,), prior_kwargs={"ratio_epochs": 1, "ratio_hidden": (8,)})
    model.train()
    model.loss(x).loss.backward()
    assert model.prior._posterior_rows == 0 and not model.prior._posteriors
    seen = []
    original = model.prior.observe
    model.prior.observe = lambda q, s=None: (seen.append(q.base_dist.loc.detach()), original(q, s))[1]
    phase = []  # the classifier phase's components, read right after it (training ends by re-encoding them)
    Trainer(TrainConfig(epochs=1, batch_size=20, patience=None),
            callbacks=[lambda epoch, model, record: phase.append(model.prior._snapshot[0].clone())]).fit(model, x)
    assert sum(len(loc) for loc in seen) == len(x)
    # what the classifier phase sampled from is exactly what the trainer handed over (no re-encoding)
    torch.testing.assert_close(phase[0], torch.cat(seen))


def test_a_prior_declares_the_facts_and_encoder_it_needs_without_editing_vaekit():
    """A new prior is one registered class: it asks for host facts by naming them in its constructor and reaches
    the model at run time through PriorHost (encode) only."""
    from vaekit import VAE
    from vaekit.priors import PRIORS, Prior, register_prior

    @register_prior
    class ShiftedNormal(Prior):
        name = "test-shifted"

        def __init__(self, latent_dim, shift=0.5, *, x_dim, data_in_unit_interval=False):
            super().__init__(latent_dim)
            self.shift, self.facts = shift, (x_dim, data_in_unit_interval)

        def log_prob(self, z):
            return Independent(Normal(torch.full_like(z[0, 0], self.shift).expand(z.shape[-1]),
                                      torch.ones(z.shape[-1])), 1).log_prob(z)

        def config(self):
            return {"shift": self.shift}

    try:
        model = VAE(5, 2, "bernoulli", prior="test-shifted", hidden=(8,), prior_kwargs={"shift": 1.0})
        assert model.prior.facts == (5, True)  # Bernoulli data lie in [0, 1]
        assert VAE(5, 2, "gaussian", prior="test-shifted", hidden=(8,)).prior.facts == (5, False)
        x = torch.rand(7, 5).round()
        terms = model.loss(x)
        expected = (terms.posterior.log_prob(terms.z) - model.prior.log_prob(terms.z)).mean(0)
        torch.testing.assert_close(terms.kl, expected)
        torch.testing.assert_close(model.prior.host.encode(x).base_dist.loc, model.encode(x).base_dist.loc)
    finally:
        PRIORS.pop("test-shifted")


def test_the_prior_picks_its_encoder_and_refuses_another():
    import pytest

    from vaekit import VAE
    from vaekit.errors import ConfigError

    assert VAE(4, 2, prior="avb", hidden=(8,)).config.encoder == "implicit"
    assert VAE(4, 2, prior="implicit", hidden=(8,)).config.encoder == "gaussian"
    with pytest.raises(ConfigError, match="implicit"):
        VAE(4, 2, prior="avb", encoder="gaussian", hidden=(8,))
    with pytest.raises(ConfigError, match="density"):
        VAE(4, 2, prior="vamp", encoder="implicit", hidden=(8,))
    with pytest.raises(ConfigError, match="unknown prior"):
        VAE(4, 2, prior="nope", hidden=(8,))


def test_vamp_pseudo_inputs_follow_the_likelihoods_support():
    from vaekit import VAE

    torch.manual_seed(0)
    binary = VAE(6, 2, "bernoulli", prior="vamp", hidden=(8,), prior_kwargs={"n_components": 50})
    bounded = VAE(6, 2, "gaussian", prior="vamp", hidden=(8,), prior_kwargs={"n_components": 50},
                  likelihood_kwargs={"bounded_mean": True})
    free = VAE(6, 2, "student-t", prior="vamp", hidden=(8,), prior_kwargs={"n_components": 50})
    assert binary.prior.clip and bounded.prior.clip and not free.prior.clip
    assert abs(float(binary.prior.pseudo_inputs.detach().mean()) - 0.05) < 0.01  # the authors' init for [0, 1] data
    assert float(free.prior.pseudo_inputs.detach().std()) > 0.5  # N(0, 1) for standardised data


def test_a_model_builds_from_its_config_identically():
    from vaekit import VAE, ModelConfig

    config = ModelConfig(x_dim=4, latent_dim=2, likelihood="student-t", prior="vamp", hidden=(8,),
                         prior_kwargs={"n_components": 5})
    torch.manual_seed(3)
    a = VAE(config)
    torch.manual_seed(3)
    b = VAE(x_dim=4, latent_dim=2, likelihood="student-t", prior="vamp", hidden=(8,), prior_kwargs={"n_components": 5})
    assert a.config == b.config
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
