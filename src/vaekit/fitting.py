"""Fit a VAE on a data set end to end: split, train with early stopping, evaluate, save the run folder."""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import python_values, replace_directory
from .data import Dataset, check_task_count, columns_info, from_array, load_dataset, training_data
from .data.dataset import seeded_subset
from .data.sources import sha256_of
from .errors import ConfigError, DataError, DatasetNotFoundError
from .interrupts import deferred_interrupts
from .likelihoods import LIKELIHOODS
from .model import ModelConfig, model_options_of
from .tracking import final_metrics, finish_trackers
from .trained import CHECKPOINT_NAME, RESULT_NAME, TrainedModel, default_likelihood, train_vae
from .training import TrainConfig, TrainResult
from .validation import check_output_dir, check_run_folder

log = logging.getLogger(__name__)


def _file_identity(dataset: Dataset) -> dict[str, Any]:
    """Where a user file came from (path, sha256, columns), so ``evaluate`` can find and check it later."""
    path = dataset.meta.get("path")
    if not path:
        return {}
    return {"data_path": str(Path(path).resolve()), "data_sha256": sha256_of(Path(path)),
            "label_column": dataset.meta.get("label_column"), "task_column": dataset.meta.get("task_column")}


def training_data_rows(trained: TrainedModel, data: str | None) -> tuple[Dataset, Dataset, str] | None:
    """For a model trained on a user file and evaluated without ``data``: the (training, test) splits of that
    file at its recorded path, checked against its recorded sha256. None when the model was not trained on a file
    or ``data`` is given (then every row of ``data`` is evaluated, e.g. the file after a move)."""
    info = trained.info
    recorded = info.get("data_path")
    if not recorded or data is not None:
        return None
    if not info.get("data_sha256"):  # e.g. a detector (detect --save): trained on every row, no held-out split
        raise ConfigError(f"this model records no checksum of {recorded} (a detector trains on every row: it has "
                          "no test split); pass --data FILE to evaluate every row of a file")
    path = Path(recorded)
    if not path.is_file():
        raise DatasetNotFoundError(f"this model was trained on {recorded}, which is gone; move it back for its test "
                                   "split, or pass --data PATH to evaluate every row of a file")
    if sha256_of(path) != info.get("data_sha256"):
        raise DataError(f"{recorded} changed since this model was trained on it (its checksum differs); restore it, "
                        "or pass --data FILE to evaluate every row of a file")
    dataset = training_data(info)  # the file read with the same column options (id, ignored, label, task)
    train, _, test = dataset.splits(info.get("split"), seed=int(info.get("seed", 0)))
    return train, test, f"{path} (test split)"


def training_options(train: TrainConfig | None, options: dict[str, Any]) -> TrainConfig:
    """The training settings of a fit: ``train``, or the :class:`TrainConfig` fields given as keywords
    (``epochs=30, lr=5e-4``), which are taken out of ``options``. A keyword that is neither a training nor a model
    option is refused with the closest names, before any data is read."""
    train_fields = [f.name for f in fields(TrainConfig)]
    given = {name: options.pop(name) for name in list(options) if name in train_fields}
    model_fields = [f.name for f in fields(ModelConfig) if f.name != "x_dim"]
    for name in options:
        if name not in (*model_fields, "callbacks"):
            close = difflib.get_close_matches(name, [*train_fields, *model_fields], n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"unknown option {name!r}{hint}; training options: {', '.join(train_fields)}; model "
                              f"options: {', '.join(model_fields)}")
    if given and train is not None:
        raise ConfigError(f"give the training options either as train=TrainConfig(...) or as keywords "
                          f"({', '.join(given)}), not both")
    return TrainConfig(**given) if given else (train or TrainConfig())


def fit(
    data: str | Path | Dataset | Any,
    likelihood: str | None = None,
    prior: str = "standard",
    latent_dim: int = 20,
    hidden: Sequence[int] = (500, 500),
    split: Sequence[float] | None = None,
    importance_samples: int = 100,
    constant_columns: str = "error",
    out: str | Path | None = None,
    train: TrainConfig | None = None,
    test_subsample: int | None = None,
    model: ModelConfig | Mapping[str, Any] | None = None,
    **model_options: Any,
) -> tuple[TrainedModel, dict[str, Any]]:
    """Train a VAE on ``data``: a registered name, a ``.npz``/``.csv`` path, a :class:`Dataset` (for labels or
    task indices), or in-memory rows (a NumPy array or pandas DataFrame, see :func:`vaekit.data.from_array`).

    The model's options come either as keywords (``likelihood=``, ``prior=``, ``latent_dim=``, any
    :class:`~vaekit.model.ModelConfig` field) or at once as ``model=`` (a ``ModelConfig`` or its dict, e.g. from a
    saved ``result.json``; its ``x_dim`` is ignored: the data decide the width), the training options as ``train=``.

    Splits the data (seeded by ``train.seed``), fits the preprocessing on the training split, trains with early
    stopping on the validation ELBO, and evaluates the importance-sampled log-likelihood on the test split.
    Returns the trained model and a JSON-ready summary; with ``out`` both are saved there. ``likelihood=None``
    picks Bernoulli for binary data sets (MNIST, OneHot, the digit protocols) and Student-t otherwise.
    ``test_subsample`` evaluates a seeded random subset of that many test rows (reported as ``test_subsample``).
    ``callbacks`` (in ``model_options``) receive per-epoch records, see :mod:`vaekit.tracking`. Training options may
    also come as keywords instead of ``train=``: ``fit(X, epochs=30, lr=5e-4)``.
    """
    train = training_options(train, model_options)
    importance_samples = check_evaluation_options(importance_samples, test_subsample)
    if out is not None:  # before any data are read or any epoch is trained
        check_run_folder(check_output_dir(Path(out), "out"))
    if model is not None:
        keywords = set(model_options) - {"callbacks"}
        if likelihood is not None or prior != "standard" or latent_dim != 20 or tuple(hidden) != (500, 500) or keywords:
            raise ConfigError("give the model's options either as model=... or as keywords, not both")
        spec = model_options_of(model)
        likelihood, prior = spec.pop("likelihood", None), spec.pop("prior", "standard")
        latent_dim, hidden = spec.pop("latent_dim", 20), spec.pop("hidden", (500, 500))
        model_options.update(spec)
    if isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, (str, Path)):
        dataset = load_dataset(data)
    else:
        dataset = from_array(data)
    check_task_options(dataset, model_options)
    if likelihood is None:
        likelihood = default_likelihood(dataset.binary)
    if likelihood not in LIKELIHOODS:
        raise ConfigError(f"unknown likelihood {likelihood!r}; choose one of {sorted(LIKELIHOODS)}")
    train_set, val_set, test_set = dataset.splits(split, seed=train.seed)
    if train.batch_size > len(train_set):
        raise ConfigError(
            f"batch size {train.batch_size} is larger than the training split ({len(train_set)} rows); "
            "lower the batch size (--batch-size; batch_size=) or give more training data"
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
    summary["split"] = list(split or dataset.split)
    summary["split_source"] = "given" if split else dataset.meta.get("split_source", "data set default")
    test_set = subsample_rows(test_set, test_subsample, train.seed)
    if test_subsample is not None:
        summary.update(test_subsample=int(test_subsample), n_test=len(test_set))
    trained.info.update({"dataset": dataset.name, "split": list(split or dataset.split), "seed": train.seed,
                         **_file_identity(dataset)})
    trained.info.update(columns_info(dataset), epochs_run=result.epochs_run)
    if target is not None:
        trained.info["target_task"] = int(target)
    def evaluate() -> dict[str, Any]:
        return trained.evaluate(test_set.x, test_set.s, n_samples=importance_samples, progress=train.progress)

    return trained, evaluate_and_save(trained, summary, result, out, evaluate, model_options.get("callbacks"))


def evaluate_and_save(trained: TrainedModel, summary: dict[str, Any], result: TrainResult, out: str | Path | None,
                      evaluate: Callable[[], dict[str, Any]], callbacks: Any = None) -> dict[str, Any]:
    """The end of a fit: save the run (``evaluated: false``) before the test evaluation, evaluate, save again
    with the metrics; a Ctrl-C during the evaluation keeps the saved run and skips it. Returns the summary (with
    ``history``) and reports to the trackers in ``callbacks``."""
    saved = False
    try:
        if out is not None:  # save before the (possibly long) evaluation, so that a Ctrl-C there loses nothing
            if result.interrupted:
                log.warning("interrupted: saving the best model so far (epoch %d) to %s, then evaluating it on the "
                            "test split; press Ctrl-C again to skip the evaluation", result.best_epoch, out)
            with deferred_interrupts(reraise=False) as held:
                write_run(trained, {**summary, "evaluated": False}, result.history, out)
            saved = True
            if held:
                raise KeyboardInterrupt
            if result.interrupted:
                log.warning("saved to %s; evaluating on the test split (Ctrl-C again skips this)", out)
        summary.update(evaluate())
    except KeyboardInterrupt:
        if out is None:
            raise
        summary.update(interrupted=True, evaluated=False, evaluation_skipped=True, test_log_likelihood=None)
        if not saved:
            save_run(trained, summary, result.history, out)
        log.warning("test evaluation skipped; the model is saved in %s (evaluate it later: vaekit evaluate %s)",
                    out, out)
        summary["history"] = result.history
        return summary
    artifacts = []
    if out is not None:
        save_run(trained, {**summary, "evaluated": True}, result.history, out)
        artifacts = [Path(out) / CHECKPOINT_NAME, Path(out) / RESULT_NAME]
    finish_trackers(callbacks, {k: summary[k] for k in ("dataset", "model", "train", "split") if k in summary},
                    final_metrics(summary), artifacts)
    summary["history"] = result.history
    return summary


def check_evaluation_options(importance_samples: Any, test_subsample: Any) -> int:
    """``importance_samples`` as an int, after checking it and ``test_subsample`` (whole numbers >= 1; the
    subsample may be None) before any training."""
    for name, value in (("importance_samples", importance_samples), ("test_subsample", test_subsample)):
        value = python_values(value)
        if value is None and name == "test_subsample":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(python_values(importance_samples))


def check_task_options(dataset: Dataset, options: dict[str, Any]) -> None:
    """Check and complete a fit's task conditioning (chapter 5) in ``options``, in place. The VFAE's MMD
    (``mmd_alpha``) and the beta-CVAE's task latent (``task_latent_dim``) imply conditioning on every task of the
    data; conditioning on data without task indices, or on fewer tasks than the data hold, is refused; task indices
    the model would ignore are warned about (``n_tasks=0`` ignores them on purpose: the VAE baseline)."""
    n_tasks = options.get("n_tasks")
    implied = bool(options.get("mmd_alpha") or options.get("task_latent_dim"))
    if dataset.s is None:
        if n_tasks or implied:
            raise ConfigError(f"{dataset.name} has no task indices, so a task-conditioned model (n_tasks, mmd_alpha, "
                              "task_latent_dim) cannot be trained on it: give a Dataset with s, an .npz array 's' or "
                              "a file's task column (--task-column)")
        return
    distinct = len(np.unique(dataset.s))
    if n_tasks is None and implied:
        options["n_tasks"] = check_task_count(dataset)
    elif n_tasks is None and distinct > 1:  # a plain VAE needs no recoding of the task codes
        log.warning("%s has task indices (%d tasks) but the model is not conditioned on them (a plain VAE); to "
                    "condition on them pass n_tasks=%d with the tasks coded 0..%d (vaekit fit: --conditional); in "
                    "Python n_tasks=0 says the plain VAE is meant and silences this", dataset.name, distinct,
                    distinct, distinct - 1)
    elif n_tasks and n_tasks < (needed := check_task_count(dataset)):
        raise ConfigError(f"n_tasks={n_tasks}, but the task indices of {dataset.name} run up to {needed - 1}: "
                          f"pass n_tasks={needed}")


def subsample_rows(data: Dataset, n: int | None, seed: int) -> Dataset:
    """A seeded random subset of ``n`` rows in their original order (all rows when ``n`` is None or larger)."""
    rows = seeded_subset(np.arange(len(data)), n, seed)
    return data if len(rows) == len(data) else data.subset(rows)


def save_run(trained: TrainedModel, summary: dict[str, Any], history: list[dict[str, Any]], out: str | Path) -> None:
    """Write ``model.pt`` and ``result.json`` (summary + history) into ``out`` as one atomic update: afterwards
    the folder holds the previous run or this one, never one file of each. Ctrl-C waits until it is done."""
    with deferred_interrupts():
        write_run(trained, summary, history, out)


def write_run(trained: TrainedModel, summary: dict[str, Any], history: list[dict[str, Any]], out: str | Path) -> None:
    """:func:`save_run` without holding off Ctrl-C."""
    check_run_folder(Path(out))
    text = json.dumps({**summary, "history": history}, indent=1, allow_nan=False).encode()
    replace_directory(out, {CHECKPOINT_NAME: trained.checkpoint_writer(), RESULT_NAME: lambda f: f.write(text)})
