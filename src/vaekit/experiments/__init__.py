"""Experiments behind the thesis's tables and figures, as named targets (see :mod:`vaekit.experiments.targets`)."""

from .targets import TARGETS, Target, register_target, run_serial

from . import chapter3  # noqa: E402,F401 - registers the chapter-3 targets

__all__ = ["TARGETS", "Target", "register_target", "run_serial"]
