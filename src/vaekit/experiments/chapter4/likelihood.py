"""Thesis chapter 4's log-likelihoods: Table 4.2 (standard VAE, VampPrior, implicit prior on the image sets) and
Figure 4.3 (VampPrior against its number of pseudo-inputs K, the implicit prior as a reference)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from .. import report_helpers as rep
from ..log_normaliser import log_normaliser_note
from ..stats import markdown_table, mean_std
from ..targets import register_target
from .figures import plot_components
from .grid import FREY_QUICK, MNIST_INTERMEDIATE, MNIST_QUICK, Chapter4Target, budget_line
from .runs import METHOD_LABELS


@register_target
class Table42(Chapter4Target):
    name = "table-4.2"
    description = "Test log-likelihood of standard VAE, VampPrior and implicit prior on the image sets present"
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"datasets": ["mnist", "freyfaces"], "seeds": 4,
                  "per_dataset": {"mnist": MNIST_QUICK, "freyfaces": FREY_QUICK}},
        "intermediate": {"datasets": ["mnist"], "seeds": 3, "per_dataset": {"mnist": MNIST_INTERMEDIATE},
                         "methods": ("vamp", "implicit", "standard"), "ratio_epochs": 3, "seed0_ratio_epochs": [10]},
        "full": {"datasets": ["mnist", "omniglot", "freyfaces", "histopathology"], "seeds": 8},
    }

    def runs(self, budget: str = "quick", seeds: int | None = None,
             datasets: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The budget's grid; where the budget sets ``ratio_epochs`` (J2), the implicit prior trains with that
        schedule, and ``seed0_ratio_epochs`` adds seed-0 implicit runs with other schedules (the thesis's J2 = 10)."""
        b = self.budgets[budget]
        if "ratio_epochs" not in b:
            return self._grid(budget, seeds, datasets)
        configs = self._grid(budget, seeds, datasets, [{"method": "standard"}, {"method": "vamp"},
                                                       {"method": "implicit", "ratio_epochs": b["ratio_epochs"]}])
        seed0 = self._grid(budget, 1, datasets, [{"method": "implicit", "ratio_epochs": j}
                                                 for j in b.get("seed0_ratio_epochs", [])])
        return seed0 + configs  # the longest runs first (engines start runs in order), then seed by seed

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        done = rep.finished(results)
        rows: dict[str, dict[str, list[float]]] = {}
        labels = {column_label(r["config"]) for r in done}
        columns = sorted(labels, key=column_order)
        for dataset in dict.fromkeys(r["config"]["dataset"] for r in done):
            runs = [r for r in done if r["config"]["dataset"] == dataset]
            seeds = sorted({r["config"]["seed"] for r in runs})  # per data set: each may run its own number
            for key in sorted({k for r in runs for k in r["metrics"] if k.startswith("test_ll_")}):
                label = (key.removeprefix("test_ll_").replace("normalised_annealed_", "normalised by AIS, ")
                         .replace("normalised_", "normalised, ").replace("k", "K="))
                if "normalised" not in key and any(r["config"]["method"] == "implicit" for r in runs):
                    label += "; implicit: raw ≈"  # the unnormalised density N(z) exp T(z), the thesis's convention
                cells = rows.setdefault(f"{dataset} ({label})", {})
                for column in columns:
                    by_seed = {r["config"]["seed"]: r["metrics"].get(key) for r in runs
                               if column_label(r["config"]) == column}
                    if any(v is not None for v in by_seed.values()):
                        cells[column] = [math.nan if by_seed.get(s) is None else by_seed[s] for s in seeds]
        table = markdown_table(rows, columns, row_header="Data set (importance samples)", digits=2)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "table-4.2.csv"
        csv_rows = [{"dataset": r["config"]["dataset"], "method": r["config"]["method"], "seed": r["config"]["seed"],
                     **{k: v for k, v in r["metrics"].items() if k.startswith(("test_ll", "log_normaliser"))}}
                    for r in done]
        keys = list(dict.fromkeys(k for row in csv_rows for k in row))
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(csv_rows)
        annealed = any("log_normaliser_annealed" in r["metrics"] for r in done)
        text = (f"Table 4.2, {budget_line(done)}.\n\n{table}\n\nBold: best mean and every method not different "
                "from it by a paired t-test over seeds (p ≥ 0.05); a row with one measured column has nothing bold. "
                "'normalised' rows subtract the importance-sampled log Z of the implicit prior"
                + (", 'normalised by AIS' rows its estimate by annealed importance sampling" if annealed else "")
                + "; its raw rows use the unnormalised density N(z) exp T(z), as the thesis (≈)."
                + log_normaliser_note(done) + log_normaliser_note(done, "annealed")
                + _schedule_note(done, {j for b in self.budgets.values() for j in b.get("seed0_ratio_epochs", [])}))
        return rep.write_markdown(out, self.name, text, [str(path)])


def column_label(config: dict[str, Any]) -> str:
    """A run's column in Table 4.2: its method, and for the implicit prior the J2 schedule when the budget sets
    one (the intermediate budget runs two)."""
    label = METHOD_LABELS[config["method"]]
    return f"{label} (J2 = {config['ratio_epochs']})" if "ratio_epochs" in config else label


def column_order(label: str) -> tuple[int, int]:
    """Columns as the thesis orders them (standard, VampPrior, implicit), schedules by J2."""
    order = [METHOD_LABELS[m] for m in ("standard", "avb", "vamp", "implicit")]
    base, _, j2 = label.partition(" (J2 = ")
    return order.index(base), int(j2.rstrip(")") or 0)


def _schedule_note(done: list[dict[str, Any]], seed0_schedules: set[int]) -> str:
    """Which seeds a J2 schedule ran on, when that is fewer than the table's: by the budget's design (a seed-0
    schedule, ``seed0_schedules``), or because its other seeds' runs have not finished."""
    seeds = {r["config"]["seed"] for r in done}
    notes = []
    for label in sorted({column_label(r["config"]) for r in done if "ratio_epochs" in r["config"]}, key=column_order):
        mine = [r["config"] for r in done if column_label(r["config"]) == label]
        ran = sorted({c["seed"] for c in mine})
        if len(ran) < len(seeds):
            why = "by design" if mine[0]["ratio_epochs"] in seed0_schedules else "its other seeds not finished"
            notes.append(f"{label} ran on seed{'s' if len(ran) > 1 else ''} {', '.join(map(str, ran))} only ({why})")
    return f" J2 is the classifier's epochs per VAE epoch; {'; '.join(notes)}." if notes else ""


@register_target
class Figure43(Chapter4Target):
    name = "figure-4.3"
    description = "VampPrior test log-likelihood against the number of pseudo-inputs K, implicit prior dashed"
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"datasets": ["freyfaces"], "seeds": 2, "components": [1, 10, 50, 200, 500],
                  "per_dataset": {"freyfaces": {**FREY_QUICK, "importance_samples": [10]}}},
        "full": {"datasets": ["histopathology"], "seeds": 8, "components": [1, 10, 50, 100, 250, 500, 1000],
                 "train": {"importance_samples": [10]}},
    }

    def runs(self, budget: str = "quick", seeds: int | None = None,
             datasets: Sequence[str] | None = None) -> list[dict[str, Any]]:
        extra = [{"method": "vamp", "n_components": k} for k in self.budgets[budget]["components"]]
        return self._grid(budget, seeds, datasets, [*extra, {"method": "implicit"}])

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        done = rep.finished(results)
        lines = ["| K | VampPrior test LL (K=10 IS) |", "|---|---|"]
        ks = sorted({r["config"]["n_components"] for r in done if r["config"]["method"] == "vamp"})
        stats = [mean_std([r["metrics"].get("test_ll_k10") for r in done
                           if r["config"]["method"] == "vamp" and r["config"]["n_components"] == k]) for k in ks]
        lines += [f"| {k} | {m:.2f} ± {s:.2f} |" for k, (m, s) in zip(ks, stats)]
        implicit = [r["metrics"] for r in done if r["config"]["method"] == "implicit"]
        band = None
        if implicit:  # normalised by the importance-sampled log Z (the raw, unnormalised value is listed as well)
            m, s = band = mean_std([r.get("test_ll_normalised_k10", r.get("test_ll_k10")) for r in implicit])
            raw, raw_s = mean_std([r.get("test_ll_k10") for r in implicit])
            lines += [f"| implicit prior (normalised) | {m:.2f} ± {s:.2f} |",
                      f"| implicit prior (raw, ≈) | {raw:.2f} ± {raw_s:.2f} |"]
        path = plot_components(ks, stats, band, out / "figure-4.3.png")
        dataset = done[0]["config"]["dataset"] if done else "?"
        text = f"Figure 4.3 on {dataset}, {budget_line(done)}.\n\n" + "\n".join(lines)
        return rep.write_markdown(out, self.name, text, [str(path)])
