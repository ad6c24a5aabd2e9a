"""User data files: ``.npz`` (arrays ``x``, optional ``y``, ``s``) and numeric ``.csv`` with optional named columns."""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, DatasetNotFoundError
from .columns import extra_columns, warn_label_like
from .dataset import Dataset

#: default train/validation/test fractions of a user's file: most rows train (the thesis sets keep their splits)
USER_SPLIT = (0.8, 0.1, 0.1)


#: the options that name columns of a CSV file, as the command line spells them
COLUMN_OPTIONS = {"label_column": "--label-column", "task_column": "--task-column", "ignore_columns": "--ignore-columns",
                  "id_column": "--id-column"}


def check_column_options(path: Path | str, label_column: str | None = None, task_column: str | None = None,
                         ignore_columns: Sequence[str] = (), id_column: str | None = None) -> None:
    """Column options apply to a ``.csv`` file only (an array file or a registered data set has no named columns;
    silently ignoring them trained on columns the user meant to set aside), and each column takes one role."""
    given = {"label_column": label_column, "task_column": task_column, "ignore_columns": list(ignore_columns),
             "id_column": id_column}
    used = [COLUMN_OPTIONS[k] for k, v in given.items() if v]
    if used and Path(path).suffix.lower() != ".csv":
        raise ConfigError(f"{', '.join(used)} name columns of a .csv file; {Path(path).name} has none (an .npz "
                          "holds arrays x, y and s; a .npy one array of rows, a registered data set its own "
                          "labels): leave these options out")
    roles: dict[str, str] = {}
    for key, value in given.items():
        for name in ([value] if isinstance(value, str) else value or []):
            if name in roles and roles[name] != COLUMN_OPTIONS[key]:
                raise ConfigError(f"column {name!r} is given to both {roles[name]} and {COLUMN_OPTIONS[key]}: "
                                  "a column takes one role")
            roles[name] = COLUMN_OPTIONS[key]


def load_file(
    path: str | Path,
    label_column: str | None = None,
    task_column: str | None = None,
    binary: bool | None = None,
    ignore_columns: Sequence[str] = (),
    id_column: str | None = None,
) -> Dataset:
    """Load a user ``.npz``, ``.npy`` or ``.csv`` file as a :class:`Dataset`.

    ``.npz``: array ``x`` (rows = points, extra axes flattened), optional ``y`` (labels, e.g. anomaly flags) and
    ``s`` (task index). ``.npy``: one array, the rows (read into memory; ``vaekit fit --memory-map`` trains on a
    file larger than memory). ``.csv``: a header row is optional; ``label_column`` / ``task_column`` name columns to set
    aside as ``y`` / ``s`` (task names may be strings); every other column must be numeric.
    ``binary=None`` infers whether all values are 0/1. ``ignore_columns`` are skipped (e.g. timestamps);
    ``id_column`` is kept out of ``x`` and its values go to ``meta["ids"]`` (carried into score outputs).
    User files split 80/10/10 by default (:data:`USER_SPLIT`; the thesis data sets keep theirs).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetNotFoundError(f"no such data file: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    check_column_options(path, label_column, task_column, ignore_columns, id_column)
    meta: dict[str, Any] = {"path": str(path), "split_source": "user-file default", "label_column": label_column,
                            "task_column": task_column}
    if path.suffix.lower() == ".npz":
        x, y, s = _read_npz(path)
    elif path.suffix.lower() == ".npy":
        x, y, s = _read_npy(path), None, None
    elif path.suffix.lower() == ".csv":
        x, y, s, label_names = _read_csv(path, label_column, task_column, meta, tuple(ignore_columns), id_column)
        if label_names is not None:
            meta["label_names"] = label_names
    else:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use .npz, .npy or .csv")
    if binary is None:
        binary = _all_zero_or_one(x)
    return Dataset(path.stem, x, y, s, split=USER_SPLIT, binary=binary, meta=meta)


def from_array(data: Any, y: Any = None, s: Any = None, name: str = "array", binary: bool | None = None) -> Dataset:
    """A :class:`Dataset` of in-memory rows: a NumPy array, a pandas DataFrame (its column names are kept, like a
    CSV header's) or anything ``numpy.asarray`` reads (a CPU tensor, nested lists). Splits 80/10/10 like a file."""
    meta: dict[str, Any] = {"split_source": "user-data default", "in_memory": True}
    if hasattr(data, "columns") and hasattr(data, "dtypes"):  # a DataFrame, without importing pandas
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        text = [str(c) for c, kind in zip(data.columns, data.dtypes) if not (is_numeric_dtype(kind) or is_bool_dtype(kind))]
        if text:
            raise DataError(f"{name}: columns {text} are not numeric; drop them or encode them as numbers")
        meta["columns"] = [str(c) for c in data.columns]
        if data.isna().to_numpy().any():
            rows = np.flatnonzero(data.isna().to_numpy().any(axis=1))
            raise DataError(f"{name}: {len(rows)} rows have missing values (first rows {rows[:5].tolist()}); "
                            "vaekit does not impute: drop or fill them")
        data = data.to_numpy(dtype=np.float64)  # bool columns as 0/1 (mixed with floats they gave dtype object)
    x = np.asarray(data)
    if binary is None:
        binary = _all_zero_or_one(x)
    return Dataset(name, x, y, s, split=USER_SPLIT, binary=binary, meta=meta)


def _all_zero_or_one(x: Any) -> bool:
    """Whether numeric rows are all 0/1 (Bernoulli-ready), the default of ``binary``."""
    x = np.asarray(x)
    return bool(np.isin(x, (0, 1)).all()) if np.issubdtype(x.dtype, np.number) else False


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        reason = " ".join(str(err).split())[:200]
        raise DataError(f"{path} is not a readable .npy array without pickles ({reason})") from err


def data_member(names: list[str]) -> str | None:
    """The rows' array in a data ``.npz``: ``x``, else ``X`` (ADBench's and ODDS's archives hold ``X`` and ``y``)."""
    return next((name for name in ("x", "X") if name in names), None)


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files"):
                raise DataError(f"{path} holds a single .npy array, not a .npz archive; save it with "
                                "numpy.savez(path, x=array)")
            name = data_member(archive.files)
            if name is None:
                raise DataError(f"{path}: a data .npz needs an array named 'x' (or 'X', as ADBench and ODDS save "
                                f"theirs; found {archive.files}); save it with numpy.savez(path, x=..., [y=...], "
                                "[s=...])")
            return archive[name], archive.get("y"), archive.get("s")
    except DataError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        if not zipfile.is_zipfile(path):  # numpy reads any non-zip bytes as a pickle it refuses
            raise DataError(f"{path} is not a .npz archive (random bytes, a truncated copy or another format); "
                            "save the rows with numpy.savez(path, x=array)") from err
        reason = " ".join(str(err).split())[:200]
        raise DataError(f"{path} is not a readable .npz archive without pickles ({reason})") from err


# Cells read as missing values (lower-cased, stripped): blank, the usual NA spellings, and UCI's "?".
_MISSING = frozenset({"", "na", "n/a", "#n/a", "<na>", "null", "none", "?"})


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv(
    path: Path, label_column: str | None, task_column: str | None, meta: dict[str, Any] | None = None,
    ignore_columns: tuple[str, ...] = (), id_column: str | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, list[str] | None]:
    try:  # utf-8-sig: a byte-order mark is dropped, not read as part of the first value
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f) if row]
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text (byte {err.start}: {err.reason}); save it as UTF-8 CSV") from None
    except csv.Error as err:
        raise DataError(f"{path} is not a readable CSV file ({err}); save it as plain comma-separated text") from None
    if not rows:
        raise DataError(f"{path}: the file is empty")
    has_header = not all(_is_number(v) for v in rows[0])
    header = [h.strip() for h in rows[0]] if has_header else [str(i) for i in range(len(rows[0]))]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise DataError(f"{path}: the header names {repeated} more than one column; give every column its own name")
    body = rows[1:] if has_header else rows
    if not body:
        raise DataError(f"{path}: the file has a header but no data rows")
    widths = {len(r) for r in body}
    if widths != {len(header)}:
        raise DataError(f"{path}: rows have {sorted(widths)} fields but the header has {len(header)}")
    table = np.array(body, dtype=object)
    special: dict[str, np.ndarray | None] = {}
    for role, name in (("label", label_column), ("task", task_column)):
        if name is None:
            special[role] = None
            continue
        if name not in header:
            raise DataError(f"{path}: no column named {name!r} for the {role}; the columns are {header}")
        special[role] = table[:, header.index(name)]
    meta = {} if meta is None else meta
    set_aside = extra_columns(path, header, table, has_header, ignore_columns, id_column, meta)
    features = [i for i, h in enumerate(header) if h not in (label_column, task_column, *set_aside)]
    for i in features:
        missing = np.array([v.strip().lower() in _MISSING for v in table[:, i]])
        if missing.any():
            lines = (np.flatnonzero(missing)[:5] + (2 if has_header else 1)).tolist()
            token = table[missing, i][0].strip()
            raise DataError(
                f"{path}: column {header[i]!r} has {int(missing.sum())} missing value(s) "
                f"({repr(token) if token else 'an empty cell'} at line {lines[0]}; first lines {lines}); vaekit does "
                "not impute: drop or fill those rows, or skip the column with --ignore-columns"
            )
        bad = [v for v in table[:, i] if not _is_number(v)]
        if bad and len(header) == 1 and (";" in bad[0] or "\t" in bad[0]):
            sep = "';'" if ";" in bad[0] else "a tab"
            raise DataError(f"{path} seems to separate its values with {sep}; vaekit reads comma-separated files: "
                            "convert it (e.g. pandas.read_csv(path, sep=...).to_csv(new_path, index=False))")
        if bad:
            raise DataError(
                f"{path}: column {header[i]!r} is not numeric (e.g. {bad[0]!r}); remove it, encode it as numbers, "
                "or name it with --label-column/--task-column, or skip it with --ignore-columns/--id-column"
            )
    x = table[:, features].astype(np.float64)
    meta["columns"] = [header[i] for i in features] if has_header else None
    warn_label_like(path, meta["columns"], x)
    y, label_names = _codes(special["label"])
    s, _ = _codes(special["task"])
    return x, y, s, label_names


def _codes(column: np.ndarray | None) -> tuple[np.ndarray | None, list[str] | None]:
    """Numeric labels as numbers; string labels as integer codes in sorted order, with the names in code order
    (so a caller that needs to know which name is which, like ``detect``, never guesses from the order)."""
    if column is None:
        return None, None
    if all(_is_number(v) for v in column):
        values = column.astype(np.float64)
        whole = np.all(values == np.round(values)) and np.abs(values).max() < 2**53
        return (values.astype(np.int64) if whole else values), None
    names, codes = np.unique(np.char.strip(column.astype(str)), return_inverse=True)
    return codes.astype(np.int64), names.tolist()
