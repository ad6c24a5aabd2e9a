"""A trained model with its preprocessing: fit on a data set, evaluate, score rows, save and load."""

from __future__ import annotations

import copy
import json
import logging
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributions import Independent, Normal

from . import generate
from .checkpoint import checkpoint_record, load_checkpoint, save_checkpoint
from .data import Dataset, Preprocessor, to_tensor
from .data.columns import frame_in_order
from .errors import CheckpointError, ConfigError, DataError
from .evaluation import elbo, log_likelihood, reestimate_log_normaliser
from .integrity import check_loaded, check_shapes
from .likelihoods import LIKELIHOODS
from .model import VAE, ModelConfig
from .training import TrainConfig, Trainer, TrainResult, finite_or_none, torch_seeded

CHECKPOINT_NAME = "model.pt"
RESULT_NAME = "result.json"
DETECTOR_CHECKPOINT_NAME = "detector.pt"  #: written by VAEDetector.save; loads here too
log = logging.getLogger(__name__)


def log_likelihood_metrics(model: VAE, raw_mean: float, n_samples: int) -> dict[str, Any]:
    """A test split's log-likelihood entries: the raw importance-sampled mean and, for an unnormalised prior,
    the normalised one with its log Z estimate (non-finite values as None)."""
    metrics: dict[str, Any] = {"test_log_likelihood": finite_or_none(raw_mean), "importance_samples": n_samples}
    normaliser = model.prior.normaliser_metrics()
    if normaliser:  # an unnormalised prior: the raw value (the thesis's "≈") and the normalised one
        metrics["test_log_likelihood_normalised"] = finite_or_none(raw_mean - normaliser["log_normaliser"])
        metrics.update({k: finite_or_none(v) if isinstance(v, float) else v for k, v in normaliser.items()})
    return metrics


def default_likelihood(binary: bool) -> str:
    """The likelihood when none is chosen: Bernoulli for binary (0/1) data, Student-t otherwise."""
    return "bernoulli" if binary else "student-t"


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
        """Validate and preprocess raw rows (a DataFrame's columns matched by name) into model inputs; with a
        training ``transform`` (e.g. dynamic binarisation) they are checked as the model will see them."""
        x_t = to_tensor(self.preprocessor.transform(np.asarray(frame_in_order(x, self.info.get("columns")))))
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
        dtype: torch.dtype = torch.float64,
        seed: int | None = 0,
        progress: bool | None = False,
    ) -> np.ndarray:
        """Per-row importance-sampled log p(x) in the model's (standardised) data space.

        Deterministic by default: the K importance samples are common random numbers drawn from ``seed`` (or the
        given ``noise``, see :func:`~vaekit.evaluation.log_likelihood`), and a double-precision copy of the model
        evaluates them, so a row's score depends neither on the batch it is in nor on the global random state
        (as :class:`~vaekit.detect.VAEDetector`). ``seed=None`` draws fresh samples from the global generator.
        """
        if not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ConfigError(f"n_samples (importance samples) must be an integer >= 1, got {n_samples!r}")
        x_t, s_t = self.prepare(x, s)
        same = next(self.model.parameters()).dtype == dtype
        model = self.model if same or dtype == torch.float32 else copy.deepcopy(self.model).to(dtype)
        x_t = x_t.to(dtype)
        with torch_seeded(seed):  # the beta-CVAE's zeta and non-Gaussian encoders draw from here
            if seed is not None and noise is None and self._gaussian_encoder():
                generator = torch.Generator().manual_seed(seed)
                noise = torch.randn(n_samples, self.model.config.latent_dim, generator=generator)
            noise = None if noise is None else noise.to(dtype)
            ll = log_likelihood(model, x_t, s_t, n_samples=n_samples, noise=noise, progress=progress).double()
        if normalised:
            ll = ll - self.model.prior.log_normaliser()
        return ll.numpy()

    def reestimate_log_normaliser(self, x: np.ndarray | None = None, s: np.ndarray | None = None,
                                  method: str = "annealed", seed: int = 0, **options: Any) -> dict[str, Any] | None:
        """Estimate the implicit prior's log Z again (AIS by default; ``options``: ``n_samples``, ``n_steps``) and
        use it from now on; None for normalised priors (see :func:`~vaekit.evaluation.reestimate_log_normaliser`)."""
        x_t, s_t = self.prepare(x, s) if x is not None else (None, None)
        return reestimate_log_normaliser(self.model, x_t, s_t, method=method, seed=seed, **options)

    @property
    def scores_rows_independently(self) -> bool:
        """Whether a seeded :meth:`score_samples` gives each row the same score whatever batch it is scored in.

        True for diagonal-Gaussian encoders (the importance noise is fixed by the seed); False for encoders that
        draw their samples per batch (AVB, the beta-CVAE's task latent): score those rows in one call."""
        return self._gaussian_encoder()

    def _gaussian_encoder(self) -> bool:
        """Whether q(z|x) is a diagonal Gaussian over ``latent_dim`` (fixed importance noise applies)."""
        if not self.model.encoder_has_density or self.model.task_latent is not None:
            return False
        weight = next(self.model.parameters())  # the probe goes where the model is (e.g. CUDA), in its precision
        s = torch.zeros(1, dtype=torch.long, device=weight.device) if self.model.config.n_tasks else None
        probe = self.model.encode(torch.zeros(1, self.model.config.x_dim, device=weight.device, dtype=weight.dtype), s)
        return isinstance(probe, Independent) and isinstance(probe.base_dist, Normal)

    def evaluate(self, x: np.ndarray, s: np.ndarray | None = None, n_samples: int = 100,
                 progress: bool | None = False) -> dict[str, Any]:
        """Mean test log-likelihood (raw and, for implicit priors, normalised) with non-finite values as None.

        Models with an implicit encoder (AVB) have no importance-sampled log-likelihood: ``test_log_likelihood`` is
        None and ``test_elbo_estimate`` holds the discriminator-based ELBO estimate instead. The importance samples
        come from the global random state (seed it for a repeatable value).
        """
        if not self.model.encoder_has_density:
            x_t, s_t = self.prepare(x, s)
            estimate = finite_or_none(float(elbo(self.model, x_t, s_t).mean()))
            return {"test_log_likelihood": None, "test_elbo_estimate": estimate, "importance_samples": 0,
                    "n_test": len(x_t)}
        raw = self.score_samples(x, s, n_samples, normalised=False, dtype=torch.float32, seed=None,
                                 progress=progress)
        return {**log_likelihood_metrics(self.model, float(raw.mean()), n_samples), "n_test": len(raw)}

    # ------------------------------------------------------------------------------ the data's own units
    def transform(self, x: np.ndarray, s: np.ndarray | None = None) -> np.ndarray:
        """Posterior means E[z|x] per row, ``[N, latent_dim]`` (scikit-learn's ``transform``)."""
        return generate.posterior_means(self, x, s)

    def reconstruct(self, x: np.ndarray, s: np.ndarray | None = None) -> np.ndarray:
        """Decoder means at the posterior means, in the data's own units (standardisation undone)."""
        return generate.reconstruct(self, x, s)

    def sample(self, n: int, s: np.ndarray | int | None = None, seed: int = 0, mean: bool = False) -> np.ndarray:
        """``n`` rows drawn from p(x|z) p(z) (``mean=True``: decoder means), in the data's own units."""
        return generate.sample(self, n, s, seed=seed, mean=mean)

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
            config = ModelConfig.from_dict(record["model_config"])
            check_shapes(config, record["state_dict"], path)
            model = VAE.from_config(config)
            model.load_state_dict(record["state_dict"])
            preprocessor = Preprocessor.from_state_dict(record["preprocessor"])
        except (KeyError, RuntimeError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
                MemoryError) as err:
            reason = " ".join(str(err).split())[:200] or type(err).__name__
            raise CheckpointError(f"{path} does not match the model it describes ({reason}); retrain") from err
        check_loaded(model, preprocessor, path)
        if not isinstance(record.get("info", {}), dict):
            raise CheckpointError(f"{path}: its 'info' entry is not a mapping; the file is damaged, retrain")
        model.eval()
        return cls(model, preprocessor, dict(record.get("info", {})))

    def save(self, directory: str | Path) -> Path:
        return save_checkpoint(Path(directory) / CHECKPOINT_NAME, "vae", self.to_record())

    def checkpoint_writer(self) -> Callable[[Any], None]:
        """``write(file)`` of this model's checkpoint, for :func:`~vaekit.checkpoint.replace_directory`."""
        record = checkpoint_record("vae", self.to_record())
        return lambda f: torch.save(record, f)

    @classmethod
    def load(cls, directory: str | Path) -> TrainedModel:
        """A model saved by :func:`fit` (``model.pt``) or by ``VAEDetector.save`` (``detector.pt``): a directory
        or the file itself."""
        directory = Path(directory)
        path = directory / CHECKPOINT_NAME if directory.is_dir() else directory
        detector = directory / DETECTOR_CHECKPOINT_NAME
        if directory.is_dir() and not path.is_file():
            if not detector.is_file():
                raise CheckpointError(
                    f"no checkpoint in {directory}: expected {CHECKPOINT_NAME} (vaekit fit --out DIR) or "
                    f"{DETECTOR_CHECKPOINT_NAME} (vaekit detect --save DIR)"
                )
            return cls.from_record(load_checkpoint(detector, "detector"), detector)
        if path.name == DETECTOR_CHECKPOINT_NAME:
            return cls.from_record(load_checkpoint(path, "detector"), path)
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
    trained.info["constant_values"] = {
        str(c): float(train_set.x[0, c]) for c in preprocessor.constant_columns_
    }  # put back by TrainedModel.sample/reconstruct
    transform = train_set.meta.get("batch_transform")
    train_x, train_s = trained.prepare(train_set.x, train_set.s, transform)
    val_x, val_s = (None, None) if val_set is None else trained.prepare(val_set.x, val_set.s)
    result = Trainer(train, batch_transform=transform, callbacks=callbacks).fit(
        model, train_x, val_x, train_s, val_s
    )
    return trained, result
