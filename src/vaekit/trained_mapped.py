"""``fit`` for data larger than memory: the same schedule as :func:`vaekit.fitting.fit`, reading a memory map.

The split, preprocessing, model, training loop and evaluation are those of the in-memory path; only the rows are
gathered from the file batch by batch (:class:`~vaekit.data.mapped.MappedRows`), and the preprocessing is fitted
in one streaming pass (per-column minimum/maximum for the constant-column check, scikit-learn's
``StandardScaler.partial_fit`` for the standardisation). Binary data give exactly the in-memory results;
standardised data agree to float rounding (the running mean and variance are accumulated block by block).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import Preprocessor
from .data.dataset import seeded_subset, split_indices, validate_matrix
from .data.files import USER_SPLIT
from .data.mapped import RELEASE_BYTES, MappedRows, open_memory_map, scan_rows
from .data.sources import sha256_of
from .errors import ConfigError, DataError, DatasetNotFoundError
from .evaluation import elbo, log_likelihood
from .fitting import check_evaluation_options, evaluate_and_save, training_options
from .likelihoods import LIKELIHOODS
from .model import VAE
from .trained import TrainedModel, default_likelihood, finite_or_none, log_likelihood_metrics
from .training import TrainConfig, Trainer, torch_seeded

#: train/validation/test fractions of a data file (as for an in-memory ``.npz``/``.csv`` file)
DEFAULT_SPLIT = USER_SPLIT  # a user's file, as data.files.load_file splits it (80/10/10)


def streaming_preprocessor(rows: MappedRows, standardise: bool, constant_columns: str,
                           scan: dict[str, Any]) -> Preprocessor:
    """A :class:`Preprocessor` fitted on the mapped rows block by block (``Preprocessor.fit_blocks``)."""
    return Preprocessor(standardise=standardise, constant_columns=constant_columns).fit_blocks(
        rows.blocks(), rows.array.shape[1], scan["min"], scan["max"])


def _model_inputs(preprocessor: Preprocessor):  # type: ignore[no-untyped-def]
    keep, scaler = preprocessor.keep_, preprocessor.scaler_

    def transform(block: np.ndarray) -> np.ndarray:
        validate_matrix(block)
        return scaler.transform(block[:, keep]).astype(np.float32)

    return transform


def fit_memory_mapped(
    path: str | Path,
    likelihood: str | None = None,
    prior: str = "standard",
    latent_dim: int = 20,
    hidden: Sequence[int] = (500, 500),
    split: Sequence[float] | None = None,
    importance_samples: int = 100,
    constant_columns: str = "error",
    out: str | Path | Callable[[str], str | Path] | None = None,
    train: TrainConfig | None = None,
    member: str = "x",
    release_bytes: int = RELEASE_BYTES,
    test_subsample: int | None = None,
    **model_options: Any,
) -> tuple[TrainedModel, dict[str, Any]]:
    """Train on the rows of a ``.npy`` file (or the uncompressed ``member`` of a ``.npz``) without loading it.

    Same arguments, summary and saved run as :func:`vaekit.fitting.fit` (the run is saved before the test
    evaluation, so a Ctrl-C there keeps it); resident memory stays bounded independently of the file's size (see
    :mod:`vaekit.data.mapped`). Training runs on the CPU (``device="auto"`` means the CPU here). ``out`` may also be
    a function of the chosen likelihood that returns the folder (how ``vaekit fit`` names its default folder).
    """
    train = training_options(train, model_options)
    importance_samples = check_evaluation_options(importance_samples, test_subsample)
    callbacks = model_options.pop("callbacks", None)
    if train.device == "auto":
        train = replace(train, device="cpu")
    if train.device not in (None, "cpu"):
        raise ConfigError("memory-mapped data train on the CPU only; drop --device or load the data into memory")
    if model_options.get("n_tasks"):
        raise ConfigError("task-conditioned models need the in-memory path; load the data without --memory-map")
    path = Path(path).expanduser()
    array = open_memory_map(path, member)
    fractions = tuple(split or DEFAULT_SPLIT)
    train_idx, val_idx, test_idx = split_indices(len(array), fractions, train.seed)
    if train.batch_size > len(train_idx):
        raise ConfigError(f"batch size {train.batch_size} is larger than the training split ({len(train_idx)} "
                          "rows); lower the batch size (--batch-size; batch_size=) or give more training data")
    raw_train = MappedRows(array, train_idx, release_bytes=release_bytes)
    scan = scan_rows(raw_train, f"{path.name} (training split)")
    for name, idx in (("validation", val_idx), ("test", test_idx)):  # checked before training, not mid-epoch
        scan_rows(MappedRows(array, idx, release_bytes=release_bytes), f"{path.name} ({name} split)", stats=False)
    if likelihood is None:
        likelihood = default_likelihood(scan["binary"])
    if likelihood not in LIKELIHOODS:
        raise ConfigError(f"unknown likelihood {likelihood!r}; choose one of {sorted(LIKELIHOODS)}")
    if LIKELIHOODS[likelihood].binary_data and not scan["binary"]:
        raise DataError(f"the {likelihood} likelihood needs binary data (0/1), but the training split has other "
                        "values; binarise the data first or choose a continuous likelihood (gaussian, map, student-t)")
    if callable(out):
        out = out(likelihood)
    preprocessor = streaming_preprocessor(raw_train, LIKELIHOODS[likelihood].standardise, constant_columns, scan)
    torch.manual_seed(train.seed)
    model = VAE(len(preprocessor.keep_), latent_dim, likelihood, prior, hidden, **model_options)
    trained = TrainedModel(model, preprocessor)
    transform = _model_inputs(preprocessor)
    width = len(preprocessor.keep_)
    train_x, val_x = (MappedRows(array, idx, transform, width, release_bytes) for idx in (train_idx, val_idx))
    result = Trainer(train, callbacks=callbacks).fit(model, train_x, val_x if len(val_x) else None)
    summary: dict[str, Any] = {
        "dataset": path.stem, "memory_mapped": True,
        "n_train": len(train_x), "n_val": len(val_x), "n_test": len(test_idx),
        "model": model.config.to_dict(), "train": train.to_dict(),
        "constant_columns": preprocessor.constant_columns_,
        **{k: v for k, v in result.to_dict().items() if k != "history"},
        "split": list(fractions), "split_source": "given" if split else "user-file default",
    }
    test_idx = seeded_subset(test_idx, test_subsample, train.seed)
    if test_subsample is not None:
        summary.update(test_subsample=int(test_subsample), n_test=len(test_idx))
    test_x = MappedRows(array, test_idx, transform, width, release_bytes)
    checksum = sha256_of(path)  # `vaekit evaluate RUN` checks the file before reading its test split again
    trained.info = {"dataset": path.stem, "split": list(fractions), "seed": train.seed, "path": str(path.resolve()),
                    "file_sha256": checksum, "memory_mapped": True, "member": member,
                    "epochs_run": result.epochs_run}
    if path.suffix.lower() == ".npy" or member == "x":  # what load_file reads: the in-memory commands find it too
        trained.info.update(data_path=str(path.resolve()), data_sha256=checksum)

    def evaluate() -> dict[str, Any]:
        return _test_metrics(model, test_x, importance_samples) if len(test_x) else {}

    return trained, evaluate_and_save(trained, summary, result, out, evaluate, callbacks)


def mapped_test_split(info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, Path]:
    """The memory map of the file a :func:`fit_memory_mapped` run recorded in ``info``, the row indices of its
    test split and the file's path; the file must still be where it was, unchanged (its checksum)."""
    recorded = info.get("path") or info.get("data_path")
    path = Path(str(recorded))
    if not path.is_file():
        raise DatasetNotFoundError(f"this model was trained on {recorded}, which is gone; move it back for its test "
                                   "split, or pass --data PATH to use the rows of another file")
    recorded_sha = info.get("file_sha256") or info.get("data_sha256")
    if recorded_sha and sha256_of(path) != recorded_sha:
        raise DataError(f"{recorded} changed since this model was trained on it (its checksum differs); restore it, "
                        "or pass --data PATH to use the rows of another file")
    array = open_memory_map(path, str(info.get("member", "x")))
    _, _, test_idx = split_indices(len(array), tuple(info["split"]), int(info.get("seed", 0)))
    return array, test_idx, path


def evaluate_memory_mapped(trained: TrainedModel, importance_samples: int, test_subsample: int | None = None,
                           seed: int = 0) -> tuple[dict[str, Any], str]:
    """The test metrics of a model trained by :func:`fit_memory_mapped`, on its file's test split read through
    the memory map (bounded memory, as training); the file must still be where it was, unchanged. Returns the
    metrics and a description of the rows."""
    array, test_idx, path = mapped_test_split(trained.info)
    test_idx = seeded_subset(test_idx, test_subsample, seed)
    rows = MappedRows(array, test_idx, _model_inputs(trained.preprocessor), len(trained.preprocessor.keep_))
    with torch_seeded(seed):
        metrics = _test_metrics(trained.model, rows, importance_samples) if len(rows) else {}
    return {**metrics, "n_test": len(rows)}, f"{path} (test split, memory-mapped)"


def _test_metrics(model: VAE, test_x: MappedRows, importance_samples: int, block: int = 10_000) -> dict[str, Any]:
    """The test split's metrics, as :meth:`TrainedModel.evaluate` reports them for rows in memory: the
    importance-sampled log-likelihood (raw and normalised for unnormalised priors), or for an implicit encoder
    (AVB), which has no density, the discriminator-based ELBO estimate."""
    if not model.encoder_has_density:
        total = sum(float(elbo(model, test_x[i:i + block]).double().sum()) for i in range(0, len(test_x), block))
        return {"test_log_likelihood": None, "test_elbo_estimate": finite_or_none(total / len(test_x)),
                "importance_samples": 0}
    raw = log_likelihood(model, test_x, n_samples=importance_samples).double().numpy()
    return log_likelihood_metrics(model, float(raw.mean()), importance_samples)
