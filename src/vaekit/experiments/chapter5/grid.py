"""Thesis chapter 5, the grids: the thesis's and the quick budgets' settings, the base target (protocols x seeds x
methods, VFAE x alphas), and the levers that name a run's table column.

The thesis trains up to 1,000 (digits) / 2,000 (faces) epochs with early stopping; the ``quick`` budgets shrink
epochs, seeds and evaluation rows (stated in every report). Every chapter-5 target executes its runs alike
(:attr:`Target.run_family`), so a run finished for one table serves the others from the results database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ..report_helpers import protocol_available
from ..targets import Target
from .runs import LABELS, TABLE_METHODS, train_one

FACES = "freyfaces+olivetti+umist"
#: the two-face-task protocol whose files are in the shared data folder (UMIST is not); the quick budget's faces
TWO_FACES = "freyfaces+olivetti"

#: the thesis's settings (section 5.5.3); budgets override some of them
FULL: dict[str, Any] = {"epochs": 1000, "patience": 50, "lr": 1e-4, "dropout": 0.1, "ratio_epochs": 10,
                        "task_weights": "data", "importance_samples": 10, "max_source": None, "max_val": None,
                        "max_test": None, "max_rows": None, "alphas": [1e-4, 1e-3, 1e-2, 0.1, 1, 10, 100, 1000],
                        "checkpoints": [], "threads": None}
FULL_FACES = {**FULL, "epochs": 2000}
#: quick budgets (one CPU thread): digits pairs 200 epochs, USPS pairs 60, faces 100; no early stopping (the best
#: validation epoch is still kept), evaluation on 2,000 target test rows, kNN / I(S;Z) recorded every 50 epochs
QUICK: dict[str, Any] = {**FULL, "epochs": 200, "patience": None, "max_val": 1000, "max_test": 2000,
                         "alphas": [0.01, 1, 100], "checkpoints": [50, 100, 150, 200], "threads": 1}
QUICK_PER_DATASET: dict[str, dict[str, Any]] = {
    "usps->mnist": {"epochs": 60, "checkpoints": [20, 40, 60]},
    "mnist->usps": {"epochs": 20, "max_source": 10_000, "checkpoints": [10, 20]},
    FACES: {"epochs": 100, "checkpoints": []},
    TWO_FACES: {"epochs": 100, "checkpoints": []},
}


class Chapter5Target(Target):
    """Grid: protocols x seeds x methods (VFAE: x alphas); ``budgets[b]`` holds datasets, seeds and settings."""

    methods: ClassVar[tuple[str, ...]] = TABLE_METHODS
    run_family = "chapter-5"

    def variants(self, budget: str) -> list[dict[str, Any]]:
        """Extra configurations per (protocol, seed): one per method by default."""
        return [{"method": m} for m in self.budgets[budget].get("methods", self.methods)]

    def runs(self, budget: str = "quick", seeds: int | None = None,
             datasets: Sequence[str] | None = None) -> list[dict[str, Any]]:
        b = self.budgets[budget]
        out = []
        # like chapters 3 and 4: protocols whose data are absent here leave the default grid (--list counts the rest)
        for name in list(datasets) if datasets else [n for n in b["datasets"] if protocol_available(n)]:
            if budget == "quick":
                settings = {**QUICK, **QUICK_PER_DATASET.get(name, {})}
            else:
                settings = dict(FULL_FACES if "+" in name else FULL)
            alphas = settings.pop("alphas")
            n_seeds = b["seeds"].get(name, 3) if isinstance(b["seeds"], dict) else b["seeds"]
            for seed in range(seeds or n_seeds):
                for variant in self.variants(budget):
                    extra = [{"mmd_alpha": a} for a in alphas] if variant["method"] == "vfae" else [{}]
                    for more in extra:
                        out.append({"target": self.name, "budget": budget, "dataset": name, "seed": seed,
                                    **settings, "tsne": seed == 0, **variant, **more})
        return out

    def execute(self, config: dict[str, Any]) -> dict[str, Any]:
        return train_one(config)


def levers(config: dict[str, Any]) -> list[str]:
    """The levers of a run that differ from the thesis's setting (section 5.5.3), in words for its column."""
    found = []
    if config.get("ll_kind"):  # a report-only label: raw or normalised log-likelihood of the implicit prior
        found.append(config["ll_kind"])
    if config["method"] == "proposed" and config.get("task_weights") == "equal":
        found.append("equal task weights")
    if config.get("dropout", FULL["dropout"]) != FULL["dropout"]:
        found.append(f"dropout {config['dropout']:g}")
    return found


def method_key(config: dict[str, Any]) -> str:
    """Table column of a run: the method, marked when a lever differs from the thesis's setting."""
    words = levers(config)
    return LABELS[config["method"]] + (f" ({', '.join(words)})" if words else "")


def against_cvae(**lever: Any) -> list[dict[str, Any]]:
    """The CVAE and the proposed model under the same lever (settings that override the budget's)."""
    return [{"method": "cvae", **lever}, {"method": "proposed", **lever}]
