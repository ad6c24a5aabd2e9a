"""Experiments behind the thesis's tables and figures, as named targets (see :mod:`vaekit.experiments.targets`).

Target modules (``chapter3``, ``chapter4``, ...) register on first lookup (:func:`load_targets`).
"""

from .targets import TARGETS, Target, get_target, load_targets, register_target

__all__ = ["TARGETS", "Target", "get_target", "load_targets", "register_target"]
