"""log Z of the implicit prior by annealed importance sampling: exact where the start and the target coincide,
the known value where log Z is known (a Gaussian ratio, a trained 2-d prior integrated on a grid), and better than
importance sampling where the proposal is off; reachable from the prior, TrainedModel and ``vaekit evaluate``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Independent, Normal

from vaekit.cli import main
from vaekit.data import Dataset
from vaekit.errors import ConfigError
from vaekit.fitting import fit
from vaekit.priors import ImplicitOptimalPrior, standard_normal
from vaekit.priors.annealed import annealed_log_normaliser, defensive_mixture, sigmoid_schedule
from vaekit.priors.mixture import DiagonalGaussianMixture
from vaekit.priors.normaliser import estimate_log_normaliser
from vaekit.trained import TrainedModel
from vaekit.training import TrainConfig


def posteriors(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return 0.8 * torch.randn(n, dim, generator=g), 0.2 + 0.2 * torch.rand(n, dim, generator=g)


def mixture_log_ratio(loc: torch.Tensor, scale: torch.Tensor, shift: float = 0.0):  # type: ignore[no-untyped-def]
    """T(z) = log q(z) + shift - log N(z; 0, I) for q the uniform mixture of the posteriors: log Z = shift."""
    q = DiagonalGaussianMixture(Categorical(logits=torch.zeros(len(loc))), Independent(Normal(loc, scale), 1))
    standard = standard_normal(loc.shape[1], loc)
    return lambda z: q.log_prob(z) + shift - standard.log_prob(z)


def test_sigmoid_schedule_runs_from_zero_to_one_increasing() -> None:
    b = sigmoid_schedule(50)
    assert len(b) == 51 and b[0] == 0.0 and b[-1] == 1.0 and bool((b.diff() > 0).all())


def test_every_weight_is_one_when_the_target_is_the_start() -> None:
    """T = log r - log N for r the defensive mixture the path starts from: f_1 = f_0, every increment is 0, so
    log Z = 0 and all chains count fully, whatever the transitions do."""
    loc, scale = posteriors(50, 6, seed=0)
    start = defensive_mixture(loc, scale, None, defensive=0.2)
    standard = standard_normal(6, loc)
    estimate = annealed_log_normaliser(lambda z: start.log_prob(z) - standard.log_prob(z), 6, loc, scale,
                                       n_chains=64, n_steps=20, defensive=0.2)
    assert estimate.proposal == "annealed-defensive-mixture"
    assert abs(estimate.log_z) < 1e-4 and estimate.ess == pytest.approx(64, rel=1e-4)


def test_known_log_z_from_the_standard_normal_in_two_dimensions() -> None:
    """T = log N(z; m, s^2) - log N(z; 0, I) + c has Z = e^c; AIS from N(0, I) (no posteriors) finds c."""
    m, s, c = torch.tensor([1.0, -0.5]), 0.3, 1.3
    target, standard = Independent(Normal(m, s), 1), standard_normal(2)
    estimate = annealed_log_normaliser(lambda z: target.log_prob(z) - standard.log_prob(z) + c, 2,
                                       n_chains=300, n_steps=200, seed=1)
    assert estimate.proposal == "annealed-standard-normal"
    assert estimate.log_z == pytest.approx(c, abs=0.05)
    assert estimate.reliable and estimate.ess > 200


def test_annealing_recovers_log_z_where_importance_sampling_is_off() -> None:
    """The proposal's posteriors are shifted and too wide for the true ratio in 20 dimensions: importance sampling
    has few effective samples and misses log Z = 2 by far more than AIS from the same mixture does."""
    loc, scale = posteriors(40, 20, seed=3)
    g = torch.Generator().manual_seed(4)
    wrong_loc, wrong_scale = loc + 0.15 * torch.randn(loc.shape, generator=g), 1.3 * scale
    t = mixture_log_ratio(loc, scale, shift=2.0)
    importance = estimate_log_normaliser(t, 20, wrong_loc, wrong_scale, n_samples=2000, seed=0)
    annealed = annealed_log_normaliser(t, 20, wrong_loc, wrong_scale, n_chains=200, n_steps=100, seed=0)
    assert abs(annealed.log_z - 2.0) < 0.15, annealed
    assert abs(importance.log_z - 2.0) > 2 * abs(annealed.log_z - 2.0), (importance, annealed)
    assert annealed.ess / annealed.n_samples > importance.ess / importance.n_samples


def test_the_estimate_is_seeded() -> None:
    loc, scale = posteriors(20, 3, seed=5)
    t = mixture_log_ratio(loc, scale, shift=0.5)
    runs = [annealed_log_normaliser(t, 3, loc, scale, n_chains=16, n_steps=10, seed=s) for s in (7, 7, 8)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_the_prior_rejects_an_unknown_method() -> None:
    with pytest.raises(ConfigError, match="normaliser"):
        ImplicitOptimalPrior(2, normaliser="exact")
    with pytest.raises(ConfigError, match="method"):
        ImplicitOptimalPrior(2).estimate_log_normaliser(method="exact")


@pytest.fixture(scope="module")
def trained_2d(tmp_path_factory):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 0.3, (150, 3)), rng.normal(2, 0.3, (150, 3))]).astype(np.float32)
    out = tmp_path_factory.mktemp("implicit")
    trained, _ = fit(Dataset("toy", x, split=(0.6, 0.2, 0.2)), likelihood="gaussian", prior="implicit",
                     latent_dim=2, hidden=(16,), importance_samples=5, out=out,
                     train=TrainConfig(epochs=4, batch_size=50, seed=0),
                     prior_kwargs={"ratio_hidden": (16,), "ratio_epochs": 3})
    return trained, out, x


def grid_log_z(prior: ImplicitOptimalPrior) -> float:
    """log of the integral of N(z) exp T(z) over a fine 2-d grid (the exact value up to quadrature error)."""
    grid = torch.linspace(-8, 8, 641)
    z = torch.cartesian_prod(grid, grid)
    with torch.no_grad():
        prior.ratio.eval()
        log_f = standard_normal(2).log_prob(z) + prior.ratio(z)
    return float(torch.logsumexp(log_f.double(), 0) + 2 * math.log(float(grid[1] - grid[0])))


def test_trained_prior_log_z_matches_the_grid_integral(trained_2d) -> None:  # type: ignore[no-untyped-def]
    """On a trained classifier T (loaded from its checkpoint), AIS from N(0, I) and from the training rows'
    posteriors agree with the quadrature of N(z) exp T(z)."""
    _, out, x = trained_2d
    loaded = TrainedModel.load(out)
    exact = grid_log_z(loaded.model.prior)
    alone = loaded.model.prior.estimate_log_normaliser(200, method="annealed", seed=0, n_steps=200)
    assert alone.proposal == "annealed-standard-normal"
    assert alone.log_z == pytest.approx(exact, abs=0.05)
    metrics = loaded.reestimate_log_normaliser(x[:180], seed=0, n_samples=200, n_steps=200)
    assert metrics is not None and metrics["log_normaliser_proposal"] == "annealed-defensive-mixture"
    assert metrics["log_normaliser"] == pytest.approx(exact, abs=0.05)
    assert loaded.model.prior.log_normaliser() == metrics["log_normaliser"]  # used from now on


def test_reestimated_log_z_shifts_the_normalised_score(trained_2d) -> None:  # type: ignore[no-untyped-def]
    _, out, x = trained_2d
    loaded = TrainedModel.load(out)
    raw = loaded.score_samples(x[:20], n_samples=4, normalised=False)
    metrics = loaded.reestimate_log_normaliser(method="annealed", seed=1, n_samples=20, n_steps=20)
    normalised = loaded.score_samples(x[:20], n_samples=4)
    np.testing.assert_allclose(raw - normalised, metrics["log_normaliser"], rtol=0, atol=1e-9)


def test_evaluate_cli_reestimates_log_z(trained_2d, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    trained, out, x = trained_2d
    data = tmp_path / "rows.npz"
    np.savez(data, x=x)
    code = main(["evaluate", str(out), "--data", str(data), "--importance-samples", "3", "--log-normaliser",
                 "annealed", "--json", "--no-progress"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and result["log_normaliser_method"] == "annealed"
    assert result["log_normaliser"] == pytest.approx(grid_log_z(trained.model.prior), abs=0.05)
    assert result["test_log_likelihood_normalised"] == pytest.approx(
        result["test_log_likelihood"] - result["log_normaliser"], abs=1e-6)


def test_evaluate_cli_refuses_to_reestimate_a_normalised_prior(capsys, tmp_path) -> None:
    rng = np.random.default_rng(1)
    data = tmp_path / "rows.npz"
    np.savez(data, x=rng.normal(size=(300, 3)).astype(np.float32))
    assert main(["fit", "--data", str(data), "--likelihood", "gaussian", "--latent-dim", "2", "--hidden", "8",
                 "--epochs", "1", "--importance-samples", "2", "--out", str(tmp_path / "m"), "--json"]) == 0
    capsys.readouterr()
    code = main(["evaluate", str(tmp_path / "m"), "--data", str(data), "--log-normaliser", "annealed"])
    assert code != 0 and "normalised" in capsys.readouterr().err


def test_annealed_samples_follow_a_known_target():
    """T(z) = log N(z; m, s^2 I) - log N(z; 0, I) makes N(z) exp T(z) = N(m, s^2 I): the resampled AIS states
    have its mean and spread (a 2-d shifted, narrower Gaussian; mutation caught: the chains' starting states
    returned instead of their final ones)."""
    from vaekit.priors.annealed import annealed_samples

    mean, sd = torch.tensor([1.5, -1.0]), 0.5
    target, base = Independent(Normal(mean, sd), 1), standard_normal(2)

    def log_ratio(z: torch.Tensor) -> torch.Tensor:
        return target.log_prob(z) - base.log_prob(z)

    z = annealed_samples(log_ratio, 2, 2000, n_chains=2000, n_steps=200, seed=0)
    assert z.shape == (2000, 2)
    torch.testing.assert_close(z.mean(0), mean, atol=0.08, rtol=0)
    torch.testing.assert_close(z.std(0), torch.full((2,), sd), atol=0.08, rtol=0)


def test_a_loaded_implicit_prior_model_samples(tmp_path):
    """Reviewer-found: sample() of a model loaded from a checkpoint failed (the training posteriors it samples
    ancestrally from are not saved); it now samples N(z) exp T(z) by AIS."""
    x = np.random.default_rng(0).normal(size=(200, 4))
    fit(Dataset("t", x), prior="implicit", latent_dim=2, hidden=(8,), importance_samples=5,
        train=TrainConfig(epochs=2, patience=None), prior_kwargs={"ratio_epochs": 1}, out=tmp_path / "run")
    loaded = TrainedModel.load(tmp_path / "run")
    torch.manual_seed(0)
    rows = loaded.sample(5)
    assert rows.shape == (5, 4) and np.isfinite(rows).all()


def test_evaluate_reestimates_log_z_by_importance_from_the_training_split(capsys, tmp_path) -> None:
    """Reviewer-found: the proposal came from the *labelled* rows, so an unlabelled file fell back to N(0, I)."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-2, 0.3, (150, 3)), rng.normal(2, 0.3, (150, 3))]).astype(np.float32)
    np.savez(tmp_path / "rows.npz", x=x)  # no labels
    assert main(["fit", "--data", str(tmp_path / "rows.npz"), "--likelihood", "gaussian", "--prior", "implicit",
                 "--latent-dim", "2", "--hidden", "16", "--epochs", "2", "--batch-size", "50", "--ratio-epochs", "1",
                 "--importance-samples", "2", "--out", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m"), "--log-normaliser", "importance", "--importance-samples", "2",
                 "--json", "--no-progress"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["log_normaliser_proposal"] == "defensive-mixture"
