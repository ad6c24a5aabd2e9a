"""Reproduction targets: a named grid of runs plus a report built from the runs' results alone.

A target lists its runs as JSON-ready configuration dicts (:meth:`Target.runs`), executes one configuration in
isolation (:meth:`Target.execute`, so runs can go to any worker), and turns finished results into tables and
figures (:meth:`Target.report`). The grid engine (results database; in-process, process pool or Ray backend) only
ever sees these three calls.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..errors import ConfigError

BUDGETS = ("quick", "intermediate", "full")  #: "intermediate": only where a target names it


class Target:
    """Base class of reproduction targets (one table or figure of the thesis)."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: per budget: human-readable settings shown by ``vaekit reproduce --list`` (epochs, seeds, datasets, ...)
    budgets: ClassVar[dict[str, dict[str, Any]]]
    #: the thesis's own numbers, ``{row: {column: value}}``, shown beside the measured ones (same protocol)
    thesis_reference: ClassVar[dict[str, dict[str, Any]]] = {}
    #: whether ``vaekit reproduce all`` runs this target (False for smoke tests)
    include_in_all: ClassVar[bool] = True
    #: targets naming the same family execute a configuration alike, so a run one of them finished serves another
    #: whose configuration differs only in ``target``, ``budget`` and ``sweep`` (the engine copies it; see ``Store.adopt``)
    run_family: ClassVar[str | None] = None

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
#: Modules that register targets, imported on first lookup when present; ``VAEKIT_TARGET_MODULES``
#: (comma-separated module names) adds more, e.g. a user's own targets.
TARGET_MODULES: tuple[str, ...] = (
    "vaekit.experiments.chapter3", "vaekit.experiments.chapter4", "vaekit.experiments.chapter5",
    "vaekit.experiments.toy", "vaekit.experiments.adbench",
)


def register_target(cls: type[Target]) -> type[Target]:
    """Class decorator: add an instance of ``cls`` to :data:`TARGETS` under ``cls.name``."""
    TARGETS[cls.name] = cls()
    return cls


#: target modules that exist but failed to import, with the error (one broken module hides only its targets)
TARGET_LOAD_ERRORS: dict[str, str] = {}


def load_targets() -> dict[str, Target]:
    """Import every target module that exists (:data:`TARGET_MODULES` and ``VAEKIT_TARGET_MODULES``)."""
    extra = [m.strip() for m in os.environ.get("VAEKIT_TARGET_MODULES", "").split(",") if m.strip()]
    for module in (*TARGET_MODULES, *extra):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module or module in extra:  # not an absent optional module: a real error
                TARGET_LOAD_ERRORS[module] = f"{type(err).__name__}: {err}"
        except Exception as err:  # noqa: BLE001 - reported by get_target and reproduce --list
            TARGET_LOAD_ERRORS[module] = f"{type(err).__name__}: {err}"
    return TARGETS


def select_runs(configs: list[dict[str, Any]], only: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The configurations whose every ``only`` key has one of its values (compared as text: ``seed=1`` matches
    1). A key no configuration has is an error naming the keys there are; the grid's order is kept, so the
    selected runs keep their keys and land in the same database rows as a full run of the grid."""
    for key in only:
        if not any(key in c for c in configs):
            known = sorted({k for c in configs for k in c})
            raise ConfigError(f"--only {key}: no run of this grid has that setting; its settings: {', '.join(known)}")
    return [c for c in configs if all(key in c and str(c[key]) in values for key, values in only.items())]


def get_target(name: str) -> Target:
    """The registered target ``name`` (loading target modules first)."""
    targets = load_targets()
    if name not in targets:
        broken = "".join(f"; {m} failed to import ({e})" for m, e in TARGET_LOAD_ERRORS.items())
        raise ConfigError(f"unknown target {name!r}; known: {', '.join(sorted(targets)) or 'none'} "
                          f"(vaekit reproduce --list){broken}")
    return targets[name]
