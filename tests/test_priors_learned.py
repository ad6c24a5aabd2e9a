"""Learned priors of chapter 4: VampPrior, the implicit optimal prior, AVB; image data loaders."""

import gzip
import io
import json
import math
import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch
from scipy.io import savemat
from torch.distributions import Independent, Normal

from vaekit import VAE, TrainConfig, TrainedModel, Trainer, fit, log_likelihood
from vaekit.priors.avb import AdversarialKL
from vaekit.cli import main
from vaekit.data import Dataset, load_dataset, split_indices
from vaekit.data.images import (
    dynamic_binarise,
    fixed_binarise,
    head_split,
    load_array_pickle,
    parse_frey,
    parse_histopathology,
    parse_idx,
    parse_omniglot,
)
from vaekit.errors import ConfigError, DataError, DatasetNotFoundError
from vaekit.priors.implicit import ImplicitOptimalPrior
from vaekit.likelihoods import LIKELIHOODS
from vaekit.priors import PRIORS


@pytest.fixture(autouse=True)
def _one_thread():
    """The machine is shared: one intra-op thread is far faster than two contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def gaussian(loc, scale):
    return Independent(Normal(loc, scale), 1)


def mixture_log_prob(z, locs, scales):
    """log (1/N) sum_n N(z | loc_n, scale_n^2), computed directly in float64."""
    comps = Normal(locs.double(), scales.double()).log_prob(z.double().unsqueeze(-2)).sum(-1)
    return torch.logsumexp(comps, -1) - math.log(len(locs))


# ------------------------------------------------------------------------------------------------ VampPrior
def test_vamp_with_data_as_pseudo_inputs_is_the_empirical_aggregated_posterior():
    torch.manual_seed(0)
    x = torch.randn(40, 3)
    model = VAE(3, 2, prior="vamp", hidden=(16,), prior_kwargs={"n_components": 40, "chunk_elements": 100})
    assert not model.prior.clip  # standardised data: no clipping
    model.prior.set_pseudo_inputs(x)
    model.eval()
    q = model.encode(x)
    z = torch.randn(7, 5, 2) * 2
    expected = mixture_log_prob(z, q.base_dist.loc.detach(), q.base_dist.scale.detach())  # Eq. 4.7
    with torch.no_grad():
        cached = model.prior.log_prob(z)  # chunked (chunk_elements=100 -> two rows per chunk) and cached
    torch.testing.assert_close(cached.double(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.prior.log_prob(z).detach().double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("offset", [0.0, 50.0])
def test_matrix_product_mixture_density_equals_torch_mixture_with_gradients(offset):
    from torch.distributions import Categorical, MixtureSameFamily

    from vaekit.priors.mixture import DiagonalGaussianMixture

    g = torch.Generator().manual_seed(0)
    loc = (offset + torch.randn(30, 4, generator=g)).requires_grad_()
    scale = (0.05 + torch.rand(30, 4, generator=g)).requires_grad_()
    z = offset + 2 * torch.randn(6, 5, 4, generator=g)
    weights = Categorical(logits=torch.zeros(30))
    fast = DiagonalGaussianMixture(weights, gaussian(loc, scale), validate_args=False).log_prob(z)
    reference = MixtureSameFamily(weights, gaussian(loc.double(), scale.double())).log_prob(z.double())
    assert fast.shape == (6, 5)
    torch.testing.assert_close(fast.double(), reference, rtol=1e-5, atol=1e-4)
    grads = torch.autograd.grad(fast.sum(), (loc, scale))
    expected = torch.autograd.grad(reference.sum(), (loc, scale))
    for a, b in zip(grads, expected):
        torch.testing.assert_close(a.double(), b.double(), rtol=1e-3, atol=1e-3)


def test_matrix_product_mixture_density_without_gradients_is_the_torch_mixture_to_rounding():
    """The no-gradient path (in-place log-sum-exp, the log Z proposal's) in float64: unequal weights, a point far
    from every component (log density about -1e4) and one at a component's centre."""
    from torch.distributions import Categorical, MixtureSameFamily

    from vaekit.priors.mixture import DiagonalGaussianMixture

    g = torch.Generator().manual_seed(1)
    loc = torch.randn(200, 6, generator=g, dtype=torch.float64)
    scale = 0.05 + 0.3 * torch.rand(200, 6, generator=g, dtype=torch.float64)
    weights = Categorical(logits=torch.randn(200, generator=g, dtype=torch.float64))
    z = torch.cat([torch.randn(50, 6, generator=g, dtype=torch.float64), loc[:1], torch.full((1, 6), 8.0,
                                                                                           dtype=torch.float64)])
    with torch.no_grad():
        fast = DiagonalGaussianMixture(weights, gaussian(loc, scale)).log_prob(z)
    reference = MixtureSameFamily(weights, gaussian(loc, scale)).log_prob(z)
    assert fast[-1] < -1000
    torch.testing.assert_close(fast, reference, rtol=1e-10, atol=1e-9)


def test_in_place_log_sum_exp_is_torch_s_on_infinite_rows():
    from vaekit.priors.mixture import _logsumexp_rows

    inf = math.inf
    x = torch.tensor([[-inf, -inf], [inf, 0.0], [-inf, 1.0], [3.0, 1e3]], dtype=torch.float64)
    torch.testing.assert_close(_logsumexp_rows(x.clone()), torch.logsumexp(x, -1))
    from scipy.special import logsumexp

    wide = -torch.logspace(-2, 4, 3000, dtype=torch.float64).reshape(3, 1000)  # tails far below e^-708
    wide[1] -= 5000.0
    for dtype in (torch.float64, torch.float32):
        expected = torch.from_numpy(logsumexp(wide.numpy(), axis=-1)).to(dtype)
        torch.testing.assert_close(_logsumexp_rows(wide.to(dtype)), expected, rtol=0, atol=1e-12 if dtype ==
                                   torch.float64 else 1e-5)


def test_vamp_caches_components_under_no_grad_and_invalidates_on_updates():
    torch.manual_seed(0)
    model = VAE(4, 2, likelihood="bernoulli", prior="vamp", hidden=(8,), prior_kwargs={"n_components": 6})
    prior = model.prior
    assert prior.clip and float(prior.inputs().detach().min()) >= 0  # binary data: pseudo-inputs clipped to [0, 1]
    model.eval()
    with torch.no_grad():
        first = prior.components()
        assert prior.components() is first  # reused across batches
    x = torch.bernoulli(torch.full((10, 4), 0.5))
    model.train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    model.loss(x).loss.backward()
    optimiser.step()
    assert prior.pseudo_inputs.grad is not None and prior.pseudo_inputs.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        second = prior.components()
    assert second is not first
    assert not torch.allclose(second.base_dist.loc, first.base_dist.loc)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["encoder.mean.bias"] += 1.0
    model.load_state_dict(state)
    with torch.no_grad():
        torch.testing.assert_close(prior.components().base_dist.loc, second.base_dist.loc + 1.0)
    model.double()  # new storage in another dtype: the float32 components are not reused
    with torch.no_grad():
        assert prior.components().base_dist.loc.dtype == torch.float64
        assert prior.log_prob(torch.zeros(3, 2, dtype=torch.float64)).dtype == torch.float64


def test_vamp_cache_is_fresh_at_every_validation_with_the_fused_optimiser():
    """Fused Adam updates weights without bumping version counters: the validation ELBO of every epoch must use
    the current components, not those cached at an earlier validation."""
    torch.manual_seed(0)
    x = torch.bernoulli(torch.full((60, 4), 0.5))
    model = VAE(4, 2, likelihood="bernoulli", prior="vamp", hidden=(8,), prior_kwargs={"n_components": 6})
    gaps = []

    def check(epoch, model, record):
        with torch.no_grad():
            cached = model.prior.components().base_dist.loc
            fresh = model.encoder(model.prior.inputs()).base_dist.loc
        gaps.append(float((cached - fresh).abs().max()))

    Trainer(TrainConfig(epochs=3, batch_size=20, lr=0.05, patience=None), callbacks=[check]).fit(model, x, x[:20])
    assert gaps == [0.0, 0.0, 0.0]


def test_vamp_pseudo_inputs_carry_round_robin_task_indices():
    model = VAE(3, 2, prior="vamp", hidden=(8,), n_tasks=2, prior_kwargs={"n_components": 5})
    assert model.prior.pseudo_tasks.tolist() == [0, 1, 0, 1, 0]
    assert model.prior.sample(11).shape == (11, 2)


# ------------------------------------------------------------------------------------------ implicit prior
def _feed_posteriors(prior, loc, scale):
    """Make the prior see the training posteriors of one epoch (what the trainer does batch by batch)."""
    for i in range(0, len(loc), 100):
        prior.observe(gaussian(loc[i:i + 100], scale[i:i + 100]))


def test_density_ratio_classifier_recovers_a_known_gaussian_log_ratio():
    torch.manual_seed(0)
    model = VAE(3, 2, prior="implicit", hidden=(8,),
                prior_kwargs={"ratio_epochs": 40, "ratio_hidden": (64, 64), "keep_prob": 1.0, "ratio_lr": 3e-3,
                              "ratio_batch_size": 200})
    prior = model.prior
    n, m, s = 2000, torch.tensor([1.0, -0.5]), 0.6
    # every q(z|x_n) is N(m, s^2 I), so the aggregated posterior is exactly N(m, s^2 I)
    _feed_posteriors(prior, m.expand(n, 2), torch.full((n, 2), s))
    metrics = prior.fit_auxiliary(torch.zeros(n, 3), None)
    assert metrics["ratio_accuracy"] > 0.7
    z = torch.cat([m + s * torch.randn(1000, 2), torch.randn(1000, 2)])
    truth = gaussian(m, torch.full((2,), s)).log_prob(z) - gaussian(torch.zeros(2), torch.ones(2)).log_prob(z)
    with torch.no_grad():
        estimate = prior.log_ratio(z)
    # judged where the samples are, i.e. where neither density is negligible (the far tails of N(0, I), where the
    # true ratio plunges to -20, hold no q samples to learn from)
    bulk = truth.abs() < 3
    assert float(bulk.float().mean()) > 0.8
    assert float(torch.corrcoef(torch.stack([estimate[bulk], truth[bulk]]))[0, 1]) > 0.95
    assert float((estimate - truth)[bulk].abs().median()) < 0.25
    # the KL of the aggregated posterior to N(0, I) (Eq. 5.27) is estimated by mean T on q(z) samples
    true_kl = float(torch.distributions.kl_divergence(gaussian(m, torch.full((2,), s)),
                                                      gaussian(torch.zeros(2), torch.ones(2))))
    assert abs(metrics["ratio_mean_logit"] - true_kl) < 0.25


class ExactLogRatio(torch.nn.Module):
    """T(z) = log q(z) - log N(z) for a known Gaussian-mixture aggregated posterior."""

    def __init__(self, locs, scales):
        super().__init__()
        self.locs, self.scales = locs, scales

    def forward(self, z):
        std = gaussian(torch.zeros(z.shape[-1]), torch.ones(z.shape[-1])).log_prob(z)
        return (mixture_log_prob(z, self.locs, self.scales) - std.double()).float()


def test_kl_split_eq_4_9_holds_for_an_explicit_aggregated_posterior():
    """KL(q(z|x)||q(z)) = KL(q(z|x)||N) - E_q[log q(z)/N(z)]: the implicit prior with the exact ratio, the VampPrior
    at the data (the same q(z) explicitly) and a direct Monte Carlo estimate agree."""
    torch.manual_seed(0)
    locs, scales = torch.randn(5, 2) * 1.5, torch.rand(5, 2) * 0.5 + 0.3
    q = gaussian(locs, scales)  # q(z|x_n) for five data points
    z = q.sample((40_000,))
    direct = (q.log_prob(z).double() - mixture_log_prob(z, locs, scales)).mean(0)

    implicit = ImplicitOptimalPrior(2)
    implicit.ratio = ExactLogRatio(locs, scales)
    split = implicit.kl(q, z).double()

    model = VAE(2, 2, prior="vamp", hidden=(4,), prior_kwargs={"n_components": 5})
    model.encode = lambda x, s=None: gaussian(locs, scales)  # the encoder at the pseudo-inputs
    vamp = model.prior.kl(q, z).double()
    torch.testing.assert_close(split, direct, atol=0.03, rtol=0)
    torch.testing.assert_close(vamp, direct, atol=1e-4, rtol=0)
    assert float(direct.min()) > 0.1  # a non-trivial check


def _implicit_model(seed=0):
    torch.manual_seed(seed)
    return VAE(4, 2, likelihood="bernoulli", prior="implicit", hidden=(16,),
               prior_kwargs={"ratio_hidden": (16,), "ratio_epochs": 1})


def _encoder_grads(model, x):
    model.zero_grad()
    torch.manual_seed(123)  # same eps in both calls
    model.loss(x).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_encoder_gradient_sees_the_pathwise_gradient_of_t():
    x = torch.bernoulli(torch.full((32, 4), 0.5), generator=torch.Generator().manual_seed(0))
    model = _implicit_model()
    model.train()
    with torch.no_grad():  # T = 0
        for p in model.prior.ratio.parameters():
            p.zero_()
    flat = _encoder_grads(model, x)
    standard = VAE(4, 2, likelihood="bernoulli", hidden=(16,))
    standard.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("prior.")})
    baseline = _encoder_grads(standard, x)
    for name, g in baseline.items():  # with T = 0 the implicit prior trains exactly like N(0, I)
        torch.testing.assert_close(flat[name], g)
    with torch.no_grad():  # a non-constant T
        for p in model.prior.ratio.parameters():
            p.normal_(0, 1.0)
    curved = _encoder_grads(model, x)
    encoder = [n for n in flat if n.startswith("encoder.")]
    assert encoder and max(float((curved[n] - flat[n]).abs().max()) for n in encoder) > 1e-3
    for name in (n for n in flat if n.startswith(("decoder_body.", "likelihood."))):
        torch.testing.assert_close(curved[name], flat[name])  # T does not touch the decoder
    assert not any(n.startswith("prior.") for n in curved)  # psi gets no gradient in the VAE step


def test_vae_epoch_leaves_psi_unchanged_and_classifier_phase_updates_it():
    x = torch.bernoulli(torch.full((200, 4), 0.5), generator=torch.Generator().manual_seed(0))
    model = _implicit_model()
    model.prior.ratio_epochs = 0  # VAE step only
    before = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(TrainConfig(epochs=1, batch_size=50)).fit(model, x)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("prior.ratio"))
    assert not torch.equal(before["encoder.mean.weight"], after["encoder.mean.weight"])
    model.prior.ratio_epochs = 1
    model.prior.fit_auxiliary(x, None)
    assert not torch.equal(before["prior.ratio.0.weight"], model.state_dict()["prior.ratio.0.weight"])


class LinearT(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a

    def forward(self, z):
        return z @ self.a


def test_log_normaliser_matches_a_known_case_and_normalises_the_density():
    prior = ImplicitOptimalPrior(2, normaliser_samples=200_000)
    a = torch.tensor([0.5, -0.3])
    prior.ratio = LinearT(a)
    estimate = prior.estimate_log_normaliser()  # no classifier phase yet: plain Monte Carlo from N(0, I)
    log_z, stderr = estimate.log_z, estimate.stderr
    assert estimate.proposal == "standard-normal" and estimate.reliable
    assert abs(log_z - float(a @ a) / 2) < 4 * stderr + 1e-3  # E_N[exp(a.z)] = exp(|a|^2 / 2)
    assert 0 < stderr < 0.01
    assert prior.log_normaliser() == pytest.approx(log_z)
    grid = torch.linspace(-7, 7, 401)
    z = torch.cartesian_prod(grid, grid)
    mass = float(torch.exp(prior.log_prob(z) - prior.log_normaliser()).sum()) * float(grid[1] - grid[0]) ** 2
    assert mass == pytest.approx(1.0, abs=2e-3)


def test_checkpoint_round_trip_keeps_the_implicit_prior(tmp_path):
    rng = np.random.default_rng(0)
    data = Dataset("toy", rng.normal(size=(300, 3)).astype(np.float32), split=(0.6, 0.2, 0.2))
    trained, summary = fit(data, likelihood="gaussian", prior="implicit", latent_dim=2, hidden=(16,),
                           importance_samples=5, out=tmp_path, train=TrainConfig(epochs=3, batch_size=50),
                           prior_kwargs={"ratio_hidden": (16,), "ratio_epochs": 2, "normaliser_samples": 5000})
    assert summary["log_normaliser"] is not None and "test_log_likelihood_normalised" in summary
    assert {"ratio_loss", "ratio_accuracy", "ratio_seconds"} <= set(summary["history"][-1])
    loaded = TrainedModel.load(tmp_path)
    assert loaded.model.prior.config() == trained.model.prior.config()
    assert float(loaded.model.prior.log_z) == float(trained.model.prior.log_z)  # no re-estimation after loading
    z = torch.randn(20, 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.prior.log_prob(z), trained.model.prior.log_prob(z))
    x = data.x[:50]
    torch.manual_seed(5)
    a = trained.evaluate(x, n_samples=5)
    torch.manual_seed(5)
    assert loaded.evaluate(x, n_samples=5) == a


# --------------------------------------------------------------------------------------------------- AVB
def test_avb_uses_an_implicit_encoder_and_reports_the_elbo_only():
    torch.manual_seed(0)
    x = torch.eye(4)[torch.randint(4, (100,))]
    model = VAE(4, 2, likelihood="bernoulli", prior="avb", hidden=(16,), prior_kwargs={"ratio_hidden": (16,)})
    assert model.config.encoder == "implicit" and not model.encoder_has_density
    assert isinstance(model.prior, AdversarialKL)
    z1, z2 = model.encode(x[:1]).sample((2,))  # noise input: two samples of one x differ
    assert not torch.allclose(z1, z2)
    result = Trainer(TrainConfig(epochs=2, batch_size=50)).fit(model, x, x[:20])
    assert math.isfinite(result.history[-1]["val_loss"]) and "ratio_accuracy" in result.history[-1]
    with pytest.raises(ConfigError, match="implicit"):
        log_likelihood(model, x[:5])
    with pytest.raises(ConfigError, match="density"):
        VAE(4, 2, likelihood="bernoulli", prior="implicit", encoder="implicit")


# ------------------------------------------------------------------------ every prior x every likelihood
@pytest.mark.parametrize("prior", sorted(PRIORS))
@pytest.mark.parametrize("likelihood", sorted(LIKELIHOODS))
def test_every_prior_trains_with_every_likelihood(prior, likelihood):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3)).astype(np.float32)
    if likelihood == "bernoulli":
        x = (x > 0).astype(np.float32)
    data = Dataset("toy", x, split=(0.6, 0.2, 0.2))
    kwargs = {"vamp": {"n_components": 5}, "implicit": {"ratio_hidden": (8,), "ratio_epochs": 1,
                                                        "normaliser_samples": 1000},
              "avb": {"ratio_hidden": (8,), "ratio_epochs": 1}}.get(prior, {})
    _, summary = fit(data, likelihood=likelihood, prior=prior, latent_dim=2, hidden=(8,), importance_samples=3,
                     train=TrainConfig(epochs=2, batch_size=24), prior_kwargs=kwargs)
    assert not summary["diverged"]
    key = "test_elbo_estimate" if prior == "avb" else "test_log_likelihood"
    assert summary[key] is not None and math.isfinite(summary[key])


@pytest.mark.parametrize("prior,likelihood", [("implicit", "student-t"), ("vamp", "gaussian"), ("avb", "bernoulli")])
def test_learned_priors_with_task_conditioning(prior, likelihood):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 3)).astype(np.float32)
    if likelihood == "bernoulli":
        x = (x > 0).astype(np.float32)
    data = Dataset("tasks", x, s=np.arange(120) % 2, split=(0.6, 0.2, 0.2))
    kwargs = {"vamp": {"n_components": 4}, "implicit": {"ratio_hidden": (8,), "ratio_epochs": 1,
                                                        "normaliser_samples": 1000},
              "avb": {"ratio_hidden": (8,), "ratio_epochs": 1}}[prior]
    trained, summary = fit(data, likelihood=likelihood, prior=prior, latent_dim=2, hidden=(8,), n_tasks=2,
                           importance_samples=3, train=TrainConfig(epochs=2, batch_size=24), prior_kwargs=kwargs)
    assert trained.model.config.n_tasks == 2 and not summary["diverged"]
    if prior == "implicit":  # ancestral samples of q(z) = E_{x,s}[q(z|x,s)] from the epoch's posteriors
        assert trained.model.prior.sample(9).shape == (9, 2)
        assert math.isfinite(summary["test_log_likelihood_normalised"])


def test_implicit_prior_ancestral_modes_agree_on_fresh_posteriors():
    torch.manual_seed(0)
    x = torch.randn(300, 3)
    model = VAE(3, 2, prior="implicit", hidden=(8,), prior_kwargs={"ratio_epochs": 0, "ancestral": "encode"})
    model.eval()
    loc, _, _ = model.prior._posteriors_with_tasks(x, None)
    q = model.encode(x)
    torch.testing.assert_close(loc, q.base_dist.loc)
    with pytest.raises(ConfigError):
        ImplicitOptimalPrior(2, ancestral="nope")


def test_implicit_prior_samples_the_restored_encoders_posteriors_after_early_stopping():
    """Reviewer-found: after the trainer restored the best epoch, sample() (and the default log Z proposal) still
    used the last epoch's posteriors, which belong to an encoder that no longer exists."""
    torch.manual_seed(0)
    x, val = torch.randn(300, 3), torch.randn(100, 3) * 3
    model = VAE(3, 2, "gaussian", "implicit", hidden=(16,),
                prior_kwargs={"ratio_hidden": (16,), "ratio_epochs": 1, "normaliser_samples": 200})
    result = Trainer(TrainConfig(epochs=8, lr=3e-2, patience=None, seed=0)).fit(model, x, val)
    assert result.best_epoch < result.epochs_run  # a restore happened
    with torch.no_grad():
        encoded = model.encode(x).base_dist
    loc, scale, _ = model.prior._snapshot
    torch.testing.assert_close(loc, encoded.loc)
    torch.testing.assert_close(scale, encoded.scale)
    torch.manual_seed(1)
    torch.testing.assert_close(model.prior.sample(20_000).mean(0), encoded.loc.mean(0), atol=0.03, rtol=0)


# ----------------------------------------------------------------------------------------------- data
def test_image_loaders_name_the_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    for name, filename in (("mnist", "mnist_train60k.npz"), ("omniglot", "omniglot.npz"),
                           ("freyfaces", "freyfaces.npz"), ("histopathology", "histopathology.npz")):
        with pytest.raises(DatasetNotFoundError, match=filename) as err:
            load_dataset(name)
        assert f"vaekit download {name}" in str(err.value)
    cache = tmp_path / "cache"
    monkeypatch.setenv("VAEKIT_CACHE", str(cache))
    cache.mkdir()
    np.savez(cache / "mnist_train60k.npz", x=np.zeros((60_000, 1, 1), np.uint8), y=np.zeros(60_000, np.int8))
    with pytest.raises(DatasetNotFoundError, match="mnist_test10k.npz"):
        load_dataset("mnist")


def test_onehot_is_generated_with_the_thesis_split():
    data = load_dataset("onehot")
    train, val, test = data.splits()
    assert (len(train), len(val), len(test)) == (1000, 100, 1000)
    assert np.array_equal(data.x.sum(1), np.ones(2100)) and np.bincount(data.y).tolist() == [525] * 4


def test_mnist_binarisation(data_dir):
    if not (data_dir / "mnist_train60k.npz").is_file():
        pytest.skip("MNIST is not in the data directory")
    data = load_dataset("mnist")
    train, val, test = data.splits(seed=3)  # the published split ignores the seed
    assert (len(train), len(val), len(test)) == (50_000, 10_000, 10_000)
    assert np.isin(val.x, (0, 1)).all() and np.isin(test.x, (0, 1)).all()
    assert not np.isin(train.x, (0, 1)).all() and train.x.min() >= 0 and train.x.max() <= 1
    np.testing.assert_array_equal(fixed_binarise(train.x[:100]), fixed_binarise(train.x[:100]))  # seeded
    transform = data.meta["batch_transform"]
    xb = torch.from_numpy(train.x[:64])
    a, b = transform(xb, torch.Generator().manual_seed(0)), transform(xb, torch.Generator().manual_seed(1))
    assert set(a.unique().tolist()) <= {0.0, 1.0} and not torch.equal(a, b)
    assert float(a.mean()) == pytest.approx(float(xb.mean()), abs=0.01)
    assert dynamic_binarise is transform
    small = head_split(data, (100, 20, 30))
    assert [len(p) for p in small.splits()] == [100, 20, 30]
    np.testing.assert_array_equal(small.splits()[2].x, test.x[:30])


def test_freyfaces_loader(data_dir):
    data = load_dataset("freyfaces")
    assert data.x.shape == (1965, 560) and 0 <= data.x.min() and data.x.max() <= 1
    assert data.meta["standardise"] is False
    assert [len(p) for p in data.splits(seed=0)] == [1565, 200, 200]


def test_absolute_split_sizes_are_contiguous_blocks():
    train, val, test = split_indices(10, (5, 3, 2), seed=7)
    assert train.tolist() == [0, 1, 2, 3, 4] and val.tolist() == [5, 6, 7] and test.tolist() == [8, 9]
    with pytest.raises(ConfigError, match="add up"):
        split_indices(11, (5, 3, 2), seed=0)


def test_public_source_parsers():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    idx = struct.pack(">HBB3I", 0, 8, 3, 2, 3, 4) + images.tobytes()
    np.testing.assert_array_equal(parse_idx(gzip.compress(idx)), images)
    with pytest.raises(DataError):
        parse_idx(idx[:-1])
    img = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    mat = io.BytesIO()  # Burda's layout: one column-major image per column
    savemat(mat, {"data": img.transpose(0, 2, 1).reshape(3, 784).T, "testdata": img[:1].transpose(0, 2, 1).reshape(1, 784).T})
    parsed = parse_omniglot(mat.getvalue())
    np.testing.assert_allclose(parsed["x_train"], img)
    frey = np.random.default_rng(1).integers(0, 255, (4, 28, 20)).astype(np.uint8)
    mat = io.BytesIO()
    savemat(mat, {"ff": frey.reshape(4, 560).T})
    np.testing.assert_array_equal(parse_frey(mat.getvalue())["x"], frey)
    archive = io.BytesIO()
    payload = pickle.dumps({"training": img, "validation": img[:2], "test": img[:1]}, protocol=2)
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("histopathology.pkl")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    histo = parse_histopathology(archive.getvalue())
    assert histo["x_train"].shape == (3, 28, 28) and histo["x_test"].shape == (1, 28, 28)
    with pytest.raises(DataError, match="refusing"):
        load_array_pickle(pickle.dumps(print))


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_fit_with_learned_priors(tmp_path, capsys):
    import json

    path = tmp_path / "toy.csv"
    np.savetxt(path, np.random.default_rng(0).normal(size=(120, 3)), delimiter=",")
    common = ["fit", "--data", str(path), "--likelihood", "gaussian", "--latent-dim", "2", "--hidden", "8",
              "--epochs", "2", "--batch-size", "40", "--importance-samples", "3", "--json"]
    assert main(common + ["--prior", "vamp", "--vamp-components", "7", "--out", str(tmp_path / "v")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["model"]["prior_kwargs"] == {"n_components": 7}
    assert main(common + ["--prior", "implicit", "--ratio-epochs", "1", "--out", str(tmp_path / "i")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["model"]["prior_kwargs"] == {"ratio_epochs": 1} and "test_log_likelihood_normalised" in out
    assert main(common + ["--prior", "avb", "--out", str(tmp_path / "a")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["model"]["encoder"] == "implicit" and out["test_log_likelihood"] is None


# ------------------------------------------------------------------------------------------ chapter-4 targets
def test_chapter4_targets_build_grids_and_reports(tmp_path, monkeypatch):
    from vaekit.experiments import log_normaliser
    from vaekit.experiments.chapter4 import train_one
    from vaekit.experiments.targets import TARGETS

    monkeypatch.setattr(log_normaliser, "ANNEALING_STEPS", 30)

    assert {"figure-4.1", "figure-4.2", "figure-4.3", "table-4.2", "timing-4.5.3"} <= set(TARGETS)
    runs = TARGETS["figure-4.3"].runs("quick", seeds=1, datasets=["freyfaces"])
    assert {r["method"] for r in runs} == {"vamp", "implicit"} and len(runs) == 6
    config = {**TARGETS["figure-4.1"].runs("quick", seeds=1)[3], "epochs": 1, "warmup": 1, "ratio_epochs": 1}
    assert config["method"] == "implicit" and config["dataset"] == "onehot"
    metrics = train_one(config)
    assert len(metrics["posterior_samples"]) == 4 and len(metrics["posterior_samples"][0]) == 250
    assert math.isfinite(metrics["test_ll_k10"]) and metrics["ratio_seconds_per_epoch"] > 0
    fake = []
    for seed in range(3):
        for method, shift in (("standard", 0.0), ("vamp", 1.0), ("implicit", 3.0)):
            noise = 0.1 * seed + 0.05 * seed * shift  # differences vary by seed (no degenerate t-test)
            m = {"test_ll_k10": -90 + shift + noise, "test_ll_k1000": -88 + shift + noise}
            fake.append({"config": {"dataset": "mnist", "method": method, "seed": seed, "budget": "quick",
                                    "epochs": 2, "warmup": 1, "lr": 1e-3}, "status": "done", "metrics": m})
    report = TARGETS["table-4.2"].report(fake, tmp_path)
    row = next(line for line in report["markdown"].splitlines() if line.startswith("| mnist (K=10; implicit: raw ≈)"))
    assert "**-86.75 ± 0.25**" in row and row.count("**") == 2  # only the clearly best column is bold
    assert (tmp_path / "table-4.2.csv").is_file()
    assert "flagged unreliable" not in report["markdown"]  # no implicit run with a log Z: no note
    for seed, (ess, reliable) in enumerate([(2.5, False), (150.0, True), (9.0, False)]):
        fake[3 * seed + 2]["metrics"].update(log_normaliser=-1.0, log_normaliser_ess=ess,
                                             log_normaliser_reliable=reliable, test_ll_normalised_k10=-86.0)
    note = TARGETS["table-4.2"].report(fake, tmp_path)["markdown"]
    assert "mnist: effective sample size 2.5–150.0, 2 of 3 runs flagged unreliable (ESS < 100)" in note
    assert "normalised by AIS" not in note.split("Bold:")[0]  # no AIS estimates yet: no such row
    for seed in range(3):
        fake[3 * seed + 2]["metrics"].update(log_normaliser_annealed=-0.5, log_normaliser_annealed_ess=300.0 + seed,
                                             log_normaliser_annealed_reliable=True,
                                             test_ll_normalised_annealed_k10=-86.5 + 0.1 * seed)
    note = TARGETS["table-4.2"].report(fake, tmp_path)["markdown"]
    assert "| mnist (normalised by AIS, K=10) |" in note and "-86.40 ± 0.10" in note
    assert "log Z by AIS (the 'normalised by AIS' rows; 500 chains): mnist: effective sample size 300.0–302.0, 0 of 3" in note
    # a data set run with fewer seeds (Frey faces on seed 0 beside MNIST's three) is not "missing" the others
    frey = [{**r, "config": {**r["config"], "dataset": "freyfaces"}} for r in fake[:3]]
    rows = TARGETS["table-4.2"].report(fake + frey, tmp_path)["markdown"].splitlines()
    frey_row = next(line for line in rows if line.startswith("| freyfaces (K=10"))
    assert "missing" not in frey_row and "(1 seed)" in frey_row



def test_table_4_2_intermediate_budget_runs_the_whole_mnist_split_with_two_ratio_schedules(tmp_path):
    """Issue 14's intermediate budget: 50,000 MNIST images, 100 epochs, 3 seeds; the implicit prior with the
    recommended J2 = 3 on every seed and the thesis's J2 = 10 on seed 0; its report keeps the schedules apart."""
    from vaekit.experiments.targets import get_target

    target = get_target("table-4.2")
    runs = target.runs("intermediate", datasets=["mnist"])  # named: the grid is built without the data too
    assert len(runs) == 10 and {r["dataset"] for r in runs} == {"mnist"}
    assert all(r["subset"] is None and r["epochs"] == 100 and r["lr"] == 5e-4 for r in runs)
    schedules = sorted((r["seed"], r["ratio_epochs"]) for r in runs if r["method"] == "implicit")
    assert schedules == [(0, 3), (0, 10), (1, 3), (2, 3)]
    assert not any("ratio_epochs" in r for r in runs if r["method"] != "implicit")
    assert (runs[0]["method"], runs[0]["ratio_epochs"]) == ("implicit", 10)  # the longest run starts first
    assert all("ratio_epochs" not in r for r in target.runs("quick"))  # the other budgets are unchanged
    from vaekit.errors import ConfigError

    with pytest.raises(ConfigError, match="intermediate budget covers mnist, not freyfaces"):
        target.runs("intermediate", datasets=["freyfaces"])  # would run the full settings under this name
    fake = [{"config": r, "status": "done",
             "metrics": {"test_ll_k10": -90.0 + {"standard": 0, "vamp": 1, "implicit": 2 + r.get("ratio_epochs", 0)}[
                 r["method"]] + 0.1 * r["seed"] * (1 + len(r["method"]))}} for r in runs]
    text = target.report(fake, tmp_path)["markdown"]
    header = next(line for line in text.splitlines() if line.startswith("| Data set"))
    assert header == ("| Data set (importance samples) | Standard VAE | VampPrior | Implicit prior (J2 = 3) | "
                      "Implicit prior (J2 = 10) |")
    row = next(line for line in text.splitlines() if line.startswith("| mnist (K=10"))
    assert "**-84.10 ± 0.90**" in row and "-78.00 (1 seed)" in row  # J2 = 3 over seeds 0-2; J2 = 10 on seed 0
    assert "Implicit prior (J2 = 10) ran on seed 0 only (by design)" in text
    partial = [r for r in fake if r["config"]["seed"] == 0 or r["config"]["method"] != "implicit"]
    text = target.report(partial, tmp_path)["markdown"]  # J2 = 3 (every seed's schedule) has seed 0 only so far
    assert ("Implicit prior (J2 = 3) ran on seed 0 only (its other seeds not finished); Implicit prior (J2 = 10) "
            "ran on seed 0 only (by design)." in text)



def test_the_budget_curve_puts_each_budget_in_order_beside_the_thesis(tmp_path):
    """Table 4.2 against the budget (issue 14): one row per budget in budget order whatever the file order, the J2
    schedules apart, mean ± std (seeds) per column, the thesis's row last."""
    from vaekit.experiments.chapter4.curve import budget_rows, budget_table

    def write(name, budget, epochs, runs):
        lines = [json.dumps({"config": {"dataset": "mnist", "budget": budget, "epochs": epochs, "seed": seed,
                                        "method": method, **extra},
                             "status": "done", "metrics": {"test_ll_k10": value, "n_train": 50000}})
                 for method, seed, value, extra in runs]
        (tmp_path / name).write_text("\n".join(lines))
        return tmp_path / name

    full = write("full.jsonl", "full", 1000, [("standard", 0, -86.0, {}), ("standard", 1, -88.0, {})])
    inter = write("inter.jsonl", "intermediate", 100, [
        ("standard", 0, -90.0, {}), ("standard", 1, -92.0, {}), ("implicit", 0, -89.0, {"ratio_epochs": 3}),
        ("implicit", 1, -87.0, {"ratio_epochs": 3}), ("implicit", 0, -88.5, {"ratio_epochs": 10})])
    rows = budget_rows([full, inter], "mnist")
    assert [r["budget"] for r in rows] == ["intermediate", "full"]
    assert rows[0]["cells"]["Implicit prior (J2 = 3)"] == (-88.0, pytest.approx(2 ** 0.5), 2)
    table = budget_table(rows, "mnist").splitlines()
    assert table[0] == ("| Budget (training images, epochs, seeds) | Standard VAE | Implicit prior (J2 = 3) | "
                        "Implicit prior (J2 = 10) |")
    assert table[2] == "| intermediate (50,000, 100, 2) | -91.00 ± 1.41 (2) | -88.00 ± 1.41 (2) | -88.50 (1 seed) |"
    assert table[3] == "| full (50,000, 1000, 2) | -87.00 ± 1.41 (2) | – | – |"
    assert table[4] == "| thesis (8 runs) | -85.84 | -83.21 | -83.21 |"


# ---------------------------------------------------------------- edges found by mutation testing (issue 13)
def test_vamp_clips_pseudo_inputs_to_the_unit_interval_only_when_asked():
    """Clipped ReLU of section 4.5.2 (mutations caught: either bound dropped or moved, the clip skipped)."""
    for clip in (True, False):
        model = VAE(3, 2, prior="vamp", hidden=(8,), prior_kwargs={"n_components": 4, "clip": clip})
        with torch.no_grad():
            model.prior.pseudo_inputs.copy_(torch.tensor([[-2.0, 0.5, 3.0]]).expand(4, 3))
        expected = [0.0, 0.5, 1.0] if clip else [-2.0, 0.5, 3.0]
        assert model.prior.inputs()[0].tolist() == expected


def test_implicit_prior_keeps_the_last_epoch_of_observed_posteriors_and_no_more():
    """``observe`` keeps the shortest run of recent batches holding one epoch (N rows) and the classifier phase
    draws from exactly the last N observed posteriors. Mutations caught: a batch too many kept (``>`` for
    ``>=``), and a wrong row count after dropping one (which silently re-encodes instead of reusing)."""
    model = VAE(3, 2, prior="implicit", hidden=(8,), prior_kwargs={"ratio_epochs": 1})
    prior, n = model.prior, 10
    prior._capacity = n  # what the first classifier phase sets (the training set's size)
    locs = [torch.full((5, 2), float(i)) for i in range(4)]
    for loc in locs:
        prior.observe(gaussian(loc, torch.ones(5, 2)))
    assert sum(len(p[0]) for p in prior._posteriors) == prior._posterior_rows == n
    model.encoder = None  # re-encoding would fail: the reused posteriors must serve
    loc, scale, tasks = prior._posteriors_with_tasks(torch.zeros(n, 3), None)
    assert loc[:, 0].tolist() == [2.0] * 5 + [3.0] * 5 and tasks is None


def test_implicit_prior_normaliser_metrics_name_every_quantity():
    """The keys the reports and `vaekit evaluate` read (mutation caught: a key renamed or dropped)."""
    model = VAE(3, 2, prior="implicit", hidden=(8,), prior_kwargs={"ratio_epochs": 1})
    metrics = model.prior.normaliser_metrics()
    assert set(metrics) == {"log_normaliser", "log_normaliser_stderr", "log_normaliser_ess", "log_normaliser_reliable"}


def test_vamp_options_reach_the_prior():
    """Explicit pseudo-input initialisation and clip override the data-driven defaults; one component is legal
    (mutations caught: init_mean/init_std/clip ignored, ``n_components <= 1`` refused)."""
    from vaekit.errors import ConfigError
    from vaekit.priors import VampPrior

    prior = VampPrior(2, n_components=1, init_mean=0.3, init_std=0.0, clip=False, x_dim=3, data_in_unit_interval=True)
    assert prior.pseudo_inputs.tolist() == [[pytest.approx(0.3)] * 3] and not prior.clip
    assert VampPrior(2, n_components=2, x_dim=3, data_in_unit_interval=True).clip
    with pytest.raises(ConfigError):
        VampPrior(2, n_components=0, x_dim=3)


def test_equal_task_weights_give_every_present_task_half_the_mass():
    """1 / (K N_s) over the tasks present, also when a task index is unused (gap) or has a single row (mutations
    caught: tasks with 0 rows counted, tasks with 1 row not counted)."""
    model = VAE(3, 2, prior="implicit", hidden=(8,), n_tasks=3, prior_kwargs={"task_weights": "equal"})
    weights = model.prior.row_weights(torch.tensor([0, 0, 0, 2]))
    assert weights.tolist() == [pytest.approx(1 / 6)] * 3 + [pytest.approx(0.5)]


@pytest.mark.parametrize("ancestral", ["reuse", "encode"])
def test_classifier_phase_samples_the_aggregated_posterior_with_the_task_weights(monkeypatch, ancestral):
    """The classifier's q(z) samples are drawn with the rows' task weights (mutations caught: the weights or the
    tasks dropped on the way to the ancestral sampler, which silently turns equal task weights into p_D(s))."""
    from vaekit.priors import ImplicitOptimalPrior

    torch.manual_seed(0)
    model = VAE(3, 2, prior="implicit", hidden=(8,), n_tasks=2,
                prior_kwargs={"task_weights": "equal", "ratio_epochs": 1, "ancestral": ancestral})
    x, s = torch.randn(40, 3), torch.tensor([0] * 30 + [1] * 10)
    if ancestral == "reuse":
        model.prior.observe(model.encode(x, s), s)
    seen = []
    real = ImplicitOptimalPrior._ancestral
    monkeypatch.setattr(ImplicitOptimalPrior, "_ancestral",
                        staticmethod(lambda loc, scale, m, weights=None: seen.append(weights) or real(loc, scale, m, weights)))
    model.prior.fit_auxiliary(x, s)
    assert seen and all(w is not None for w in seen)
    assert sorted(set(round(float(w), 6) for w in seen[0])) == [round(1 / 60, 6), round(1 / 20, 6)]


def test_implicit_prior_options_reach_the_classifier():
    """``dropout_last_only`` puts the classifier's dropout after its last hidden layer only; two normaliser samples
    are the legal minimum (mutations caught: the option dropped, ``< 3`` / ``<= 2``)."""
    from vaekit.errors import ConfigError
    from vaekit.priors import ImplicitOptimalPrior

    def dropouts(prior):
        return sum(isinstance(m, torch.nn.Dropout) for m in prior.ratio.modules())

    kwargs = dict(ratio_hidden=(8, 8, 8), keep_prob=0.5)
    assert dropouts(ImplicitOptimalPrior(2, dropout_last_only=True, **kwargs)) == 1
    assert dropouts(ImplicitOptimalPrior(2, **kwargs)) == 3
    ImplicitOptimalPrior(2, normaliser_samples=2)
    with pytest.raises(ConfigError):
        ImplicitOptimalPrior(2, normaliser_samples=1)


def test_onehot_report_pairs_each_learned_prior_with_the_standard_one_by_seed(tmp_path):
    """Figure 4.2's table: the ELBO over the last 20 epochs per method, and each learned prior minus the standard
    prior paired by seed (mutations caught: pairing across seeds, the sign of the difference, the seed count)."""
    from vaekit.experiments.chapter4.onehot import onehot_paired_note

    fake = []
    for seed in range(3):
        for method, elbo in (("standard", -1.8 - 0.1 * seed), ("vamp", -1.6 - 0.1 * seed + 0.01 * seed)):
            history = [{"val_loss": 5.0}] * 5 + [{"val_loss": -elbo}] * 20
            fake.append({"config": {"method": method, "seed": seed}, "metrics": {"history": history}})
    note = onehot_paired_note(fake, ("standard", "vamp"))
    assert "VampPrior +0.2100 ± 0.0100 (higher on 3 of 3 seeds, paired p = " in note
    assert "standard" not in note.split(":")[1].split("(")[0].lower()
    assert "(higher on 1 of 1 seeds, no test with one seed)" in onehot_paired_note(fake[:2], ("standard", "vamp"))


def test_timing_report_gives_the_wall_clock_ratio_and_the_device(tmp_path):
    """On a GPU the process CPU time is the host's share: the report also divides the wall-clock seconds, and names
    the device. Mutation caught: the wall ratio computed from CPU seconds."""
    from vaekit.experiments.targets import load_targets

    runs = [{"status": "done", "config": {"dataset": "mnist", "method": method, "seed": 0, "budget": "full", "epochs": 5,
                                          "warmup": 100, "lr": 5e-4},
             "metrics": {"cpu_seconds_per_epoch": cpu, "seconds_per_epoch": wall, "ratio_cpu_seconds_per_epoch": 0.0,
                         "threads": 16, "device": "cuda:0"}}
            for method, cpu, wall in (("vamp", 4.0, 3.2), ("implicit", 67.2, 16.0))]
    markdown = load_targets()["timing-4.5.3"].report(runs, tmp_path)["markdown"]
    row = next(line for line in markdown.splitlines() if line.startswith("| Implicit prior"))
    assert row.endswith("| 0.06 | 16.0 | 0.20 |") and "device cuda:0" in markdown
