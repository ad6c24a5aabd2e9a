"""Tests that guard the wiring from the equations into reported numbers: each would fail under a deliberate
mutation of the code it names (the mutation is given in each docstring)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from scipy import stats

from vaekit import VAE, Dataset, TrainConfig, Trainer, fit
from vaekit.likelihoods import LOG_SCALE_BOUND, make_likelihood
from vaekit.metrics import task_mutual_information


def _data(n: int = 64, dim: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32))


@pytest.mark.parametrize("kl_weight", [0.0, 0.3, 1.0])
def test_loss_combines_reconstruction_warmup_kl_and_the_map_parameter_prior(kl_weight: float) -> None:
    """Mutations caught: the MAP VAE's Gamma(1, b) term dropped or added with the wrong sign; the KL warm-up weight
    ignored. loss = -mean(reconstruction - w KL + log p(tau)), with log p(tau) = -b sum tau < 0."""
    x = _data()
    model = VAE(5, latent_dim=2, hidden=(8,), likelihood="map", likelihood_kwargs={"b": 0.5})
    torch.manual_seed(0)
    terms = model.loss(x, kl_weight=kl_weight)
    assert terms.parameter_prior is not None and bool((terms.parameter_prior < 0).all())
    expected = -(terms.reconstruction - kl_weight * terms.kl + terms.parameter_prior).mean()
    torch.testing.assert_close(terms.loss, expected, rtol=1e-6, atol=1e-6)
    # the reported ELBO carries the full KL and no parameter prior, whatever the warm-up weight
    torch.testing.assert_close(terms.elbo, terms.reconstruction - terms.kl)
    assert float(terms.kl.detach().abs().mean()) > 1e-3  # a weight on the KL is visible in the loss


def test_map_parameter_prior_is_the_gamma_log_density_of_the_decoded_precision() -> None:
    """Mutation caught: a wrong precision (e.g. sigma instead of 1/sigma^2) in the Gamma(1, b) term. Checked
    against scipy's Gamma(1, scale=1/b) log-density, computed from the head's *raw* log-variance output."""
    b = 2.0
    head = make_likelihood("map", 4, 3, b=b)
    h = torch.randn(6, 4)
    raw = head.log_variance(h).detach().double()
    precision = torch.exp(-LOG_SCALE_BOUND * torch.tanh(raw / LOG_SCALE_BOUND)).numpy()
    expected = stats.gamma(a=1.0, scale=1.0 / b).logpdf(precision).sum(-1) - 3 * math.log(b)  # up to log b
    got = head.log_parameter_prior(head(h)).detach().double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_student_t_density_from_the_raw_network_outputs_matches_scipy() -> None:
    """Mutation caught: the precision mapping lambda = exp(raw) -> scale lambda^(-1/2) changed (e.g. scale =
    lambda^(-1), or exp(+raw/2)). The expected density is built from the raw linear outputs, not the head's scale."""
    head = make_likelihood("student-t", 4, 3, nu_init=5.0, nu_min=0.5)
    h = torch.randn(7, 4)
    x = torch.randn(7, 3)
    mean = head.mean(h).detach().double().numpy()
    raw_precision = head.log_precision(h).detach().double()
    precision = torch.exp(LOG_SCALE_BOUND * torch.tanh(raw_precision / LOG_SCALE_BOUND)).numpy()
    nu = 0.5 + np.log1p(np.exp(head.raw_nu(h).detach().double().numpy()))
    expected = stats.t.logpdf(x.double().numpy(), df=nu, loc=mean, scale=precision ** -0.5).sum(-1)
    got = head(h).log_prob(x).detach().double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert float(np.abs(raw_precision.numpy()).max()) > 0.05  # the mapping is exercised away from lambda = 1


class _Snapshots:
    """Callback keeping a copy of the weights at the end of every epoch."""

    def __init__(self) -> None:
        self.states: dict[int, dict] = {}

    def __call__(self, epoch: int, model: VAE, record: dict) -> None:
        self.states[epoch] = copy.deepcopy(model.state_dict())


def test_early_stopping_restores_exactly_the_best_epochs_weights() -> None:
    """Mutation caught: the best weights not restored at the end of training. At the start of epoch 4 the decoder's
    weights are scaled by 25 (a learning-rate blow-up in effect), so the last epochs are worse than the best by far
    more than the ELBO's sampling noise; the final weights must be the best epoch's, bit for bit."""
    x, x_val = _data(200, 5, 1), _data(100, 5, 2)
    model = VAE(5, latent_dim=2, hidden=(16,), likelihood="gaussian")
    batches = {"seen": 0}

    def blow_up_after_three_epochs(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        batches["seen"] += 1
        if batches["seen"] == 3 * 4 + 1:  # 4 batches of 50 per epoch
            with torch.no_grad():
                for p in [*model.decoder_body.parameters(), *model.likelihood.parameters()]:
                    p.mul_(25.0)
        return xb

    snapshots = _Snapshots()
    result = Trainer(TrainConfig(epochs=6, batch_size=50, patience=None, seed=0),
                     batch_transform=blow_up_after_three_epochs, callbacks=[snapshots]).fit(model, x, x_val)
    losses = {r["epoch"]: r["val_loss"] for r in result.history if "val_loss" in r}
    assert result.best_epoch <= 3
    assert losses[6] - losses[result.best_epoch] > 50  # restoring matters by far more than the noise
    best = snapshots.states[result.best_epoch]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, best[key], rtol=0, atol=0)


def test_task_mutual_information_is_out_of_fold() -> None:
    """Mutation caught: the task classifier fitted and scored on the same rows. With 60-d noise independent of
    the task and 120 rows, an in-sample classifier separates the tasks (estimate near log 2); out of fold it
    cannot (estimate near 0), for both probes."""
    rng = np.random.default_rng(0)
    z, s = rng.normal(size=(120, 60)), np.repeat([0, 1], 60)
    for probe in ("linear", "mlp"):
        assert task_mutual_information(z, s, probe=probe) < 0.1, probe


def _implicit_fit(tmp_path, epochs: int = 2):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    data = Dataset("toy", rng.normal(size=(300, 3)).astype(np.float32), split=(0.6, 0.2, 0.2))
    return fit(data, likelihood="gaussian", prior="implicit", latent_dim=2, hidden=(16,), importance_samples=5,
               train=TrainConfig(epochs=epochs, batch_size=50, seed=0),
               prior_kwargs={"ratio_hidden": (16,), "ratio_epochs": 2, "normaliser_samples": 2000})


def test_trained_model_scores_and_evaluation_subtract_log_z(tmp_path) -> None:
    """Mutations caught: log Z dropped, or added instead of subtracted, in ``TrainedModel.score_samples`` and
    ``TrainedModel.evaluate``. log Z is set to a known non-zero value so the sign and presence both show."""
    trained, _ = _implicit_fit(tmp_path)
    prior = trained.model.prior
    prior.log_z.fill_(1.25)
    x = np.random.default_rng(3).normal(size=(20, 3)).astype(np.float32)
    noise = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    raw = trained.score_samples(x, n_samples=5, normalised=False, noise=noise)
    normalised = trained.score_samples(x, n_samples=5, noise=noise)
    np.testing.assert_allclose(normalised, raw - 1.25, rtol=0, atol=1e-9)
    metrics = trained.evaluate(x, n_samples=5)
    assert metrics["log_normaliser"] == 1.25
    assert metrics["test_log_likelihood_normalised"] == pytest.approx(metrics["test_log_likelihood"] - 1.25, abs=1e-9)


def test_trainer_selects_epochs_on_the_normalised_bound(tmp_path) -> None:
    """The validation loss that early stopping compares is the raw one plus log Z (the normalised negative bound);
    the raw value is kept beside it. Mutation caught: selection on the unnormalised bound."""
    _, summary = _implicit_fit(tmp_path, epochs=3)
    records = [r for r in summary["history"] if "val_loss" in r]
    for r in records:
        assert r["log_normaliser"] != 0.0
        assert r["val_loss"] == pytest.approx(r["val_loss_raw"] + r["log_normaliser"], abs=1e-9)
    assert summary["best_val_loss"] == pytest.approx(min(r["val_loss"] for r in records))


def test_chapter4_run_subtracts_log_z(monkeypatch) -> None:
    """Mutation caught: log Z dropped or added in the chapter-4 experiment's normalised columns."""
    from vaekit.experiments import log_normaliser
    from vaekit.experiments.chapter4 import train_one
    from vaekit.experiments.targets import TARGETS

    monkeypatch.setattr(log_normaliser, "ANNEALING_STEPS", 30)  # the estimate's wiring, not its accuracy (tests of its own)

    config = next(c for c in TARGETS["figure-4.1"].runs("quick") if c["method"] == "implicit")
    config.update(epochs=2, warmup=1, importance_samples=[3], ratio_epochs=1)
    metrics = train_one(config)
    assert metrics["log_normaliser"] is not None and metrics["log_normaliser"] != 0.0
    assert metrics["test_ll_normalised_k3"] == pytest.approx(metrics["test_ll_k3"] - metrics["log_normaliser"],
                                                             abs=1e-9)
    assert metrics["log_normaliser_ess"] > 0 and "log_normaliser_stderr" in metrics
    # the AIS estimate beside it (its own columns; mutation caught: the importance estimate subtracted instead)
    assert metrics["log_normaliser_annealed"] != metrics["log_normaliser"]
    assert metrics["test_ll_normalised_annealed_k3"] == pytest.approx(
        metrics["test_ll_k3"] - metrics["log_normaliser_annealed"], abs=1e-9)
    assert 0 < metrics["log_normaliser_annealed_ess"] <= 500


def test_chapter5_run_subtracts_log_z(data_dir, monkeypatch) -> None:
    """Mutation caught: log Z dropped or added in the chapter-5 experiment (faces: the mean over tasks), or the
    importance-sampled estimate subtracted in the AIS column."""
    from vaekit.experiments import log_normaliser
    from vaekit.experiments.chapter5 import QUICK, train_one

    monkeypatch.setattr(log_normaliser, "ANNEALING_STEPS", 30)  # the estimate's wiring, not its accuracy
    config = {**QUICK, "dataset": "freyfaces+olivetti", "method": "proposed", "seed": 0, "epochs": 1,
              "ratio_epochs": 1, "importance_samples": 2, "max_rows": 120, "checkpoints": [], "tsne": False}
    metrics = train_one(config)
    assert metrics["log_normaliser"] is not None and metrics["log_normaliser"] != 0.0
    assert metrics["test_log_likelihood_normalised"] == pytest.approx(
        metrics["test_log_likelihood"] - metrics["log_normaliser"], abs=1e-9)
    assert metrics["log_normaliser_annealed"] != metrics["log_normaliser"]
    assert 0 < metrics["log_normaliser_annealed_ess"] <= 500 and "log_normaliser_annealed_reliable" in metrics
    assert metrics["test_log_likelihood_normalised_annealed"] == pytest.approx(
        metrics["test_log_likelihood"] - metrics["log_normaliser_annealed"], abs=1e-9)


def test_likelihood_head_options_change_the_density_as_documented() -> None:
    """Mutations caught (mutmut survivors of likelihoods.py): the Gaussian's variance floor ignored or subtracted,
    ``bounded_mean`` ignored, the Student-t nu head not starting at ``nu_init``, the ``min_log_variance``
    diagnostic mis-scaled."""
    h = torch.randn(5, 4)
    plain = make_likelihood("gaussian", 4, 3)
    floored = make_likelihood("gaussian", 4, 3, variance_floor=0.25)
    floored.load_state_dict(plain.state_dict())
    var = plain(h).base_dist.scale.pow(2)
    torch.testing.assert_close(floored(h).base_dist.scale.pow(2), var + 0.25)
    raw = LOG_SCALE_BOUND * torch.tanh(plain.log_variance(h) / LOG_SCALE_BOUND)
    torch.testing.assert_close(var, raw.exp())
    diagnostics = plain.diagnostics(plain(h))
    torch.testing.assert_close(diagnostics["min_log_variance"], raw.min().detach())
    for name in ("gaussian", "student-t"):
        bounded = make_likelihood(name, 4, 3, bounded_mean=True)
        mean = bounded(h).base_dist.loc
        torch.testing.assert_close(mean, torch.sigmoid(bounded.mean(h)))
    t_head = make_likelihood("student-t", 4, 3, nu_init=7.0, nu_min=0.5)
    nu_at_zero = t_head(torch.zeros(1, 4)).base_dist.df
    torch.testing.assert_close(nu_at_zero, torch.full_like(nu_at_zero, 7.0))
    default_nu = make_likelihood("student-t", 4, 3)(torch.zeros(1, 4)).base_dist.df
    torch.testing.assert_close(default_nu, torch.full_like(default_nu, 10.0))  # the documented default nu_init


def test_bernoulli_support_check_accepts_binary_and_refuses_the_rest() -> None:
    """Mutations caught: the 0/1 support test of the Bernoulli likelihood widened or narrowed."""
    from vaekit.errors import DataError

    head = make_likelihood("bernoulli", 4, 3)
    head.check_data(torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
    for bad in (0.5, 2.0, -1.0):
        with pytest.raises(DataError, match="binary"):
            head.check_data(torch.tensor([[0.0, 1.0, bad]]))
