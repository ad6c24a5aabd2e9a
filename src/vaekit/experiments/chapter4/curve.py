"""Table 4.2 against the training budget: each prior's test log-likelihood at every budget that ran
(quick -> intermediate -> full), beside the thesis's value, to answer whether the thesis's ordering
(standard < VampPrior <= implicit) appears as the budget grows. Built from committed raw results only
(``runs.jsonl`` of ``vaekit reproduce table-4.2``), so every cell recomputes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import report_helpers as rep
from ..report import load_raw
from ..stats import mean_std
from .likelihood import column_label, column_order

#: Table 4.2 of the thesis (test log-likelihood, K = 10 importance samples; the implicit prior's value is the
#: unnormalised bound, written with "≈" there): standard VAE, VampPrior, implicit prior
THESIS = {"mnist": (-85.84, -83.90, -83.21), "freyfaces": (1382.53, 1392.62, 1396.27)}
BUDGET_ORDER = ("quick", "intermediate", "full")


def budget_rows(raw_files: Sequence[str | Path], dataset: str,
                key: str = "test_ll_k10") -> list[dict[str, Any]]:
    """One row per budget found in ``raw_files`` for ``dataset``: its settings and, per column (method, and
    the J2 schedule where a budget runs several), the mean, std and number of seeds of ``key``."""
    rows = []
    for path in raw_files:
        runs = [r for r in load_raw(path) if r["config"].get("dataset") == dataset
                and r["status"] in ("done", "diverged") and r["metrics"].get(key) is not None]
        for budget in dict.fromkeys(r["config"].get("budget") for r in runs):
            mine = [r for r in runs if r["config"].get("budget") == budget]
            cells = {}
            for column in sorted({column_label(r["config"]) for r in mine}, key=column_order):
                values = [r["metrics"][key] for r in mine if column_label(r["config"]) == column]
                cells[column] = (*mean_std(values), len(values))
            config = mine[0]["config"]
            rows.append({"budget": budget, "epochs": config["epochs"], "cells": cells, "source": str(path),
                         "n_train": mine[0]["metrics"].get("n_train"),
                         "seeds": len({r["config"]["seed"] for r in mine})})
    order = {name: i for i, name in enumerate(BUDGET_ORDER)}
    return sorted(rows, key=lambda row: order.get(row["budget"], len(order)))


def budget_table(rows: list[dict[str, Any]], dataset: str, digits: int = 2) -> str:
    """The rows of :func:`budget_rows` as a markdown table (mean ± std over seeds, their number in brackets),
    the thesis's values last."""
    columns = sorted({c for row in rows for c in row["cells"]}, key=column_order)
    lines = ["| Budget (training images, epochs, seeds) | " + " | ".join(columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        cells = [_cell(*row["cells"][c], digits) if c in row["cells"] else "–" for c in columns]
        images = "?" if row["n_train"] is None else f"{row['n_train']:,}"
        lines.append(f"| {row['budget']} ({images}, {row['epochs']}, {row['seeds']}) | "
                     + " | ".join(cells) + " |")
    thesis = dict(zip(("Standard VAE", "VampPrior", "Implicit prior"), THESIS.get(dataset, ())))
    if thesis:
        bases = [c.partition(" (J2")[0] for c in columns]
        cells = [f"{thesis[b]:.2f}" if b in thesis else "–" for b in bases]
        lines.append("| thesis (8 runs) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(mean: float, std: float, n: int, digits: int) -> str:
    return f"{mean:.{digits}f} (1 seed)" if n == 1 else f"{mean:.{digits}f} ± {std:.{digits}f} ({n})"


def plot_budget_curve(rows: list[dict[str, Any]], dataset: str, path: Path) -> Path:
    """Mean test log-likelihood per column against the budget (one line per method), the thesis's dotted."""
    plt = rep.pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    labels = [f"{row['budget']}\n{row['n_train'] or '?'} × {row['epochs']}" for row in rows]
    for column in sorted({c for row in rows for c in row["cells"]}, key=column_order):
        points = [(i, row["cells"][column][0]) for i, row in enumerate(rows) if column in row["cells"]]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=column)
    for value in THESIS.get(dataset, ()):
        ax.axhline(value, ls=":", lw=0.8, color="grey")
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel("test log-likelihood (K = 10)")
    ax.set_title(f"Table 4.2 on {dataset} against the budget (dotted: thesis)", fontsize=9)
    ax.legend(fontsize=7)
    return rep.save_figure(fig, path, dpi=90)
