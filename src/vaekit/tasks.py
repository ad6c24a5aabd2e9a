"""Task-invariant representations (chapter 5): representation metrics of a trained model and the VFAE's alpha.

:func:`representation_metrics` evaluates a task-conditioned model as section 5.5.1 does: the conditional
importance-sampled log-likelihood (Eqs. 5.36, 5.37), active units (Eq. 5.38) and the 3-NN accuracy of a classifier
fitted on the labelled target training rows only, all on the target task's test rows, plus an estimate of the task
dependency I(S;Z) (Eq. 5.10) on held-out rows of every task: a lower bound from out-of-fold task classifiers (a
linear and an MLP probe; ``task_mutual_information`` is the larger of the two). :func:`pick_alpha` picks the VFAE's alpha (section
5.5.3) by the validation ELBO.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .data import Dataset, check_task_count, task_indices
from .errors import ConfigError
from .evaluation import evaluating, model_device
from .metrics import active_units, knn_accuracy, task_mutual_information_bounds
from .model import VAE
from .trained import TrainedModel


def model_inputs(trained: TrainedModel, data: Dataset, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Preprocessed rows of ``data``; grey training rows of a dynamically binarised set are binarised once with
    ``seed`` (``meta["batch_transform"]``) so that the encoder sees what it was trained on."""
    transform = data.meta.get("batch_transform")
    x, s = trained.prepare(data.x, data.s, transform)
    if transform is not None:
        x = transform(x, torch.Generator().manual_seed(seed))
    return x, s


def encode_rows(model: VAE, x: torch.Tensor, s: torch.Tensor | None, seed: int = 0,
                batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means E_q[z|x, s] and one seeded sample z ~ q(z|x, s) per row (dropout off)."""
    generator = torch.Generator().manual_seed(seed)
    device = model_device(model)
    means, samples = [], []
    with evaluating(model):
        for start in range(0, len(x), batch_size):
            rows = slice(start, start + batch_size)
            q = model.encode(x[rows].to(device), None if s is None else s[rows].to(device))
            mean, std = q.mean, q.stddev
            means.append(mean)
            samples.append(mean + std * torch.randn(mean.shape, generator=generator).to(mean.device))
    return torch.cat(means).cpu().numpy(), torch.cat(samples).cpu().numpy()


def representation_metrics(trained: TrainedModel, test: Dataset, labelled: Dataset | None = None,
                           target_task: int | None = None, n_samples: int = 10, k: int = 3,
                           seed: int = 0, progress: bool | None = False) -> dict[str, Any]:
    """Chapter-5 metrics of ``trained`` on ``test`` (see the module docstring).

    The log-likelihood, active units and kNN accuracy use the rows of ``test`` whose task is ``target_task`` (all
    rows when None); the kNN classifier is fitted on ``labelled`` (its representations and labels) and nothing
    else. ``task_mutual_information`` uses one posterior sample per row of every task in ``test`` (None with fewer
    than two tasks). Models without an encoder density (AVB) get the log-likelihood entry only. ``progress`` shows
    bars over the importance sampling and the kNN predictions (``None``: only on a terminal).
    """
    rows = np.arange(len(test)) if target_task is None or test.s is None else np.flatnonzero(test.s == target_task)
    target = test.subset(rows)
    metrics: dict[str, Any] = trained.evaluate(target.x, target.s, n_samples=n_samples, progress=progress)
    metrics.update(active_units=None, knn_accuracy=None, task_mutual_information=None)
    if not trained.model.encoder_has_density:
        return metrics
    x, s = model_inputs(trained, test, seed)
    means, samples = encode_rows(trained.model, x, s, seed)
    metrics["active_units"] = active_units(means[rows])
    if labelled is not None and labelled.y is not None and target.y is not None:
        metrics["n_labelled"] = len(labelled)
        if len(labelled) >= k:
            lab_means, _ = encode_rows(trained.model, *model_inputs(trained, labelled, seed), seed)
            metrics["knn_accuracy"] = knn_accuracy(lab_means, labelled.y, means[rows], target.y, k=k,
                                                   progress=progress)
        else:
            metrics["knn_accuracy_note"] = f"{k}-NN needs at least {k} labelled rows, {len(labelled)} given"
    if test.s is not None and len(np.unique(test.s)) >= 2:
        counts = np.unique(test.s, return_counts=True)[1]
        if counts.min() >= 2:
            metrics.update(task_mutual_information_bounds(samples, test.s, seed=seed))
        else:
            metrics["task_mutual_information_note"] = ("I(S;Z) needs at least two evaluated rows of every task "
                                                       f"(the rarest has {counts.min()}): evaluate more rows")
    return metrics


def labelled_rows(train: Dataset, target_task: int | None) -> Dataset | None:
    """The labelled training rows of the target task (the 100 target points of the transfer protocol)."""
    if train.y is None:
        return None
    if target_task is None or train.s is None:
        return train
    rows = np.flatnonzero(train.s == target_task)
    if not len(rows):
        raise ConfigError(f"task {target_task} has no rows in {train.name}'s training split; the tasks there are "
                          f"{sorted(set(train.s.tolist()))}")
    return train.subset(rows)


# ------------------------------------------------------------------------------------------- the VFAE's alpha
def pick_alpha(val_losses: Mapping[float, float | None]) -> float:
    """The alpha with the lowest validation loss (-ELBO on validation rows); ties go to the smaller alpha."""
    finite = {a: v for a, v in val_losses.items() if v is not None and np.isfinite(v)}
    if not finite:
        raise ValueError("no alpha finished with a finite validation loss")
    return min(sorted(finite), key=lambda a: finite[a])


__all__ = ["encode_rows", "labelled_rows", "model_inputs", "pick_alpha", "representation_metrics", "task_indices",
           "check_task_count"]
