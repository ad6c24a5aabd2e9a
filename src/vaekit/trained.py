"""A trained model with its preprocessing: fit on a data set, evaluate, score rows, save and load."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import atomic_write_bytes, load_checkpoint, save_checkpoint
from .data import Dataset, Preprocessor, load_dataset, to_tensor
from .errors import CheckpointError, ConfigError, DataError
from .evaluation import elbo, log_likelihood
from .likelihoods import LIKELIHOODS
from .model import VAE, ModelConfig
from .training import Trainer, TrainConfig, TrainResult

CHECKPOINT_NAME = "model.pt"
RESULT_NAME = "result.json"


def finite_or_none(value: float) -> float | None:
    """Metrics are reported as numbers or null, never NaN/inf."""
    return float(value) if math.isfinite(value) else None


@dataclass
class TrainedModel:
    """A :class:`VAE` together with the preprocessing fitted on its training split."""

    model: VAE
    preprocessor: Preprocessor
    info: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------------------------------------ data
    def prepare(
        self, x: np.ndarray, s: np.ndarray | None = None, transform: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Validate and preprocess raw rows into model inputs. With a training ``transform`` (e.g. dynamic
        binarisation) the rows are checked as the model will see them, after the transform."""
        x_t = to_tensor(self.preprocessor.transform(np.asarray(x)))
        assert x_t is not None
        self.model.check_input(x_t if transform is None else transform(x_t, torch.Generator().manual_seed(0)))
        s_t = to_tensor(None if s is None else np.asarray(s).astype(np.int64))
        if self.model.config.n_tasks and s_t is None:
            raise DataError("this model is task-conditioned: give the task index of every row")
        return x_t, s_t

    def score_samples(
        self,
        x: np.ndarray,
        s: np.ndarray | None = None,
        n_samples: int = 100,
        normalised: bool = True,
        noise: torch.Tensor | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> np.ndarray:
        """Per-row importance-sampled log p(x) in the model's (standardised) data space.

        ``noise`` fixes the importance samples (see :func:`~vaekit.evaluation.log_likelihood`); ``dtype=float64``
        evaluates a double-precision copy of the model, so scores do not depend on the batch a row is in.
        """
        x_t, s_t = self.prepare(x, s)
        model = self.model if dtype == torch.float32 else copy.deepcopy(self.model).to(dtype)
        x_t = x_t.to(dtype)
        noise = None if noise is None else noise.to(dtype)
        ll = log_likelihood(model, x_t, s_t, n_samples=n_samples, noise=noise).double()
        if normalised:
            ll = ll - self.model.prior.log_normaliser()
        return ll.numpy()

    def evaluate(self, x: np.ndarray, s: np.ndarray | None = None, n_samples: int = 100) -> dict[str, Any]:
        """Mean test log-likelihood (raw and, for implicit priors, normalised) with non-finite values as None.

        Models with an implicit encoder (AVB) have no importance-sampled log-likelihood: ``test_log_likelihood`` is
        None and ``test_elbo_estimate`` holds the discriminator-based ELBO estimate instead.
        """
        if not self.model.encoder_has_density:
            x_t, s_t = self.prepare(x, s)
            estimate = finite_or_none(float(elbo(self.model, x_t, s_t).mean()))
            return {"test_log_likelihood": None, "test_elbo_estimate": estimate, "importance_samples": 0,
                    "n_test": len(x_t)}
        raw = self.score_samples(x, s, n_samples, normalised=False)
        metrics: dict[str, Any] = {
            "test_log_likelihood": finite_or_none(raw.mean()),
            "importance_samples": n_samples,
            "n_test": len(raw),
        }
        normaliser = self.model.prior.normaliser_metrics()
        if normaliser:  # an unnormalised prior: the raw value (the thesis's "≈") and the normalised one
            metrics["test_log_likelihood_normalised"] = finite_or_none(raw.mean() - normaliser["log_normaliser"])
            metrics.update({k: finite_or_none(v) if isinstance(v, float) else v for k, v in normaliser.items()})
        return metrics

    # ------------------------------------------------------------------------------------------- save/load
    def to_record(self) -> dict[str, Any]:
        """Checkpoint payload (tensors and plain values only) from which :meth:`from_record` rebuilds this model."""
        return {
            "model_config": self.model.config.to_dict(),
            "state_dict": {k: v.cpu() for k, v in self.model.state_dict().items()},  # portable: loads anywhere
            "preprocessor": self.preprocessor.state_dict(),
            "info": json.loads(json.dumps(self.info, default=str)),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], path: str | Path = "checkpoint") -> TrainedModel:
        """Rebuild a model in evaluation mode from a :meth:`to_record` payload; ``path`` names it in errors."""
        try:
            model = VAE.from_config(ModelConfig.from_dict(record["model_config"]))
            model.load_state_dict(record["state_dict"])
            preprocessor = Preprocessor.from_state_dict(record["preprocessor"])
        except (KeyError, RuntimeError, TypeError, ValueError) as err:
            raise CheckpointError(f"{path} does not match the model it describes ({err}); retrain") from err
        model.eval()
        return cls(model, preprocessor, dict(record.get("info", {})))

    def save(self, directory: str | Path) -> Path:
        return save_checkpoint(Path(directory) / CHECKPOINT_NAME, "vae", self.to_record())

    @classmethod
    def load(cls, directory: str | Path) -> TrainedModel:
        directory = Path(directory)
        path = directory / CHECKPOINT_NAME if directory.is_dir() else directory
        return cls.from_record(load_checkpoint(path, "vae"), path)


def train_vae(
    train_set: Dataset,
    val_set: Dataset | None,
    likelihood: str = "student-t",
    prior: str = "standard",
    latent_dim: int = 20,
    hidden: Sequence[int] = (500, 500),
    constant_columns: str = "error",
    train: TrainConfig | None = None,
    callbacks: list[Callable[[int, VAE, dict[str, float]], None]] | None = None,
    **model_options: Any,
) -> tuple[TrainedModel, TrainResult]:
    """Fit the preprocessing on ``train_set``, build a VAE seeded by ``train.seed`` and train it (``callbacks`` go
    to the :class:`~vaekit.training.Trainer`).

    Early stopping watches the ELBO on ``val_set`` (the training loss when it is None). The data sets' ``meta``
    may switch standardisation off (``standardise``) and give a ``batch_transform`` (dynamic binarisation).
    """
    train = train or TrainConfig()
    if likelihood not in LIKELIHOODS:
        raise ConfigError(f"unknown likelihood {likelihood!r}; choose one of {sorted(LIKELIHOODS)}")
    standardise = LIKELIHOODS[likelihood].standardise and train_set.meta.get("standardise", True)
    preprocessor = Preprocessor(standardise=standardise, constant_columns=constant_columns).fit(train_set.x)
    n_tasks = model_options.pop("n_tasks", 0)
    torch.manual_seed(train.seed)
    model = VAE(len(preprocessor.keep_), latent_dim, likelihood, prior, hidden, n_tasks=n_tasks, **model_options)
    trained = TrainedModel(model, preprocessor)
    transform = train_set.meta.get("batch_transform")
    train_x, train_s = trained.prepare(train_set.x, train_set.s, transform)
    val_x, val_s = (None, None) if val_set is None else trained.prepare(val_set.x, val_set.s)
    result = Trainer(train, batch_transform=transform, callbacks=callbacks).fit(
        model, train_x, val_x, train_s, val_s
    )
    return trained, result


def fit(
    data: str | Path | Dataset,
    likelihood: str | None = None,
    prior: str = "standard",
    latent_dim: int = 20,
    hidden: Sequence[int] = (500, 500),
    split: Sequence[float] | None = None,
    importance_samples: int = 100,
    constant_columns: str = "error",
    out: str | Path | None = None,
    train: TrainConfig | None = None,
    **model_options: Any,
) -> tuple[TrainedModel, dict[str, Any]]:
    """Train a VAE on ``data`` (a registered name, a ``.npz``/``.csv`` path, or a :class:`Dataset`).

    Splits the data (seeded by ``train.seed``), fits the preprocessing on the training split, trains with early
    stopping on the validation ELBO, and evaluates the importance-sampled log-likelihood on the test split.
    Returns the trained model and a JSON-ready summary; with ``out`` both are saved there. ``likelihood=None``
    picks Bernoulli for binary data sets (MNIST, OneHot, the digit protocols) and Student-t otherwise.
    """
    train = train or TrainConfig()
    dataset = data if isinstance(data, Dataset) else load_dataset(data)
    if likelihood is None:
        likelihood = "bernoulli" if dataset.binary else "student-t"
    if likelihood not in LIKELIHOODS:
        raise ConfigError(f"unknown likelihood {likelihood!r}; choose one of {sorted(LIKELIHOODS)}")
    train_set, val_set, test_set = dataset.splits(split, seed=train.seed)
    if train.batch_size > len(train_set):
        raise ConfigError(
            f"batch size {train.batch_size} is larger than the training split ({len(train_set)} rows); "
            "lower --batch-size or give more training data"
        )
    trained, result = train_vae(
        train_set, val_set, likelihood=likelihood, prior=prior, latent_dim=latent_dim, hidden=hidden,
        constant_columns=constant_columns, train=train, **model_options,
    )
    model, preprocessor = trained.model, trained.preprocessor
    summary: dict[str, Any] = {
        "dataset": dataset.name,
        "n_train": len(train_set), "n_val": len(val_set), "n_test": len(test_set),
        "model": model.config.to_dict(),
        "train": train.to_dict(),
        "constant_columns": preprocessor.constant_columns_,
        **{k: v for k, v in result.to_dict().items() if k != "history"},
    }
    target = dataset.meta.get("target_task")  # transfer protocols: score the target task's test rows only
    if target is not None and test_set.s is not None:
        test_set = test_set.subset(np.flatnonzero(test_set.s == target))
        summary["n_test"] = len(test_set)
    summary.update(trained.evaluate(test_set.x, test_set.s, n_samples=importance_samples))
    trained.info = {"dataset": dataset.name, "split": list(split or dataset.split), "seed": train.seed}
    if target is not None:
        trained.info["target_task"] = int(target)
    if out is not None:
        save_run(trained, summary, result.history, out)
    summary["history"] = result.history
    return trained, summary


def save_run(trained: TrainedModel, summary: dict[str, Any], history: list[dict[str, Any]], out: str | Path) -> None:
    """Write ``model.pt`` and ``result.json`` (summary + history) atomically into ``out``."""
    out = Path(out)
    trained.save(out)
    text = json.dumps({**summary, "history": history}, indent=1, allow_nan=False)
    atomic_write_bytes(out / RESULT_NAME, lambda f: f.write(text.encode()))
