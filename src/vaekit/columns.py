"""Named columns of a user's CSV: which ones are features, IDs or ignored, and checking them against a model.

A model fitted on a CSV with a header remembers its feature names (``TrainedModel.info["columns"]``); a file
scored later with a header is matched by name (reordered when only the order differs, refused when names are
missing or unexpected), so a file whose columns come in another order cannot be scored silently wrong.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from .data import Dataset
    from .trained import TrainedModel

log = logging.getLogger(__name__)

#: column names that usually hold a label or target rather than a feature
LABEL_LIKE = re.compile(
    r"^(y|label|labels|class|target|outlier|anomaly|is_?anomaly|is_?outlier|fraud|is_?fraud|ground_?truth|"
    r"attack|malicious|defect|churn|.*_label|label_.*)$",
    re.IGNORECASE,
)


class LabelLikeColumnWarning(UserWarning):
    """A 0/1 column with a label-like name is being used as a feature."""


def extra_columns(
    path: Path, header: list[str], table: np.ndarray, has_header: bool, ignore: tuple[str, ...],
    id_column: str | None, meta: dict[str, Any],
) -> list[str]:
    """Check ``--ignore-columns``/``--id-column`` against ``header``; record them (and the IDs) in ``meta``;
    return the names to keep out of ``x``. Without a header, columns are named by their index 0, 1, ..."""
    wanted = [*ignore, *([id_column] if id_column is not None else [])]
    missing = [name for name in wanted if name not in header]
    if missing:
        hint = "" if has_header else " (the file has no header: name columns by index 0, 1, ...)"
        raise DataError(f"{path}: no column named {missing[0]!r}; the columns are {header}{hint}")
    if id_column is not None:
        meta["id_column"] = id_column
        meta["ids"] = [str(v) for v in table[:, header.index(id_column)]]
    meta["ignored_columns"] = list(ignore)
    return wanted


def warn_label_like(path: Path | str, names: list[str] | None, x: np.ndarray) -> list[str]:
    """Warn about 0/1 feature columns named like a label (``label``, ``class``, ``is_anomaly``, ...)."""
    if not names:
        return []
    suspects = [name for i, name in enumerate(names)
                if LABEL_LIKE.match(name.strip()) and np.isin(x[:, i], (0, 1)).all()]
    for name in suspects:
        warnings.warn(
            f"{path}: column {name!r} looks like a label (0/1 values) but is used as a feature; pass "
            f"--label-column {name} (Python: label_column={name!r}) or --ignore-columns {name} if it is one",
            LabelLikeColumnWarning, stacklevel=3,
        )
    return suspects


def columns_info(dataset: Dataset) -> dict[str, Any]:
    """What a model records about its training file's columns (JSON-ready)."""
    meta = dataset.meta
    info: dict[str, Any] = {"columns": meta.get("columns")}
    if meta.get("path") is not None:  # a user's file: enough to load it again (vaekit plot)
        info["data_path"] = str(Path(meta["path"]).resolve())
        info.update({k: meta[k] for k in ("label_column", "task_column") if meta.get(k) is not None})
    if meta.get("id_column") is not None:
        info["id_column"] = meta["id_column"]
    if meta.get("ignored_columns"):
        info["ignored_columns"] = list(meta["ignored_columns"])
    return info


def align_columns(trained: TrainedModel, dataset: Dataset) -> Dataset:
    """``dataset`` with its feature columns in the model's order, matched by name where both have names.

    Raises :class:`DataError` when names are missing or unexpected. Without names on either side only the width
    is checked (when the model is used).
    """
    expected = trained.info.get("columns")
    given = dataset.meta.get("columns")
    if not expected or not given or list(expected) == list(given):
        return dataset
    missing = [c for c in expected if c not in given]
    unexpected = [c for c in given if c not in expected]
    if missing or unexpected:
        raise DataError(
            f"the columns do not match the model's: missing {missing}, unexpected {unexpected}; the model was "
            f"trained on {list(expected)} (skip extra columns with --ignore-columns, set labels aside with "
            "--label-column)"
        )
    log.info("columns reordered by name to the model's order: %s", ", ".join(expected))
    order = [list(given).index(c) for c in expected]
    aligned = dataset.subset(np.arange(len(dataset)))
    aligned.x = dataset.x[:, order]
    aligned.meta = {**dataset.meta, "columns": list(expected)}
    return aligned


def training_data(info: dict[str, Any]) -> Dataset:
    """The whole data set a model was fitted on, read again: its file (with the same column options) when it
    was a user's file, else the registered data set by name."""
    from .data import load_dataset
    from .errors import ConfigError

    if info.get("data_path"):
        options = {k: info[k] for k in ("label_column", "task_column", "id_column") if info.get(k) is not None}
        if info.get("ignored_columns"):
            options["ignore_columns"] = list(info["ignored_columns"])
        return load_dataset(info["data_path"], **options)
    if info.get("dataset") is None:
        raise ConfigError("this model does not record its data set; pass --data")
    return load_dataset(info["dataset"])
