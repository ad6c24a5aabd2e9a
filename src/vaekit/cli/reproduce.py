"""``vaekit reproduce``: run a thesis target's grid into the results database (resumable), then report it."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..names import BACKENDS, BUDGETS, cpu_count
from ..validation import (
    Database,
    DeviceName,
    InputFile,
    KeyValues,
    OutputDir,
    check_database,
    check_output_dir,
)
from .options import POSITIVE_INT, common_options
from .output import say
from .results import DEFAULT_DB, machine, open_store

if TYPE_CHECKING:  # pragma: no cover - the experiments (torch) load inside the commands
    from ..experiments.store import Store
    from ..experiments.targets import Target

NAME = "reproduce"


def _targets(name: str) -> list[Target]:
    from ..experiments.targets import get_target, load_targets

    if name != "all":
        return [get_target(name)]
    chosen = [t for _, t in sorted(load_targets().items()) if t.include_in_all]
    if not chosen:
        raise ConfigError("no thesis targets are installed; see vaekit reproduce --list")
    return chosen


def _command_line(args: argparse.Namespace, target: str) -> str:
    """The command as a user would retype it (database and output paths left out)."""
    words = ["vaekit", "reproduce", target,
             *([f"--{args.budget}"] if args.budget in ("quick", "full") else ["--budget", args.budget])]
    if args.seeds is not None:
        words += ["--seeds", str(args.seeds)]
    if args.datasets:
        words += ["--datasets", *args.datasets]
    for key, values in (args.only or {}).items():
        words += ["--only", f"{key}={','.join(values)}"]
    words += ["--workers", str(args.workers), "--backend", args.backend]
    return shlex.join(words)


def _list(args: argparse.Namespace) -> dict[str, Any]:
    from ..experiments.targets import TARGET_LOAD_ERRORS, load_targets
    from ..experiments.listing import budget_rows, budget_table

    targets = load_targets()
    rows = budget_rows(targets, args.db)
    if rows:
        for name, target in sorted(targets.items()):
            say(args, f"{name}: {target.description}{'' if target.include_in_all else ' [not in all]'}")
        say(args, "")
        say(args, budget_table(rows))
        say(args, f"est. CPU time: runs x the mean time of that target's finished runs in {args.db}; "
                   "* from the runs committed with vaekit (2-core CPU); ~ extrapolated from the quick runs' "
                   "time per epoch and per test row (an upper bound: early stopping ignored); unknown: nothing "
                   "measured to go by")
    else:
        say(args, "no targets installed")
    for module, error in TARGET_LOAD_ERRORS.items():
        print(f"vaekit reproduce: warning: {module} failed to import: {error}", file=sys.stderr)
    return {"targets": [{"name": r["target"], "description": r["description"], "budgets": targets[r["target"]].budgets,
                         "in_all": r["in_all"]} for r in rows if r["budget"] == next(iter(targets[r["target"]].budgets))],
            "budgets": rows, "load_errors": dict(TARGET_LOAD_ERRORS)}


def _configs(args: argparse.Namespace, target: Target) -> list[dict[str, Any]]:
    """The target's run configurations; every problem with the options shows here, before the database opens."""
    if args.budget not in target.budgets:
        raise ConfigError(f"{target.name} has no {args.budget!r} budget; it has {', '.join(target.budgets)}")
    _check_requested_data(args.datasets or [])
    from ..experiments.targets import select_runs

    if args.datasets:
        _check_target_datasets(target, args.budget, args.datasets)
    configs = select_runs(target.runs(args.budget, args.seeds, args.datasets), args.only or {})
    if not configs:
        raise ConfigError(f"{target.name}: these options select no runs (--datasets {args.datasets}, --only "
                          f"{args.only}); see vaekit reproduce --list")
    for config in configs:
        if config.get("target") != target.name or "seed" not in config:
            raise ConfigError(
                f"target {target.name} returned a configuration without its name or seed: {config}"
            )
    kind = getattr(args, "device_kind", "cpu")
    if kind != "cpu":  # a GPU's runs are other runs (their numbers and timings differ): keyed apart from the CPU's
        configs = [{**config, "device": kind} for config in configs]
    return configs


def parse_only(items: list[tuple[str, list[str]]] | None) -> dict[str, list[str]]:
    """``--only KEY=V1,V2`` (repeatable, parsed by :class:`~vaekit.validation.KeyValues`) as {key: [values]}; a key
    given twice keeps the values of both."""
    only: dict[str, list[str]] = {}
    for key, values in items or []:
        only.setdefault(key, []).extend(values)
    return only


def _check_target_datasets(target: Target, budget: str, names: list[str]) -> None:
    """A --datasets name that selects none of the target's runs (a typo, or a data set of another target) is an
    error naming the target's default ones, with a close match (it was dropped without a word)."""
    import difflib

    if not any("dataset" in c for c in target.runs(budget, 1, None)):
        raise ConfigError(f"--datasets: {target.name} has no data sets to choose from; leave the option out")
    for name in names:
        if target.runs(budget, 1, [name]):
            continue
        used = sorted({str(c["dataset"]) for c in target.runs(budget, 1, None) if c.get("dataset") is not None})
        close = difflib.get_close_matches(name, used, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"--datasets {name}: no run of {target.name} uses it; {hint}its data sets: "
                          f"{', '.join(used) or 'none (it takes no --datasets)'}")


def _check_requested_data(names: list[str]) -> None:
    """A data set named with --datasets that is absent here stops the command before any run starts, with the
    file it needs and how to get it (a default grid leaves absent data sets out instead)."""
    from ..data import DATASETS, load_arrays
    from ..experiments.report_helpers import dataset_available

    for name in names:
        for part in (p.strip() for half in name.split("->") for p in half.split("+")):
            if part in DATASETS and not dataset_available(part):
                load_arrays(DATASETS[part])  # raises DatasetNotFoundError naming the file and how to get it


def _report_folder(args: argparse.Namespace, target: Target) -> Path:
    if args.target == "all":
        return (args.out or Path("results")) / target.name
    return args.out or Path("results") / target.name


def _reproduce_one(args: argparse.Namespace, target: Target, store: Store,
                   configs: list[dict[str, Any]]) -> dict[str, Any]:
    from ..experiments.engine import run_grid
    from ..experiments.report import report_from_db

    invocation = store.start_invocation(
        target.name, args.budget, _command_line(args, target.name), machine(args)
    )
    summary = run_grid(
        store,
        target.name,
        configs,
        args.budget,
        workers=args.workers,
        backend=args.backend,
        ray_address=args.ray_address,
        retry_failed=args.retry_failed,
        progress=args.progress,
    )
    store.end_invocation(invocation, summary.to_dict())
    out = _report_folder(args, target)
    report = report_from_db(target, store, out, args.budget, keys=summary.keys)
    say(args, report["markdown"])
    counts = summary.counts
    say(
        args,
        f"{target.name}: {len(set(summary.keys))} runs ({summary.already_finished} already in {args.db}, "
        f"{summary.executed} run now): {counts['done']} done, {counts['diverged']} diverged, "
        f"{counts['failed']} failed"
        + (f", {counts['busy']} held by another vaekit process" if counts["busy"] else "")
        + f"; {summary.wall_seconds:.1f} s",
    )
    for failure in summary.failures:
        lines = [line for line in (failure["error"] or "").strip().splitlines() if line.strip()]
        config = ", ".join(f"{k}={v}" for k, v in failure["config"].items() if k != "target")
        print(
            f"failed run {failure['key'][:12]} ({config}): {lines[-1] if lines else 'no message'}",
            file=sys.stderr,
        )
    return {"target": target.name, "budget": args.budget, **summary.to_dict(), "report": report}


def _read_export(path: Path) -> list[dict[str, Any]]:
    """The runs of an exported ``runs.jsonl`` (see ``--resume-from``), checked before the database opens: JSON
    objects with a configuration, a status and a key; finished ones keyed by the hash of their configuration."""
    import json

    from ..errors import DataError
    from ..experiments.store import config_key

    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for r in records:
            if not isinstance(r, dict) or not isinstance(r.get("config"), dict) or "status" not in r:
                raise ValueError("a line is not a run (a JSON object with config and status)")
            if r["status"] in ("done", "diverged") and r.get("key") != config_key(r["config"], r.get("code_version")):
                raise ValueError(f"run {str(r.get('key'))[:12]}: its key is not the hash of its configuration and "
                                 "code version; the file was edited or is not a vaekit export")
    except (UnicodeDecodeError, ValueError, TypeError) as err:  # JSONDecodeError is a ValueError
        raise DataError(f"--resume-from: {path} is not a vaekit runs.jsonl export: {err}") from None
    if not records:
        raise DataError(f"--resume-from: {path} holds no runs; give the runs.jsonl beside a report")
    return records


def _import_finished(args: argparse.Namespace, store: Store, path: Path, records: list[dict[str, Any]],
                     grid_keys: set[str]) -> None:
    """Seed the database with the finished runs of an exported ``runs.jsonl`` (read by :func:`_read_export`); a run
    whose configuration names no budget is requested under this command's only when this grid holds it."""
    added = store.import_finished(records, args.budget, grid_keys)
    say(args, f"{path}: {added} finished runs added to {args.db} ({len(records) - added} already there or unfinished)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.list:
        return _list(args)
    if args.target is None:
        raise ConfigError("name a target (vaekit reproduce --list shows them) or 'all'")
    args.datasets = [d for item in args.datasets or [] for d in item.split(",") if d] or None
    args.only = parse_only(args.only)
    if args.seeds is not None and args.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
    if args.device is not None:  # every run trains there: the workers inherit the variable
        from ..training import DEVICE_ENV, resolve_device

        args.device_kind = resolve_device(args.device).type
        os.environ[DEVICE_ENV] = args.device
    args.targets = _targets(args.target)
    if args.target == "all" and args.budget not in ("quick", "full"):  # a named budget: the targets that have it
        args.targets = [t for t in args.targets if args.budget in t.budgets]
        if not args.targets:
            raise ConfigError(f"no target has a {args.budget!r} budget; see vaekit reproduce --list")
    grids = [_configs(args, target) for target in args.targets]
    for target in args.targets:
        check_output_dir(_report_folder(args, target), "report folder")
    exports = [(path, _read_export(path)) for path in args.resume_from or []]  # all checked before the database
    check_database(args.db)
    from ..experiments.store import config_key

    with open_store(args.db) as store:
        grid_keys = {config_key(c) for configs in grids for c in configs}
        for path, records in exports:
            _import_finished(args, store, path, records, grid_keys)
        results = [_reproduce_one(args, target, store, configs) for target, configs in zip(args.targets, grids)]
    return results[0] if args.target != "all" else {"targets": results}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        NAME,
        help="run a thesis table/figure's grid into the results database and report it",
        description="Runs every configuration of TARGET not yet finished in the database (resumable: "
        "rerun the same command after an interruption), then prints its table.",
    )
    p.add_argument("target", nargs="?", help="a target (see --list) or 'all'")
    p.add_argument("--list", action="store_true", help="show the targets and their budgets")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--quick",
        dest="budget",
        action="store_const",
        const="quick",
        help="small budget: minutes on a laptop (default)",
    )
    budget.add_argument(
        "--full", dest="budget", action="store_const", const="full", help="the thesis's budget"
    )
    budget.add_argument("--budget", dest="budget", choices=BUDGETS,
                        help="a budget by name, e.g. intermediate (the budgets a target has: --list)")
    p.set_defaults(budget="quick")
    p.add_argument("--seeds", type=POSITIVE_INT, help="number of seeds (default: the budget's)")
    p.add_argument("--datasets", nargs="+", help="restrict to these data sets (names or comma-separated)")
    p.add_argument("--only", action="append", type=KeyValues(), metavar="KEY=VALUES",
                   help="run only the grid's runs whose setting KEY has one of VALUES (comma-separated), e.g. "
                        "--only method=implicit --only seed=0; repeatable; the runs keep their database keys")
    p.add_argument("--workers", type=POSITIVE_INT, default=cpu_count(), help="runs in parallel (default: cores)")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="local process pool, or Ray (pip install 'vaekit[ray]')",
    )
    p.add_argument("--ray-address", help="a running Ray cluster (default: start a local instance)")
    p.add_argument("--db", type=Database(), default=DEFAULT_DB, help=f"results database (default {DEFAULT_DB})")
    p.add_argument("--out", type=OutputDir(), help="report folder (default results/TARGET)")
    p.add_argument(
        "--no-retry-failed",
        dest="retry_failed",
        action="store_false",
        help="keep runs that failed before instead of running them again",
    )
    p.add_argument("--resume-from", type=InputFile(), action="append", metavar="RUNS_JSONL",
                   help="first add the finished runs of an exported runs.jsonl (the raw results beside a report, e.g. "
                   "committed under docs/results/) to the database; repeatable")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    p.add_argument("--device", type=DeviceName(), default=None,
                   help="train every run on cpu, cuda, cuda:N, mps or auto (default: cpu); with --backend ray "
                        "a CUDA device takes one GPU per run")
    common_options(p)
