"""Statistics for result tables: mean +- std over seeds and bolding by a paired t-test (scipy)."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) of the finite ``values``."""
    a = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(a) == 0:
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def _finite(v: Any) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def paired_test(a: Sequence[float | None], b: Sequence[float | None]) -> tuple[float, int]:
    """Two-sided paired t-test p-value of ``a`` vs ``b`` over the seeds where both are finite, and that count
    (p is NaN with fewer than two pairs, 1.0 when the pairs are identical)."""
    pairs = np.array([(x, y) for x, y in zip(a, b) if _finite(x) and _finite(y)], dtype=float)
    if len(pairs) < 2:
        return math.nan, len(pairs)
    diff = pairs[:, 0] - pairs[:, 1]
    # "equal" and "constant" up to float64 rounding only (numpy's default rtol of 1e-5 would call a 0.01-nat
    # difference at log-likelihoods near 1,000 no difference at all)
    if np.allclose(pairs[:, 0], pairs[:, 1], rtol=1e-9, atol=0.0):  # equal: no difference to test
        return 1.0, len(pairs)
    if np.allclose(diff, diff[0], rtol=1e-9, atol=1e-12):  # a constant non-zero difference: t is infinite
        return 0.0, len(pairs)
    return float(stats.ttest_rel(pairs[:, 0], pairs[:, 1]).pvalue), len(pairs)


def paired_best(columns: Mapping[str, Sequence[float]], higher_is_better: bool = True,
                alpha: float = 0.05, contenders: Collection[str] | None = None) -> dict[str, bool]:
    """Which columns to bold: the best mean, and every column not significantly different from it.

    ``columns[name]`` holds one value per seed, aligned by seed across columns (``None``/NaN for a failed run).
    The best column is compared with each other one by a two-sided paired t-test over the seeds where both are
    finite (``scipy.stats.ttest_rel``); a column is bold when p >= ``alpha``. A column with fewer than two paired
    values is bold only if it is the best, and it is the best only if no column has two or more values. A row with
    fewer than two measured columns has nothing bold (a lone value is not "best"). ``contenders``: the columns that may be best and bold (default all; e.g. not a bound that is not
    a log-likelihood).
    """
    means = {k: mean_std(v)[0] for k, v in columns.items()}
    finite = {k: m for k, m in means.items() if math.isfinite(m) and (contenders is None or k in contenders)}
    if len(finite) < 2:
        return {k: False for k in columns}
    seeds = {k: sum(v is not None and math.isfinite(v) for v in columns[k]) for k in finite}
    if max(seeds.values()) >= 2:  # a partial grid: a column of one seed cannot be "best" over columns of several
        finite = {k: m for k, m in finite.items() if seeds[k] >= 2}
    best = max(finite, key=finite.get) if higher_is_better else min(finite, key=finite.get)
    bold = {}
    for name, values in columns.items():
        if contenders is not None and name not in contenders:
            bold[name] = False
            continue
        if name == best:
            bold[name] = True
            continue
        p, pairs = paired_test(columns[best], values)
        bold[name] = pairs >= 2 and p >= alpha
    return bold


def format_cell(values: Sequence[float], bold: bool, digits: int = 3) -> str:
    """``mean ± std`` (markdown, bold when asked); a single value has no spread: ``value (1 seed)``. Seeds without
    a finite value (failed, non-finite, or not finished yet in a partial report) are counted in brackets as
    missing."""
    m, s = mean_std(values)
    missing = sum(1 for v in values if v is None or not math.isfinite(v))
    if not math.isfinite(m):
        return "n/a"
    text = f"{m:.{digits}f} (1 seed)" if len(values) - missing == 1 else f"{m:.{digits}f} ± {s:.{digits}f}"
    text = f"**{text}**" if bold else text
    return text + (f" ({missing} missing)" if missing else "")


def markdown_table(rows: Mapping[str, Mapping[str, Sequence[float]]], columns: Sequence[str],
                   row_header: str = "Dataset", higher_is_better: bool = True, digits: int = 3,
                   contenders: Collection[str] | None = None) -> str:
    """A markdown table with one row per key of ``rows`` and bolding per row by :func:`paired_best`."""
    lines = [f"| {row_header} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row_name, cells in rows.items():
        present = {c: cells[c] for c in columns if c in cells}
        bold = paired_best(present, higher_is_better, contenders=contenders)
        lines.append(f"| {row_name} | " + " | ".join(
            format_cell(cells[c], bold[c], digits) if c in cells else "–" for c in columns) + " |")
    return "\n".join(lines)
