"""``vaekit sweep``: run a user-defined grid (data x options x seeds) from a TOML file, then report it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..validation import Database, OutputDir
from .options import POSITIVE_INT, common_options
from .output import say
from .results import DEFAULT_DB, machine

NAME = "sweep"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help="run a grid of your own (data x options x seeds) from a TOML file, then report",
                       description="Runs every configuration of GRID (see vaekit.sweep for the format) not yet "
                                   "finished in the results database (resumable), then writes its table.")
    p.add_argument("grid", type=Path, help="the grid file (TOML): name, seeds, [options], [grid]")
    p.add_argument("--db", type=Database(), default=DEFAULT_DB, help="results database")
    p.add_argument("--out", type=OutputDir(), help="report folder (default results/NAME)")
    p.add_argument("--workers", type=POSITIVE_INT, default=1, help="runs in parallel")
    p.add_argument("--backend", choices=("local", "ray"), default="local", help="local process pool, or Ray")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    common_options(p)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ..experiments.engine import run_grid
    from ..experiments.report import report_from_db
    from ..experiments.store import Store
    from ..sweep import NAME as SWEEP_TARGET, load_grid

    modules = [m for m in os.environ.get("VAEKIT_TARGET_MODULES", "").split(",") if m]
    if "vaekit.sweep" not in modules:  # the workers find the sweep target through this variable
        os.environ["VAEKIT_TARGET_MODULES"] = ",".join([*modules, "vaekit.sweep"])
    from ..experiments.targets import get_target

    name, configs, settings = load_grid(args.grid)
    target = get_target(SWEEP_TARGET)
    budget = f"sweep:{name}"
    target.budgets = {budget: settings}
    say(args, f"sweep {name}: {len(configs)} runs ({settings['seeds']} seeds) into {args.db}")
    with Store(args.db) as store:
        args.ray_address = None
        invocation = store.start_invocation(SWEEP_TARGET, budget, f"vaekit sweep {args.grid}", machine(args))
        summary = run_grid(store, SWEEP_TARGET, configs, budget, workers=args.workers, backend=args.backend,
                           progress=args.progress)
        store.end_invocation(invocation, summary.to_dict())
        report = report_from_db(target, store, args.out or Path("results") / name, budget, keys=summary.keys)
    say(args, report["markdown"])
    counts = summary.counts
    say(args, f"sweep {name}: {counts['done']} done, {counts['diverged']} diverged, {counts['failed']} failed; "
              f"{summary.wall_seconds:.1f} s")
    return {"sweep": name, **summary.to_dict(), "report": report}
