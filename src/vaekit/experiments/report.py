"""Reports from the results database alone: a generic table writer, learning curves, and the report file.

Targets call :func:`write_table` (markdown + CSV, mean ± std over seeds, paired t-test bolding, an optional
column of the thesis's own numbers) and :func:`plot_curves` (PNG) from their ``Target.report``;
:func:`report_from_db` feeds a target the database rows and adds the provenance (command, budget, machine).
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write_bytes
from ..errors import ConfigError
from ..htmlreport import write_report_html
from .listing import settings_text
from .stats import format_cell, mean_std, paired_best
from .store import Store
from .targets import Target

Key = str | Callable[[dict[str, Any]], Any]


def _get(key: Key, mapping: dict[str, Any]) -> Any:
    return key(mapping) if callable(key) else mapping.get(key)


def _number(value: Any) -> float | None:
    return (
        float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else None
    )


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (a report is never left half-written)."""
    atomic_write_bytes(Path(path), lambda f: f.write(text.encode()))
    return Path(path)


def collect(
    results: Sequence[dict[str, Any]], metric: Key, row: Key, column: Key, seed: Key = "seed"
) -> dict[str, dict[str, dict[Any, float | None]]]:
    """``{row: {column: {seed: value}}}`` from results; a failed run (or a missing metric) gives None."""
    table: dict[str, dict[str, dict[Any, float | None]]] = {}
    for result in results:
        config = result["config"]
        value = None
        if result.get("status") in ("done", "diverged"):
            value = _number(_get(metric, result.get("metrics") or {}))
        cells = table.setdefault(str(_get(row, config)), {}).setdefault(str(_get(column, config)), {})
        if _get(seed, config) in cells:  # two configurations in one cell: one would hide the other
            raise ValueError(f"two runs fill row {_get(row, config)!r}, column {_get(column, config)!r}, seed "
                             f"{_get(seed, config)!r}; their configurations differ in something the table does "
                             "not show")
        cells[_get(seed, config)] = value
    return table


def _aligned(cells: dict[str, dict[Any, float | None]]) -> dict[str, list[float | None]]:
    """Per column, one value per seed of the row (None where that seed is missing), in the same seed order."""
    seeds = sorted({s for per_seed in cells.values() for s in per_seed}, key=str)
    return {c: [per_seed.get(s) for s in seeds] for c, per_seed in cells.items()}


def _reference_cell(value: Any, digits: int) -> str:
    if value is None:
        return "–"
    return (
        f"{value:.{digits}f}"
        if isinstance(value, (int, float)) and not isinstance(value, bool)
        else str(value)
    )


def write_table(
    results: Sequence[dict[str, Any]],
    out: Path,
    name: str,
    *,
    metric: Key,
    row: Key,
    column: Key,
    columns: Sequence[str] | None = None,
    rows: Sequence[str] | None = None,
    row_header: str = "Dataset",
    higher_is_better: bool = True,
    digits: int = 3,
    reference: dict[str, dict[str, Any]] | None = None,
    seed: Key = "seed",
) -> dict[str, Any]:
    """A results table as ``out/name.md`` and ``out/name.csv``; returns ``{"markdown", "files"}``.

    Rows and columns are config values (or functions of the config); each cell is mean ± std of ``metric``
    over seeds, and per row the best column and those not significantly different from it by a paired t-test
    at 5% (:func:`~vaekit.experiments.stats.paired_best`) are bold. ``reference`` (the thesis's numbers,
    ``{row: {column: value}}``) adds a "(thesis)" column beside each measured column that has one.
    """
    table = collect(results, metric, row, column, seed)
    columns = list(columns) if columns is not None else sorted({c for cells in table.values() for c in cells})
    rows = list(rows) if rows is not None else sorted(table)
    reference = reference or {}
    with_ref = [c for c in columns if any(c in reference.get(r, {}) for r in rows)]
    header = [row_header]
    for c in columns:
        header += [c] + ([f"{c} (thesis)"] if c in with_ref else [])
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([row_header.lower(), "column", "mean", "std", "n", "missing", "bold", "thesis"])
    for r in rows:
        aligned = _aligned({c: v for c, v in table.get(r, {}).items() if c in columns})
        bold = paired_best(aligned, higher_is_better) if aligned else {}
        cells = [r]
        for c in columns:
            ref = reference.get(r, {}).get(c)
            if c in aligned:
                values = aligned[c]
                cells.append(format_cell(values, bold[c], digits))
                m, s = mean_std(values)
                n = sum(v is not None for v in values)
                writer.writerow(
                    [
                        r,
                        c,
                        _csv_number(m),
                        _csv_number(s),
                        n,
                        len(values) - n,
                        int(bold[c]),
                        "" if ref is None else ref,
                    ]
                )
            else:
                cells.append("–")
            if c in with_ref:
                cells.append(_reference_cell(ref, digits))
        lines.append("| " + " | ".join(cells) + " |")
    markdown = "\n".join(lines)
    out = Path(out)
    files = [
        write_text(out / f"{name}.md", markdown + "\n"),
        write_text(out / f"{name}.csv", buffer.getvalue()),
    ]
    return {"markdown": markdown, "files": [str(f) for f in files]}


def _csv_number(value: float) -> str:
    return repr(value) if math.isfinite(value) else ""


def plot_curves(
    results: Sequence[dict[str, Any]],
    path: Path,
    *,
    key: str = "val_loss",
    group: Key,
    title: str = "",
    ylabel: str | None = None,
) -> str:
    """PNG of ``history[key]`` against epoch, mean over seeds per group (thin lines: single seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[list[tuple[float, float]]]] = {}
    for result in results:
        history = (result.get("metrics") or {}).get("history") or []
        curve = [(rec["epoch"], rec[key]) for rec in history if _number(rec.get(key)) is not None]
        if curve:
            groups.setdefault(str(_get(group, result["config"])), []).append(curve)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, curves in sorted(groups.items()):
        line = None
        for curve in curves:
            (line,) = ax.plot(
                *zip(*curve), lw=0.6, alpha=0.35, color=None if line is None else line.get_color()
            )
        epochs = sorted({e for curve in curves for e, _ in curve})
        means = [mean_std([dict(c).get(e) for c in curves])[0] for e in epochs]
        ax.plot(epochs, means, lw=2, color=line.get_color(), label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or key)
    ax.set_title(title)
    if groups:
        ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    write_bytes = buffer.getvalue()
    atomic_write_bytes(Path(path), lambda f: f.write(write_bytes))
    return str(path)


def results_from_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Database rows as :meth:`Target.report` input: finished and failed runs, history back inside metrics."""
    results = []
    for r in rows:
        if r["status"] not in ("done", "diverged", "failed"):
            continue
        metrics = dict(r["metrics"] or {})
        if r["history"] is not None:
            metrics["history"] = r["history"]
        results.append(
            {
                "config": r["config"],
                "status": r["status"],
                "metrics": metrics,
                "error": r["error"],
                "key": r["key"],
                "wall_seconds": r["wall_seconds"],
                "host": r["host"],
            }
        )
    return results


def _version_order(version: str) -> tuple[int, str]:
    number = version.rpartition("-")[2]
    return (int(number), version) if number.isdigit() else (-1, version)


def newest_per_configuration(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration (``config`` apart from the code version), the one of the newest numerics version,
    in the order of ``rows``."""
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:
        config = json.dumps(row["config"], sort_keys=True)
        kept = newest.get(config)
        if kept is None or _version_order(str(row.get("code_version"))) > _version_order(str(kept.get("code_version"))):
            newest[config] = row
    chosen = {id(r) for r in newest.values()}
    return [r for r in rows if id(r) in chosen]


def report_from_db(
    target: Target, store: Store, out: Path, budget: str | None = None, keys: Sequence[str] | None = None
) -> dict[str, Any]:
    """Build ``target``'s report from the database rows alone and write ``out/report.md`` with its provenance.

    ``budget`` restricts the rows to those a command of that budget asked for (default: the budget of the
    latest ``vaekit reproduce`` of this target recorded in the database); ``keys`` restricts them to one grid.
    """
    invocations = store.invocations(target.name)
    if budget is None and invocations:
        budget = invocations[-1]["budget"]
    rows = store.rows(target.name, keys=keys, budget=budget)
    if keys is None:  # a database may hold a configuration under several numerics versions: report the newest
        rows = newest_per_configuration(rows)
    results = results_from_rows(rows)
    out = Path(out)
    report = target.report(results, out)
    counts = {
        s: sum(r["status"] == s for r in rows) for s in ("done", "diverged", "failed", "pending", "running")
    }
    last = next((i for i in reversed(invocations) if i["budget"] == budget), None)
    lines = [f"## {target.name}: {target.description}", "", report["markdown"], ""]
    if last is not None:
        machine = last["machine"]
        lines.append(f"Command: `{last['command']}` (budget {budget}: "
                     f"{settings_text(target.budgets.get(budget, {}))}).")
        lines.append(
            f"Machine: {machine.get('cpus')} CPU cores ({machine.get('platform')}), backend "
            f"{machine.get('backend')} with {machine.get('workers')} workers; vaekit {last['code_version']}, "
            f"{time.strftime('%Y-%m-%d', time.localtime(last['started']))}."
        )
        if last.get("finished"):
            lines.append(f"Wall time of that command: {last['finished'] - last['started']:.0f} s.")
    versions = sorted({r["code_version"] for r in rows if r.get("code_version")})
    commits = sorted({str(i["machine"].get("source_commit")) for i in invocations
                      if i["budget"] == budget and i["machine"].get("source_commit")})
    lines.append(f"Code of these runs: {', '.join(versions) or 'unknown'} (results are keyed on the numerics "
                 f"version){'; source commits ' + ', '.join(commits) if commits else ''}.")
    run_time = sum(r["wall_seconds"] or 0.0 for r in rows)
    adopted = sum(r["status"] in ("done", "diverged") and r["wall_seconds"] == 0 for r in rows)  # Store.adopt
    lines.append(
        f"Runs: {counts['done']} done, {counts['diverged']} diverged, {counts['failed']} failed"
        + (
            f", {counts['pending'] + counts['running']} unfinished"
            if counts["pending"] + counts["running"]
            else ""
        )
        + f"; {run_time:.0f} s of run time in all"
        + (f" ({adopted} runs adopted from a target of the same run family, their run time counted there)."
           if adopted else ".")
    )
    failed = [r for r in results if r["status"] == "failed"]
    for r in failed[:10]:
        lines.append(f"- failed: `{_short_config(r['config'])}`: {_last_line(r['error'])}")
    lines.append("Raw per-run results (configuration, status, numerics version, every metric and the training "
                 "history): `runs.jsonl` beside this report.")
    text, files = _write_pages(target, report, out, lines)
    raw = write_text(out / "runs.jsonl", "".join(raw_line(r) for r in rows))
    return {"markdown": text, "files": [*files, str(raw)], "budget": budget, "counts": counts}


def _write_pages(target: Target, report: dict[str, Any], out: Path, lines: list[str]) -> tuple[str, list[str]]:
    """Write ``out/report.md`` (``lines``) and its HTML page; the markdown and every file of the report."""
    text = "\n".join(lines) + "\n"
    path = write_text(out / "report.md", text)
    page = write_report_html(out, f"{target.name}: {target.description}", text, report.get("files", []))
    return text, [*report.get("files", []), str(path), str(page)]


def report_from_raw(target: Target, raw: str | Path, out: Path) -> dict[str, Any]:
    """Rebuild ``target``'s report from saved raw results alone (see :func:`load_raw`; nothing is run and no
    database is read) and write ``out/report.md`` naming the file it came from."""
    raw = Path(raw)
    every = load_raw(raw)
    results = newest_per_configuration(every)  # a file may hold a configuration under several numerics versions
    out = Path(out)
    report = target.report(results, out)
    counts = {s: sum(r["status"] == s for r in results) for s in ("done", "diverged", "failed")}
    older = len(every) - len(results)
    text, files = _write_pages(target, report, out, [
        f"## {target.name}: {target.description}", "", report["markdown"], "",
        f"Rebuilt by `vaekit report {target.name} --raw {raw}` from the raw results in that file: "
        f"{counts['done']} done, {counts['diverged']} diverged, {counts['failed']} failed runs"
        + (f" ({older} older records of the same configurations left out: each is reported once, at its newest "
           "numerics version)." if older else "."),
    ])
    return {"markdown": text, "files": files, "counts": counts}


def raw_line(row: dict[str, Any]) -> str:
    """One JSON line of a stored run: what :func:`load_raw` reads back into report input."""
    metrics = dict(row["metrics"] or {})
    if row.get("history") is not None:
        metrics["history"] = row["history"]
    record = {"key": row["key"], "status": row["status"], "code_version": row.get("code_version"),
              "config": row["config"], "metrics": metrics, "wall_seconds": row.get("wall_seconds")}
    if row.get("error"):  # a failed run keeps its message
        record["error"] = row["error"]
    return json.dumps(record, sort_keys=True, allow_nan=False, default=float) + "\n"


def load_raw(path: str | Path) -> list[dict[str, Any]]:
    """Report input (as :func:`results_from_rows` gives it: finished and failed runs; pending or running ones left
    out) from committed raw results: a ``runs.jsonl`` (one run a line), or a ``results.json`` list of ``{config,
    status, metrics}`` (the chapter scripts' format)."""
    path = Path(path)
    text = path.read_text()
    records = json.loads(text) if path.suffix == ".json" else [json.loads(x) for x in text.splitlines() if x.strip()]
    if not records:
        raise ConfigError(f"{path} holds no runs; give the runs.jsonl (or results.json) beside a report")
    return [{"config": r["config"], "status": r["status"], "metrics": r["metrics"], "error": r.get("error"),
             "key": r.get("key"), "code_version": r.get("code_version"), "wall_seconds": r.get("wall_seconds"),
             "host": None} for r in records if r["status"] in ("done", "diverged", "failed")]


def _short_config(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items() if k != "target")


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no message)"
