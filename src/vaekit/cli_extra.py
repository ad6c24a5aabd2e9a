"""``vaekit plot`` (figures and an HTML page of a run) and ``vaekit sweep`` (a user-defined grid from a file)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from .cli import POSITIVE_INT, _say, command, common_options
from .cli_helpers import user_file_options
from .validation import Database, OutputDir


@command
def cmd_plot(args: argparse.Namespace) -> dict[str, Any]:
    from .plotting import plot_run

    from .cli_helpers import file_options

    result = plot_run(args.run_dir, args.out, data=args.data, embedding=args.embedding, max_points=args.max_points,
                      data_options=file_options(args))
    _say(args, f"{len(result['files'])} figures and {result['html']} (open it in a browser)")
    return result


@command
def cmd_sweep(args: argparse.Namespace) -> dict[str, Any]:
    from .experiments.engine import run_grid
    from .experiments.report import report_from_db
    from .experiments.store import Store
    from .sweep import NAME, load_grid

    modules = [m for m in os.environ.get("VAEKIT_TARGET_MODULES", "").split(",") if m]
    if "vaekit.sweep" not in modules:  # the workers find the sweep target through this variable
        os.environ["VAEKIT_TARGET_MODULES"] = ",".join([*modules, "vaekit.sweep"])
    from .experiments.targets import get_target

    name, configs, settings = load_grid(args.grid)
    target = get_target(NAME)
    budget = f"sweep:{name}"
    target.budgets = {budget: settings}
    _say(args, f"sweep {name}: {len(configs)} runs ({settings['seeds']} seeds) into {args.db}")
    with Store(args.db) as store:
        from .cli_reproduce import _machine

        args.ray_address = None
        invocation = store.start_invocation(NAME, budget, f"vaekit sweep {args.grid}", _machine(args))
        summary = run_grid(store, NAME, configs, budget, workers=args.workers, backend=args.backend,
                           progress=args.progress)
        store.end_invocation(invocation, summary.to_dict())
        report = report_from_db(target, store, args.out or Path("results") / name, budget, keys=summary.keys)
    _say(args, report["markdown"])
    counts = summary.counts
    _say(args, f"sweep {name}: {counts['done']} done, {counts['diverged']} diverged, {counts['failed']} failed; "
               f"{summary.wall_seconds:.1f} s")
    return {"sweep": name, **summary.to_dict(), "report": report}


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="figures (PNG) and a self-contained HTML page of a saved run")
    p.add_argument("run_dir", type=Path, help="a directory saved by vaekit fit --out or vaekit detect --save")
    p.add_argument("--data", help="data set or file for the latent-space plot (default: the run's test split)")
    p.add_argument("--label-column", help="CSV column of labels (colours the latent space), kept out of x")
    p.add_argument("--task-column", help="CSV column holding the task index s, kept out of x")
    user_file_options(p)
    p.add_argument("--embedding", choices=("auto", "pca", "tsne"), default="auto",
                   help="2-d view of latent codes wider than 2: PCA (auto) or t-SNE")
    p.add_argument("--max-points", type=POSITIVE_INT, default=2000, help="rows shown in the latent-space plot")
    p.add_argument("--out", type=OutputDir(), help="folder for the figures and index.html (default RUN_DIR/plots)")
    common_options(p)

    from .cli_reproduce import DEFAULT_DB

    p = sub.add_parser("sweep", help="run a grid of your own (data x options x seeds) from a TOML file, then report",
                       description="Runs every configuration of GRID (see vaekit.sweep for the format) not yet "
                                   "finished in the results database (resumable), then writes its table.")
    p.add_argument("grid", type=Path, help="the grid file (TOML): name, seeds, [options], [grid]")
    p.add_argument("--db", type=Database(), default=DEFAULT_DB, help="results database")
    p.add_argument("--out", type=OutputDir(), help="report folder (default results/NAME)")
    p.add_argument("--workers", type=POSITIVE_INT, default=1, help="runs in parallel")
    p.add_argument("--backend", choices=("local", "ray"), default="local", help="local process pool, or Ray")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    common_options(p)
