"""Thesis chapter 4, the grids: the base target (data sets x seeds x methods) and the quick budgets' settings.

The ``quick`` budgets shrink epochs, seeds and data so that a target finishes on one CPU core in minutes; every
budget is listed in :attr:`Target.budgets` and in the written report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ...errors import ConfigError
from ..report_helpers import dataset_available
from ..targets import Target
from .runs import FULL_TRAIN, train_one

ONEHOT_QUICK = {"epochs": 300, "warmup": 30, "patience": None, "lr": 1e-3, "importance_samples": [10],
                "threads": 1}
MNIST_QUICK = {"subset": [5000, 1000, 1000], "epochs": 30, "warmup": 10, "patience": None, "lr": 1e-3,
               "importance_samples": [10, 1000], "threads": 1}
#: Table 4.2 on MNIST between the two: the whole 50,000-image training split for 100 epochs (warm-up and patience
#: scaled from the thesis's 1,000 / 100 / 50), the thesis's learning rate, one torch thread per run
MNIST_INTERMEDIATE = {"subset": None, "epochs": 100, "warmup": 10, "patience": 50, "lr": 5e-4,
                      "importance_samples": [10, 1000], "threads": 1}
FREY_QUICK = {"epochs": 100, "warmup": 10, "patience": None, "lr": 5e-4, "importance_samples": [10, 1000],
              "threads": 1}


class Chapter4Target(Target):
    """Shared run construction: ``budgets[b]`` holds the training settings, seeds, data sets and methods."""

    methods: ClassVar[tuple[str, ...]] = ("standard", "vamp", "implicit")

    def execute(self, config: dict[str, Any]) -> dict[str, Any]:
        return train_one(config)

    def _grid(self, budget: str, seeds: int | None, datasets: Sequence[str] | None,
              extra: Sequence[dict[str, Any]] = ({},)) -> list[dict[str, Any]]:
        b = self.budgets[budget]
        outside = sorted(set(datasets or []) - set(b["datasets"]))
        if outside:  # it would train with the full budget's settings under this budget's name
            raise ConfigError(f"{self.name}'s {budget} budget covers {', '.join(b['datasets'])}, not "
                              f"{', '.join(outside)}; see vaekit reproduce --list")
        names = list(datasets) if datasets else [d for d in b["datasets"] if dataset_available(d)]
        runs = []
        for name in names:
            settings = {**FULL_TRAIN, **b.get("train", {}), **b.get("per_dataset", {}).get(name, {})}
            for seed in range(seeds or b["seeds"]):
                for method in b.get("methods", self.methods):
                    for more in extra:
                        if more.get("method", method) != method:
                            continue
                        runs.append({"target": self.name, "budget": budget, "dataset": name, "method": method,
                                     "seed": seed, **settings, **more})
        return runs

    def runs(self, budget: str = "quick", seeds: int | None = None,
             datasets: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return self._grid(budget, seeds, datasets)


def budget_line(results: list[dict[str, Any]]) -> str:
    """The training budget of the finished runs, per data set."""
    if not results:
        return "no finished runs"
    parts = []
    for dataset in dict.fromkeys(r["config"]["dataset"] for r in results):
        runs = [r for r in results if r["config"]["dataset"] == dataset]
        c = runs[0]["config"]
        seeds = sorted({r["config"]["seed"] for r in runs})
        parts.append(f"{dataset}: budget `{c.get('budget')}`, {c['epochs']} epochs (warm-up {c['warmup']}, patience "
                     f"{c.get('patience')}), lr {c['lr']}, seeds {seeds}, split {c.get('subset') or 'full'}")
    return "; ".join(parts)
