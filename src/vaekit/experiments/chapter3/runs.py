"""Shared machinery of the chapter-3 experiments: the compared decoders, one training run, noisy training rows.

Every target of this package executes its configurations through :func:`train_and_evaluate`, which reads nothing
but its JSON configuration (so it can run in any worker process) and returns JSON-ready metrics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import torch

from ...data import Dataset, Preprocessor, load_dataset, to_tensor
from ...evaluation import log_likelihood
from ...model import VAE
from ...training import TrainConfig, Trainer
from ..report_helpers import dataset_available

#: The five data sets of section 3.5.1 (Table 3.1), in the thesis's order.
CHAPTER3_DATASETS: tuple[str, ...] = ("smtp", "aloi", "thyroid", "cancer", "satellite")

#: Table 3.2's columns: label -> (likelihood name, likelihood options). MAP = Eq. (3.10), Student-t = Eq. (3.11).
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "Gaussian": ("gaussian", {}),
    "MAP (b=1)": ("map", {"b": 1.0}),
    "MAP (b=0.001)": ("map", {"b": 0.001}),
    "Student-t": ("student-t", {}),
}

#: Architecture and optimiser of section 3.5.2, shared by both budgets.
SETUP: dict[str, Any] = {"hidden": [500, 500], "batch_size": 100, "lr": 1e-3, "importance_samples": 100}

Callback = Callable[[int, VAE, dict[str, float]], None]


def latent_dim_for(dataset: str) -> int:
    """Section 3.5.2: a 2-d latent space for SMTP, 20-d for the other data sets."""
    return 2 if dataset == "smtp" else 20


def select_datasets(requested: Sequence[str] | None, default: Sequence[str]) -> list[str]:
    """The requested (or default) data sets that are available here; absent ones are left out of the grid."""
    names = list(requested) if requested else list(default)
    return [n for n in names if dataset_available(n)]


def seed_list(seeds: int | None, default: int) -> list[int]:
    n = default if seeds is None else int(seeds)
    if n < 1:
        raise ValueError(f"need at least one seed, got {n}")
    return list(range(n))


def make_config(target: str, dataset: str, method: str, seed: int, budget: dict[str, Any],
                **overrides: Any) -> dict[str, Any]:
    """One JSON-ready run configuration: Table 3.2 method ``method`` on ``dataset`` under ``budget``."""
    likelihood, kwargs = METHODS.get(method, (None, {}))
    config: dict[str, Any] = {
        "target": target, "dataset": dataset, "method": method, "likelihood": likelihood,
        "likelihood_kwargs": dict(kwargs), "latent_dim": latent_dim_for(dataset), "seed": int(seed),
        "hidden": list(budget.get("hidden", SETUP["hidden"])),
        "epochs": int(budget["epochs"]), "patience": budget.get("patience"),
        "batch_size": int(budget.get("batch_size", SETUP["batch_size"])),
        "lr": float(budget.get("lr", SETUP["lr"])),
        "importance_samples": int(budget.get("importance_samples", SETUP["importance_samples"])),
        "test_subsample": budget.get("test_subsample"),
    }
    config.update(overrides)
    if config["likelihood"] is None:
        raise ValueError(f"unknown method {method!r} and no likelihood given")
    return config


# ------------------------------------------------------------------------------------------------ noise rows
def add_uniform_noise(x: np.ndarray, ratio: float, rng: np.random.Generator,
                      low: np.ndarray | None = None, high: np.ndarray | None = None) -> np.ndarray:
    """Append ``round(ratio * len(x))`` rows drawn uniformly in the per-column range [low, high] of ``x``
    (Figure 3.8's noisy environment). The original rows come first and are unchanged."""
    if ratio < 0:
        raise ValueError(f"the noise ratio must be >= 0, got {ratio}")
    n_noise = round(ratio * len(x))
    low = x.min(0) if low is None else low
    high = x.max(0) if high is None else high
    noise = rng.uniform(low, high, size=(n_noise, x.shape[1])).astype(x.dtype)
    return np.concatenate([x, noise])


def clean_units_offset(noisy: Preprocessor, clean: Preprocessor) -> float:
    """What to add to log p(x_n), x_n standardised by ``noisy``, to get the log-density of the same rows
    standardised by ``clean``: x_n = (s_c x_c + m_c - m_n) / s_n, so log p(x_c) = log p(x_n) + sum log(s_c / s_n)."""
    if not np.array_equal(noisy.keep_, clean.keep_):
        raise ValueError("the two standardisations keep different columns")
    return float(np.log(clean.scaler_.scale_).sum() - np.log(noisy.scaler_.scale_).sum())


def _clean(value: Any) -> Any:
    """JSON-ready copy: non-finite floats become None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


#: a rise of the mean training loss over the previous epoch's larger than this counts as a loss spike
SPIKE_NATS = 0.5


def loss_spikes(history: Sequence[dict[str, Any]], threshold: float = SPIKE_NATS) -> int:
    """Number of epochs whose mean training loss exceeds the previous epoch's by more than ``threshold`` nats."""
    losses = [h["train_loss"] for h in history if h.get("train_loss") is not None]
    return sum(b - a > threshold for a, b in pairwise(losses))


def _test_rows(test: Dataset, subsample: int | None, seed: int) -> np.ndarray:
    """The evaluated test rows: all of them, or a fixed subsample seeded by the run's seed (same for every
    method of that seed, so paired comparisons stay paired)."""
    if subsample is None or subsample >= len(test):
        return test.x
    rng = np.random.default_rng(10_000 + seed)
    return test.x[np.sort(rng.choice(len(test), size=int(subsample), replace=False))]


# --------------------------------------------------------------------------------------------------- one run
def train_and_evaluate(config: dict[str, Any],
                       callbacks: Callable[[torch.Tensor], Sequence[Callback]] | None = None) -> dict[str, Any]:
    """Train one VAE as section 3.5.2 describes and return its importance-sampled test log-likelihood.

    The split is seeded by ``config["seed"]``; standardisation is fitted on the training split. With
    ``noise_ratio`` > 0 uniform rows are appended to the training split only, and the test log-likelihood is
    reported in the units of the clean training split's standardisation (change of variables), so that values
    are comparable across ratios. ``callbacks(train_x)`` may return trainer callbacks for this run.
    """
    start = time.perf_counter()
    seed = int(config["seed"])
    dataset = load_dataset(config["dataset"])
    train, val, test = dataset.splits(config.get("split"), seed=seed)
    train_x = train.x
    noise_ratio = float(config.get("noise_ratio", 0.0))
    if noise_ratio > 0:
        train_x = add_uniform_noise(train_x, noise_ratio, np.random.default_rng(20_000 + seed))
    pre = Preprocessor(constant_columns="drop").fit(train_x)
    log_jacobian = 0.0
    if noise_ratio > 0:
        log_jacobian = clean_units_offset(pre, Preprocessor(constant_columns="drop").fit(train.x))
    xs = {name: to_tensor(pre.transform(a)) for name, a in
          (("train", train_x), ("val", val.x), ("test", _test_rows(test, config.get("test_subsample"), seed)))}
    torch.manual_seed(seed)
    model = VAE(xs["train"].shape[1], int(config["latent_dim"]), config["likelihood"],
                hidden=tuple(config["hidden"]), likelihood_kwargs=config.get("likelihood_kwargs") or {})
    train_config = TrainConfig(epochs=int(config["epochs"]), batch_size=int(config["batch_size"]),
                               lr=float(config["lr"]), patience=config.get("patience"), seed=seed)
    hooks = list(callbacks(xs["train"])) if callbacks is not None else []
    result = Trainer(train_config, callbacks=hooks).fit(model, xs["train"], xs["val"])
    eval_start = time.perf_counter()
    ll = log_likelihood(model, xs["test"], n_samples=int(config["importance_samples"])).double()
    test_ll = float(ll.mean()) + log_jacobian
    metrics = {
        "test_log_likelihood": test_ll, "diverged": result.diverged, "diverged_epoch": result.diverged_epoch,
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
        "n_train": len(train_x), "n_noise_rows": len(train_x) - len(train), "n_test_evaluated": len(xs["test"]),
        "n_test_split": len(test), "log_jacobian_to_clean_units": log_jacobian, "constant_columns": pre.constant_columns_,
        "likelihood_config": model.likelihood.config(),
        "train_seconds": result.train_seconds, "eval_seconds": time.perf_counter() - eval_start,
        "seconds": time.perf_counter() - start, "history": result.history,
    }
    return _clean(metrics)
