"""Every documented table is recomputable from committed raw per-run results.

Each entry below names committed raw results (a ``runs.jsonl`` that ``vaekit reproduce``/``vaekit report`` write
beside ``report.md``, or a chapter script's ``results.json``), the target whose report code builds the table, and the documents that quote it. The test rebuilds
the report from the raw file alone and checks that every table row (mean ± std per cell) and every paired-test
line (difference, confidence interval, p-value) appears verbatim in each document (``PATH[i,j]``: only the
report's tables i and j), so a hand-edited or stale number fails. Rebuild one by hand with
``vaekit report TARGET --raw RUNS.jsonl`` (or on the database with ``--db``), or here with ``python -m pytest tests/test_documented_numbers.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vaekit.experiments.report import report_from_raw
from vaekit.experiments.targets import load_targets

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"

#: (raw results, target, documents quoting the report's tables)
DOCUMENTED: list[tuple[str, str, tuple[str, ...]]] = [
    ("chapter3/table-3.2-numerics-2/runs.jsonl", "table-3.2", ("README.md", "docs/chapter3.md")),
    ("chapter4/table-4.2-numerics-3/runs.jsonl", "table-4.2", ("README.md", "docs/chapter4.md")),
    ("chapter4/table-4.2-full/runs.jsonl", "table-4.2", ("docs/chapter4.md",)),
    ("chapter4/table-4.2-intermediate/runs.jsonl", "table-4.2", ("docs/chapter4.md",)),
    ("chapter4/figure-4.2-full/runs.jsonl", "figure-4.2", ("docs/chapter4.md",)),
    ("chapter3/table-3.2-full/runs.jsonl", "table-3.2", ("README.md", "docs/chapter3.md")),
    ("chapter3/figure-3.2-full/runs.jsonl", "figure-3.2", ("docs/chapter3.md",)),
    ("chapter3/figure-3.4/runs.jsonl", "figure-3.4", ("docs/chapter3.md",)),
    # Figure 3.5's run table at both budgets (the quick one from the earlier session's results.json)
    ("chapter3/figure-3.5/results.json", "figure-3.5", ("docs/chapter3.md",)),
    ("chapter3/figure-3.5-full/runs.jsonl", "figure-3.5", ("docs/chapter3.md",)),
    # Tables 5.2-5.4 are one run family: one raw file holds the runs of all three
    ("chapter5/table-5.3-numerics-3/runs.jsonl", "table-5.2", ("docs/chapter5.md",)),
    ("chapter5/table-5.3-numerics-3/runs.jsonl", "table-5.3", ("README.md", "docs/chapter5.md")),
    ("chapter5/table-5.3-numerics-3/runs.jsonl", "table-5.4", ("docs/chapter5.md",)),
    # the headline test: README quotes its accuracy and I(S;Z) tables with their paired tests, the chapter all
    ("chapter5/invariance-5-numerics-3/runs.jsonl", "invariance-5", ("README.md[0,1]", "docs/chapter5.md")),
    ("chapter5/invariance-5-dropout-numerics-3/runs.jsonl", "invariance-5-dropout", ("README.md[0,1]", "docs/chapter5.md")),
    ("chapter5/invariance-5-budget-numerics-3/runs.jsonl", "invariance-5-budget", ("README.md[0,1]", "docs/chapter5.md")),
    # ADBench: README quotes the average ranks and the paired comparison, docs/anomaly.md every table
    ("adbench/runs.jsonl", "adbench", ("README.md[0,1]", "docs/anomaly.md[0,1,2,3]")),
]


def _normalise(line: str) -> str:
    return re.sub(r"\s+", " ", line.replace("−", "-").strip())


SEPARATOR = re.compile(r"\|(\s*:?-+:?\s*\|)+")


def table_blocks(markdown: str) -> list[list[str]]:
    """The data rows of each markdown table (header separators and header rows excluded), each followed by the
    paired-test lines (``- ...: A − B = ..., paired t-test p = ...``) that come after it."""
    lines = markdown.splitlines()
    blocks: list[list[str]] = []
    for i, line in enumerate(lines):
        if line.startswith("|") and not SEPARATOR.fullmatch(line.strip()):
            if i + 1 < len(lines) and SEPARATOR.fullmatch(lines[i + 1].strip()):
                blocks.append([])  # a header row opens a table
                continue
            blocks[-1].append(_normalise(line))
        elif line.startswith("- ") and "paired t-test p =" in line and blocks:
            blocks[-1].append(_normalise(line))
    return blocks


def table_rows(markdown: str) -> list[str]:
    """Every row of :func:`table_blocks`, in order."""
    return [row for block in table_blocks(markdown) for row in block]


def quoted_rows(markdown: str, document: str) -> tuple[str, list[str]]:
    """The document's path and the report rows it must quote: all of them, or those of the tables listed as
    ``PATH[i,j]`` (0-based, in report order; each with its paired-test lines)."""
    match = re.fullmatch(r"(.+)\[([\d,]+)\]", document)
    if match is None:
        return document, table_rows(markdown)
    blocks = table_blocks(markdown)
    return match[1], [row for i in map(int, match[2].split(",")) for row in blocks[i]]


@pytest.mark.slow
@pytest.mark.parametrize("raw, target, documents", DOCUMENTED, ids=[f"{d[1]}:{d[0]}" for d in DOCUMENTED])
def test_documented_table_recomputes_from_raw_results(raw: str, target: str, documents: tuple[str, ...],
                                                      tmp_path: Path) -> None:
    path = RESULTS / raw
    assert path.is_file(), f"raw results {path} are not committed"
    report = report_from_raw(load_targets()[target], path, tmp_path)  # what `vaekit report TARGET --raw` runs
    assert table_rows(report["markdown"]), "the report has no table"
    for document in documents:
        document, rows = quoted_rows(report["markdown"], document)
        text = {_normalise(line) for line in (ROOT / document).read_text().splitlines()}
        missing = [row for row in rows if row not in text]
        assert not missing, f"{document} does not quote these rows recomputed from {raw}:\n" + "\n".join(missing)


def test_table_rows_parser() -> None:
    markdown = ("text\n\n| A | B |\n|---|---|\n| x | −1.0 ± 0.1 |\n| y | **2** |\n\n- x: B − A = +1, paired t-test p = 0.5\n"
                "- a note\n\n| C |\n|---|\n| z |\n")
    assert table_rows(markdown) == ["| x | -1.0 ± 0.1 |", "| y | **2** |", "- x: B - A = +1, paired t-test p = 0.5", "| z |"]
    assert quoted_rows(markdown, "README.md[1]") == ("README.md", ["| z |"])
    assert quoted_rows(markdown, "README.md") == ("README.md", table_rows(markdown))


def test_log_z_benchmark_table_recomputes_from_its_raw_estimates() -> None:
    """The AIS-vs-importance tables in docs/chapter4.md and benchmarks/results (the estimates per model, and the
    quick Table 4.2's Frey-faces runs normalised by either, with their paired tests) are rebuilt from the committed
    raw estimates (``benchmarks/log_normaliser_trained.jsonl``, with the table's ``runs.jsonl``) by the benchmark's
    own code."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("log_normaliser_trained",
                                                  ROOT / "benchmarks" / "log_normaliser_trained.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    raw = ROOT / "benchmarks" / "results" / "log_normaliser_trained.jsonl"
    rows = [json.loads(line) for line in raw.read_text().splitlines()]
    table = [_normalise(line) for line in module.summary(rows).splitlines()]
    table += [_normalise(line) for line in module.table_4_2_note(rows).splitlines() if line.startswith(("|", "- "))]
    for document in ("benchmarks/results/log_normaliser_trained.md", "docs/chapter4.md"):
        text = {_normalise(line) for line in (ROOT / document).read_text().splitlines()}
        assert not [row for row in table if row not in text], document


def test_table_4_2_budget_curve_recomputes_and_chapter_4_quotes_it() -> None:
    """The budget curve (quick -> intermediate -> full) is rebuilt from the committed raw runs; the committed file
    and every table row that docs/chapter4.md quotes are that rebuild."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("curve_script", ROOT / "benchmarks" / "table42_budget_curve.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rebuilt = script.curve_markdown()
    assert (script.OUT / "budget-curve.md").read_text() == rebuilt
    chapter = _normalise((ROOT / "docs" / "chapter4.md").read_text())
    rows = [line for line in rebuilt.splitlines() if line.startswith("| ") and not line.startswith("| Budget")]
    assert rows and all(_normalise(row) in chapter for row in rows), [r for r in rows if _normalise(r) not in chapter]
