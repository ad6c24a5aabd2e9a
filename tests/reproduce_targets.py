"""Test-only targets for the grid engine: they sleep, fail, diverge or kill their own worker on purpose.

Loaded through ``VAEKIT_TARGET_MODULES=reproduce_targets`` (with this folder on the path), so that worker
processes and CLI subprocesses find them by name like any installed target.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, ClassVar

from vaekit.experiments.report import write_table
from vaekit.experiments.targets import Target, register_target


class _Base(Target):
    budgets: ClassVar[dict[str, dict[str, Any]]] = {"quick": {"seeds": 3}, "full": {"seeds": 5}}
    include_in_all = False

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        return write_table(
            results,
            out,
            self.name,
            metric="value",
            row="dataset",
            column="method",
            reference=self.thesis_reference,
        )


@register_target
class Sleepy(_Base):
    """``dataset`` × ``method`` × seeds; each run sleeps ``sleep`` s and returns a value from its config."""

    name = "t-sleep"
    description = "test: sleeps, then returns a deterministic value"
    thesis_reference: ClassVar[dict[str, dict[str, Any]]] = {"a": {"m1": 1.5}}

    def runs(self, budget="quick", seeds=None, datasets=None):
        sleep = float(os.environ.get("T_SLEEP", "0"))
        return [
            {"target": self.name, "dataset": d, "method": m, "seed": s, "sleep": sleep}
            for d in (datasets or ["a", "b"])
            for m in ("m1", "m2")
            for s in range(seeds or self.budgets[budget]["seeds"])
        ]

    def execute(self, config):
        time.sleep(config["sleep"])
        value = config["seed"] + (10 if config["method"] == "m2" else 0)
        return {"value": value, "history": [{"epoch": 1, "loss": -value}]}


@register_target
class Faulty(_Base):
    """Seed 1 raises, seed 2 diverges, the others finish."""

    name = "t-fail"
    description = "test: raises for seed 1, diverges for seed 2"

    def runs(self, budget="quick", seeds=None, datasets=None):
        return [{"target": self.name, "dataset": "a", "method": "m", "seed": s} for s in range(seeds or 4)]

    def execute(self, config):
        if config["seed"] == 1:
            raise ValueError("boom: seed 1 always fails")
        return {"value": float(config["seed"]), "diverged": config["seed"] == 2}


@register_target
class Crashing(_Base):
    """``crash``: "never", "once" (kills its worker on the first attempt: a marker file) or "always"."""

    name = "t-crash"
    description = "test: kills its own worker process"

    def runs(self, budget="quick", seeds=None, datasets=None):
        marker = os.environ["T_CRASH_MARKER"]
        return [
            {
                "target": self.name,
                "dataset": "a",
                "method": crash,
                "seed": 0,
                "crash": crash,
                "marker": marker,
            }
            for crash in ("never", "once", "always", "never-2")
        ]

    def execute(self, config):
        marker = Path(f"{config['marker']}.{config['crash']}")
        if config["crash"] == "always" or (config["crash"] == "once" and not marker.exists()):
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return {"value": 1.0}


#: how many times each family test target executed a run in this process (the in-process backend's tests)
EXECUTED: dict[str, int] = {}


class _Twin(_Base):
    """Two seeds of one data set; the value depends on the seed alone, so twins must agree."""

    run_family: ClassVar[str | None] = "t-twins"

    def runs(self, budget="quick", seeds=None, datasets=None):
        return [{"target": self.name, "budget": budget, "dataset": "a", "method": "m1", "seed": s}
                for s in range(seeds or 2)]

    def execute(self, config):
        EXECUTED[self.name] = EXECUTED.get(self.name, 0) + 1
        return {"value": 0.5 + config["seed"]}


@register_target
class TwinA(_Twin):
    name = "t-twin-a"
    description = "test: a run family's first target"


@register_target
class TwinB(_Twin):
    name = "t-twin-b"
    description = "test: the same runs as t-twin-a, under its own name"


@register_target
class Loner(_Twin):
    name = "t-loner"
    description = "test: the same configurations, but no run family: it runs its own"
    run_family = None
