"""Trainer: early stopping with restore, divergence policies, warm-up, determinism, the prior phase hook."""

import math

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


def test_each_rollback_multiplies_the_learning_rate_by_the_factor(monkeypatch):
    """Mutation caught (issue 13's mutation run): the rollback setting lr to the factor, or dividing by it."""
    from vaekit import training

    made = []
    monkeypatch.setattr(training, "adam", lambda params, lr: made.append(torch.optim.Adam(params, lr=lr)) or made[-1])
    x, v = _data()
    cfg = TrainConfig(epochs=6, batch_size=50, lr=2e-3, on_divergence="rollback", max_rollbacks=1,
                      rollback_lr_factor=0.3)
    result = Trainer(cfg, batch_transform=_NaNAfter(2, 4)).fit(small_vae(), x, v)
    assert [r.get("event") for r in result.history if "event" in r] == ["rollback", "diverged"]
    assert [g["lr"] for g in made[0].param_groups] == [pytest.approx(2e-3 * 0.3)] * len(made[0].param_groups)
