"""Anomaly detection with a VAE: a scikit-learn estimator with PyOD's detector interface.

A row's anomaly score is its negative importance-sampled log-likelihood, -log p(x), under a VAE trained on the
data passed to :meth:`VAEDetector.fit` (Student-t decoder by default, chapter 3). Fitted attributes and their
semantics follow PyOD's ``BaseDetector``: ``decision_scores_`` (training scores, higher = more anomalous),
``threshold_`` (their 1 - ``contamination`` quantile) and ``labels_`` (0 = inlier, 1 = outlier), so a PyOD user
swaps in one line::

    det = VAEDetector(contamination=0.01, random_state=0).fit(X_train)
    det.decision_function(X_test)   # -log p(x); higher = more anomalous
    det.predict(X_test)             # 0/1 by det.threshold_

Because of PyOD's conventions (``predict`` in {0, 1}, ``decision_function`` higher for outliers) the class is
deliberately *not* a scikit-learn ``OutlierMixin`` (``predict`` in {-1, 1}, ``decision_function`` negative for
outliers); ``score_samples`` keeps scikit-learn's sign (log p(x), higher = more normal).

Scoring is deterministic: the K importance samples use fixed standard-normal draws stored at fit time (common
random numbers), and a double-precision copy of the network evaluates them, so a row's score does not depend on
the batch it is scored in, on row order, or on the global random state.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .checkpoint import load_checkpoint, save_checkpoint
from .data import Dataset
from .detect_auto import auto_config
from .detect_outputs import OutlierProbabilities
from .errors import CheckpointError, ConfigError, DataError
from .likelihoods import LIKELIHOODS
from .priors import PRIORS
from .trained import TrainedModel, train_vae
from .training import TrainConfig, Trainer, TrainResult

CHECKPOINT_NAME = "detector.pt"
KIND = "detector"
#: Rows needed to fit: at least two training rows (a spread to standardise) and one validation row.
MIN_SAMPLES = 3
AUTO = "auto"
#: importance samples used to rank the training rows for ``trim_fraction`` (a ranking, not a reported score)
TRIM_IMPORTANCE_SAMPLES = 10


class VAEDetector(OutlierProbabilities, BaseEstimator):
    """Unsupervised anomaly detector scoring rows by the VAE log-likelihood -log p(x).

    Parameters
    ----------
    likelihood, prior : str
        Names from :data:`vaekit.likelihoods.LIKELIHOODS` and :data:`vaekit.priors.PRIORS`.
    latent_dim : int or "auto"
        Dimension of z. ``"auto"`` (and likewise for ``hidden``, ``epochs``, ``batch_size``, ``patience``,
        ``training_noise`` and ``max_train_rows``) applies the shape rule of :mod:`vaekit.detect_auto`; the
        resolved values are in ``config_`` after ``fit``.
    hidden : tuple of int or "auto"
        Hidden layer sizes of the encoder (the decoder mirrors them).
    activation : str
        Hidden activation.
    likelihood_kwargs, prior_kwargs : dict or None
        Extra constructor options of the likelihood head / prior (e.g. ``{"nu_init": 10.0}``).
    contamination : float in (0, 0.5]
        Expected fraction of outliers in the training data; sets ``threshold_``.
    epochs, batch_size, lr, patience : training budget (Adam; early stopping after ``patience`` epochs without
        improvement of the validation ELBO, ``None`` to disable). ``batch_size`` is capped at the training rows.
    validation_fraction : float in [0, 0.5]
        Fraction of the rows held out for early stopping (0: stop on the training loss).
    training_noise : float or "auto"
        Standard deviation of Gaussian noise added to each standardised training mini-batch (dequantisation of
        duplicated rows and discrete columns; 0 = none). Only for likelihoods that standardise (not Bernoulli).
    max_train_rows : int, None or "auto"
        Train on a seeded random subsample of at most this many rows (all rows are still scored); None = all.
    trim_fraction : float in [0, 0.5)
        Contamination-robust refit: after training, drop this fraction of the training rows with the highest
        anomaly score (the likely anomalies) and continue training on the rest for half the epoch budget.
        0 disables it. The default 0.1 was chosen by the ADBench comparison (docs/anomaly.md).
    importance_samples : int
        K, importance samples per row for log p(x).
    constant_columns : {"error", "drop"}
        What to do with columns that are constant in the training rows (see :class:`vaekit.data.Preprocessor`).
    random_state : int, RandomState or None
        Seeds the validation split, the network's initialisation, training and the importance samples.
    device : str or None
        Where to train and score: "cpu" (default), "cuda", "cuda:N", "mps" or "auto" (CUDA when available).
    callbacks : list or None
        Per-epoch callbacks / :class:`vaekit.tracking.Tracker` objects (e.g. an MLflow logger).

    Attributes
    ----------
    decision_scores_ : ndarray of shape (n_samples,)
        -log p(x) of the rows passed to ``fit`` (higher = more anomalous).
    config_ : dict
        The resolved architecture and budget (``"auto"`` settings replaced by the shape rule's values); for a
        detector made by :meth:`from_trained`, the architecture only (``latent_dim``, ``hidden``).
    threshold_ : float
        The ``100 * (1 - contamination)`` percentile of ``decision_scores_``.
    labels_ : ndarray of shape (n_samples,)
        1 where ``decision_scores_ > threshold_``, else 0.
    trained_ : TrainedModel
        The VAE with its standardisation.
    train_result_ : TrainResult
        Training history, the epoch whose weights were kept, divergence.
    importance_noise_ : Tensor of shape (importance_samples, latent_dim)
        The fixed standard-normal draws of the importance sampler.
    n_features_in_, feature_names_in_ : as in scikit-learn.
    """

    def __init__(
        self,
        likelihood: str = "student-t",
        prior: str = "standard",
        latent_dim: int | str = AUTO,
        hidden: tuple[int, ...] | str = AUTO,
        activation: str = "tanh",
        likelihood_kwargs: dict[str, Any] | None = None,
        prior_kwargs: dict[str, Any] | None = None,
        contamination: float = 0.1,
        epochs: int | str = AUTO,
        batch_size: int | str = AUTO,
        lr: float = 1e-3,
        patience: int | str | None = AUTO,
        validation_fraction: float = 0.1,
        importance_samples: int = 100,
        constant_columns: str = "drop",
        training_noise: float | str = AUTO,
        max_train_rows: int | str | None = AUTO,
        trim_fraction: float = 0.1,
        random_state: int | np.random.RandomState | None = None,
        device: str | None = None,
        callbacks: list[Any] | None = None,
    ) -> None:
        self.likelihood = likelihood
        self.prior = prior
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.activation = activation
        self.likelihood_kwargs = likelihood_kwargs
        self.prior_kwargs = prior_kwargs
        self.contamination = contamination
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.importance_samples = importance_samples
        self.constant_columns = constant_columns
        self.training_noise = training_noise
        self.max_train_rows = max_train_rows
        self.trim_fraction = trim_fraction
        self.random_state = random_state
        self.device = device
        self.callbacks = callbacks

    # -------------------------------------------------------------------------------------------- fitting
    def fit(self, X: Any, y: Any = None) -> VAEDetector:
        """Train the VAE on ``X`` (``y`` is ignored) and set ``decision_scores_``, ``threshold_``, ``labels_``."""
        X = self._validate(X, reset=True)
        self._check_params()
        seed = _seed(self.random_state)
        self.config_ = config = self._resolve(*X.shape)
        rng = np.random.default_rng(seed)
        used = np.arange(len(X))
        if config["max_train_rows"] is not None and len(X) > config["max_train_rows"]:
            used = np.sort(rng.choice(len(X), config["max_train_rows"], replace=False))
        n_val = math.ceil(self.validation_fraction * len(used)) if self.validation_fraction > 0 else 0
        order = rng.permutation(used)
        train_rows, val_rows = np.sort(order[n_val:]), np.sort(order[:n_val])
        train = TrainConfig(
            epochs=config["epochs"], batch_size=min(config["batch_size"], len(train_rows)), lr=self.lr,
            patience=config["patience"], seed=seed, device=self.device,
        )
        meta = {}
        likelihood = LIKELIHOODS.get(self.likelihood)  # an unknown name is reported by train_vae
        if config["training_noise"] > 0 and likelihood is not None and likelihood.standardise:
            meta["batch_transform"] = _GaussianNoise(float(config["training_noise"]))
        with torch.random.fork_rng(devices=[]):  # seeded training without touching the global random state
            self.trained_, self.train_result_ = train_vae(
                Dataset("train", X[train_rows], meta=meta),
                Dataset("validation", X[val_rows]) if n_val else None,
                likelihood=self.likelihood, prior=self.prior, latent_dim=config["latent_dim"],
                hidden=config["hidden"], constant_columns=self.constant_columns, train=train,
                activation=self.activation, likelihood_kwargs=dict(self.likelihood_kwargs or {}),
                prior_kwargs=dict(self.prior_kwargs or {}), callbacks=self.callbacks,
            )
            if self.trim_fraction > 0:
                self._trimmed_refit(X[train_rows], X[val_rows] if n_val else None, train, meta)
        generator = torch.Generator().manual_seed(seed)
        self.importance_noise_ = torch.randn(self.importance_samples, config["latent_dim"], generator=generator)
        self._set_training_scores(-self._log_likelihood(X))
        if self.callbacks:
            from .tracking import finish_trackers

            finish_trackers(self.callbacks, {k: v for k, v in self.get_params().items() if k != "callbacks"},
                            {"threshold": self.threshold_, "n_flagged": float(self.labels_.sum()),
                             "epochs_run": float(self.train_result_.epochs_run)})
        return self

    def _resolve(self, n_rows: int, n_features: int) -> dict[str, Any]:
        """The fit's settings: explicit parameters as given, ``"auto"`` ones from :func:`auto_config`."""
        rule = auto_config(n_rows, n_features, self.validation_fraction).to_dict()
        rule["max_train_rows"] = rule.pop("train_rows") if n_rows > rule["train_rows"] else None
        given = {"latent_dim": self.latent_dim, "hidden": self.hidden, "epochs": self.epochs,
                 "batch_size": self.batch_size, "patience": self.patience, "training_noise": self.training_noise,
                 "max_train_rows": self.max_train_rows}
        config = {k: rule[k] if _is_auto(v) else v for k, v in given.items()}
        if _is_auto(self.patience):  # a tenth of the epochs actually allowed (given or chosen), at least 5
            config["patience"] = max(5, int(config["epochs"]) // 10)
        config["hidden"] = tuple(int(h) for h in config["hidden"])
        return config

    def _trimmed_refit(self, train_x: np.ndarray, val_x: np.ndarray | None, train: TrainConfig,
                       meta: dict[str, Any]) -> None:
        """Drop the ``trim_fraction`` highest-scoring training rows and continue training on the rest."""
        scores = -self.trained_.score_samples(train_x, n_samples=TRIM_IMPORTANCE_SAMPLES)
        n_keep = max(2, int(round(len(scores) * (1 - self.trim_fraction))))
        keep = np.argsort(np.nan_to_num(scores, nan=np.inf))[:n_keep]
        second = TrainConfig(epochs=max(1, train.epochs // 2), batch_size=min(train.batch_size, len(keep)),
                             lr=train.lr, patience=train.patience, seed=train.seed + 1)
        model = self.trained_.model
        x_t, _ = self.trained_.prepare(train_x[np.sort(keep)])
        v_t = None if val_x is None else self.trained_.prepare(val_x)[0]
        first, offset = self.train_result_, self.train_result_.epochs_run
        # the refit's epochs continue the first phase's numbering, for the history and for the trackers
        callbacks = [lambda epoch, m, record, cb=cb: cb(epoch + offset, m, {**record, "epoch": epoch + offset})
                     for cb in self.callbacks or []]
        result = Trainer(second, callbacks=callbacks, batch_transform=meta.get("batch_transform")).fit(model, x_t, v_t)
        result.history = first.history + [{**r, "epoch": r["epoch"] + offset} if "epoch" in r else r
                                          for r in result.history]
        result.best_epoch += offset if result.best_epoch else 0
        result.diverged, result.rollbacks = result.diverged or first.diverged, result.rollbacks + first.rollbacks
        result.diverged_epoch = first.diverged_epoch if first.diverged else (
            None if result.diverged_epoch is None else result.diverged_epoch + offset)
        result.epochs_run += first.epochs_run
        result.train_seconds += first.train_seconds
        self.train_result_ = result

    def _set_training_scores(self, scores: np.ndarray) -> None:
        self.decision_scores_ = scores
        self.threshold_ = float(np.percentile(scores, 100 * (1 - self.contamination)))
        self.labels_ = (scores > self.threshold_).astype(int)

    def _check_params(self) -> None:
        if isinstance(self.prior, str) and self.prior in PRIORS and PRIORS[self.prior].encoder == "implicit":
            # checked before training: an implicit encoder has no density q(z|x) to score rows with
            raise ConfigError(f"prior={self.prior!r} cannot score rows: its implicit encoder has no density q(z|x), so "
                              "there is no log-likelihood to rank anomalies by; choose standard, vamp or implicit")
        if not 0 < self.contamination <= 0.5:
            raise ConfigError(f"contamination must be in (0, 0.5], got {self.contamination}")
        if not 0 <= self.validation_fraction <= 0.5:
            raise ConfigError(f"validation_fraction must be in [0, 0.5] (at most half the rows held out for early "
                              f"stopping), got {self.validation_fraction}")
        if not isinstance(self.importance_samples, numbers.Integral) or self.importance_samples < 1:
            raise ConfigError(f"importance_samples must be a positive integer, got {self.importance_samples!r}")
        if not _is_auto(self.latent_dim) and (not isinstance(self.latent_dim, numbers.Integral)
                                              or self.latent_dim < 1):
            raise ConfigError(f"latent_dim must be a positive integer or 'auto', got {self.latent_dim!r}")
        if not 0 <= self.trim_fraction < 0.5:
            raise ConfigError(f"trim_fraction must be in [0, 0.5), got {self.trim_fraction}")
        if not _is_auto(self.training_noise) and not (isinstance(self.training_noise, numbers.Real)
                                                      and self.training_noise >= 0):
            raise ConfigError(f"training_noise must be a number >= 0 or 'auto', got {self.training_noise!r}")

    def _validate(self, X: Any, reset: bool) -> np.ndarray:
        """scikit-learn's input validation (shape, NaN/inf, dtype, sparse, feature count) as :class:`DataError`."""
        try:
            return validate_data(self, X, reset=reset, dtype=[np.float64, np.float32],
                                 ensure_min_samples=MIN_SAMPLES if reset else 1)
        except ValueError as err:
            text = " ".join(str(err).split()) or type(err).__name__  # one line
            first = str(err).strip().splitlines()[0] if str(err).strip() else text
            if "sample(s)" in text and reset:
                text += f"; a detector trains on at least {MIN_SAMPLES} rows (more for a useful one): give more rows"
            elif "NaN" in first or "infinity" in first:  # not scikit-learn's advice on estimators that accept NaN
                text = first + " Drop or impute those rows first."
            elif "convert string" in first:
                text = first + "; X must hold numbers only: drop or encode its text columns"
            raise DataError(text) from err

    # -------------------------------------------------------------------------------------------- scoring
    def _log_likelihood(self, X: np.ndarray) -> np.ndarray:
        return self.trained_.score_samples(X, n_samples=self.importance_samples, noise=self.importance_noise_,
                                           dtype=torch.float64)

    def score_samples(self, X: Any) -> np.ndarray:
        """Importance-sampled log p(x) per row in the standardised space (higher = more normal)."""
        check_is_fitted(self)
        return self._log_likelihood(self._validate(X, reset=False))

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score -log p(x) per row (higher = more anomalous, as in PyOD)."""
        return -self.score_samples(X)

    def predict(self, X: Any, return_confidence: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """1 for rows whose anomaly score exceeds ``threshold_``, else 0; with ``return_confidence`` also
        :meth:`predict_confidence` (PyOD's signature)."""
        self._check_threshold("predicting")
        scores = self.decision_function(X)
        labels = (scores > self.threshold_).astype(int)
        if return_confidence:
            return labels, self._confidence(scores, labels)
        return labels

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit on ``X`` and return its 0/1 labels (``labels_``), as PyOD's ``fit_predict``."""
        return self.fit(X, y).labels_

    def set_contamination(self, contamination: float) -> VAEDetector:
        """Re-threshold a fitted detector at a new expected outlier fraction (no retraining)."""
        check_is_fitted(self)
        self.contamination = contamination
        self._check_params()
        self._set_training_scores(self.decision_scores_)
        return self

    def calibrate(self, X: Any) -> VAEDetector:
        """Set ``decision_scores_``/``threshold_``/``labels_`` from the scores of ``X`` (no training): for a
        detector built from a model saved by :func:`vaekit.fit` (see :meth:`from_trained`)."""
        check_is_fitted(self, "trained_", msg="This %(name)s has no model to calibrate: fit it, or make it with "
                                              "from_trained / load a fit run.")
        self._set_training_scores(-self._log_likelihood(self._validate(X, reset=False)))
        return self

    @classmethod
    def from_trained(cls, trained: TrainedModel, contamination: float = 0.1, importance_samples: int = 100,
                     random_state: int = 0) -> VAEDetector:
        """A detector around a trained model (e.g. ``TrainedModel.load(dir)`` of ``vaekit fit --out dir``).

        Its threshold needs scores: call :meth:`calibrate` with the rows the contamination refers to.
        """
        config = trained.model.config
        detector = cls(likelihood=config.likelihood, prior=config.prior, latent_dim=config.latent_dim,
                       hidden=tuple(config.hidden), activation=config.activation, contamination=contamination,
                       importance_samples=importance_samples, random_state=random_state)
        detector._check_params()
        detector.trained_ = trained
        detector.n_features_in_ = int(trained.preprocessor.n_features_in_)
        if trained.info.get("columns"):  # names recorded at fit: a DataFrame is checked by them (scikit-learn)
            detector.feature_names_in_ = np.asarray(trained.info["columns"], dtype=object)
        generator = torch.Generator().manual_seed(random_state)
        detector.importance_noise_ = torch.randn(importance_samples, config.latent_dim, generator=generator)
        detector.train_result_ = TrainResult(epochs_run=int(trained.info.get("epochs_run", 0)))
        detector.config_ = {"latent_dim": config.latent_dim, "hidden": tuple(config.hidden)}  # trained elsewhere
        return detector

    # ------------------------------------------------------------------------------------------ save/load
    def save(self, directory: str | Path) -> Path:
        """Write ``detector.pt`` (hyper-parameters, network, standardisation, threshold) atomically."""
        self._check_threshold("saving it")
        params = self.get_params()
        params.pop("callbacks", None)
        params["device"] = None  # the saved detector loads on the CPU
        if not isinstance(params["random_state"], (numbers.Integral, type(None))):
            params["random_state"] = None
        if not _is_auto(params["hidden"]):
            params["hidden"] = [int(h) for h in params["hidden"]]
        fitted = {
            "decision_scores": torch.as_tensor(self.decision_scores_, dtype=torch.float64),
            "threshold": self.threshold_,
            "importance_noise": self.importance_noise_,
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": [str(f) for f in getattr(self, "feature_names_in_", [])] or None,
            "train_result": self.train_result_.to_dict(),
            "config": {**self.config_, "hidden": list(self.config_["hidden"])},
        }
        return save_checkpoint(Path(directory) / CHECKPOINT_NAME, KIND,
                               {**self.trained_.to_record(), "params": params, "fitted": fitted})

    @classmethod
    def load(cls, path: str | Path) -> VAEDetector:
        """Read a detector written by :meth:`save` (a directory or the ``detector.pt`` file); no code runs."""
        path = Path(path)
        if path.is_dir() and not (path / CHECKPOINT_NAME).is_file() and (path / "model.pt").is_file():
            return cls.from_trained(TrainedModel.load(path))  # saved by vaekit fit: threshold via calibrate()
        path = path / CHECKPOINT_NAME if path.is_dir() else path
        record = load_checkpoint(path, KIND)
        try:
            params, fitted = dict(record["params"]), record["fitted"]
            params.pop("callbacks", None)
            if not _is_auto(params["hidden"]):
                params["hidden"] = tuple(params["hidden"])
            detector = cls(**params)
            detector.config_ = {**fitted["config"], "hidden": tuple(fitted["config"]["hidden"])}
            detector.trained_ = TrainedModel.from_record(record, path)
            detector.importance_noise_ = fitted["importance_noise"]
            detector.n_features_in_ = fitted["n_features_in"]
            if fitted["feature_names_in"] is not None:
                detector.feature_names_in_ = np.asarray(fitted["feature_names_in"], dtype=object)
            result = dict(fitted["train_result"])
            result["best_val_loss"] = math.inf if result["best_val_loss"] is None else result["best_val_loss"]
            detector.train_result_ = TrainResult(**result)
            detector.decision_scores_ = fitted["decision_scores"].numpy()
            detector.threshold_ = float(fitted["threshold"])
            detector.labels_ = (detector.decision_scores_ > detector.threshold_).astype(int)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise CheckpointError(f"{path} is not a complete detector checkpoint ({err}); retrain") from err
        return detector

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags


def _seed(random_state: int | np.random.RandomState | None) -> int:
    """An integer seed: ``random_state`` itself when it is an int, else one drawn from it."""
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == AUTO


class _GaussianNoise:
    """Batch transform adding N(0, sigma^2) noise to standardised training rows (dequantisation)."""

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x + self.sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
