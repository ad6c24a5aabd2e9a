"""Thesis chapter 5's Tables 5.2-5.4 (log-likelihood, 3-NN accuracy, active units) and the helpers every
chapter-5 report shares: the VFAE's alpha per seed, values per protocol and column aligned by seed, the budget."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

from ...tasks import pick_alpha
from .. import report_helpers as rep
from ..log_normaliser import log_normaliser_note
from ..stats import markdown_table
from ..targets import register_target
from .grid import FACES, TWO_FACES, Chapter5Target, method_key
from .runs import LABELS


def select_vfae(done: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep, per (protocol, seed), the VFAE run whose alpha has the best validation loss; others pass through. A
    (protocol, seed) whose every alpha diverged before a finite validation loss has no VFAE run (a missing cell)."""
    kept = [r for r in done if r["config"]["method"] != "vfae"]
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in done:
        if r["config"]["method"] == "vfae":
            groups.setdefault((r["config"]["dataset"], r["config"]["seed"]), []).append(r)
    for runs in groups.values():
        losses = {r["config"]["mmd_alpha"]: r["metrics"].get("best_val_loss") for r in runs}
        if not any(v is not None and math.isfinite(v) for v in losses.values()):
            continue
        best = pick_alpha(losses)
        kept.append(next(r for r in runs if r["config"]["mmd_alpha"] == best))
    return kept


def metric_rows(done: list[dict[str, Any]], metric: str) -> tuple[dict[str, dict[str, list[float]]], list[str]]:
    """``rows[dataset][method] = [value per seed]`` aligned by seed, and the method columns present."""
    rows: dict[str, dict[str, list[float]]] = {}
    columns: list[str] = []
    for dataset in dict.fromkeys(r["config"]["dataset"] for r in done):
        runs = [r for r in done if r["config"]["dataset"] == dataset]
        seeds = sorted({r["config"]["seed"] for r in runs})
        for column in dict.fromkeys(method_key(r["config"]) for r in runs):
            by_seed = {r["config"]["seed"]: r["metrics"].get(metric) for r in runs if method_key(r["config"]) == column}
            rows.setdefault(dataset, {})[column] = [math.nan if by_seed.get(s) is None else by_seed[s] for s in seeds]
            if column not in columns:
                columns.append(column)
    return rows, columns


def _values(runs: list[dict[str, Any]], key: str) -> str:
    """The distinct values of a setting among runs, e.g. ``0 / 0.1 / 0.5`` for a lever."""
    return " / ".join(f"{v:g}" for v in sorted({r["config"][key] for r in runs}))


def budget_line(done: list[dict[str, Any]]) -> str:
    """The training budget of the finished runs, per protocol."""
    parts = []
    for dataset in dict.fromkeys(r["config"]["dataset"] for r in done):
        # (Table 5.2's normalised columns are copies of the proposed model's runs: counted once)
        runs = [r for r in done if r["config"]["dataset"] == dataset
                and r["config"].get("ll_kind") in (None, "raw ≈")]
        c = runs[0]["config"]
        seeds = sorted({r["config"]["seed"] for r in runs})
        wall = sum(r["metrics"].get("wall_seconds", 0) for r in runs) / 60
        parts.append(f"{dataset}: budget `{c.get('budget')}`, {_values(runs, 'epochs')} epochs (patience "
                     f"{c.get('patience')}), lr {c['lr']}, dropout {_values(runs, 'dropout')}, ratio epochs "
                     f"{c['ratio_epochs']}, seeds {seeds}, "
                     f"source rows ≤ {c.get('max_source') or 'all'}, target validation ≤ {c.get('max_val') or 'all'}, "
                     f"test ≤ {c.get('max_test') or 'all'} per task, {len(runs)} runs, {wall:.0f} min summed run wall time")
    return "; ".join(parts) if parts else "no finished runs"


TABLE_BUDGETS: dict[str, dict[str, Any]] = {
    "quick": {"datasets": ["digits->mnist", "usps->mnist", "mnist->usps", TWO_FACES], "seeds": 3},
    "full": {"datasets": ["usps->mnist", "mnist->usps", "synthdigits->svhn", "svhn->synthdigits", FACES],
             "seeds": 8},
}


class _Table(Chapter5Target):
    metric: ClassVar[str]
    caption: ClassVar[str]
    digits: ClassVar[int] = 2
    budgets = TABLE_BUDGETS

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        trained = rep.finished(results)
        done = select_vfae(trained)
        rows, columns = metric_rows(done, self.metric)
        order = [c for m in self.methods for c in columns if c.startswith(LABELS[m])]
        table = markdown_table(rows, order, row_header="Protocol", digits=self.digits,
                               contenders=[c for c in order if c not in self.not_contenders])
        alphas = sorted({r["config"]["mmd_alpha"] for r in done if r["config"]["method"] == "vfae"})
        # the budget line counts every trained run (each VFAE alpha), not only the ones the table keeps
        text = (f"{self.caption}, {budget_line(trained)}.\n\n{table}\n\nMean ± std over seeds; bold: best mean and "
                "every method not different from it by a paired t-test over seeds (p ≥ 0.05). VFAE alpha chosen "
                f"per seed by the validation ELBO among {_alpha_count(trained)} values (chosen: {alphas or '–'})."
                + self.notes(done))
        return rep.write_markdown(out, self.name, text, with_json=True)

    #: columns that are shown but neither win nor are bold
    not_contenders: ClassVar[tuple[str, ...]] = ()

    def notes(self, done: list[dict[str, Any]]) -> str:
        return ""


def _alpha_count(runs: list[dict[str, Any]]) -> int:
    return len({r["config"].get("mmd_alpha") for r in runs if r["config"]["method"] == "vfae"})


@register_target
class Table52(_Table):
    """The proposed model's prior N(z) exp T(z) is unnormalised: its column is given raw (the thesis's "≈"),
    normalised by the importance-sampled log Z, and normalised by the AIS log Z where the runs recorded one."""

    name = "table-5.2"
    description = "Target-task test log-likelihood (IS, 10 samples) of VAE, CVAE, beta-CVAE, VFAE and proposed"
    metric, caption = "test_log_likelihood", "Table 5.2 (test log-likelihood, target task; faces: mean over tasks)"

    #: the raw bound of an unnormalised prior is no log-likelihood: shown (the thesis's "≈"), never the best
    not_contenders = ("Proposed (raw ≈)",)

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        return super().report(with_normalised_column(results), out)

    def notes(self, done: list[dict[str, Any]]) -> str:
        runs = [r for r in done if r["config"].get("ll_kind") in (None, "raw ≈")]
        return (log_normaliser_note(runs, method="proposed", where="column")
                + log_normaliser_note(runs, "annealed", method="proposed", where="column"))


def with_normalised_column(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results with the implicit-prior runs labelled "raw ≈" and a copy of each carrying its normalised
    log-likelihood as ``test_log_likelihood`` under a "normalised" label, and another under "normalised by AIS"
    when the run recorded an AIS log Z (the columns of Table 5.2)."""
    out = []
    for r in results:
        if r.get("config", {}).get("method") != "proposed":
            out.append(r)
            continue
        metrics = r.get("metrics", {})
        out.append({**r, "config": {**r["config"], "ll_kind": "raw ≈"}})
        for kind, key in (("normalised", "test_log_likelihood_normalised"),
                          ("normalised by AIS", "test_log_likelihood_normalised_annealed")):
            if kind == "normalised" or key in metrics:
                out.append({**r, "config": {**r["config"], "ll_kind": kind},
                            "metrics": {**metrics, "test_log_likelihood": metrics.get(key)}})
    return out


@register_target
class Table53(_Table):
    name = "table-5.3"
    description = "3-NN target test accuracy with the 100 labelled target training points"
    metric, caption, digits = "knn_accuracy", "Table 5.3 (3-NN target accuracy)", 3


@register_target
class Table54(_Table):
    name = "table-5.4"
    description = "Active units (delta = 0.01) on the target task's test rows"
    metric, caption = "active_units", "Table 5.4 (active units)"
