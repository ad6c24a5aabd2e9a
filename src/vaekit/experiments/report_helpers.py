"""Helpers every target's report shares: finished runs, grouping by seed, paired tests, compute lines, the
markdown file, small PNG figures, and which registered data sets are present here.

Mean ± std cells and bolding by a paired t-test over seeds are :mod:`vaekit.experiments.stats`; the report with
its provenance is :mod:`vaekit.experiments.report`.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.registry import DATASETS, locate
from .stats import mean_std, paired_test  # noqa: F401  (paired_test: used as rep.paired_test)
from .store import FINAL

Result = dict[str, Any]


def dataset_available(name: str) -> bool:
    """Whether a registered data set loads here without a download (file present or bundled fallback)."""
    spec = DATASETS.get(name)
    return spec is not None and (locate(spec) is not None or spec.fallback is not None)


def protocol_available(name: str) -> bool:
    """Whether every data set of a protocol (``SOURCE->TARGET``, ``A+B[+C]``, or one name) loads here."""
    parts = [p.strip() for half in name.split("->") for p in half.split("+")]
    return all(dataset_available(p) for p in parts)


def finished(results: Iterable[Result]) -> list[Result]:
    """Results whose run completed: "done" or "diverged" (the engine's status for a run that diverged; it is kept
    with its best-validation weights)."""
    return [r for r in results if r.get("status") in FINAL and r.get("metrics")]


def by_seed(results: Iterable[Result], key: Callable[[dict[str, Any]], Hashable],
            metric: str = "test_log_likelihood") -> dict[Hashable, dict[int, float | None]]:
    """``{key(config): {seed: metrics[metric]}}`` over finished results."""
    table: dict[Hashable, dict[int, float | None]] = defaultdict(dict)
    for r in finished(results):
        table[key(r["config"])][int(r["config"]["seed"])] = r["metrics"].get(metric)
    return dict(table)


def align(columns: Mapping[str, Mapping[int, float | None]]) -> dict[str, list[float | None]]:
    """Per-column value lists aligned on the union of seeds (None where a seed is missing)."""
    seeds = sorted({s for col in columns.values() for s in col})
    return {name: [col.get(s) for s in seeds] for name, col in columns.items()}


def count(results: Iterable[Result], key: Callable[[dict[str, Any]], Hashable], flag: str = "diverged"
          ) -> dict[Hashable, tuple[int, int]]:
    """``{key: (runs with metrics[flag] true, finished runs)}``; for "diverged" the run's status counts too."""
    out: dict[Hashable, list[int]] = defaultdict(lambda: [0, 0])
    for r in finished(results):
        cell = out[key(r["config"])]
        cell[0] += bool(r["metrics"].get(flag)) or (flag == "diverged" and r.get("status") == "diverged")
        cell[1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def wall_clock(results: Sequence[Result]) -> str:
    """One line on compute: runs done/failed and the summed and longest per-run wall clock."""
    done = finished(results)
    seconds = [float(r["metrics"].get("seconds") or 0.0) for r in done]
    failed = len(results) - len(done)
    diverged = sum(r.get("status") == "diverged" for r in done)
    text = (f"{len(done)} runs done" + (f" ({diverged} diverged: evaluated at their best weights)" if diverged else "")
            + (f", {failed} failed" if failed else ""))
    if seconds:
        text += f"; run wall clock summed {sum(seconds):.0f} s (longest run {max(seconds):.0f} s)"
    return text


def failures(results: Sequence[Result]) -> list[str]:
    """Markdown bullet lines naming failed runs and their errors (the last line of a traceback)."""
    def message(r: Result) -> str:
        lines = [line.strip() for line in str(r.get("error") or "").splitlines() if line.strip()]
        return lines[-1] if lines else "no metrics"

    return [f"- failed: `{r['config'].get('dataset', '')}` {r['config'].get('method', '')} seed "
            f"{r['config'].get('seed')}: {message(r)}" for r in results
            if r.get("status") not in FINAL or not r.get("metrics")]


def summary_cell(values: Sequence[float | None], digits: int = 3) -> str:
    m, s = mean_std(values)
    return "n/a" if not math.isfinite(m) else f"{m:.{digits}f} ± {s:.{digits}f}"


def write_markdown(out: Path, name: str, markdown: str, files: Sequence[str] = (), with_json: bool = False
                   ) -> dict[str, Any]:
    """Write ``out/NAME.md`` (and ``out/NAME.json`` holding the markdown when ``with_json``); the report dict
    :meth:`Target.report` returns."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(markdown + "\n")
    if with_json:
        (out / f"{name}.json").write_text(json.dumps({"markdown": markdown}))
    return {"markdown": markdown, "files": [str(out / f"{name}.md"), *files]}


# -------------------------------------------------------------------------------------------------- figures
def pyplot() -> Any:
    """matplotlib's pyplot on the non-interactive Agg backend (imported lazily: execute() never needs it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path, dpi: int = 90) -> Path:
    """Write a compact PNG (well under 200 KB) and close the figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def band(ax: Any, x: Sequence[float], columns: Sequence[Sequence[float | None]], label: str,
         dashed: bool = False, color: str | None = None) -> None:
    """Mean line with a semi-transparent +-1 std band and error bars (the style of Figures 3.6-3.8)."""
    stats_ = [mean_std(c) for c in columns]
    mean = np.array([m for m, _ in stats_])
    std = np.array([s for _, s in stats_])
    line = ax.errorbar(x, mean, yerr=std, label=label, color=color, capsize=3, marker="o" if not dashed else None,
                       linestyle="--" if dashed else "-")
    ax.fill_between(x, mean - std, mean + std, alpha=0.2, color=line[0].get_color())


def reference_line(ax: Any, values: Sequence[float | None], label: str, color: str) -> None:
    """A horizontal dashed mean with a +-1 std band across the axis (a method that is not swept)."""
    m, s = mean_std(values)
    if not math.isfinite(m):
        return
    ax.axhline(m, linestyle="--", color=color, label=label)
    ax.axhspan(m - s, m + s, color=color, alpha=0.15)
