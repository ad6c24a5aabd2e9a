"""Experiments behind the thesis's tables and figures, as named targets (see :mod:`vaekit.experiments.targets`)."""

from .targets import TARGETS, Target, register_target, run_serial

__all__ = ["TARGETS", "Target", "register_target", "run_serial"]
