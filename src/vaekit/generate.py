"""A trained model in the data's own units: posterior means, reconstructions and samples.

The model works in the standardised space of its training split (section 3.5.2); these helpers undo that
standardisation and put back the constant columns dropped at training, so outputs line up with the input columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch.distributions import Distribution, Independent

from .errors import ConfigError, DataError
from .evaluation import evaluating, model_device
from .training import torch_seeded

if TYPE_CHECKING:  # pragma: no cover
    from .data import Preprocessor
    from .model import VAE


class TrainedModel(Protocol):
    """What these helpers use of a :class:`vaekit.trained.TrainedModel` (which passes itself in), so this module
    does not import the one that imports it."""

    model: VAE
    preprocessor: Preprocessor
    info: dict[str, Any]

    def prepare(self, x: np.ndarray, s: np.ndarray | None = None,
                transform: Any = None) -> tuple[torch.Tensor, torch.Tensor | None]: ...


def _tasks(trained: TrainedModel, s: np.ndarray | int | None, n: int) -> torch.Tensor | None:
    if not trained.model.config.n_tasks:
        return None
    if s is None:
        raise DataError("this model is task-conditioned: give the task index s")
    s_arr = np.full(n, s) if np.ndim(s) == 0 else np.asarray(s)
    if len(s_arr) != n:
        raise DataError(f"got {len(s_arr)} task indices for {n} rows")
    return torch.as_tensor(s_arr.astype(np.int64))


def location(p: Distribution) -> torch.Tensor:
    """The decoder's location: the mean of a Gaussian, the location of a Student-t (its mean may not exist),
    the probabilities of a Bernoulli."""
    base = p.base_dist if isinstance(p, Independent) else p
    return base.loc if hasattr(base, "loc") else base.mean


def to_data_units(trained: TrainedModel, x_model: np.ndarray) -> np.ndarray:
    """Undo the standardisation of the training split and re-insert its constant columns (at their value)."""
    pre = trained.preprocessor
    kept = pre.scaler_.inverse_transform(np.asarray(x_model, dtype=np.float64))
    out = np.full((len(kept), pre.n_features_in_), np.nan)
    out[:, pre.keep_] = kept
    for column, value in (trained.info.get("constant_values") or {}).items():
        out[:, int(column)] = value
    return out


def posterior_means(trained: TrainedModel, x: np.ndarray, s: np.ndarray | None = None) -> np.ndarray:
    """E[z|x, s] per row (``[N, latent_dim]``)."""
    if not trained.model.encoder_has_density:
        raise ConfigError("this model's encoder is implicit (AVB) and has no posterior mean")
    x_t, s_t = trained.prepare(x, s)
    device = model_device(trained.model)
    with evaluating(trained.model) as model:
        q = model.encode(x_t.to(device), None if s_t is None else s_t.to(device))
        return q.mean.cpu().double().numpy()


def reconstruct(trained: TrainedModel, x: np.ndarray, s: np.ndarray | None = None) -> np.ndarray:
    """Decoder location at the posterior mean of each row, in the data's own units."""
    z = torch.as_tensor(posterior_means(trained, x, s), dtype=torch.float32)
    x_t, s_t = trained.prepare(x, s)
    device = model_device(trained.model)
    with evaluating(trained.model) as model:
        p = model.reconstruction(x_t.to(device), z.to(device), None if s_t is None else s_t.to(device))
        return to_data_units(trained, location(p).cpu().numpy())


def sample(trained: TrainedModel, n: int, s: np.ndarray | int | None = None, seed: int = 0,
           mean: bool = False) -> np.ndarray:
    """``n`` draws from p(x|z) p(z) (``mean``: the decoder's location at z ~ p(z)), seeded, in data units."""
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    s_t = _tasks(trained, s, n)
    with torch_seeded(seed), evaluating(trained.model) as model:
        if mean:
            x = location(model.generative(n, s_t))
        else:
            x = model.sample(n, s_t)
    return to_data_units(trained, x.cpu().numpy())
