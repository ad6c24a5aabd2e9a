"""Table 4.2 against the training budget (quick -> intermediate -> full), from the committed raw runs only.

Usage: python benchmarks/table42_budget_curve.py
Writes docs/results/chapter4/table-4.2-budget-curve/budget-curve.md and one PNG per data set; docs/chapter4.md
quotes the tables (tests/test_documented_numbers.py checks that they recompute).
"""

from __future__ import annotations

from pathlib import Path

from vaekit.experiments.chapter4.curve import budget_rows, budget_table, plot_budget_curve

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "chapter4"
#: the committed raw runs of every Table 4.2 budget, in budget order (absent files are skipped)
RAW = ("table-4.2-numerics-3/runs.jsonl", "table-4.2-intermediate/runs.jsonl", "table-4.2-full/runs.jsonl")
OUT = RESULTS / "table-4.2-budget-curve"


def curve_markdown() -> str:
    """The budget-curve tables of every data set, as markdown."""
    files = [RESULTS / name for name in RAW if (RESULTS / name).is_file()]
    parts = ["Test log-likelihood (K = 10 importance samples, the thesis's K; the implicit prior's raw bound, the "
             "thesis's ≈) per budget: mean ± std over seeds (their number). Rebuilt by "
             "`python benchmarks/table42_budget_curve.py` from " + ", ".join(f"`{f.relative_to(ROOT)}`" for f in files)
             + "."]
    for dataset in ("mnist", "freyfaces"):
        rows = budget_rows(files, dataset)
        if rows:
            parts.append(f"### {dataset}\n\n{budget_table(rows, dataset)}")
    return "\n\n".join(parts) + "\n"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "budget-curve.md").write_text(curve_markdown())
    files = [RESULTS / name for name in RAW if (RESULTS / name).is_file()]
    for dataset in ("mnist", "freyfaces"):
        rows = budget_rows(files, dataset)
        if rows:
            plot_budget_curve(rows, dataset, OUT / f"{dataset}.png")
    print((OUT / "budget-curve.md").read_text())


if __name__ == "__main__":
    main()
