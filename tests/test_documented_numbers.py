"""Every documented table is recomputable from committed raw per-run results.

Each entry below names committed raw results (a ``runs.jsonl`` that ``vaekit reproduce``/``vaekit report`` write
beside ``report.md``, or a chapter script's ``results.json``), the target whose report code builds the table, and the documents that quote it. The test rebuilds
the report from the raw file alone and checks that every table row (mean ± std per cell, the paired tests' rows)
appears verbatim in each document, so a hand-edited or stale number fails. Rebuild one by hand with
``vaekit report TARGET --raw RUNS.jsonl`` (or on the database with ``--db``), or here with ``python -m pytest tests/test_documented_numbers.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vaekit.experiments.report import load_raw
from vaekit.experiments.targets import load_targets

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"

#: (raw results, target, documents quoting the report's tables)
DOCUMENTED: list[tuple[str, str, tuple[str, ...]]] = [
    ("chapter3/table-3.2-numerics-2/runs.jsonl", "table-3.2", ("README.md", "docs/chapter3.md")),
    ("chapter4/table-4.2-numerics-3/runs.jsonl", "table-4.2", ("README.md", "docs/chapter4.md")),
    ("chapter3/table-3.2-full-cancer/runs.jsonl", "table-3.2", ("docs/chapter3.md",)),
    # Tables 5.2-5.4 are one run family: one raw file holds the runs of all three
    ("chapter5/table-5.3-numerics-3/runs.jsonl", "table-5.2", ("docs/chapter5.md",)),
    ("chapter5/table-5.3-numerics-3/runs.jsonl", "table-5.3", ("README.md", "docs/chapter5.md")),
    ("chapter5/table-5.3-numerics-3/runs.jsonl", "table-5.4", ("docs/chapter5.md",)),
]


def _normalise(line: str) -> str:
    return re.sub(r"\s+", " ", line.replace("−", "-").strip())


def table_rows(markdown: str) -> list[str]:
    """The data rows of every markdown table (header separators and header rows excluded)."""
    lines = markdown.splitlines()
    rows = []
    for i, line in enumerate(lines):
        if line.startswith("|") and not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line.strip()):
            if i + 1 < len(lines) and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i + 1].strip()):
                continue  # a header row
            rows.append(_normalise(line))
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("raw, target, documents", DOCUMENTED, ids=[f"{d[1]}:{d[0]}" for d in DOCUMENTED])
def test_documented_table_recomputes_from_raw_results(raw: str, target: str, documents: tuple[str, ...],
                                                      tmp_path: Path) -> None:
    path = RESULTS / raw
    assert path.is_file(), f"raw results {path} are not committed"
    report = load_targets()[target].report(load_raw(path), tmp_path)
    rows = table_rows(report["markdown"])
    assert rows, "the report has no table"
    for document in documents:
        text = {_normalise(line) for line in (ROOT / document).read_text().splitlines()}
        missing = [row for row in rows if row not in text]
        assert not missing, f"{document} does not quote these rows recomputed from {raw}:\n" + "\n".join(missing)


def test_table_rows_parser() -> None:
    markdown = "text\n\n| A | B |\n|---|---|\n| x | −1.0 ± 0.1 |\n| y | **2** |\n"
    assert table_rows(markdown) == ["| x | -1.0 ± 0.1 |", "| y | **2** |"]
