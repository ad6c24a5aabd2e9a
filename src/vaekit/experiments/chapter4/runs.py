"""Thesis chapter 4, one run: the section-4.5.2 setup per data set, and one training (or timing) run.

Setup (section 4.5.2): gated 500-500 MLPs for encoder and decoder, tanh 500-500 density-ratio estimator with
dropout (keep 0.5) trained 10 epochs per VAE epoch on M = N samples, latent 40 (2 for OneHot), Adam with
mini-batches of 100, L = 1, warm-up over the first 100 epochs, early stopping on the validation ELBO, importance
sampling with 10 samples (1,000 as well in the reports here), VampPrior K = 50 / 500 / 1,000 with clipped
pseudo-inputs. :func:`train_one` and :func:`time_epochs` read nothing but their JSON configuration, so they run in
any worker.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ...data import load_dataset
from ...data.images import head_split
from ...evaluation import log_likelihood
from ...fitting import fit
from ...model import VAE
from ...training import TrainConfig, Trainer
from ..log_normaliser import annealed_normaliser

METHOD_LABELS = {"standard": "Standard VAE", "avb": "AVB", "vamp": "VampPrior", "implicit": "Implicit prior"}

#: per data set: decoder, latent size, VampPrior K and pseudo-input initialisation (the VampPrior authors' values)
DATASETS: dict[str, dict[str, Any]] = {
    "onehot": {"likelihood": "bernoulli", "latent": 2, "vamp_k": 50, "vamp_init": (0.05, 0.01)},
    "mnist": {"likelihood": "bernoulli", "latent": 40, "vamp_k": 500, "vamp_init": (0.05, 0.01)},
    "omniglot": {"likelihood": "bernoulli", "latent": 40, "vamp_k": 1000, "vamp_init": (0.05, 0.01)},
    "freyfaces": {"likelihood": "gaussian", "likelihood_kwargs": {"bounded_mean": True}, "latent": 40,
                  "vamp_k": 500, "vamp_init": (0.8, 0.01)},
    "histopathology": {"likelihood": "gaussian", "likelihood_kwargs": {"bounded_mean": True}, "latent": 40,
                       "vamp_k": 500, "vamp_init": (0.4, 0.05)},
}

#: the thesis's optimisation settings (section 4.5.2)
FULL_TRAIN = {"epochs": 1000, "warmup": 100, "patience": 50, "lr": 5e-4, "importance_samples": [10, 1000],
              "subset": None, "threads": None}


def _prior_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """The prior's options for a run: K and initialisation (VampPrior), the J2 schedule (implicit, AVB)."""
    spec = DATASETS[config["dataset"]]
    if config["method"] == "vamp":
        mean, std = spec["vamp_init"]
        return {"n_components": int(config.get("n_components") or spec["vamp_k"]), "init_mean": mean,
                "init_std": std}
    if config["method"] in ("implicit", "avb"):
        kwargs = {"ratio_epochs": int(config.get("ratio_epochs", 10))}
        if config.get("ratio_batch_size"):
            kwargs["ratio_batch_size"] = int(config["ratio_batch_size"])
        return kwargs
    return {}


def _run_data(config: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Set the run's torch threads; its data set's settings and its data (cut to ``subset`` if given)."""
    if config.get("threads"):
        torch.set_num_threads(int(config["threads"]))
    data = load_dataset(config["dataset"])
    if config.get("subset"):
        data = head_split(data, tuple(config["subset"]))
    return DATASETS[config["dataset"]], data


def time_epochs(config: dict[str, Any]) -> dict[str, Any]:
    """Wall-clock and CPU (process) seconds of each training epoch (VAE step + the prior's phase + validation).

    CPU time is the robust measure on a shared machine: with one torch thread it counts the work this run did,
    not the time it waited for a core.
    """
    spec, data = _run_data(config)
    train, val, _ = data.splits(seed=int(config["seed"]))
    x, v = torch.from_numpy(train.x), torch.from_numpy(val.x)
    torch.manual_seed(int(config["seed"]))
    model = VAE(x.shape[1], spec["latent"], spec["likelihood"], config["method"], (500, 500), gated=True,
                likelihood_kwargs=spec.get("likelihood_kwargs", {}), prior_kwargs=_prior_kwargs(config))
    marks = [(time.perf_counter(), time.process_time())]
    record = lambda epoch, model, rec: marks.append((time.perf_counter(), time.process_time()))
    result = Trainer(TrainConfig(epochs=config["epochs"], lr=config["lr"], patience=None,
                                 warmup_epochs=config["warmup"], seed=int(config["seed"])),
                     batch_transform=data.meta.get("batch_transform"), callbacks=[record]).fit(model, x, v)
    wall, cpu = np.diff([m[0] for m in marks]), np.diff([m[1] for m in marks])
    history = [r for r in result.history if "train_loss" in r]
    return {"n_train": len(x), "epochs_run": len(history), "epoch_seconds": wall.tolist(),
            "epoch_cpu_seconds": cpu.tolist(), "seconds_per_epoch": float(wall.mean()),
            "cpu_seconds_per_epoch": float(cpu.mean()),
            "ratio_seconds_per_epoch": float(np.mean([r.get("ratio_seconds", 0.0) for r in history])),
            "ratio_cpu_seconds_per_epoch": float(np.mean([r.get("ratio_cpu_seconds", 0.0) for r in history])),
            "threads": torch.get_num_threads(), "device": str(next(model.parameters()).device)}


def train_one(config: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one (data set, method, seed) configuration; JSON-ready metrics with a history."""
    spec, data = _run_data(config)
    method = config["method"]
    prior_kwargs = _prior_kwargs(config)
    train = TrainConfig(epochs=config["epochs"], batch_size=100, lr=config["lr"], patience=config.get("patience"),
                        warmup_epochs=config["warmup"], seed=int(config["seed"]), on_divergence="rollback")
    samples = list(config.get("importance_samples") or [10])
    started = time.perf_counter()
    trained, summary = fit(data, likelihood=spec["likelihood"], prior=method, latent_dim=spec["latent"],
                           hidden=(500, 500), importance_samples=samples[0], train=train, gated=True,
                           likelihood_kwargs=spec.get("likelihood_kwargs", {}), prior_kwargs=prior_kwargs)
    history = summary.pop("history")
    metrics: dict[str, Any] = {k: summary.get(k) for k in (
        "n_train", "n_val", "n_test", "best_epoch", "best_val_loss", "epochs_run", "diverged", "rollbacks",
        "train_seconds", "test_elbo_estimate")}
    model = trained.model
    test = data.splits(seed=int(config["seed"]))[2]
    x_test, s_test = trained.prepare(test.x, test.s)
    if model.encoder_has_density:
        normaliser = model.prior.normaliser_metrics()  # log Z, its standard error, ESS (implicit prior only)
        metrics.update(normaliser)
        annealed = annealed_normaliser(model.prior) if normaliser else None
        metrics.update(annealed or {})
        for k in samples:
            ll = float(log_likelihood(model, x_test, s_test, n_samples=k).double().mean())
            metrics[f"test_ll_k{k}"] = ll
            if normaliser:
                metrics[f"test_ll_normalised_k{k}"] = ll - normaliser["log_normaliser"]
            if annealed:
                metrics[f"test_ll_normalised_annealed_k{k}"] = ll - annealed["log_normaliser_annealed"]
    epochs = [r for r in history if "train_loss" in r]
    seconds = np.diff([0.0] + [r["seconds"] for r in epochs])
    metrics["seconds_per_epoch"] = float(np.mean(seconds)) if len(seconds) else None
    metrics["ratio_seconds_per_epoch"] = (float(np.mean([r["ratio_seconds"] for r in epochs]))
                                          if epochs and "ratio_seconds" in epochs[0] else 0.0)
    metrics["history"] = [{k: r[k] for k in ("epoch", "train_loss", "val_loss", "seconds", "ratio_seconds",
                                             "ratio_cpu_seconds", "ratio_accuracy", "ratio_mean_logit") if k in r}
                          for r in epochs]
    if config["dataset"] == "onehot":
        metrics["posterior_samples"] = onehot_posterior_samples(model, n=int(config.get("posterior_samples", 250)))
    metrics["wall_seconds"] = time.perf_counter() - started
    return metrics


@torch.no_grad()
def onehot_posterior_samples(model: Any, n: int = 250) -> list[list[list[float]]]:
    """For each one-hot vector, ``n`` samples of z ~ q(z|x) (Figure 4.1), rounded for compact JSON."""
    model.eval()
    x = torch.eye(4).repeat_interleave(n, 0)
    z = model.encode(x).sample()
    return [np.round(z[i * n:(i + 1) * n].numpy(), 4).tolist() for i in range(4)]
