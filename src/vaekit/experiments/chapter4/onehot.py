"""Thesis chapter 4 on OneHot: Figure 4.1 (samples of q(z|x)) and Figure 4.2 (validation ELBO against -ln 4),
both with the table of each method's ELBO, its gap to the optimum and its test log-likelihood."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import report_helpers as rep
from ..stats import mean_std
from ..targets import register_target
from .figures import LN4, plot_elbo_curves, plot_posterior_samples
from .grid import ONEHOT_QUICK, Chapter4Target, budget_line
from .runs import METHOD_LABELS


def onehot_elbo_table(done: list[dict[str, Any]], methods: Sequence[str], last: int = 20) -> str:
    """Per method (mean ± std over seeds): the validation ELBO averaged over the last ``last`` epochs (one epoch's
    single-sample ELBO on 100 points is noisy, and the best epoch's is biased upwards by the selection), its gap to
    the optimum -ln 4, and the test log-likelihood (IS, K = 10; normalised for the implicit prior)."""
    lines = [f"| Method | validation ELBO (mean of last {last} epochs) | gap to −ln 4 | test log-likelihood (K=10) |",
             "|---|---|---|---|"]
    for method in methods:
        runs = [r for r in done if r["config"]["method"] == method]
        if not runs:
            continue
        elbos = [-float(np.mean([e["val_loss"] for e in r["metrics"]["history"][-last:]])) for r in runs]
        m, s = mean_std(elbos)
        tests = [r["metrics"].get("test_ll_normalised_k10", r["metrics"].get("test_ll_k10")) for r in runs]
        t, ts = mean_std([v for v in tests if v is not None])
        test = f"{t:.4f} ± {ts:.4f}" if math.isfinite(t) else "n/a (no density q(z|x))"
        lines.append(f"| {METHOD_LABELS[method]} | {m:.4f} ± {s:.4f} | {-LN4 - m:+.4f} | {test} |")
    return ("\n".join(lines) + f"\n\nOptimum: −ln 4 = {-LN4:.4f}; {len(done)} runs."
            + onehot_paired_note(done, methods, last))


def onehot_paired_note(done: list[dict[str, Any]], methods: Sequence[str], last: int = 20) -> str:
    """Each learned prior's validation ELBO (mean of the last ``last`` epochs) minus the standard prior's, paired
    by seed: mean ± std, on how many seeds it is higher, and the two-sided paired t-test."""
    elbo = {m: {int(r["config"]["seed"]): -float(np.mean([e["val_loss"] for e in r["metrics"]["history"][-last:]]))
                for r in done if r["config"]["method"] == m} for m in methods}
    parts = []
    for method in methods:
        seeds = sorted(set(elbo[method]) & set(elbo.get("standard", {})))
        if method == "standard" or not seeds:
            continue
        diff = [elbo[method][s] - elbo["standard"][s] for s in seeds]
        m, sd = mean_std(diff)
        p, n = rep.paired_test([elbo[method][s] for s in seeds], [elbo["standard"][s] for s in seeds])
        test = f"paired p = {p:.2g}" if n >= 2 else "no test with one seed"
        parts.append(f"{METHOD_LABELS[method]} {m:+.4f} ± {sd:.4f} (higher on {sum(d > 0 for d in diff)} of {n} "
                     f"seeds, {test})")
    return ("\n\nValidation ELBO minus the standard prior's, paired by seed: " + "; ".join(parts) + ".") if parts else ""


@register_target
class Figure41(Chapter4Target):
    name = "figure-4.1"
    description = "OneHot: samples of q(z|x) for the four one-hot vectors, per method (2-d latent)"
    methods = ("standard", "avb", "vamp", "implicit")
    run_family = "chapter-4-onehot"  # Figure 4.2 plots the same runs: either target's finished runs serve the other
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"datasets": ["onehot"], "seeds": 3, "train": ONEHOT_QUICK},
        "full": {"datasets": ["onehot"], "seeds": 8, "train": {"patience": None, "importance_samples": [10]}},
    }

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        done = rep.finished(results)
        seed0 = [r for r in done if r["config"]["seed"] == 0 and "posterior_samples" in r["metrics"]]
        path = plot_posterior_samples(seed0, self.methods, out / "figure-4.1.png")
        text = (f"Figure 4.1 (OneHot posterior samples, seed 0), {budget_line(done)}.\n\n"
                + onehot_elbo_table(done, self.methods))
        return rep.write_markdown(out, self.name, text, [str(path)])


@register_target
class Figure42(Figure41):
    name = "figure-4.2"
    description = "OneHot: validation ELBO per epoch per method against the optimum -ln 4"

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        done = rep.finished(results)
        methods = [m for m in self.methods if any(r["config"]["method"] == m for r in done)]
        path = plot_elbo_curves(done, methods, out / "figure-4.2.png")
        text = (f"Figure 4.2 (OneHot validation ELBO vs −ln 4), {budget_line(done)}.\n\n"
                + onehot_elbo_table(done, self.methods)
                + "\n\nThe ELBOs of AVB and the implicit prior are estimates through their density-ratio networks.")
        return rep.write_markdown(out, self.name, text, [str(path)])
