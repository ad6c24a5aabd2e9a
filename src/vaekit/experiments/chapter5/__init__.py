"""Thesis chapter 5 (task-invariant representations) as reproduction targets: Tables 5.2-5.4, Figure 5.2, and
``invariance-5``, the paired test of the chapter's headline (proposed vs CVAE 3-NN target accuracy, and I(S;Z)).

Importing this package registers the targets; run one with ``vaekit reproduce TARGET [--quick|--full]``. The
targets share runs through the results database (:attr:`Target.run_family`): the tables and the figure read the
same trained models. One run is :mod:`.runs` (with :mod:`.checkpoints`), the grids and budgets :mod:`.grid`, the
targets with their reports :mod:`.tables`, :mod:`.invariance` and :mod:`.figures`.
"""

from . import figures, invariance, tables
from .checkpoints import checkpoint_callback
from .grid import (
    FACES,
    FULL,
    FULL_FACES,
    QUICK,
    QUICK_PER_DATASET,
    TWO_FACES,
    Chapter5Target,
    against_cvae,
    levers,
    method_key,
)
from .invariance import checkpoint_table, cvae_references, paired_lines
from .runs import LABELS, METHODS, TABLE_METHODS, model_options, protocol_data, train_one, tsne_points
from .tables import TABLE_BUDGETS, budget_line, metric_rows, select_vfae, with_normalised_column

TARGET_NAMES = ("table-5.2", "table-5.3", "table-5.4", "figure-5.2", "invariance-5", "invariance-5-dropout",
                "invariance-5-budget")

__all__ = [
    "FACES", "FULL", "FULL_FACES", "LABELS", "METHODS", "QUICK", "QUICK_PER_DATASET", "TABLE_BUDGETS",
    "TABLE_METHODS", "TARGET_NAMES", "TWO_FACES", "Chapter5Target", "against_cvae", "budget_line",
    "checkpoint_callback", "checkpoint_table", "cvae_references", "figures", "invariance", "levers", "method_key",
    "metric_rows", "model_options", "paired_lines", "protocol_data", "select_vfae", "tables", "train_one",
    "tsne_points", "with_normalised_column",
]
