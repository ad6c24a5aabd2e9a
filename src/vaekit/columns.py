"""Named columns of a user's CSV, checked against a trained model.

The column handling itself lives in :mod:`vaekit.data.columns` and :mod:`vaekit.data.recorded` (the data layer);
this module keeps the old import path for those names and adds :func:`align_columns`, which takes a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .data.columns import LABEL_LIKE, LabelLikeColumnWarning, align_to_columns, extra_columns, warn_label_like
from .data.recorded import columns_info, training_data

if TYPE_CHECKING:  # pragma: no cover
    from .data import Dataset
    from .trained import TrainedModel

__all__ = ["LABEL_LIKE", "LabelLikeColumnWarning", "align_columns", "columns_info", "extra_columns",
           "training_data", "warn_label_like"]


def align_columns(trained: TrainedModel, dataset: Dataset) -> Dataset:
    """``dataset`` with its feature columns in the model's order, matched by name where both have names.

    Raises :class:`vaekit.errors.DataError` when names are missing or unexpected. Without names on either side
    only the width is checked (when the model is used).
    """
    return align_to_columns(dataset, trained.info.get("columns"))
