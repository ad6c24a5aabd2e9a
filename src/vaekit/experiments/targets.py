"""Reproduction targets: a named grid of runs plus a report built from the runs' results alone.

A target lists its runs as JSON-ready configuration dicts (:meth:`Target.runs`), executes one configuration in
isolation (:meth:`Target.execute`, so runs can go to any worker), and turns finished results into tables and
figures (:meth:`Target.report`). The grid engine (results database, process pool, Ray) only ever sees these three
calls; :func:`run_serial` is the plain in-process loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

BUDGETS = ("quick", "full")


class Target:
    """Base class of reproduction targets (one table or figure of the thesis)."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: per budget: human-readable settings shown by ``vaekit reproduce --list`` (epochs, seeds, datasets, ...)
    budgets: ClassVar[dict[str, dict[str, Any]]]

    def runs(self, budget: str = "quick", seeds: int | None = None,
             datasets: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The configurations of the grid. Each is a JSON-ready dict that includes ``target`` and ``seed``."""
        raise NotImplementedError

    def execute(self, config: dict[str, Any]) -> dict[str, Any]:
        """Run one configuration; return JSON-ready metrics (optionally with a ``history`` list)."""
        raise NotImplementedError

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        """Write tables (markdown + CSV) and figures (PNG) into ``out`` from ``results`` (each: ``config``,
        ``status``, ``metrics``); return ``{"markdown": str, "files": [paths]}``."""
        raise NotImplementedError


TARGETS: dict[str, Target] = {}


def register_target(cls: type[Target]) -> type[Target]:
    """Class decorator: add an instance of ``cls`` to :data:`TARGETS` under ``cls.name``."""
    TARGETS[cls.name] = cls()
    return cls


def run_serial(target: Target, budget: str = "quick", seeds: int | None = None,
               datasets: Sequence[str] | None = None, out: Path | None = None) -> dict[str, Any]:
    """Run every configuration of ``target`` in this process, then build its report (no database, no resume)."""
    results = []
    for config in target.runs(budget, seeds, datasets):
        torch.manual_seed(int(config.get("seed", 0)))
        try:
            results.append({"config": config, "status": "done", "metrics": target.execute(config)})
        except Exception as err:  # noqa: BLE001 - a failed run is recorded, the grid goes on
            results.append({"config": config, "status": "failed", "metrics": {}, "error": repr(err)})
    return target.report(results, Path(out or Path("results") / target.name))
