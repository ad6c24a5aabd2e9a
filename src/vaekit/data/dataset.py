"""In-memory data sets, seeded splits and the fitted preprocessing that travels with a model."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover - torch and scikit-learn load on first use (vaekit datasets needs neither)
    import torch


@dataclass
class Dataset:
    """Rows of ``x`` (float32, ``[N, D]``) with optional labels ``y`` and task indices ``s``.

    ``split`` holds the default train/validation/test fractions, or absolute sizes for a published split whose
    rows are stored in train, validation, test order (see :func:`split_indices`); ``binary`` says the data are
    0/1 (Bernoulli-ready) and must not be standardised.
    """

    name: str
    x: np.ndarray
    y: np.ndarray | None = None
    s: np.ndarray | None = None
    split: tuple[float, float, float] = (0.5, 0.1, 0.4)
    binary: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x)
        if self.x.ndim == 0 or (self.x.ndim > 2 and 0 in self.x.shape):
            raise DataError(f"{self.name}: expected rows of values (a 2-d array), got shape {self.x.shape}")
        if self.x.ndim != 2:
            self.x = self.x.reshape(len(self.x), -1) if self.x.ndim > 2 else self.x
        validate_matrix(self.x, self.name)
        self.x = self.x.astype(np.float32, copy=False)
        for attr in ("y", "s"):
            v = getattr(self, attr)
            if v is not None:
                v = np.asarray(v).reshape(-1)
                if len(v) != len(self.x):
                    raise DataError(f"{self.name}: {attr} has {len(v)} entries but x has {len(self.x)} rows")
                setattr(self, attr, v)
        if self.s is not None:
            self.s = task_index_array(self.s, self.name)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def n_features(self) -> int:
        return self.x.shape[1]

    def subset(self, index: np.ndarray) -> Dataset:
        return replace(
            self,
            x=self.x[index],
            y=None if self.y is None else self.y[index],
            s=None if self.s is None else self.s[index],
        )

    def split_indices(
        self, fractions: Sequence[float] | None = None, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Seeded random train/validation/test indices (scikit-learn ``train_test_split``)."""
        return split_indices(len(self), fractions or self.split, seed)

    def splits(self, fractions: Sequence[float] | None = None, seed: int = 0) -> tuple[Dataset, Dataset, Dataset]:
        train, val, test = self.split_indices(fractions, seed)
        return self.subset(train), self.subset(val), self.subset(test)


def task_index_array(s: np.ndarray, what: str = "data") -> np.ndarray:
    """Task indices as int64, refusing what a cast would silently change: fractions (0.5 -> 0), text, negative or
    non-finite values."""
    s = np.asarray(s)
    if s.dtype == np.bool_:
        return s.astype(np.int64)
    if not np.issubdtype(s.dtype, np.integer):
        if not np.issubdtype(s.dtype, np.floating):
            raise DataError(f"{what}: task indices must be whole numbers 0, 1, ..., got {s.dtype} values; recode "
                            "them (a CSV column of task names works with --task-column)")
        if not np.isfinite(s).all() or not np.all(s == np.round(s)):
            bad = s[~(np.isfinite(s) & (s == np.round(s)))]
            raise DataError(f"{what}: task indices must be whole numbers 0, 1, ..., found {bad[0]!r}; recode them")
        if len(s) and np.abs(s).max() > np.iinfo(np.int64).max / 2:
            raise DataError(f"{what}: task indices are too large; recode them as 0, 1, ..., K-1")
    s = s.astype(np.int64)
    if len(s) and s.min() < 0:
        raise DataError(f"{what}: task indices must be >= 0")
    return s


FLOAT32_MAX = float(np.finfo(np.float32).max)


def task_indices(data: Dataset) -> np.ndarray:
    """The task indices of ``data`` as int64, or a clear error when it has none."""
    if data.s is None:
        raise ConfigError(f"{data.name} has no task indices: give --task-column NAME, an .npz array 's', or a "
                          "protocol such as usps->mnist")
    return np.asarray(data.s, dtype=np.int64)


#: the most tasks a conditioned model accepts (each task gets an embedding row / one-hot input)
MAX_TASKS = 10_000


def check_task_count(data: Dataset) -> int:
    """The number of tasks K = max(s) + 1 a conditioned model needs, refusing sparse codes (e.g. s = 10^9) that
    would allocate a huge one-hot input instead of being recoded as 0 .. K-1."""
    s = task_indices(data)
    n_tasks = int(s.max()) + 1
    distinct = len(np.unique(s))
    if n_tasks > MAX_TASKS or n_tasks > max(2 * distinct, distinct + 10):
        raise ConfigError(f"{data.name}: task indices run up to {n_tasks - 1} but only {distinct} distinct tasks "
                          f"appear; recode them as 0 .. {distinct - 1} (at most {MAX_TASKS} tasks)")
    return n_tasks


def seeded_subset(rows: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """A seeded random subset of ``n`` of ``rows``, in their order (all of them when ``n`` is None or larger); how
    ``--test-subsample`` picks test rows on every path."""
    if n is None:
        return rows
    if n < 1:
        raise ConfigError(f"--test-subsample must be >= 1, got {n}")
    if n >= len(rows):
        return rows
    return rows[np.sort(np.random.default_rng(seed).choice(len(rows), n, replace=False))]


def validate_matrix(x: np.ndarray, what: str = "data") -> None:
    """Raise :class:`DataError` unless ``x`` is a non-empty finite numeric 2-d array."""
    if x.ndim != 2:
        raise DataError(f"{what}: expected a 2-d array (rows = points), got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{what}: the data are empty (shape {x.shape})")
    if np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{what}: complex values are not supported (keeping only the real part would change the "
                        "data); split them into real and imaginary columns")
    if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
        raise DataError(f"{what}: expected numeric values, got dtype {x.dtype}")
    finite = np.isfinite(x)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(1))
        raise DataError(
            f"{what}: {len(rows)} rows contain NaN or infinite values (first rows {rows[:5].tolist()}); "
            "drop or impute them"
        )
    if np.issubdtype(x.dtype, np.floating) and x.dtype.itemsize > 4 or np.issubdtype(x.dtype, np.integer):
        too_big = np.abs(x.astype(np.float64, copy=False)) > FLOAT32_MAX
        if too_big.any():
            rows = np.flatnonzero(too_big.any(1))
            raise DataError(
                f"{what}: {len(rows)} rows hold values beyond the float32 range (|x| > 3.4e38, e.g. "
                f"{x[too_big][0]:.3g}; first rows {rows[:5].tolist()}) that would overflow to infinity; rescale them"
            )


def split_indices(n: int, fractions: Sequence[float], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of a seeded train/validation/test split with the given fractions (which may sum to < 1).

    Three whole numbers summing to more than 1 are absolute sizes of a fixed split (a data set's published one,
    e.g. MNIST's 50,000/10,000/10,000): they must add up to ``n`` and select contiguous blocks in row order,
    whatever the seed.
    """
    fractions = tuple(float(f) for f in fractions)
    if not all(np.isfinite(fractions)):
        raise ConfigError(f"split fractions must be finite numbers TRAIN,VAL,TEST, got {fractions}")
    if len(fractions) == 3 and sum(fractions) > 1 and all(f >= 1 and f == int(f) for f in fractions):
        sizes = np.cumsum([int(f) for f in fractions])
        if sizes[-1] != n:
            raise ConfigError(f"absolute split sizes {tuple(int(f) for f in fractions)} must add up to the {n} rows")
        return np.arange(sizes[0]), np.arange(sizes[0], sizes[1]), np.arange(sizes[1], n)
    if len(fractions) != 3 or min(fractions) <= 0 or sum(fractions) > 1 + 1e-9:
        raise ConfigError(
            f"split fractions must be three positive numbers TRAIN,VAL,TEST summing to at most 1, got {fractions}"
        )
    sizes = [int(round(f * n)) for f in fractions]
    if min(sizes) < 1:
        raise ConfigError(f"a split of {n} rows into {fractions} leaves an empty part; use more data or other fractions")
    from sklearn.model_selection import train_test_split

    index = np.arange(n)
    train, rest = train_test_split(index, train_size=sizes[0], random_state=seed, shuffle=True)
    val, test = train_test_split(rest, train_size=sizes[1], test_size=min(sizes[2], len(rest) - sizes[1]),
                                 random_state=seed + 1, shuffle=True)
    return np.sort(train), np.sort(val), np.sort(test)


CONSTANT_COLUMN_POLICIES = ("error", "drop")


class Preprocessor:
    """Standardisation fitted on the training split only, with an explicit policy for constant columns.

    Constant columns cannot be standardised and make a continuous density degenerate (infinite likelihood as the
    decoded variance goes to zero). ``constant_columns="error"`` refuses them with a message naming the columns;
    ``"drop"`` removes them (the same columns are removed at evaluation time) and reports them in
    :attr:`constant_columns_`.
    """

    def __init__(self, standardise: bool = True, constant_columns: str = "error") -> None:
        if constant_columns not in CONSTANT_COLUMN_POLICIES:
            raise ConfigError(f"constant_columns must be one of {CONSTANT_COLUMN_POLICIES}, got {constant_columns!r}")
        self.standardise = standardise
        self.constant_columns = constant_columns

    def fit(self, x: np.ndarray) -> Preprocessor:
        validate_matrix(x, "training data")
        self.fit_blocks([x], x.shape[1], x.min(0), x.max(0))
        return self

    def fit_blocks(self, blocks: Iterable[np.ndarray], n_features: int, low: np.ndarray,
                   high: np.ndarray) -> Preprocessor:
        """Fit on the training rows given block by block (a memory map's), with their per-column minimum ``low``
        and maximum ``high`` known (the constant-column check); the blocks are read after that check."""
        from sklearn.preprocessing import StandardScaler

        constant = np.flatnonzero(np.asarray(high) == np.asarray(low))
        if len(constant) and self.standardise:
            if self.constant_columns == "error":
                raise DataError(
                    f"columns {constant.tolist()} are constant in the training split, so their density is "
                    "degenerate; remove them or pass constant_columns='drop' (CLI: --constant-columns drop)"
                )
            if len(constant) == n_features:
                raise DataError(
                    f"every column ({n_features}) is constant in the training split, so nothing is left to model "
                    "once they are dropped; give data whose values vary (or more training rows)"
                )
            warnings.warn(f"dropping constant columns {constant.tolist()}", stacklevel=3)
        self.n_features_in_ = n_features
        self.constant_columns_ = constant.tolist() if self.standardise else []
        self.keep_ = np.setdiff1d(np.arange(n_features), self.constant_columns_)
        self.scaler_ = StandardScaler(with_mean=self.standardise, with_std=self.standardise)
        for block in blocks:
            self.scaler_.partial_fit(block[:, self.keep_])
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise DataError(
                f"expected {self.n_features_in_} columns (the width the model was trained on), got shape {x.shape}"
            )
        validate_matrix(x)
        return self.scaler_.transform(x[:, self.keep_]).astype(np.float32)

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return self.fit(x).transform(x)

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only, so checkpoints load with ``weights_only=True``."""
        import torch

        scaler = self.scaler_
        width = len(self.keep_)
        mean = scaler.mean_ if scaler.mean_ is not None else np.zeros(width)
        scale = scaler.scale_ if scaler.scale_ is not None else np.ones(width)
        return {
            "standardise": self.standardise,
            "constant_columns": self.constant_columns,
            "n_features_in": int(self.n_features_in_),
            "keep": torch.as_tensor(self.keep_, dtype=torch.long),
            "mean": torch.as_tensor(mean, dtype=torch.float64),
            "scale": torch.as_tensor(scale, dtype=torch.float64),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Preprocessor:
        from sklearn.preprocessing import StandardScaler

        self = cls(bool(state["standardise"]), str(state["constant_columns"]))
        self.n_features_in_ = int(state["n_features_in"])
        self.keep_ = state["keep"].numpy()
        self.constant_columns_ = np.setdiff1d(np.arange(self.n_features_in_), self.keep_).tolist()
        scaler = StandardScaler(with_mean=self.standardise, with_std=self.standardise)
        scaler.mean_ = state["mean"].numpy() if self.standardise else None
        scaler.scale_ = state["scale"].numpy() if self.standardise else None
        scaler.n_features_in_ = len(self.keep_)
        self.scaler_ = scaler
        return self


def to_tensor(a: np.ndarray | None) -> torch.Tensor | None:
    """float32 tensor for data, int64 for task indices; None passes through."""
    import torch

    if a is None:
        return None
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.long() if t.dtype in (torch.int8, torch.int16, torch.int32, torch.int64) else t.float()
