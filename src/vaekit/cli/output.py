"""Output the command modules share: human-readable text, numbers for people, CSV tables of rows."""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def say(args: argparse.Namespace, text: str) -> None:
    """Human-readable output; with --json it goes to stderr so stdout ends with the JSON object."""
    print(text, file=sys.stderr if args.json else sys.stdout)


def counted(n: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def fmt(value: Any, digits: int = 4) -> str:
    """A number for people: ``digits`` significant digits (``-0.6486``, ``0.996``), ``n/a`` for None/NaN.

    JSON output keeps full precision; only human-readable text goes through here."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.1f}"


def test_metrics_text(metrics: dict[str, Any], importance_samples: int) -> str:
    """The test metrics for people: the log-likelihood (and its normalised value for an unnormalised prior), or
    for an implicit encoder (AVB), which has none, the discriminator-based ELBO estimate."""
    rows = metrics.get("n_test")
    where = f"{rows} rows" if rows is not None else "test split"
    if metrics.get("test_log_likelihood") is None and metrics.get("test_elbo_estimate") is not None:
        return (f"test ELBO estimate {fmt(metrics['test_elbo_estimate'])} ({where}; an implicit encoder has no "
                "importance-sampled log-likelihood)")
    normalised = metrics.get("test_log_likelihood_normalised")
    extra = f", normalised {fmt(normalised)}" if normalised is not None else ""
    return f"test log-likelihood {fmt(metrics.get('test_log_likelihood'))}{extra} (K={importance_samples}, {where})"


def rows_csv(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV table (``\\n`` line ends) of ``header`` and ``rows``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_csv(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reader never sees half a file)."""
    from ..checkpoint import atomic_write_bytes

    atomic_write_bytes(Path(path), lambda f: f.write(text.encode()))
