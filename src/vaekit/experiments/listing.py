"""Budgets as tables people read: ``vaekit reproduce --list`` and the provenance line of ``report.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .targets import BUDGETS, Target

#: mean costs measured from committed raw results (``python benchmarks/target_costs.py`` writes it)
COSTS_FILE = Path(__file__).with_name("measured_costs.json")
#: configuration keys that change the cost of an epoch or of a test row: time per epoch is extrapolated to another
#: budget only where they agree (e.g. not from a 5,000-image MNIST subset to the whole training split)
COST_SHAPE_KEYS = ("subset", "n_rows", "max_rows", "hidden", "batch_size", "ratio_epochs", "importance_samples")


def settings_text(settings: dict[str, Any]) -> str:
    """``{"epochs": {"smtp": 30}, "seeds": 5}`` -> ``epochs smtp 30; seeds 5`` (no Python dict syntax)."""
    def value(v: Any) -> str:
        if isinstance(v, dict):
            return ", ".join(f"{k} {value(x)}" for k, x in v.items())
        if isinstance(v, (list, tuple)):
            return "/".join(value(x) for x in v)
        if v is None:
            return "none"
        return str(v)

    return "; ".join(f"{k.replace('_', ' ')} {value(v)}" for k, v in settings.items())


def run_count(target: Target, budget: str) -> int | None:
    """How many runs the target's grid has at ``budget`` (None when the grid cannot be listed here)."""
    try:
        return len(target.runs(budget))
    except Exception:  # noqa: BLE001 - e.g. a data set the grid needs is absent: the table says "?"
        return None


def measured_seconds(db: Path | None) -> dict[tuple[str, str], tuple[float, int]]:
    """Mean wall seconds per finished run and the number of runs, per (target, budget), from a results DB."""
    if db is None or not Path(db).is_file():
        return {}
    from .store import Store

    per: dict[tuple[str, str], list[float]] = {}
    with Store(db) as store:
        for budget in BUDGETS:
            for row in store.rows(budget=budget):
                if row["status"] in ("done", "diverged") and row["wall_seconds"]:
                    per.setdefault((row["target"], budget), []).append(float(row["wall_seconds"]))
    return {k: (sum(v) / len(v), len(v)) for k, v in per.items()}


def committed_costs() -> dict[str, Any]:
    """Per target, budget and ``dataset/method``: seconds per run, per epoch and per evaluated row ({} if absent)."""
    import json

    try:
        return json.loads(COSTS_FILE.read_text()).get("targets", {})
    except (OSError, ValueError):
        return {}


def cost_name(config: dict[str, Any]) -> str:
    """The name a run's measured cost is kept under: its data set and method (a detector for ADBench)."""
    return f"{config.get('dataset')}/{config.get('method', config.get('detector'))}"


def estimate_seconds(target: Target, budget: str, costs: dict[str, Any]) -> tuple[float, str] | None:
    """:func:`partial_estimate` when it covers every run of the grid, else None."""
    found = partial_estimate(target, budget, costs)
    if found is None or found[2] < (run_count(target, budget) or 0):
        return None
    return found[0], found[1]


def partial_estimate(target: Target, budget: str, costs: dict[str, Any]) -> tuple[float, str, int] | None:
    """CPU seconds of the whole grid from committed measurements: each run's measured mean at this budget
    ("committed"), else the quick budget's seconds per epoch times the run's epochs plus its seconds per test row
    times the rows it evaluates ("extrapolated": an upper bound, early stopping ignored), where the two runs agree on
    :data:`COST_SHAPE_KEYS` — measured on this target or, failing that, on a target of its run family (which trains
    the same models). Returns (seconds, source, runs estimated): the sum over the runs that have a measurement to go
    by (a lower bound for the grid when some have none), or None when none has."""
    measured = costs.get(target.name, {})
    siblings = [costs.get(name, {}) for name in _family(target)]
    try:
        configs = target.runs(budget)
    except Exception:  # noqa: BLE001 - as run_count
        return None
    mine = _unseeded_by_cost_name(configs)
    twins = _twin_costs(target, budget, costs)
    total, extrapolated, counted = 0.0, False, 0
    for config in configs:
        name = cost_name(config)
        same = measured.get(budget, {}).get(name, {}) or next(
            (cost for shared, cost in twins.get(name, []) if shared == mine[name]
             or shared == frozenset({_unseeded(config)})), {})
        if "seconds_per_run" not in same and "epochs" not in config and "budget" not in config:
            # no budget or epoch count in the configuration: the same run for every budget (ADBench's detectors)
            same = next((m[name] for m in measured.values() if "seconds_per_run" in m.get(name, {})), same)
        epochs = config.get("epochs")
        quick = next((q for q in (m.get("quick", {}).get(name, {}) for m in (measured, *siblings))
                      if "seconds_per_epoch" in q and all(q.get("shape", {}).get(k) == config.get(k)
                                                          for k in COST_SHAPE_KEYS)), None)
        if "seconds_per_run" in same:
            total += same["seconds_per_run"]
        elif quick is not None and isinstance(epochs, int):
            total += quick["seconds_per_epoch"] * epochs
            if "seconds_per_row" in quick and "test_rows" in quick:
                subsample = config.get("test_subsample")
                total += quick["seconds_per_row"] * min(subsample or quick["test_rows"], quick["test_rows"])
            extrapolated = True
        else:
            continue
        counted += 1
    if not counted:
        return None
    return total, "extrapolated" if extrapolated else "committed", counted


def _unseeded(config: dict[str, Any]) -> str:
    from .store import _shared_part

    return _shared_part({k: v for k, v in config.items() if k != "seed"})


def _unseeded_by_cost_name(configs: list[dict[str, Any]]) -> dict[str, frozenset[str]]:
    shapes: dict[str, set[str]] = {}
    for config in configs:
        shapes.setdefault(cost_name(config), set()).add(_unseeded(config))
    return {name: frozenset(found) for name, found in shapes.items()}


def _twin_costs(target: Target, budget: str, costs: dict[str, Any]) -> dict[str, list[tuple[frozenset[str], Any]]]:
    """Measured costs that the sibling targets of ``target``'s run family committed at ``budget``, each with the set of
    configurations (but for their labels and seeds) it is the mean over: ``{cost name: [(configurations, cost)]}``.
    A run borrows one when it is of that set and the set is the target's own for that name (the same grid, e.g.
    Figures 4.1 and 4.2, or Tables 5.2-5.4), or the set is that run's configuration alone (e.g. Table 3.2's runs
    inside Figure 3.6's sweep); never an average over a sweep the run is only part of."""
    from .targets import load_targets

    found: dict[str, list[tuple[frozenset[str], Any]]] = {}
    for name in _family(target):
        measured = costs.get(name, {}).get(budget, {})
        if not measured:
            continue
        try:
            configs = load_targets()[name].runs(budget)
        except Exception:  # noqa: BLE001, S112 - as run_count: an unlistable sibling lends nothing
            continue
        for cost, shared in _unseeded_by_cost_name(configs).items():
            if "seconds_per_run" in measured.get(cost, {}):
                found.setdefault(cost, []).append((shared, measured[cost]))
    return found


def _family(target: Target) -> list[str]:
    """The other targets of ``target``'s run family (they share trained runs), by name."""
    if target.run_family is None:
        return []
    from .targets import load_targets

    return sorted(name for name, t in load_targets().items() if t.run_family == target.run_family and name != target.name)


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def budget_rows(targets: dict[str, Target], db: Path | None = None) -> list[dict[str, Any]]:
    """One row per target and budget: runs, estimated CPU time and its source, and the settings. The estimate is
    runs x the mean run time in ``db`` when that database has finished runs of the target at that budget
    ("database"), else :func:`partial_estimate` from the committed measurements: the whole grid's when it covers
    every run, else a lower bound over the runs it can estimate (``cpu_seconds_lower_bound``)."""
    measured, costs = measured_seconds(db), committed_costs()
    rows = []
    for name, target in sorted(targets.items()):
        for budget, settings in target.budgets.items():
            runs = run_count(target, budget)
            mean = measured.get((name, budget))
            cpu, source = (None, None) if mean is None or runs is None else (mean[0] * runs, "database")
            lower, estimated = None, None
            if cpu is None and runs:
                found = partial_estimate(target, budget, costs)
                if found is not None and found[2] == runs:
                    cpu, source = found[:2]
                elif found is not None:  # some runs have nothing measured to go by: a lower bound over the rest
                    lower, source, estimated = found
            rows.append({"target": name, "budget": budget, "runs": runs, "cpu_seconds_estimate": cpu,
                         "cpu_estimate_source": source, "measured_runs": 0 if mean is None else mean[1],
                         "cpu_seconds_lower_bound": lower, "estimated_runs": estimated,
                         "settings": settings, "description": target.description, "in_all": target.include_in_all})
    return rows


def budget_table(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`budget_rows` as an aligned text table."""
    header = ("target", "budget", "runs", "est. CPU time", "settings")
    cells = [header]
    for r in rows:
        mark = {"committed": " *", "extrapolated": " ~"}.get(r.get("cpu_estimate_source") or "", "")
        if r["cpu_seconds_estimate"] is not None:
            cpu = duration(r["cpu_seconds_estimate"]) + mark
        elif r.get("cpu_seconds_lower_bound") is not None:
            cpu = f">= {duration(r['cpu_seconds_lower_bound'])}{mark} ({r['estimated_runs']} runs)"
        else:
            cpu = "unknown"
        cells.append((r["target"], r["budget"], "?" if r["runs"] is None else str(r["runs"]), cpu,
                      settings_text(r["settings"])))
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    lines = ["  ".join(f"{c[i]:<{widths[i]}}" for i in range(4)) + "  " + c[4] for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  --------")
    return "\n".join(lines)
