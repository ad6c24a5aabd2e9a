"""Thesis chapter 3 (Student-t VAE) as reproduction targets: Table 3.2 and Figures 3.2, 3.4-3.8.

Importing this package registers the targets in :data:`vaekit.experiments.TARGETS`; run one with
``vaekit reproduce TARGET [--quick|--full] [--seeds N] [--out DIR]``.
"""

from . import densities, instability, sweeps, table
from .densities import gaussian_log_density, student_t_log_density
from .instability import PerPointLoss, bin_changes
from .runs import CHAPTER3_DATASETS, METHODS, add_uniform_noise, train_and_evaluate

TARGET_NAMES = ("table-3.2", "figure-3.2", "figure-3.4", "figure-3.5", "figure-3.6", "figure-3.7",
                "figure-3.8")

__all__ = [
    "CHAPTER3_DATASETS", "METHODS", "TARGET_NAMES", "PerPointLoss", "add_uniform_noise", "bin_changes",
    "densities", "gaussian_log_density", "instability", "student_t_log_density", "sweeps", "table",
    "train_and_evaluate",
]
