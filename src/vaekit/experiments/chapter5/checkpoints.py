"""Thesis chapter 5, weights at fixed epochs: 3-NN target accuracy, I(S;Z) and active units while training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ...data import Dataset
from ...tasks import encode_rows


class _Checkpoints:
    """Trainer callback: 3-NN target accuracy, I(S;Z) and active units of the current weights at chosen epochs
    (the weights as trained so far, not the best-validation ones)."""

    def __init__(self, epochs: Sequence[int], lab: tuple[torch.Tensor, torch.Tensor | None, np.ndarray],
                 test: tuple[torch.Tensor, torch.Tensor | None, np.ndarray | None, np.ndarray], target: int | None):
        self.epochs, self.lab, self.test, self.target = set(epochs), lab, test, target
        self.records: list[dict[str, Any]] = []

    def __call__(self, epoch: int, model: Any, record: dict[str, float]) -> None:
        if epoch not in self.epochs:
            return
        from ...metrics import active_units, knn_accuracy, task_mutual_information_bounds

        x, s, y, s_np = self.test
        means, samples = encode_rows(model, x, s)
        rows = np.arange(len(x)) if self.target is None else np.flatnonzero(s_np == self.target)
        entry: dict[str, Any] = {"epoch": epoch, "val_loss": record.get("val_loss"),
                                 "active_units": active_units(means[rows])}
        if y is not None:
            lab_means, _ = encode_rows(model, self.lab[0], self.lab[1])
            entry["knn_accuracy"] = knn_accuracy(lab_means, self.lab[2], means[rows], y[rows])
        entry.update(task_mutual_information_bounds(samples, s_np))
        self.records.append(entry)


def checkpoint_callback(config: dict[str, Any], options: dict[str, Any], data: Dataset, test_set: Dataset,
                         labelled: Dataset | None, target: int | None) -> _Checkpoints:
    """Fixed binarised inputs (seed 0) of the labelled and test rows for :class:`_Checkpoints`."""
    transform = data.meta.get("batch_transform")

    def tensors(part: Dataset) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = torch.from_numpy(part.x)
        if transform is not None:
            x = transform(x, torch.Generator().manual_seed(0))
        s = torch.from_numpy(part.s) if options["n_tasks"] else None
        return x, s

    lab = (*tensors(labelled), labelled.y) if labelled is not None else (torch.zeros(0), None, np.zeros(0))
    x_test, s_test = tensors(test_set)
    return _Checkpoints(config["checkpoints"], lab, (x_test, s_test, test_set.y, test_set.s), target)  # type: ignore[arg-type]
