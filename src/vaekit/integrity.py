"""Checks of a checkpoint that loads but may be internally broken (damaged or hand-edited): the described
model's shapes against the stored tensors (before anything is allocated), then the loaded weights and
preprocessing. Each failure is a :class:`~vaekit.errors.CheckpointError` that names the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import Preprocessor
from .errors import CheckpointError
from .model import VAE, ModelConfig


def check_shapes(config: ModelConfig, state: Any, path: str | Path) -> None:
    """Compare the described model's parameter shapes with the stored tensors before allocating anything, so a
    damaged configuration (e.g. 10^9 tasks) is refused instead of filling the memory."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: its state_dict is not a mapping of tensors; the file is damaged, retrain")
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in VAE.from_config(config).state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in state.items()}
    if expected != stored:
        differ = sorted(k for k in expected.keys() | stored.keys() if expected.get(k) != stored.get(k))
        raise CheckpointError(f"{path}: its weights do not fit the model it describes (e.g. {differ[0]!r}: "
                              f"stored {stored.get(differ[0])}, expected {expected.get(differ[0])}); the file is "
                              "damaged, retrain")


def check_loaded(model: VAE, preprocessor: Preprocessor, path: str | Path) -> None:
    """Refuse a checkpoint whose contents load but are inconsistent: non-finite weights, column indices out of
    range, standardisation of the wrong length or with non-positive scales."""
    for name, value in model.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{path}: the weights {name!r} contain NaN or infinite values; the file is "
                                  "damaged, retrain")
    keep, width = np.asarray(preprocessor.keep_), preprocessor.n_features_in_
    if (width < 1 or keep.ndim != 1 or not np.issubdtype(keep.dtype, np.integer) or len(keep) == 0
            or keep.min() < 0 or keep.max() >= width or len(np.unique(keep)) != len(keep)):
        raise CheckpointError(f"{path}: its kept-column indices do not fit its {width} input columns; the file is "
                              "damaged, retrain")
    if len(keep) != model.config.x_dim:
        raise CheckpointError(f"{path}: the preprocessing keeps {len(keep)} columns but the model reads "
                              f"{model.config.x_dim}; the file is damaged, retrain")
    scaler = preprocessor.scaler_
    for name, values in (("mean", scaler.mean_), ("scale", scaler.scale_)):
        if values is None:
            continue
        values = np.asarray(values)
        if values.shape != (len(keep),) or not np.isfinite(values).all() or (name == "scale" and values.min() <= 0):
            raise CheckpointError(f"{path}: its standardisation {name} is not {len(keep)} finite"
                                  f"{' positive' if name == 'scale' else ''} numbers; the file is damaged, retrain")
