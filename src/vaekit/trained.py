"""A trained model with its preprocessing: fit on a data set, evaluate, score rows, save and load."""

from __future__ import annotations

import contextlib
import copy
import difflib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributions import Independent, Normal

from . import generate
from .checkpoint import checkpoint_record, load_checkpoint, python_values, replace_directory, save_checkpoint
from .data import Dataset, Preprocessor, columns_info, from_array, load_dataset, to_tensor, training_data
from .data.columns import frame_in_order
from .data.sources import sha256_of
from .errors import CheckpointError, ConfigError, DataError, DatasetNotFoundError
from .evaluation import elbo, log_likelihood, reestimate_log_normaliser
from .integrity import check_loaded, check_shapes
from .interrupts import deferred_interrupts
from .likelihoods import LIKELIHOODS
from .model import VAE, ModelConfig, model_options_of
from .tracking import final_metrics, finish_trackers
from .training import TrainConfig, Trainer, TrainResult, finite_or_none
from .validation import check_run_folder

CHECKPOINT_NAME = "model.pt"
RESULT_NAME = "result.json"
DETECTOR_CHECKPOINT_NAME = "detector.pt"  #: written by VAEDetector.save; loads here too
log = logging.getLogger(__name__)


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
        x_t, s_t = self.prepare(x, s)
        model = self.model if dtype == torch.float32 else copy.deepcopy(self.model).to(dtype)
        x_t = x_t.to(dtype)
        with torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext():
            if seed is not None:
                torch.manual_seed(seed)  # the beta-CVAE's zeta and non-Gaussian encoders draw from here
                if noise is None and self._gaussian_encoder():
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
        device = next(self.model.parameters()).device  # the probe goes where the model is (e.g. CUDA)
        s = torch.zeros(1, dtype=torch.long, device=device) if self.model.config.n_tasks else None
        probe = self.model.encode(torch.zeros(1, self.model.config.x_dim, device=device), s)
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
    train, importance_samples = training_options(train, model_options), python_values(importance_samples)
    if isinstance(importance_samples, bool) or not isinstance(importance_samples, int) or importance_samples < 1:
        raise ConfigError(f"importance_samples must be a whole number >= 1, got {importance_samples!r}")
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
    trained.info.update(columns_info(dataset))
    if target is not None:
        trained.info["target_task"] = int(target)
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
        summary.update(trained.evaluate(test_set.x, test_set.s, n_samples=importance_samples,
                                        progress=train.progress))
    except KeyboardInterrupt:
        if out is None:
            raise
        summary.update(interrupted=True, evaluated=False, evaluation_skipped=True, test_log_likelihood=None)
        if not saved:
            save_run(trained, summary, result.history, out)
        log.warning("test evaluation skipped; the model is saved in %s (evaluate it later: vaekit evaluate %s)",
                    out, out)
        summary["history"] = result.history
        return trained, summary
    artifacts = []
    if out is not None:
        save_run(trained, {**summary, "evaluated": True}, result.history, out)
        artifacts = [Path(out) / CHECKPOINT_NAME, Path(out) / RESULT_NAME]
    finish_trackers(model_options.get("callbacks"), {k: summary[k] for k in ("dataset", "model", "train", "split")},
                    final_metrics(summary), artifacts)
    summary["history"] = result.history
    return trained, summary


def subsample_rows(data: Dataset, n: int | None, seed: int) -> Dataset:
    """A seeded random subset of ``n`` rows in their original order (all rows when ``n`` is None or larger)."""
    if n is None:
        return data
    if n < 1:
        raise ConfigError(f"--test-subsample must be >= 1, got {n}")
    if n >= len(data):
        return data
    return data.subset(np.sort(np.random.default_rng(seed).choice(len(data), n, replace=False)))


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
