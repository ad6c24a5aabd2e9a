"""Named columns of a user's CSV: which ones are features, IDs or ignored, and label-like feature columns.

A model fitted on a CSV with a header remembers its feature names (see :mod:`vaekit.data.recorded`); a file
scored later with a header is matched by name (:func:`align_to_columns`).
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .dataset import Dataset

log = logging.getLogger("vaekit.columns")  # the name it had before it moved here

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


def align_to_columns(dataset: Dataset, expected: list[str] | None) -> Dataset:
    """``dataset`` with its feature columns in the ``expected`` order, matched by name where both have names.

    Raises :class:`DataError` when names are missing or unexpected. Without names on either side the data set is
    returned as it is (only the width is checked, when a model uses it).
    """
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


def frame_in_order(x: Any, expected: list[str] | None) -> Any:
    """A pandas DataFrame's columns in the model's ``expected`` order, matched by name (refused when the names
    differ); anything without column names (an array) as it is."""
    names = getattr(x, "columns", None)
    if names is None or not expected:
        return x
    given = [str(c) for c in names]
    if given == list(expected):
        return x
    missing, unexpected = [c for c in expected if c not in given], [c for c in given if c not in expected]
    if missing or unexpected:
        raise DataError(f"the DataFrame's columns do not match the model's: missing {missing}, unexpected "
                        f"{unexpected}; the model was trained on {list(expected)}")
    return x[[names[given.index(c)] for c in expected]]
