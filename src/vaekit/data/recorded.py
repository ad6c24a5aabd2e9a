"""What a model records about the data it was fitted on (columns, file, column options), and reading that data
again from the record (``vaekit evaluate``, ``vaekit plot``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .dataset import Dataset
from .registry import load_dataset


def columns_info(dataset: Dataset) -> dict[str, Any]:
    """What a model records about its training file's columns (JSON-ready)."""
    meta = dataset.meta
    info: dict[str, Any] = {"columns": meta.get("columns")}
    if meta.get("path") is not None:  # a user's file: enough to load it again (vaekit plot)
        info["data_path"] = str(Path(meta["path"]).resolve())
        info.update({k: meta[k] for k in ("label_column", "task_column") if meta.get(k) is not None})
    if meta.get("in_memory"):  # vaekit.fit(array): nothing to read again
        info["in_memory"] = True
    if meta.get("id_column") is not None:
        info["id_column"] = meta["id_column"]
    if meta.get("ignored_columns"):
        info["ignored_columns"] = list(meta["ignored_columns"])
    return info


def training_data(info: dict[str, Any]) -> Dataset:
    """The whole data set a model was fitted on, read again: its file (with the same column options) when it
    was a user's file, else the registered data set by name."""
    if info.get("data_path"):
        options = {k: info[k] for k in ("label_column", "task_column", "id_column") if info.get(k) is not None}
        if info.get("ignored_columns"):
            options["ignore_columns"] = list(info["ignored_columns"])
        return load_dataset(info["data_path"], **options)
    if info.get("dataset") is None:
        raise ConfigError("this model does not record its data set; pass --data")
    if info.get("in_memory"):
        raise ConfigError("this model was fitted on in-memory rows (an array or DataFrame), which vaekit cannot read "
                          "again; pass --data with a file of the same columns")
    return load_dataset(info["dataset"])
