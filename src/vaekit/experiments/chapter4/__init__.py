"""Thesis chapter 4 (implicit optimal priors) as reproduction targets: Figures 4.1-4.3 and Table 4.2, plus the
training-time comparison of section 4.5.3.

Importing this package registers the targets in :data:`vaekit.experiments.TARGETS`; run one with
``vaekit reproduce TARGET [--quick|--full]``. One run is :mod:`.runs`, the grids and quick budgets :mod:`.grid`,
the targets with their reports :mod:`.onehot`, :mod:`.likelihood` and :mod:`.timing`, their plots :mod:`.figures`.
"""

from . import likelihood, onehot, timing
from .figures import LN4
from .grid import FREY_QUICK, MNIST_QUICK, ONEHOT_QUICK, Chapter4Target, budget_line
from .onehot import onehot_elbo_table
from .runs import DATASETS, FULL_TRAIN, METHOD_LABELS, onehot_posterior_samples, time_epochs, train_one

TARGET_NAMES = ("figure-4.1", "figure-4.2", "figure-4.3", "table-4.2", "timing-4.5.3")

__all__ = [
    "DATASETS", "FREY_QUICK", "FULL_TRAIN", "LN4", "METHOD_LABELS", "MNIST_QUICK", "ONEHOT_QUICK", "TARGET_NAMES",
    "Chapter4Target", "budget_line", "likelihood", "onehot", "onehot_elbo_table", "onehot_posterior_samples",
    "time_epochs", "timing", "train_one",
]
