"""Which label marks an anomaly: decided explicitly, never from the sort order of the label names."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ConfigError

#: label names read as "anomaly" / "normal" (case-insensitive) when no --positive-label is given
ANOMALY_NAMES = frozenset({"1", "true", "yes", "y", "anomaly", "anomalous", "anom", "abnormal", "attack", "outlier",
                           "o", "fraud", "malignant", "positive", "pos", "bad"})
NORMAL_NAMES = frozenset({"0", "false", "no", "n", "normal", "nominal", "benign", "inlier", "negative", "neg",
                          "good", "ok"})


def _name(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _source(label_column: str | None) -> str:
    return f"--label-column {label_column!r}" if label_column is not None else "the data set's labels (its y)"


def _fix(label_column: str | None) -> str:
    if label_column is not None:
        return "pick the right --label-column"
    return "these are not anomaly labels: give a data file whose y is 0 (normal) or 1 (anomaly)"


def anomaly_labels(y: np.ndarray | None, names: Sequence[str] | None = None,
                   positive_label: str | None = None, label_column: str | None = None) -> np.ndarray | None:
    """0/1 anomaly flags from a label column.

    ``y`` holds numbers, booleans or strings; ``names`` (from a CSV with string labels) maps integer codes back to
    the names. The anomaly class is ``positive_label`` when given (``--positive-label``); otherwise numeric labels
    must be 0/1 (1 = anomaly) and two named classes must be one of :data:`ANOMALY_NAMES` and one of
    :data:`NORMAL_NAMES`. Anything else, and a row without a label, is refused with a message naming the classes
    and where the labels came from (``label_column``, or the data set's own ``y``).
    """
    if y is None:
        if positive_label is not None:
            raise ConfigError("--positive-label needs labels: name the label column with --label-column")
        return None
    y = np.asarray(y)
    values = [names[int(v)] for v in y] if names is not None else [_name(v) for v in y]
    missing = [i for i, v in enumerate(values) if v == "" or v.lower() == "nan"]
    if missing:
        raise ConfigError(f"{len(missing)} row(s) have no anomaly label in {_source(label_column)} (the first is "
                          f"data row {missing[0] + 1}); give every row a label")
    classes = sorted(set(values))
    if positive_label is not None:
        wanted = positive_label.strip()
        if wanted not in classes:
            raise ConfigError(f"--positive-label {positive_label!r} is not one of the labels {classes[:10]}")
        if len(classes) > 2:
            raise ConfigError(f"anomaly labels must be 0 (normal) or 1 (anomaly), or two names; found "
                              f"{len(classes)} classes ({classes[:10]}) in {_source(label_column)}; "
                              f"{_fix(label_column)}")
        return np.array([v == wanted for v in values], dtype=int)
    if len(classes) > 2:
        raise ConfigError(f"anomaly labels must be 0 (normal) or 1 (anomaly), or two names; found "
                          f"{len(classes)} classes ({classes[:10]}) in {_source(label_column)}; "
                          f"{_fix(label_column)}")
    if set(classes) <= {"0", "1"}:
        return np.array([v == "1" for v in values], dtype=int)
    lowered = {c: c.lower() for c in classes}
    anomalies = [c for c in classes if lowered[c] in ANOMALY_NAMES]
    normals = [c for c in classes if lowered[c] in NORMAL_NAMES]
    if len(anomalies) <= 1 and len(normals) <= 1 and len(anomalies) + len(normals) == len(classes):
        return np.array([bool(anomalies) and v == anomalies[0] for v in values], dtype=int)
    raise ConfigError(
        f"cannot tell which of the labels {classes} marks an anomaly; pass --positive-label NAME (or use 0/1 with "
        "1 = anomaly)"
    )
