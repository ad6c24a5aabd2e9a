"""Thesis chapter 5, one run: the compared models (section 5.5.3) and one training + evaluation of a protocol.

Setup (section 5.5.3): latent 40, encoder / decoder / beta-CVAE networks of two tanh layers of 500 with 10% dropout
after the last hidden layer, density-ratio estimator of two tanh layers of 500 with 50% dropout after its last
hidden layer, trained 10 epochs (M = N) per VAE epoch at lr 1e-3; Adam, mini-batches of 100, lr 1e-4, L = 1;
Bernoulli decoders for binarised digits, Gaussian (mean in [0, 1]) for grey images; beta-CVAE with a 40-d zeta and
beta1 = beta2 = 1; VFAE alpha picked per seed from a grid by the validation ELBO; 3-NN on the 100 labelled target
rows; importance sampling with 10 samples. :func:`train_one` reads nothing but its JSON configuration.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ...data import Dataset
from ...data.transfer import multitask_dataset, transfer_dataset
from ...tasks import encode_rows, labelled_rows, model_inputs, representation_metrics
from ...trained import train_vae
from ...training import TrainConfig
from ..log_normaliser import annealed_normaliser
from .checkpoints import checkpoint_callback

METHODS: dict[str, dict[str, Any]] = {
    "vae": {"conditional": False},
    "cvae": {},
    "beta-cvae": {"task_latent_dim": 40},
    "vfae": {},  # mmd_alpha comes from the run's configuration
    "proposed": {"prior": "implicit"},
}
LABELS = {"vae": "VAE", "cvae": "CVAE", "beta-cvae": "β-CVAE", "vfae": "VFAE", "proposed": "Proposed"}
TABLE_METHODS = ("vae", "cvae", "beta-cvae", "vfae", "proposed")


def protocol_data(config: dict[str, Any]) -> Dataset:
    """The run's multi-task data set: a ``SOURCE->TARGET`` pair (target rows chosen by the seed) or faces."""
    name = config["dataset"]
    if "->" in name:
        source, _, target = name.partition("->")
        return transfer_dataset(source, target, seed=int(config["seed"]), max_source=config.get("max_source"),
                                max_val=config.get("max_val"), max_test=config.get("max_test"))
    return multitask_dataset(name.split("+"), max_rows=config.get("max_rows"))


def model_options(config: dict[str, Any], data: Dataset) -> dict[str, Any]:
    """Keyword arguments of :func:`vaekit.trained.train_vae` for the run's method (section 5.5.3)."""
    method = METHODS[config["method"]]
    n_tasks = int(data.s.max()) + 1 if method.get("conditional", True) else 0
    options: dict[str, Any] = {
        "likelihood": "bernoulli" if data.binary else "gaussian",
        "likelihood_kwargs": {} if data.binary else {"bounded_mean": True},
        "latent_dim": 40, "hidden": (500, 500), "activation": "tanh", "dropout": config["dropout"],
        "n_tasks": n_tasks, "prior": method.get("prior", "standard"),
        "task_latent_dim": method.get("task_latent_dim", 0),
        "mmd_alpha": float(config.get("mmd_alpha") or 0.0) if config["method"] == "vfae" else 0.0,
    }
    if options["prior"] == "implicit":
        options["prior_kwargs"] = {"ratio_epochs": config["ratio_epochs"], "ratio_lr": 1e-3, "keep_prob": 0.5,
                                   "dropout_last_only": True, "task_weights": config["task_weights"]}
    return options


def train_one(config: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one (protocol, method, seed[, alpha]) configuration; JSON-ready metrics."""
    if config.get("threads"):
        torch.set_num_threads(int(config["threads"]))
    started = time.perf_counter()
    data = protocol_data(config)
    train_set, val_set, test_set = data.splits()
    target = data.meta.get("target_task")
    options = model_options(config, data)
    train = TrainConfig(epochs=config["epochs"], batch_size=100, lr=config["lr"], patience=config.get("patience"),
                        seed=int(config["seed"]), on_divergence="rollback")
    labelled = labelled_rows(train_set, target)
    callbacks = []
    if config.get("checkpoints") and test_set.s is not None:
        checkpoints = checkpoint_callback(config, options, data, test_set, labelled, target)
        callbacks.append(checkpoints)
    trained, result = train_vae(train_set, val_set, train=train, callbacks=callbacks, **options)
    metrics: dict[str, Any] = {k: v for k, v in result.to_dict().items() if k != "history"}
    n_samples = int(config["importance_samples"])
    if target is not None or test_set.s is None:
        metrics.update(representation_metrics(trained, test_set, labelled, target, n_samples=n_samples))
    else:  # faces: every task is evaluated; the thesis reports the mean over tasks
        metrics.update(representation_metrics(trained, test_set, labelled, None, n_samples=n_samples))
        per_task = [representation_metrics(trained, test_set, None, k, n_samples=n_samples)
                    for k in range(int(test_set.s.max()) + 1)]
        metrics["per_task"] = [{k: m[k] for k in ("test_log_likelihood", "active_units")} for m in per_task]
        metrics["test_log_likelihood"] = float(np.mean([m["test_log_likelihood"] for m in per_task]))
        metrics["active_units"] = float(np.mean([m["active_units"] for m in per_task]))
    if metrics.get("log_normaliser") is not None:  # the implicit prior: normalised = raw - log Z (raw is "≈")
        metrics["test_log_likelihood_normalised"] = metrics["test_log_likelihood"] - metrics["log_normaliser"]
        metrics.update(annealed_normaliser(trained.model.prior))  # log Z by AIS beside it (reliable where IS is not)
        metrics["test_log_likelihood_normalised_annealed"] = (metrics["test_log_likelihood"]
                                                              - metrics["log_normaliser_annealed"])
    if callbacks:
        metrics["checkpoints"] = callbacks[0].records
    if config.get("tsne"):
        metrics["tsne"] = tsne_points(trained, train_set, test_set, target, int(config["seed"]))
    metrics["history"] = [{k: r.get(k) for k in ("epoch", "train_loss", "val_loss", "ratio_accuracy", "mmd",
                                                  "task_kl") if k in r} for r in result.history if "epoch" in r]
    metrics["n_train"], metrics["n_val"], metrics["n_test"] = len(train_set), len(val_set), metrics.get("n_test")
    metrics["wall_seconds"] = time.perf_counter() - started
    return metrics


def tsne_points(trained: Any, train_set: Dataset, test_set: Dataset, target: int | None, seed: int,
                per_group: int = 600) -> dict[str, list]:
    """2-d t-SNE (scikit-learn) of posterior means of source training, target training and target test rows
    (Figure 5.2), at most ``per_group`` rows of each group, with their group and class."""
    from ...plotting import tsne_2d

    rng = np.random.default_rng(seed)
    groups: list[tuple[str, Dataset]] = []
    if target is not None:
        groups = [("source train", train_set.subset(np.flatnonzero(train_set.s != target))),
                  ("target train", train_set.subset(np.flatnonzero(train_set.s == target))),
                  ("target test", test_set.subset(np.flatnonzero(test_set.s == target)))]
    else:
        groups = [(f"task {k}", test_set.subset(np.flatnonzero(test_set.s == k))) for k in np.unique(test_set.s)]
    parts = [(name, part.subset(np.sort(rng.permutation(len(part))[:per_group]))) for name, part in groups]
    means = [encode_rows(trained.model, *model_inputs(trained, part, seed))[0] for _, part in parts]
    xy = tsne_2d(np.concatenate(means), seed=seed, perplexity=30.0, progress=False)  # size and estimate logged
    return {"xy": np.round(xy, 2).tolist(),
            "group": [name for name, part in parts for _ in range(len(part))],
            "label": np.concatenate([part.y if part.y is not None else np.full(len(part), -1)
                                     for _, part in parts]).astype(int).tolist()}

