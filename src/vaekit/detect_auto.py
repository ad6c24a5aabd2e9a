"""The shape rule behind ``VAEDetector()``'s ``"auto"`` settings: architecture and budget from (rows, columns).

One documented rule, no per-data-set table (docs/anomaly.md, "Defaults"):

- training rows: at most :data:`MAX_TRAIN_ROWS`; a larger set trains on a seeded random subsample of that many
  rows (every row is still scored), which caps the cost of a fit on sets of 100,000+ rows;
- batch size: ``clip(n_train // 16, 16, 128)`` (small sets still get several steps per epoch);
- gradient steps: about :data:`STEP_BUDGET` in all, ``epochs = clip(ceil(STEP_BUDGET / steps_per_epoch), 10, 100)``,
  with early stopping after ``patience = max(5, epochs // 10)`` epochs without a better validation ELBO;
- width: two hidden layers of ``clip(2 ** ceil(log2(2 d)), 64, 256)`` units for d columns;
- latent size: ``clip(ceil(sqrt(d)), 2, 16)``, a bottleneck well below d (the detector ranks rows by how well the
  low-dimensional model explains them);
- training noise: Gaussian noise of standard deviation :data:`TRAINING_NOISE` (in standardised units) is added to
  every training mini-batch, a dequantisation that keeps duplicated rows and discrete or near-constant columns
  from collapsing the decoder's scale onto exact values (scores are computed on the clean rows).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

#: training rows beyond which a seeded subsample of this size is trained on
MAX_TRAIN_ROWS = 20_000
#: the gradient-step budget the epochs are derived from
STEP_BUDGET = 1_000
MIN_EPOCHS, MAX_EPOCHS = 10, 100
MIN_BATCH, MAX_BATCH = 16, 128
MIN_WIDTH, MAX_WIDTH = 64, 256
MIN_LATENT, MAX_LATENT = 2, 16
#: standard deviation of the dequantisation noise added to standardised training batches
TRAINING_NOISE = 0.05


@dataclass(frozen=True)
class AutoConfig:
    """The configuration the shape rule picks (see the module docstring)."""

    train_rows: int
    batch_size: int
    epochs: int
    patience: int
    hidden: tuple[int, ...]
    latent_dim: int
    training_noise: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clip(value: float, low: int, high: int) -> int:
    return int(min(high, max(low, value)))


def auto_config(n_rows: int, n_features: int, validation_fraction: float = 0.1) -> AutoConfig:
    """The settings for a training set of ``n_rows`` x ``n_features`` (before the validation hold-out)."""
    if n_rows < 1 or n_features < 1:
        raise ValueError(f"need a non-empty data shape, got {n_rows} x {n_features}")
    used = min(n_rows, MAX_TRAIN_ROWS)
    n_train = max(1, used - math.ceil(validation_fraction * used))
    batch = min(n_train, _clip(n_train // 16, MIN_BATCH, MAX_BATCH))
    steps_per_epoch = math.ceil(n_train / batch)
    epochs = _clip(math.ceil(STEP_BUDGET / steps_per_epoch), MIN_EPOCHS, MAX_EPOCHS)
    width = _clip(2 ** math.ceil(math.log2(2 * n_features)), MIN_WIDTH, MAX_WIDTH)
    latent = _clip(math.ceil(math.sqrt(n_features)), MIN_LATENT, MAX_LATENT)
    return AutoConfig(train_rows=used, batch_size=batch, epochs=epochs, patience=max(5, epochs // 10),
                      hidden=(width, width), latent_dim=latent, training_noise=TRAINING_NOISE)
