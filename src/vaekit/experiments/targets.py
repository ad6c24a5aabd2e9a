"""Reproduction targets: a named grid of runs plus a report built from the runs' results alone.

A target lists its runs as JSON-ready configuration dicts (:meth:`Target.runs`), executes one configuration in
isolation (:meth:`Target.execute`, so runs can go to any worker), and turns finished results into tables and
figures (:meth:`Target.report`). The grid engine (results database, process pool, Ray) only ever sees these three
calls; :func:`run_serial` is the plain in-process loop.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..errors import ConfigError

BUDGETS = ("quick", "full")


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


def get_target(name: str) -> Target:
    """The registered target ``name`` (loading target modules first)."""
    targets = load_targets()
    if name not in targets:
        broken = "".join(f"; {m} failed to import ({e})" for m, e in TARGET_LOAD_ERRORS.items())
        raise ConfigError(f"unknown target {name!r}; known: {', '.join(sorted(targets)) or 'none'} "
                          f"(vaekit reproduce --list){broken}")
    return targets[name]


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


class RecordingTarget(Target):
    """A target passed through for the chapter scripts' serial runs: optionally keeps the runs ``keep`` accepts,
    logs each finished run's ``shown`` metrics on stderr, appends it to ``OUT/runs.jsonl`` (finished runs survive
    an interrupted grid) and saves ``OUT/results.json`` before the report is built."""

    def __init__(self, inner: Target, out: Path, shown: Sequence[str] = ("test_log_likelihood",),
                 keep: Callable[[dict[str, Any]], bool] | None = None,
                 label: Callable[[dict[str, Any]], str] | None = None) -> None:
        self.inner, self.out, self.shown, self.keep = inner, Path(out), tuple(shown), keep
        self.label = label or (lambda c: f"{c.get('dataset', '')} {c.get('method', '')}")
        self.name, self.description, self.budgets = inner.name, inner.description, inner.budgets

    def runs(self, budget: str = "quick", seeds: int | None = None,
             datasets: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return [r for r in self.inner.runs(budget, seeds, datasets) if self.keep is None or self.keep(r)]

    def execute(self, config: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        metrics = self.inner.execute(config)
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "runs.jsonl", "a") as f:
            f.write(json.dumps({"config": config, "status": "done", "metrics": metrics}, allow_nan=False,
                               default=float) + "\n")
        shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in metrics.items()
                 if any(k.startswith(prefix) for prefix in self.shown)}
        print(f"[{self.name}] {self.label(config)} seed {config.get('seed')}: {shown} "
              f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        return metrics

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, allow_nan=False, default=float))
        return self.inner.report(results, out)


def load_results(path: Path) -> list[dict[str, Any]]:
    """Saved results of a chapter script: ``results.json``, or the ``runs.jsonl`` of an interrupted grid."""
    text = Path(path).read_text()
    if Path(path).suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def chapter_parser(prog: str, description: str, names: Sequence[str], datasets_help: str) -> argparse.ArgumentParser:
    """The options every ``python -m vaekit.experiments.chapterN`` script shares: TARGET, ``--quick``/``--full``,
    ``--seeds``, ``--datasets``, ``--out`` and ``--results`` (a ``results.json``, or an interrupted grid's
    ``runs.jsonl``, read by :func:`load_results`)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("target", choices=names)
    level = parser.add_mutually_exclusive_group()
    level.add_argument("--quick", dest="budget", action="store_const", const="quick", help="quick budget (default)")
    level.add_argument("--full", dest="budget", action="store_const", const="full", help="the thesis's budget")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the budget's)")
    parser.add_argument("--datasets", default=None, help=datasets_help)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default results/TARGET)")
    parser.add_argument("--results", type=Path, default=None,
                        help="rebuild the report from a results.json (or the runs.jsonl of an interrupted grid)")
    return parser

