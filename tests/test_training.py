"""Trainer: early stopping with restore, divergence policies, warm-up, determinism, the prior phase hook."""

import math

import numpy as np
import pytest
import torch

from vaekit import VAE, Trainer, TrainConfig, elbo
from vaekit.errors import ConfigError


def _data(n=200, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n // 4, d, generator=g)


def small_vae(likelihood="gaussian", **kw):
    torch.manual_seed(0)
    return VAE(3, 2, likelihood=likelihood, hidden=(16,), **kw)


def test_history_records_losses_and_gaussian_variance_diagnostic():
    x, v = _data()
    result = Trainer(TrainConfig(epochs=3, batch_size=50)).fit(small_vae(), x, v)
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    for r in result.history:
        assert {"train_loss", "val_loss", "seconds", "min_log_variance"} <= set(r)
        assert math.isfinite(r["train_loss"]) and math.isfinite(r["min_log_variance"])
    assert result.history[-1]["seconds"] >= result.history[0]["seconds"]


def test_early_stopping_restores_best_weights():
    x, v = _data()
    model = small_vae()
    snapshots = {}
    record_val = lambda epoch, m, rec: snapshots.__setitem__(epoch, float(-elbo(m, v).mean()))  # noqa: E731
    # lr so large that validation loss gets worse after a few epochs
    result = Trainer(TrainConfig(epochs=40, batch_size=20, lr=0.05, patience=3, seed=1),
                     callbacks=[record_val]).fit(model, x, v)
    losses = [r["val_loss"] for r in result.history if "val_loss" in r]
    assert result.best_epoch == 1 + losses.index(min(losses))
    assert result.best_val_loss == min(losses)
    if result.stopped_early:
        assert result.epochs_run == result.best_epoch + 3
    torch.manual_seed(123)
    # the restored weights give the best epoch's validation loss (up to the ELBO's sampling noise)
    assert abs(float(-elbo(model, v).mean()) - result.best_val_loss) < 0.5


class _NaNAfter:
    """Batch transform that poisons the data from a given epoch on."""

    def __init__(self, epoch, batches_per_epoch):
        self.calls, self.limit = 0, epoch * batches_per_epoch

    def __call__(self, xb, generator):
        self.calls += 1
        return xb * float("nan") if self.calls > self.limit else xb


def test_divergence_stops_marks_epoch_and_keeps_finite_weights():
    x, v = _data()
    model = small_vae()
    result = Trainer(TrainConfig(epochs=10, batch_size=50), batch_transform=_NaNAfter(2, 4)).fit(model, x, v)
    assert result.diverged and result.diverged_epoch == 3
    assert result.epochs_run == 3
    assert result.history[-1]["event"] == "diverged"
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert math.isfinite(result.best_val_loss)


def test_rollback_policy_restores_last_good_state_and_lowers_lr():
    x, v = _data()
    model = small_vae()
    transform = _NaNAfter(2, 4)
    cfg = TrainConfig(epochs=6, batch_size=50, on_divergence="rollback", max_rollbacks=2)
    result = Trainer(cfg, batch_transform=transform).fit(model, x, v)
    events = [r.get("event") for r in result.history if "event" in r]
    assert events == ["rollback", "rollback", "diverged"]
    assert result.rollbacks == 2 and result.diverged
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_same_seed_same_result_and_different_seed_differs():
    x, v = _data()
    runs = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        model = VAE(3, 2, hidden=(16,))
        runs.append(Trainer(TrainConfig(epochs=3, batch_size=50, seed=seed)).fit(model, x, v).history[-1]["val_loss"])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_warmup_weight_ramps_linearly():
    x, v = _data()
    result = Trainer(TrainConfig(epochs=4, batch_size=50, warmup_epochs=4)).fit(small_vae(), x, v)
    assert [r["kl_weight"] for r in result.history] == [0.25, 0.5, 0.75, 1.0]


def test_prior_auxiliary_phase_runs_each_epoch_and_is_excluded_from_vae_optimiser():
    x, v = _data()
    model = small_vae()
    extra = torch.nn.Parameter(torch.zeros(1))
    calls = []
    model.prior.auxiliary_parameters = lambda: [extra]
    model.prior.fit_auxiliary = lambda tx, ts: calls.append(len(tx)) or {"ratio_loss": 0.5}
    model.prior.register_parameter("extra", extra)
    result = Trainer(TrainConfig(epochs=2, batch_size=50)).fit(model, x, v)
    assert calls == [200, 200]
    assert all(r["ratio_loss"] == 0.5 for r in result.history)


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(batch_size=0), dict(lr=0.0), dict(on_divergence="x"),
                                 dict(patience=0)])
def test_bad_train_config(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def test_student_t_trains_with_task_conditioning():
    x, v = _data()
    s, sv = torch.arange(200) % 3, torch.arange(50) % 3
    model = VAE(3, 2, likelihood="student-t", hidden=(16,), n_tasks=3)
    result = Trainer(TrainConfig(epochs=2, batch_size=50)).fit(model, x, v, s, sv)
    assert not result.diverged and math.isfinite(result.best_val_loss)


def test_trainer_matches_a_plain_pytorch_loop():
    """The optimised loop (index batching, fused Adam, one finiteness check per step) changes no result: three
    epochs give the same per-epoch losses and weights as the textbook loop with unfused Adam, to float tolerance."""
    x = (torch.rand(300, 12, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    reference, optimised = small_bernoulli_vae(), small_bernoulli_vae()
    optimised.load_state_dict(reference.state_dict())
    torch.manual_seed(7)  # the reparameterisation noise
    result = Trainer(TrainConfig(epochs=3, batch_size=50, lr=1e-3, patience=None, seed=3)).fit(optimised, x)

    optimiser = torch.optim.Adam(reference.parameters(), lr=1e-3, foreach=False)
    generator = torch.Generator().manual_seed(3)
    torch.manual_seed(7)
    losses = []
    for _ in range(3):
        reference.train()
        total = 0.0
        for idx in torch.randperm(len(x), generator=generator).split(50):
            loss = reference.loss(x[idx], None, 1.0, 1).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(x))
    assert [r["train_loss"] for r in result.history] == pytest.approx(losses, rel=1e-5)
    for a, b in zip(reference.parameters(), optimised.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def small_bernoulli_vae():
    torch.manual_seed(0)
    return VAE(12, 3, likelihood="bernoulli", hidden=(16, 16))


def test_dropout_keeps_expected_value_and_is_identity_in_eval():
    from vaekit.nets import Dropout

    layer = Dropout(0.3)
    x = torch.ones(200_000)
    y = layer(x)
    kept = (y > 0).float().mean()
    assert abs(float(kept) - 0.7) < 0.005  # drop probability p = 0.3
    assert torch.allclose(y[y > 0], torch.full_like(y[y > 0], 1 / 0.7))  # inverted scaling keeps E[y] = x
    layer.eval()
    assert torch.equal(layer(x), x)
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))


def test_device_names_are_checked():
    from vaekit.training import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("prior", ["standard", "vamp", "implicit"])
def test_training_and_evaluation_on_cuda_match_the_cpu_path(prior):
    from vaekit.data.images import dynamic_binarise
    from vaekit.evaluation import log_likelihood

    x = torch.rand(200, 12, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = VAE(12, 2, likelihood="bernoulli", prior=prior, hidden=(16,),
                prior_kwargs={"n_components": 10} if prior == "vamp" else {})
    result = Trainer(TrainConfig(epochs=2, batch_size=50, patience=None, device="cuda"),
                     batch_transform=dynamic_binarise).fit(model, x, (x[:50] > 0.5).float())
    assert next(model.parameters()).is_cuda and not result.diverged
    ll = log_likelihood(model, (x[:20] > 0.5).float(), n_samples=5)
    assert ll.device.type == "cpu" and torch.isfinite(ll).all()
    assert model.sample(3).shape == (3, 12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_model_trained_on_cuda_scores_and_detects_with_default_arguments():
    """Reviewer-found on an H200: score_samples' encoder probe was built on the CPU, so every seeded score of a
    CUDA model failed, and VAEDetector(device="cuda") failed in its default trimmed refit."""
    import vaekit
    from vaekit import VAEDetector

    x = np.random.default_rng(0).normal(size=(300, 4))
    for prior in ("standard", "implicit"):
        model, _ = vaekit.fit(x, latent_dim=2, hidden=(8,), prior=prior, device="cuda", epochs=2,
                              prior_kwargs={"ratio_epochs": 1} if prior == "implicit" else {})
        assert np.isfinite(model.score_samples(x[:5], n_samples=5)).all()
        if prior == "implicit":
            assert model.reestimate_log_normaliser(x[:50], method="importance") is not None
    detector = VAEDetector(device="cuda", latent_dim=2, hidden=(8,), epochs=2, random_state=0).fit(x)
    assert detector.labels_.shape == (300,)


def test_each_rollback_multiplies_the_learning_rate_by_the_factor(monkeypatch):
    """Mutation caught (issue 13's mutation run): the rollback setting lr to the factor, or dividing by it."""
    from vaekit import training

    made = []
    monkeypatch.setattr(training, "adam", lambda params, lr: made.append(torch.optim.Adam(params, lr=lr)) or made[-1])
    x, v = _data()
    cfg = TrainConfig(epochs=6, batch_size=50, lr=2e-3, on_divergence="rollback", max_rollbacks=1,
                      rollback_lr_factor=0.3)
    result = Trainer(cfg, batch_transform=_NaNAfter(2, 4)).fit(small_vae(), x, v)
    events = [r for r in result.history if "event" in r]
    assert [r["event"] for r in events] == ["rollback", "diverged"]
    assert all(isinstance(r["epoch"], int) and 1 <= r["epoch"] <= 6 for r in events)
    assert [g["lr"] for g in made[0].param_groups] == [pytest.approx(2e-3 * 0.3)] * len(made[0].param_groups)


def test_a_non_finite_validation_bound_rolls_back_and_training_recovers(monkeypatch):
    """The second divergence check (finite training steps, non-finite validation bound) rolls back like the first,
    and a run that recovers is not marked diverged. Mutations caught (issue 13's mutation run): the model not
    passed to the rollback; ``events or ...`` marking any run with a rollback as diverged."""
    from vaekit import training

    real, calls = training.elbo, []

    def elbo_inf_once(model, x, s=None):
        calls.append(1)
        values = real(model, x, s)
        return values * math.inf if len(calls) == 2 else values

    monkeypatch.setattr(training, "elbo", elbo_inf_once)
    x, v = _data()
    result = Trainer(TrainConfig(epochs=4, batch_size=50, on_divergence="rollback")).fit(small_vae(), x, v)
    assert [(r["epoch"], r["event"]) for r in result.history if "event" in r] == [(2, "rollback")]
    assert not result.diverged and result.rollbacks == 1 and result.best_epoch in (1, 3, 4)


def test_when_every_epoch_diverges_the_run_is_diverged_with_its_initial_weights(monkeypatch):
    """Rollbacks to the initial state until the epochs run out mark the run diverged at its first event; with the
    stop policy a run whose first validation bound is non-finite keeps its initial weights (not the ones the
    failed epoch trained). Mutations caught: no initial good state, the end-of-run divergence marking altered or
    skipped, and a shallow copy of the initial best state."""
    from vaekit import training

    x, v = _data()
    model = small_vae()
    result = Trainer(TrainConfig(epochs=3, batch_size=50, on_divergence="rollback", max_rollbacks=5),
                     batch_transform=_NaNAfter(0, 4)).fit(model, x, v)
    assert [r["event"] for r in result.history] == ["rollback"] * 3
    assert result.diverged and (result.diverged_epoch, result.epochs_run, result.best_epoch) == (1, 3, 0)

    model = small_vae()
    initial = {k: t.clone() for k, t in model.state_dict().items()}
    monkeypatch.setattr(training, "elbo", lambda model, x, s=None: torch.full((len(x),), -math.inf))
    result = Trainer(TrainConfig(epochs=3, batch_size=50)).fit(model, x, v)
    assert result.diverged and result.diverged_epoch == 1
    assert all(torch.equal(t, initial[k]) for k, t in model.state_dict().items())


def test_ctrl_c_keeps_the_best_weights_and_says_interrupted():
    """A KeyboardInterrupt during training ends it cleanly: ``interrupted`` is True and the best epoch's weights
    are restored (mutation caught: ``interrupted`` set to None)."""
    x, v = _data()
    seen = {}

    def stop_at_three(epoch, model, record):
        seen[epoch] = {k: t.clone() for k, t in model.state_dict().items()}
        if epoch == 3:
            raise KeyboardInterrupt

    model = small_vae()
    result = Trainer(TrainConfig(epochs=10, batch_size=50, lr=1e-2), callbacks=[stop_at_three]).fit(model, x, v)
    assert result.interrupted is True and result.epochs_run == 3
    best = seen[result.best_epoch]
    assert all(torch.equal(t, best[k]) for k, t in model.state_dict().items())


def test_a_finite_loss_with_a_non_finite_gradient_is_a_divergence():
    """Both the loss and the gradient norm must be finite for a step to count (mutation caught: ``|`` for
    ``&``); the poisoned steps are skipped, so the weights stay finite."""
    x, v = _data()
    model = small_vae()
    calls = []
    # poison only the gradient of epoch 1's last batch (200 rows, batches of 50): its loss is finite
    next(model.parameters()).register_hook(lambda grad: calls.append(1) or (grad * math.nan if len(calls) == 4 else grad))
    result = Trainer(TrainConfig(epochs=3, batch_size=50)).fit(model, x, v)
    assert result.history == [{"epoch": 1, "event": "diverged"}]  # caught there, not one validation pass later
    assert result.diverged and result.diverged_epoch == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_epoch_diagnostics_are_row_weighted_means_and_extremes():
    """The likelihood's per-batch diagnostics enter the history as the epoch's row-weighted mean (mutation caught:
    the sum started at 1 instead of 0) — with the Student-t head's nu fixed at nu_init, mean nu is nu_init."""
    x, v = _data()
    model = small_vae("student-t")
    torch.nn.init.zeros_(model.likelihood.raw_nu.weight)
    model.likelihood.raw_nu.weight.requires_grad_(False)
    model.likelihood.raw_nu.bias.requires_grad_(False)
    result = Trainer(TrainConfig(epochs=1, batch_size=64)).fit(model, x, v)  # 200 rows: batches of 64, 64, 64, 8
    assert result.history[0]["mean_nu"] == pytest.approx(10.0, abs=1e-5)


@pytest.mark.parametrize("options, ok", [
    (dict(hidden=(1,)), True), (dict(hidden=(0,)), False), (dict(dropout=0.99), True), (dict(dropout=1.0), False),
])
def test_model_options_accept_their_boundary_values(options, ok):
    """The smallest legal width is 1 and dropout lies in [0, 1) (mutations caught: ``<= 1``, ``<= 1.0``)."""
    if ok:
        VAE(3, 2, **options)
    else:
        with pytest.raises(ConfigError):
            VAE(3, 2, **options)


def test_patience_of_one_stops_after_one_epoch_without_improvement():
    """patience = 1 is legal (mutation caught: ``< 2``) and means: stop at the first epoch that does not improve."""
    x, v = _data()
    result = Trainer(TrainConfig(epochs=50, batch_size=50, patience=1, lr=3e-2)).fit(small_vae(), x, v)
    improved = [r["epoch"] for i, r in enumerate(result.history)
                if r["val_loss"] < min([float("inf")] + [q["val_loss"] for q in result.history[:i]])]
    assert result.stopped_early and result.epochs_run == improved[-1] + 1


def test_model_input_checks_name_the_problem():
    """VAE.check_input refuses a wrong shape, an empty matrix and non-finite rows, naming those rows (mutations
    caught: ``and`` for ``or`` in the shape check, the empty check on the wrong axis, the non-finite rows' indices
    lost or inverted)."""
    from vaekit.errors import DataError

    model = small_vae()
    for bad, message in ((torch.zeros(3), r"3 columns .* got shape \(3,\)"), (torch.zeros(4, 2), "got shape \\(4, 2\\)"),
                         (torch.zeros(0, 3), "no rows")):
        with pytest.raises(DataError, match=message):
            model.check_input(bad)
    x = torch.zeros(6, 3)
    x[1, 2], x[4, 0] = math.nan, math.inf
    with pytest.raises(DataError, match=r"rows \[1, 4\]"):
        model.check_input(x)
    model.check_input(torch.zeros(1, 3))  # one row is data


def test_train_result_dict_is_strict_json():
    """Non-finite losses become null, not Infinity (mutation caught: the finiteness check skipped)."""
    import json

    from vaekit.training import TrainResult, finite_or_none

    assert finite_or_none(math.inf) is None and finite_or_none(math.nan) is None and finite_or_none(2) == 2.0
    d = TrainResult().to_dict()
    assert d["best_val_loss"] is None
    json.dumps(d, allow_nan=False)


def test_model_from_a_config_dict_rebuilds_it_and_refuses_unknown_options():
    """Mutations caught: the dict passed to the model unparsed, unknown options let through."""
    from vaekit.model import ModelConfig

    model = VAE.from_config({"x_dim": 3, "latent_dim": 2, "hidden": [8], "likelihood": "student-t"})
    assert model.config == ModelConfig(x_dim=3, latent_dim=2, hidden=(8,), likelihood="student-t")
    with pytest.raises(ConfigError, match="nonsense"):
        ModelConfig.from_dict({"x_dim": 3, "latent_dim": 2, "nonsense": 1})


def test_trainer_fit_checks_its_rows():
    """Reviewer-found: Trainer.fit took float64 tensors and NumPy arrays to raw torch errors, the wrong width to a
    matmul error, and NaN rows to a "divergence"."""
    from vaekit.errors import DataError

    x, v = _data()
    cfg = TrainConfig(epochs=1, batch_size=50, patience=None)
    assert not Trainer(cfg).fit(small_vae(), x.double().numpy(), v.double()).diverged  # converted to float32
    with pytest.raises(DataError, match="expected rows of"):
        Trainer(cfg).fit(small_vae(), x[:, :-1], v)
    bad = x.clone()
    bad[3, 0] = float("nan")
    with pytest.raises(DataError, match=r"train_x: 1 rows contain NaN .*\[3\]"):
        Trainer(cfg).fit(small_vae(), bad, v)
    with pytest.raises(ConfigError, match="n_samples must be >= 1"):
        TrainConfig(n_samples=0)
