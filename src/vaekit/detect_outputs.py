"""PyOD's probability outputs of a fitted detector: outlier probabilities (``predict_proba``) and the confidence in
each 0/1 prediction (``predict_confidence``), both calibrated on the training scores ``decision_scores_``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import erf
from sklearn.utils.validation import check_is_fitted

from .errors import ConfigError


class OutlierProbabilities:
    """Mixin for a detector with ``decision_function``, ``decision_scores_``, ``threshold_`` and ``contamination``."""

    decision_scores_: np.ndarray
    threshold_: float
    contamination: float

    def predict_confidence(self, X: Any) -> np.ndarray:
        """Confidence in each 0/1 prediction, in [0, 1] (ExCeeD, Perini et al. 2020, as PyOD computes it).

        A row's outlier probability is the Bayesian estimate (1 + #training scores <= its score) / (2 + n); the
        confidence is the probability, under a binomial model of n training rows, that the row would keep its
        label, i.e. ``1 - binom.cdf(n - round_down(n * contamination), n, p)`` for outliers and one minus that
        for inliers.
        """
        self._check_threshold("asking for confidences")
        scores = self.decision_function(X)  # type: ignore[attr-defined]
        return self._confidence(scores, (scores > self.threshold_).astype(int))

    def _confidence(self, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
        from scipy.stats import binom

        train = np.sort(self.decision_scores_)
        n = len(train)
        below = np.searchsorted(train, np.nan_to_num(scores, nan=np.inf), side="right")
        posterior = (1 + below) / (2 + n)
        confidence = 1 - binom.cdf(n - int(n * self.contamination), n, posterior)
        return np.where(labels == 1, confidence, 1 - confidence)

    def predict_proba(self, X: Any, method: str = "linear") -> np.ndarray:
        """Outlier probability as PyOD's ``[P(inlier), P(outlier)]`` columns, calibrated on ``decision_scores_``.

        ``"linear"`` rescales scores to [0, 1] by the training scores' min and max; ``"unify"`` maps the scores'
        z-value under the training scores' mean and standard deviation through erf (Kriegel et al., 2011).
        Both are clipped to [0, 1].
        """
        self._check_threshold("asking for probabilities")
        scores = self.decision_function(X)  # type: ignore[attr-defined]
        train = self.decision_scores_
        if method == "linear":
            span = train.max() - train.min()
            p = (scores - train.min()) / span if span > 0 else (scores > train.max()).astype(float)
        elif method == "unify":
            std = train.std()
            p = erf((scores - train.mean()) / (std * math.sqrt(2))) if std > 0 else (scores > train.mean()) * 1.0
        else:
            raise ConfigError(f"method must be 'linear' or 'unify', got {method!r}")
        p = np.clip(p, 0.0, 1.0)
        return np.column_stack([1 - p, p])

    def _check_threshold(self, before: str) -> None:
        """NotFittedError, saying what to do, for a detector without training scores (e.g. from_trained)."""
        check_is_fitted(self, "threshold_", msg="This %(name)s has no threshold yet: call fit, or calibrate a "
                                                f"detector made by from_trained, before {before}.")
