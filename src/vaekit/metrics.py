"""Representation metrics of chapter 5: active units, MMD, kNN downstream accuracy and the task dependency I(S;Z)."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from .errors import DataError

log = logging.getLogger(__name__)
#: test rows per kNN prediction chunk: a multiple of scikit-learn's own 256-row distance chunks
KNN_CHUNK_ROWS = 4096
#: distance evaluations (test rows x labelled rows) above which the kNN's expected cost is logged before it starts
ANNOUNCE_DISTANCES = 50_000_000


def active_units(posterior_means: torch.Tensor | np.ndarray, delta: float = 0.01) -> int:
    """Number of latent dimensions d with Var_x[E_q(z_d|x)[z_d]] > delta (Eq. 5.38; Burda et al., 2016)."""
    means = torch.as_tensor(posterior_means, dtype=torch.float64)
    return int((means.var(0, unbiased=False) > delta).sum())


def gaussian_mmd(a: torch.Tensor, b: torch.Tensor, bandwidths: Sequence[float] | None = None) -> torch.Tensor:
    """Biased estimate of the squared maximum mean discrepancy with a (sum of) Gaussian kernel(s).

    ``bandwidths`` are kernel widths sigma in k(u, v) = exp(-||u - v||^2 / (2 sigma^2)); by default the median
    pairwise distance of the pooled samples (detached). Differentiable in ``a`` and ``b`` (the VFAE penalty,
    Eqs. 5.6-5.7). Zero for identical samples, growing with a shift between them.
    """
    pooled = torch.cat([a, b])
    sq = torch.cdist(pooled, pooled).pow(2)
    if bandwidths is None:
        median = sq.detach()[sq.detach() > 0].median() if (sq.detach() > 0).any() else torch.tensor(1.0)
        widths = [float(median.sqrt())]
    else:
        widths = list(bandwidths)
    kernel = sum(torch.exp(-sq / (2 * w**2)) for w in widths)
    n = a.shape[0]
    k_aa, k_bb, k_ab = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    return k_aa.mean() + k_bb.mean() - 2 * k_ab.mean()


def knn_accuracy(z_labelled: np.ndarray, y_labelled: np.ndarray, z_test: np.ndarray, y_test: np.ndarray,
                 k: int = 3, progress: bool | None = False, chunk_rows: int = KNN_CHUNK_ROWS) -> float:
    """Accuracy of a k-nearest-neighbour classifier fitted on the labelled representations only (section 5.5.1).

    The test rows are predicted ``chunk_rows`` at a time behind a progress bar (``progress``; ``None``: only on a
    terminal); each row's prediction does not depend on the chunk it is in.
    """
    if len(z_labelled) < k:
        raise ValueError(f"need at least k={k} labelled points, got {len(z_labelled)}")
    classifier = KNeighborsClassifier(n_neighbors=k).fit(np.asarray(z_labelled), np.asarray(y_labelled))
    return float(accuracy_score(np.asarray(y_test), knn_predict(classifier, np.asarray(z_test), progress, chunk_rows)))


def knn_predict(classifier: KNeighborsClassifier, z: np.ndarray, progress: bool | None = False,
                chunk_rows: int = KNN_CHUNK_ROWS) -> np.ndarray:
    """``classifier.predict(z)`` in chunks of ``chunk_rows`` rows with a progress bar; large runs log their size
    first and, after the first chunk, the expected time."""
    n, n_fit = len(z), classifier.n_samples_fit_
    announce = n * n_fit >= ANNOUNCE_DISTANCES
    if announce:
        log.info("%d-NN: %s test rows x %s labelled rows (%d-d) = %s distances", classifier.n_neighbors, f"{n:,}",
                 f"{n_fit:,}", z.shape[1], f"{n * n_fit:,}")
    predictions = []
    start = time.perf_counter()
    with tqdm(total=n, unit="row", desc=f"{classifier.n_neighbors}-NN", leave=False,
              disable=None if progress is None else not progress) as bar:
        for first in range(0, n, chunk_rows):
            predictions.append(classifier.predict(z[first:first + chunk_rows]))
            bar.update(len(predictions[-1]))
            if announce and first == 0 and chunk_rows < n:
                expected = (time.perf_counter() - start) * n / chunk_rows
                log.info("%d-NN: about %.0f s expected (from the first %d rows)", classifier.n_neighbors, expected,
                         chunk_rows)
    return np.concatenate(predictions) if predictions else classifier.predict(z)


#: Task classifiers q(s|z) for the I(S;Z) lower bound: a linear probe and a stronger, non-linear one.
PROBES = ("linear", "mlp")


def _probe(name: str, seed: int, early_stopping: bool = True) -> Any:
    if name == "linear":
        return LogisticRegression(max_iter=1000)
    if name == "mlp":
        return make_pipeline(StandardScaler(), MLPClassifier((64, 64), alpha=1e-3, max_iter=300,
                                                             early_stopping=early_stopping, random_state=seed))
    raise ValueError(f"unknown probe {name!r}; choose one of {PROBES}")


def task_mutual_information(z: np.ndarray, s: np.ndarray, folds: int = 5, seed: int = 0,
                            probe: str = "linear") -> float:
    """Lower bound on I(S; Z) in nats (Eq. 5.10) by the variational bound H(S) + E[log q(s|z)].

    q(s|z) is a task classifier (``probe``: logistic regression, or a small MLP) evaluated out of fold
    (scikit-learn ``cross_val_predict``), so the estimate does not reward memorisation; any classifier gives a
    lower bound up to estimation error, clipped at 0. Zero means the classifier cannot tell the tasks apart from z
    better than their frequencies.
    """
    z, s = np.asarray(z, dtype=np.float64), np.asarray(s)
    tasks, counts = np.unique(s, return_counts=True)
    if len(tasks) < 2:
        return 0.0
    prior = counts / counts.sum()
    entropy = float(-(prior * np.log(prior)).sum())
    n_folds = int(min(folds, counts.min()))
    if n_folds < 2:
        raise DataError("every task needs at least two points to estimate I(S;Z)")
    cv = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    # the MLP's early stopping holds out 10 % of a training fold, which needs a row of every task
    early_stopping = 0.1 * len(s) * (1 - 1 / n_folds) >= len(tasks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        proba = cross_val_predict(_probe(probe, seed, early_stopping), z, s, cv=cv, method="predict_proba")
    index = np.searchsorted(tasks, s)
    log_q = np.log(np.clip(proba[np.arange(len(s)), index], 1e-12, 1.0))
    return max(0.0, entropy + float(log_q.mean()))


def task_mutual_information_bounds(z: np.ndarray, s: np.ndarray, seed: int = 0) -> dict[str, float]:
    """I(S;Z) lower bounds from every probe (``task_mutual_information_linear``, ``..._mlp``) and the larger of
    them (``task_mutual_information``), which is the tighter lower bound."""
    bounds = {f"task_mutual_information_{p}": task_mutual_information(z, s, seed=seed, probe=p) for p in PROBES}
    return {"task_mutual_information": max(bounds.values()), **bounds}


def task_mmd(z: torch.Tensor, s: torch.Tensor, n_tasks: int, bandwidths: Sequence[float] | None = None) -> torch.Tensor:
    """The VFAE penalty on samples ``z`` ``[B, D]`` with task indices ``s`` ``[B]`` (differentiable in ``z``).

    Two tasks: MMD(q(z|s=0), q(z|s=1)) (Eq. 5.6). K >= 3 tasks: sum_k MMD(q(z|s=k), q(z)) with the pooled batch as
    the sample of q(z) = sum_k q(z|s=k) p_D(s=k) (Eqs. 5.7, 5.8). Tasks absent from the batch contribute nothing,
    so a batch holding fewer than two tasks gives 0.
    """
    s = s.reshape(-1)
    present = [k for k in range(n_tasks) if bool((s == k).any())]
    if len(present) < 2:
        return z.new_zeros(())
    if n_tasks == 2:
        return gaussian_mmd(z[s == 0], z[s == 1], bandwidths)
    return sum(gaussian_mmd(z[s == k], z, bandwidths) for k in present)  # type: ignore[return-value]
