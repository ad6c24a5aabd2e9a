"""Measured run costs behind ``vaekit reproduce --list``'s CPU-time column, from committed raw results.

Reads every committed per-run result (``docs/results/**/runs.jsonl`` and the older ``results.json`` lists), and
optionally results databases, and writes ``src/vaekit/experiments/measured_costs.json``: per target, budget,
data set and method, the median wall seconds per run and the least seconds per training epoch and per evaluated
test row (load on a shared machine only slows a run down). The listing
multiplies them out for budgets that never ran (``vaekit.experiments.listing``).

    python benchmarks/target_costs.py [--db results/vaekit.sqlite ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vaekit.experiments.listing import COST_SHAPE_KEYS, COSTS_FILE, cost_name  # noqa: E402
from vaekit.experiments.report import load_raw  # noqa: E402


def per_run_costs(record: dict) -> dict | None:
    """Seconds per run, per epoch and per evaluated row of one finished run (None when it lacks timings)."""
    metrics = record.get("metrics") or {}
    wall = record.get("wall_seconds") or metrics.get("wall_seconds") or metrics.get("seconds")
    if record.get("status") not in ("done", "diverged") or not wall:
        return None
    costs = {"run": float(wall)}
    epochs, train = metrics.get("epochs_run"), metrics.get("train_seconds")
    if epochs and train:
        costs["epoch"] = float(train) / float(epochs)
    rows, evaluation = metrics.get("n_test_evaluated"), metrics.get("eval_seconds")
    if rows and evaluation:
        costs["row"] = float(evaluation) / float(rows)
    if metrics.get("n_test_split"):
        costs["test_rows"] = float(metrics["n_test_split"])
    return costs


def budget_of(config: dict, grids: dict[tuple[str, str], set[str]]) -> str:
    """The budget whose grid holds ``config`` (a committed chapter-3 run does not name its budget): the grid of
    its target at that budget, with up to 20 seeds, contains the same configuration; "quick" when none does."""
    from vaekit.experiments.store import _shared_part
    from vaekit.experiments.targets import load_targets

    target = load_targets().get(config.get("target"))
    for budget in ("full", "quick"):
        if target is None or budget not in target.budgets:
            continue
        if (target.name, budget) not in grids:
            try:
                grids[target.name, budget] = {_shared_part(c) for c in target.runs(budget, seeds=20)}
            except Exception:  # noqa: BLE001 - a grid that cannot be built here (absent data) matches nothing
                grids[target.name, budget] = set()
        if _shared_part(config) in grids[target.name, budget]:
            return budget
    return "quick"


def records(dbs: list[Path]) -> list[dict]:
    found, grids = [], {}
    for path in sorted((ROOT / "docs" / "results").rglob("runs.jsonl")) + sorted(
            (ROOT / "docs" / "results").rglob("*results.json")):
        if path.parent.name.endswith("-gpu"):  # measured on a lent GPU: no CPU cost (the listing is CPU time)
            continue
        for record in load_raw(path):
            config = record.get("config") or {}
            if config.get("target") and not config.get("budget"):
                record = {**record, "config": {**config, "budget": budget_of(config, grids)}}
            found.append(record)
    for db in dbs:
        from vaekit.experiments.store import Store

        with Store(db) as store:
            for budget in ("quick", "full"):  # a run's budget is the one that requested it (not every config says)
                found += [{**r, "config": {**r["config"], "budget": r["config"].get("budget") or budget},
                           "metrics": {**(r["metrics"] or {}), "wall_seconds": r["wall_seconds"]}}
                          for r in store.rows(budget=budget)]
    return found


def main() -> int:
    # which budget a committed run belongs to is read from the targets' grids, which list the data sets present:
    # without the data, every run would count as quick
    os.environ.setdefault("VAEKIT_DATA", str(ROOT.parent / "shared" / "data"))
    if not (Path(os.environ["VAEKIT_DATA"]) / "smtp.npz").is_file():
        print(f"VAEKIT_DATA={os.environ['VAEKIT_DATA']} lacks the data sets; set it to the shared data", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, action="append", default=[], help="also read this results database")
    args = parser.parse_args()
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for record in records(args.db):
        config = record.get("config") or {}
        costs = per_run_costs(record)
        if costs is None or not config.get("target"):
            continue
        key = (config["target"], config.get("budget") or "quick", cost_name(config))
        costs["shape"] = {k: config.get(k) for k in COST_SHAPE_KEYS}
        groups.setdefault(key, []).append(costs)
    table: dict[str, dict] = {}
    for (target, budget, name), runs in sorted(groups.items()):
        entry = {"runs": len(runs), "shape": runs[0]["shape"]}
        # Load on a shared machine only ever slows a run down: per epoch and per row the fastest measurement is the
        # best estimate of the cost; a whole run also varies with its epochs (early stopping): its median.
        for part, pick in (("run", statistics.median), ("epoch", min), ("row", min), ("test_rows", max)):
            values = [r[part] for r in runs if part in r]
            if values:
                entry[f"seconds_per_{part}" if part != "test_rows" else "test_rows"] = pick(values)
        table.setdefault(target, {}).setdefault(budget, {})[name] = entry
    out = {"machine": "2-core CPU shared with other work (timings are upper bounds)", "targets": table}
    COSTS_FILE.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"{COSTS_FILE}: {sum(len(g) for g in groups.values())} runs of {len(table)} targets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
