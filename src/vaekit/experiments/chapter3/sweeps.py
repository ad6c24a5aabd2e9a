"""Figures 3.6-3.8: SMTP sweeps of the optimiser (3.6), the MAP prior's rate b (3.7) and training noise (3.8).

Each figure plots mean ± std over seeds of the test log-likelihood; methods that are not swept are drawn as
dashed horizontal lines (the thesis's comparison lines). The table under each figure gives, per setting, the
paired two-sided t-test p-value against the Student-t VAE of the same seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any, ClassVar

from ..targets import Target, register_target
from .. import report_helpers as rep
from .runs import SETUP, make_config, seed_list, train_and_evaluate

SWEEP_QUICK: dict[str, Any] = {"epochs": 20, "patience": 10, "seeds": 3, "importance_samples": 100,
                               "test_subsample": 2000, "dataset": "smtp",
                               "note": "IS on a fixed seeded subsample of 2,000 SMTP test rows per seed"}
SWEEP_FULL: dict[str, Any] = {"epochs": 500, "patience": 50, "seeds": 10, "importance_samples": 100,
                              "test_subsample": None, "dataset": "smtp"}
REFERENCE_COLOURS = {"Gaussian": "C0", "Student-t": "C3", "MAP": "C1"}


class SweepTarget(Target):
    """A sweep over one setting on SMTP with reference methods; subclasses define :meth:`grid` and the panels.

    The sweeps share Table 3.2's run family: a run at Table 3.2's settings (a reference line, or the swept series
    at the default batch size and learning rate) is Table 3.2's run, adopted when either has finished it.
    """

    run_family = "chapter-3-methods"

    #: (title, x label, log x-axis, swept config key, filter on configs of the swept series)
    panels: ClassVar[list[tuple[str, str, bool, str, Callable[[dict[str, Any]], bool]]]]
    swept_series: ClassVar[tuple[str, ...]] = ("Gaussian",)
    title: ClassVar[str] = ""

    def grid(self, budget: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """(method, config overrides) pairs of one seed."""
        raise NotImplementedError

    def runs(self, budget: str = "quick", seeds: int | None = None,
             datasets: Sequence[str] | None = None) -> list[dict[str, Any]]:
        b = self.budgets[budget]
        return [make_config(self.name, d, method, s, b, **overrides)
                for d in (datasets or [b["dataset"]]) for method, overrides in self.grid(b)
                for s in seed_list(seeds, b["seeds"])]

    def execute(self, config: dict[str, Any]) -> dict[str, Any]:
        return train_and_evaluate(config)

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        plt = rep.pyplot()
        done = rep.finished(results)
        fig, axes = plt.subplots(1, len(self.panels), figsize=(4.6 * len(self.panels), 3.4), squeeze=False)
        reference = {m: rep.by_seed([r for r in done if r["config"].get("sweep") == "reference"
                                     and r["config"]["method"] == m], lambda c: 0).get(0, {})
                     for m in ("Gaussian", "Student-t")}
        student = reference["Student-t"]
        lines = ["| setting | method | test log-likelihood | diverged | p vs Student-t (paired, same seeds) |",
                 "|---|---|---|---|---|"]
        for m, col in reference.items():
            if col:
                div = rep.count([r for r in done if r["config"].get("sweep") == "reference"
                                 and r["config"]["method"] == m], lambda c: 0).get(0, (0, 0))
                p = math.nan if m == "Student-t" else \
                    rep.paired_test(*rep.align({"a": col, "b": student}).values())[0]
                lines.append(f"| reference | {m} | {rep.summary_cell(list(col.values()))} | {div[0]}/{div[1]} | "
                             f"{'' if math.isnan(p) else f'{p:.2g}'} |")
        for ax, (title, xlabel, logx, key, keep) in zip(axes[0], self.panels):
            by_key = itemgetter(key)
            student_cols = rep.by_seed([r for r in done if r["config"].get("sweep") != "reference"
                                        and r["config"]["method"] == "Student-t" and keep(r["config"])],
                                       by_key)
            for series in self.swept_series:
                runs = [r for r in done if r["config"].get("sweep") != "reference"
                        and r["config"]["method"].startswith(series) and keep(r["config"])]
                cols = rep.by_seed(runs, by_key)
                divs = rep.count(runs, by_key)
                xs = sorted(cols)
                if not xs:
                    continue
                rep.band(ax, xs, [list(cols[x].values()) for x in xs], series,
                         color=REFERENCE_COLOURS.get(series))
                for x in xs:
                    against = student_cols.get(x, student) if "Student-t" in self.swept_series else student
                    p = math.nan if series == "Student-t" else \
                        rep.paired_test(*rep.align({"a": cols[x], "b": against}).values())[0]
                    lines.append(f"| {key} = {x:g} | {series} | {rep.summary_cell(list(cols[x].values()))} | "
                                 f"{divs[x][0]}/{divs[x][1]} | {'' if math.isnan(p) else f'{p:.2g}'} |")
            for m, col in reference.items():
                if col:
                    rep.reference_line(ax, list(col.values()), f"{m} (default)", REFERENCE_COLOURS[m])
            if logx:
                ax.set_xscale("log")
            ticks = sorted({x for series in self.swept_series for x in rep.by_seed(
                [r for r in done if r["config"].get("sweep") != "reference"
                 and r["config"]["method"].startswith(series) and keep(r["config"])], by_key)})
            if ticks:
                ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
                ax.minorticks_off()
            low = min((m for line in ax.lines for m in line.get_ydata()), default=0.0)
            if low < -30:  # a diverging setting would flatten every other point: log-like scale below -1
                ax.set_yscale("symlog", linthresh=1.0)
            ax.set(title=title, xlabel=xlabel, ylabel="test log-likelihood")
            ax.legend(fontsize=7)
        png = rep.save_figure(fig, out / f"{self.name}.png")
        markdown = "\n".join([f"### {self.title}", "", f"![{self.name}]({png.name})", "",
                              ("Mean ± std over seeds; diverged = runs whose training loss became non-finite "
                               "(their best-validation weights are still evaluated)."), "", *lines, "",
                              f"Compute: {rep.wall_clock(results)}.", *rep.failures(results)])
        (out / f"{self.name}.md").write_text(markdown + "\n")
        return {"markdown": markdown, "files": [str(png), str(out / f"{self.name}.md")]}


def _references(methods: Sequence[str] = ("Student-t",)) -> list[tuple[str, dict[str, Any]]]:
    return [(m, {"sweep": "reference"}) for m in methods]


@register_target
class Figure36(SweepTarget):
    """Figure 3.6: Gaussian VAE test log-likelihood against mini-batch size and learning rate on SMTP."""

    name = "figure-3.6"
    title = "Figure 3.6 — Gaussian VAE vs mini-batch size and learning rate (SMTP)"
    description = ("Gaussian VAE test LL vs batch size (lr 1e-3) and vs learning rate (batch 100) on SMTP; "
                   "Student-t dashed")
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {**SWEEP_QUICK, "batch_sizes": [50, 100, 200, 500], "lrs": [1e-4, 1e-3, 1e-2]},
        "full": {**SWEEP_FULL, "batch_sizes": [25, 50, 100, 200, 500, 1000],
                        "lrs": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]}}
    panels: ClassVar[list[Any]] = [("(a) mini-batch size (lr 1e-3)", "mini-batch size", True, "batch_size",
               lambda c: c["lr"] == SETUP["lr"]),
              ("(b) learning rate (batch 100)", "learning rate", True, "lr",
               lambda c: c["batch_size"] == SETUP["batch_size"])]

    def grid(self, budget: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        settings = [(bs, SETUP["lr"]) for bs in budget["batch_sizes"]]
        settings += [(SETUP["batch_size"], lr) for lr in budget["lrs"] if (SETUP["batch_size"], lr) not in settings]
        return [("Gaussian", {"batch_size": bs, "lr": lr, "sweep": "optimiser"}) for bs, lr in settings] \
            + _references()


@register_target
class Figure37(SweepTarget):
    """Figure 3.7: MAP VAE (Eq. 3.10) test log-likelihood against the Gamma(1, b) rate b on SMTP."""

    name = "figure-3.7"
    title = "Figure 3.7 — MAP VAE vs the Gamma(1, b) rate b (SMTP)"
    description = "MAP VAE test LL vs b on SMTP (Eq. 3.10); Gaussian and Student-t VAEs dashed"
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {**SWEEP_QUICK, "b": [1e-4, 1e-3, 1e-2, 1e-1, 1.0]},
        "full": {**SWEEP_FULL, "b": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]}}
    panels: ClassVar[list[Any]] = [("MAP VAE vs b", "b (Gamma rate)", True, "b", lambda c: True)]
    swept_series: ClassVar[tuple[str, ...]] = ("MAP",)

    def grid(self, budget: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        return [(f"MAP (b={b:g})", {"likelihood": "map", "likelihood_kwargs": {"b": float(b)}, "b": float(b),
                                    "sweep": "b"}) for b in budget["b"]] + _references(("Gaussian", "Student-t"))


@register_target
class Figure38(SweepTarget):
    """Figure 3.8: test log-likelihood against the ratio of uniform noise rows added to SMTP's training split."""

    name = "figure-3.8"
    title = "Figure 3.8 — test log-likelihood under uniform training noise (SMTP)"
    description = ("Gaussian vs Student-t VAE test LL vs the ratio of uniform noise rows added to the SMTP "
                   "training split (clean test rows)")
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {**SWEEP_QUICK, "noise_ratios": [0.0, 0.01, 0.05, 0.1]},
        "full": {**SWEEP_FULL, "noise_ratios": [0.0, 0.01, 0.02, 0.05, 0.1, 0.2]}}
    panels: ClassVar[list[Any]] = [
        ("noisy training data", "ratio of noise rows to training rows", False, "noise_ratio", lambda c: True)]
    swept_series: ClassVar[tuple[str, ...]] = ("Gaussian", "Student-t")

    def grid(self, budget: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        return [(m, {"noise_ratio": float(r), "sweep": "noise"}) for m in self.swept_series
                for r in budget["noise_ratios"]]
