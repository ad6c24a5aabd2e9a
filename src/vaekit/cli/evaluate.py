"""``vaekit evaluate``: test log-likelihood, active units, kNN accuracy and I(S;Z) of a saved model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .options import NON_NEGATIVE_INT, POSITIVE_INT, SEED, common_options, data_column_options, file_options
from .output import say, test_metrics_text

if TYPE_CHECKING:  # pragma: no cover - torch loads inside run()
    from ..data import Dataset
    from ..trained import TrainedModel

NAME = "evaluate"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help="test log-likelihood, active units, kNN accuracy and I(S;Z) of a saved model")
    p.add_argument("model_dir", type=Path, help="a directory saved by vaekit fit --out or vaekit detect --save")
    p.add_argument("--data", help="data set or file (default: the training data set's test split)")
    data_column_options(p)
    p.add_argument("--target-task", type=NON_NEGATIVE_INT,
                   help="score this task's rows only (default: the model's or the protocol's target, else all)")
    p.add_argument("--knn-neighbours", type=POSITIVE_INT, default=3, help="k of the kNN accuracy (section 5.5.1: 3)")
    p.add_argument("--importance-samples", type=POSITIVE_INT, default=100,
                   help="K, importance samples per row for log p(x)")
    p.add_argument("--test-subsample", type=POSITIVE_INT,
                   help="evaluate a seeded random subset of this many rows (default: all)")
    p.add_argument("--seed", type=SEED, default=0, help="seeds the importance samples and --test-subsample")
    p.add_argument("--log-normaliser", choices=("annealed", "importance"),
                   help="implicit prior: estimate log Z again by this method before evaluating (annealed: AIS "
                        "from N(0, I), far more effective samples in many latent dimensions; importance: proposal "
                        "from the training split's posteriors, N(0, I) with --data); default: the stored estimate")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bars")
    common_options(p)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ..fitting import subsample_rows
    from ..tasks import representation_metrics
    from ..trained import TrainedModel
    from ..training import torch_seeded

    trained = TrainedModel.load(args.model_dir)
    if trained.info.get("memory_mapped") and args.data is None:
        return _evaluate_memory_mapped(trained, args)
    test, labelled, what, target, train = evaluation_rows(trained, args.data, args)
    asked = getattr(args, "target_task", None)
    if asked is not None and (test.s is None or asked not in set(test.s.tolist())):
        raise ConfigError(f"--target-task {args.target_task} is not a task index of the evaluated rows ({what}); "
                          "leave it out for a model without tasks")
    test = subsample_rows(test, args.test_subsample, args.seed)
    normaliser = None
    if args.log_normaliser:
        # importance sampling's proposal: the posteriors of every training row (every task), as at training
        rows = (train.x, train.s) if train is not None and args.log_normaliser == "importance" else ()
        normaliser = trained.reestimate_log_normaliser(*rows, method=args.log_normaliser, seed=args.seed)
        if normaliser is None:
            raise ConfigError(f"--log-normaliser: this model's prior ({trained.model.prior.name}) is normalised")
    with torch_seeded(args.seed):
        metrics = representation_metrics(trained, test, labelled, target, n_samples=args.importance_samples,
                                         k=args.knn_neighbours, seed=args.seed,
                                         progress=None if args.progress else False)
    metrics.update(normaliser or {})
    if labelled is None and test.y is not None and trained.model.encoder_has_density:
        metrics["knn_accuracy_note"] = ("every row of --data is scored, and none is set aside to fit the kNN "
                                        "classifier on: leave out --data to evaluate the model's test split (kNN "
                                        "fitted on its labelled training rows)")
    metrics["data"] = what
    metrics["seed"] = args.seed
    if args.test_subsample is not None:
        metrics["test_subsample"] = args.test_subsample
    if target is not None:
        metrics["target_task"] = int(target)
    shown = ", ".join(f"{k} {metrics[k]:.4g}" for k in ("active_units", "knn_accuracy", "task_mutual_information")
                      if metrics.get(k) is not None)
    for key, metric in (("knn_accuracy_note", "kNN accuracy"), ("task_mutual_information_note", "I(S;Z)")):
        if metrics.get(key):
            shown += f"{'; ' if shown else ''}no {metric}: {metrics[key]}"
    say(args, f"{what}: {test_metrics_text(metrics, args.importance_samples)}" + (f"; {shown}" if shown else ""))
    return metrics


def _evaluate_memory_mapped(trained: TrainedModel, args: argparse.Namespace) -> dict[str, Any]:
    """A model fitted on a memory-mapped file: its test split's log-likelihood through the map (bounded memory).
    Active units and the kNN accuracy need rows in memory: pass --data for them."""
    from ..trained_mapped import evaluate_memory_mapped

    if args.target_task is not None:
        raise ConfigError("--target-task: a memory-mapped file has no task indices")
    normaliser = None
    if args.log_normaliser:  # no posteriors of training rows in memory: AIS, or importance sampling from N(0, I)
        normaliser = trained.reestimate_log_normaliser(method=args.log_normaliser, seed=args.seed)
        if normaliser is None:
            raise ConfigError(f"--log-normaliser: this model's prior ({trained.model.prior.name}) is normalised")
    metrics, what = evaluate_memory_mapped(trained, args.importance_samples, args.test_subsample, args.seed)
    metrics.update(normaliser or {}, data=what, seed=args.seed)
    if args.test_subsample is not None:
        metrics["test_subsample"] = args.test_subsample
    say(args, f"{what}: {test_metrics_text(metrics, args.importance_samples)}")
    return metrics


def evaluation_rows(trained: TrainedModel, data: str | None,
                    args: argparse.Namespace) -> tuple[Dataset, Dataset | None, str, Any, Dataset | None]:
    """The rows to evaluate, the labelled rows for the kNN accuracy, a description, the target task and the
    training split (None with ``data``): the training data set's test split (labelled rows: its training split's, of
    the target task) by default, else every row of ``data`` (no kNN)."""
    from ..columns import align_columns
    from ..data import load_dataset, training_data
    from ..fitting import training_data_rows
    from ..tasks import labelled_rows

    name = trained.info.get("dataset")
    target = getattr(args, "target_task", None)
    if target is None:
        target = trained.info.get("target_task")
    user_file = training_data_rows(trained, data)  # a model trained on a user file: that file's test split
    if user_file is not None:
        train, test, what = user_file
        return test, labelled_rows(train, target), what, target, train
    if data is None or data == name:
        if name is None:
            raise ConfigError("this model does not record its data set; pass --data")
        dataset = training_data(trained.info)
        train, _, test = dataset.splits(trained.info.get("split"), seed=int(trained.info.get("seed", 0)))
        target = dataset.meta.get("target_task") if target is None else target
        return test, labelled_rows(train, target), f"{name} (test split)", target, train
    dataset = align_columns(trained, load_dataset(data, **file_options(args)))
    return dataset, None, str(data), dataset.meta.get("target_task") if target is None else target, None
