"""Table 3.2 (test log-likelihood of the four decoders) and Figure 3.5 (training loss against wall clock)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..stats import markdown_table, mean_std
from ..targets import Target, register_target
from .. import report_helpers as rep
from .runs import (
    CHAPTER3_DATASETS,
    METHODS,
    SPIKE_NATS,
    loss_spikes,
    make_config,
    seed_list,
    select_datasets,
    train_and_evaluate,
)

#: Budgets of Table 3.2. ``epochs`` is per data set: SMTP's training split has 9,516 rows (95 steps per epoch),
#: cancer's 184 (2 steps per epoch), so the quick budget gives the small sets more epochs.
TABLE_BUDGETS: dict[str, dict[str, Any]] = {
    "quick": {
        "epochs": {"smtp": 30, "default": 300}, "patience": 10, "seeds": 5, "importance_samples": 100,
        "test_subsample": 5000, "hidden": [500, 500], "batch_size": 100, "lr": 1e-3,
        "datasets": "every chapter-3 data set present (absent ones are skipped)",
        "note": "IS on a fixed seeded subsample of 5,000 test rows per seed (SMTP's test split has 76,124)",
    },
    "full": {
        "epochs": {"default": 500}, "patience": 50, "seeds": 10, "importance_samples": 100,
        "test_subsample": None, "hidden": [500, 500], "batch_size": 100, "lr": 1e-3,
        "datasets": "every chapter-3 data set present (absent ones are skipped)",
        "note": "section 3.5.2; the thesis does not state its early-stopping patience (50 here)",
    },
}


def epochs_for(budget: dict[str, Any], dataset: str) -> int:
    epochs = budget["epochs"]
    return int(epochs.get(dataset, epochs["default"])) if isinstance(epochs, dict) else int(epochs)


def method_grid(target: str, budget_name: str, budgets: dict[str, dict[str, Any]], seeds: int | None,
                datasets: Sequence[str] | None, methods: Sequence[str]) -> list[dict[str, Any]]:
    """Every (data set present, method, seed) of a budget as run configurations."""
    budget = budgets[budget_name]
    return [make_config(target, d, m, s, {**budget, "epochs": epochs_for(budget, d)})
            for d in select_datasets(datasets, CHAPTER3_DATASETS) for m in methods
            for s in seed_list(seeds, budget["seeds"])]


class MethodGrid(Target):
    """A target over every (data set present, decoder, seed) of its budget, each run by :func:`train_and_evaluate`.

    Table 3.2 and Figure 3.5 are one run family: Figure 3.5 at the full budget is Table 3.2's seed 0, so a run
    either of them finished serves the other (the engine adopts it from the results database).
    """

    run_family = "chapter-3-methods"

    def runs(self, budget: str = "quick", seeds: int | None = None,
             datasets: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return method_grid(self.name, budget, self.budgets, seeds, datasets, list(METHODS))

    def execute(self, config: dict[str, Any]) -> dict[str, Any]:
        return train_and_evaluate(config)


@register_target
class Table32(MethodGrid):
    """Table 3.2: mean ± std over seeds of the test log-likelihood, bold = best or not significantly worse."""

    name = "table-3.2"
    description = ("Test log-likelihood of the Gaussian, MAP (b=1, b=0.001) and Student-t VAEs on every "
                   "chapter-3 data set present (Table 3.2; Eqs. 3.7, 3.10, 3.11)")
    budgets = TABLE_BUDGETS
    #: the thesis's Table 3.2 (mean ± std), shown under each measured row
    thesis_reference: ClassVar[dict[str, dict[str, Any]]] = {
        "smtp": {"Gaussian": (-1.248, 0.404), "MAP (b=1)": (-4.864, 0.020), "MAP (b=0.001)": (-1.932, 0.404),
                 "Student-t": (0.827, 0.105)},
        "aloi": {"Gaussian": (45.418, 5.457), "MAP (b=1)": (-38.210, 0.156), "MAP (b=0.001)": (30.406, 0.383),
                 "Student-t": (77.022, 0.539)},
        "thyroid": {"Gaussian": (15.519, 4.422), "MAP (b=1)": (-31.266, 0.159), "MAP (b=0.001)": (18.037, 1.318),
                    "Student-t": (69.543, 0.634)},
        "cancer": {"Gaussian": (-18.668, 3.448), "MAP (b=1)": (-45.895, 0.843), "MAP (b=0.001)": (-19.017, 3.273),
                   "Student-t": (-18.253, 2.629)},
        "satellite": {"Gaussian": (-1.852, 0.370), "MAP (b=1)": (-50.895, 0.238), "MAP (b=0.001)": (-1.899, 0.372),
                      "Student-t": (-1.811, 0.289)},
    }

    def with_thesis_rows(self, table: str) -> str:
        """``table`` with the thesis's row under each measured data set's row."""
        lines = []
        for line in table.splitlines():
            lines.append(line)
            name = line.split("|")[1].strip() if line.startswith("| ") else None
            if name in self.thesis_reference:
                ref = self.thesis_reference[name]
                lines.append(f"| {name} (thesis) | " + " | ".join(
                    f"{ref[m][0]:.3f} ± {ref[m][1]:.3f}" if m in ref else "–" for m in METHODS) + " |")
        return "\n".join(lines)

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        out.mkdir(parents=True, exist_ok=True)
        done = rep.finished(results)
        order = [d for d in CHAPTER3_DATASETS if any(r["config"]["dataset"] == d for r in done)]
        order += sorted({r["config"]["dataset"] for r in done} - set(order))
        cells = rep.by_seed(done, lambda c: (c["dataset"], c["method"]))
        rows = {d: rep.align({m: cells[(d, m)] for m in METHODS if (d, m) in cells}) for d in order}
        table = self.with_thesis_rows(markdown_table(rows, list(METHODS)))
        diverged = rep.count(done, lambda c: (c["dataset"], c["method"]))
        epochs = rep.by_seed(done, lambda c: (c["dataset"], c["method"]), "epochs_run")
        spikes: dict[tuple[str, str], list[int]] = {}
        for r in done:
            key = (r["config"]["dataset"], r["config"]["method"])
            spikes.setdefault(key, []).append(loss_spikes(r["metrics"].get("history", [])))
        names = " / ".join(METHODS)
        lines = [(f"| Dataset | Student-t − Gaussian | paired p (two-sided) | seeds | diverged runs ({names}) | "
                  f"mean epochs run ({names}) | mean loss spikes per run ({names}) |"),
                 "|---|---|---|---|---|---|---|"]
        for d, cols in rows.items():
            diff, p, n = math.nan, math.nan, 0
            if "Student-t" in cols and "Gaussian" in cols:
                a, b = cols["Student-t"], cols["Gaussian"]
                p, n = rep.paired_test(a, b)
                diffs = [x - y for x, y in zip(a, b) if x is not None and y is not None]
                diff = float(np.mean(diffs)) if diffs else math.nan
            div = " / ".join("{}/{}".format(*diverged.get((d, m), (0, 0))) for m in METHODS)
            ep = " / ".join(f"{mean_std(list(epochs.get((d, m), {}).values()))[0]:.0f}"
                            if (d, m) in epochs else "–" for m in METHODS)
            sp = " / ".join(f"{mean_std(spikes[(d, m)])[0]:.1f}"
                            if (d, m) in spikes else "–" for m in METHODS)
            lines.append(f"| {d} | {diff:+.3f} | {p:.2g} | {n} | {div} | {ep} | {sp} |")
        missing = [d for d in CHAPTER3_DATASETS if d not in order]
        markdown = "\n".join([
            "### Table 3.2 — test log-likelihood (mean ± std over seeds)", "",
            ("Bold: the best mean and every column not significantly different from it (paired t-test, 5%). "
             "(thesis): the thesis's Table 3.2, for comparison (not part of the test)."), "",
            table, "", "Student-t vs Gaussian, divergence (non-finite training loss) and epochs:", "",
            *lines, "",
            (f"Loss spikes: epochs whose mean training loss exceeds the previous epoch's by more than "
             f"{SPIKE_NATS} nat (instability short of divergence)."), "",
            *([f"No results for: {', '.join(missing)} (data absent here, or not requested)."] if missing else []),
            f"Compute: {rep.wall_clock(results)}.", *rep.failures(results),
        ])
        csv_path = out / "table-3.2.csv"
        with csv_path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["dataset", "method", "seed", "test_log_likelihood", "diverged", "diverged_epoch",
                             "epochs_run", "best_epoch", "n_test_evaluated", "seconds"])
            for r in done:
                c, m = r["config"], r["metrics"]
                writer.writerow([c["dataset"], c["method"], c["seed"], m.get("test_log_likelihood"),
                                 m.get("diverged"), m.get("diverged_epoch"), m.get("epochs_run"),
                                 m.get("best_epoch"), m.get("n_test_evaluated"), m.get("seconds")])
        md_path = out / "table-3.2.md"
        md_path.write_text(markdown + "\n")
        return {"markdown": markdown, "files": [str(md_path), str(csv_path)]}


#: Figure 3.5's table counts the epochs whose mean training loss rose by more than this over the previous one
RISE_NATS = 1.0


@register_target
class Figure35(MethodGrid):
    """Figure 3.5: mean training loss against wall clock, one panel per data set, one line per decoder."""

    name = "figure-3.5"
    description = "Mean training loss (negative Eq. 3.6) against wall-clock seconds per data set and decoder"
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {**TABLE_BUDGETS["quick"], "seeds": 1, "test_subsample": 1000},
        "full": {**TABLE_BUDGETS["full"], "seeds": 1},
    }

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        plt = rep.pyplot()
        done = rep.finished(results)
        datasets = [d for d in CHAPTER3_DATASETS if any(r["config"]["dataset"] == d for r in done)]
        datasets += sorted({r["config"]["dataset"] for r in done} - set(datasets))
        fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(4.2 * max(1, len(datasets)), 3.3),
                                 squeeze=False)
        colours = dict(zip(METHODS, ("C0", "C1", "C2", "C3")))
        lines = [("| Dataset | Method | seed | epochs | seconds | final train loss | min train loss | "
                  f"epochs the loss rose > {RISE_NATS:g} nat | largest rise | diverged |"),
                 "|---|---|---|---|---|---|---|---|---|---|"]
        for ax, d in zip(axes[0], datasets):
            values: list[float] = []
            for r in sorted((r for r in done if r["config"]["dataset"] == d),
                            key=lambda r: (list(METHODS).index(r["config"]["method"])
                                           if r["config"]["method"] in METHODS else 99, r["config"]["seed"])):
                c, m = r["config"], r["metrics"]
                hist = [h for h in m.get("history", []) if h.get("train_loss") is not None]
                t = [h["seconds"] for h in hist]
                loss = [h["train_loss"] for h in hist]
                values += loss
                first = c["seed"] == min(rr["config"]["seed"] for rr in done
                                         if rr["config"]["dataset"] == d and rr["config"]["method"] == c["method"])
                ax.plot(t, loss, color=colours.get(c["method"]), lw=1, label=c["method"] if first else None)
                if loss:
                    rises = np.diff(loss)
                    largest = f"{rises.max():+.2f}" if len(rises) else "–"
                    lines.append(f"| {d} | {c['method']} | {c['seed']} | {m.get('epochs_run')} | {t[-1]:.0f} | "
                                 f"{loss[-1]:.3f} | {min(loss):.3f} | {loss_spikes(m.get('history', []), RISE_NATS)} | "
                                 f"{largest} | {m.get('diverged')} |")
            if values:  # clip rare spikes so the stable part of every curve stays readable
                lo, hi = np.min(values), np.percentile(values, 97)
                ax.set_ylim(lo - 0.05 * (hi - lo + 1e-9), hi + 0.15 * (hi - lo + 1e-9))
            ax.set_title(d)
            ax.set_xlabel("wall clock (s)")
            ax.set_ylabel("mean training loss")
            ax.legend(fontsize=7)
        png = rep.save_figure(fig, out / "figure-3.5.png")
        markdown = "\n".join(["### Figure 3.5 — training loss against wall clock", "",
                              f"![Figure 3.5]({png.name})", "", *lines, "",
                              "Loss axes are clipped at the 97th percentile of all epochs (spikes leave the plot).",
                              f"Compute: {rep.wall_clock(results)}.", *rep.failures(results)])
        (out / "figure-3.5.md").write_text(markdown + "\n")
        return {"markdown": markdown, "files": [str(png), str(out / "figure-3.5.md")]}
