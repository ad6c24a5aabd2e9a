"""Experiments behind the thesis's tables and figures, as named targets (see :mod:`vaekit.experiments.targets`)."""

from . import chapter3  # noqa: F401 - registers the chapter-3 targets
from .targets import TARGETS, Target, register_target, run_serial

__all__ = ["TARGETS", "Target", "register_target", "run_serial"]
