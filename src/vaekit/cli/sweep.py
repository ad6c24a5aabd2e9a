"""``vaekit sweep``: run a user-defined grid (data x options x seeds) from a TOML file, then report it."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..runconfig import convert, subparser
from ..validation import Database, OutputDir
from . import fit
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
    from ..sweep import NAME as SWEEP_TARGET
    from ..sweep import check_data, load_grid

    modules = [m for m in os.environ.get("VAEKIT_TARGET_MODULES", "").split(",") if m]
    if "vaekit.sweep" not in modules:  # the workers find the sweep target through this variable
        os.environ["VAEKIT_TARGET_MODULES"] = ",".join([*modules, "vaekit.sweep"])
    from ..experiments.targets import get_target

    name, configs, settings = load_grid(args.grid)
    check_options(configs, str(args.grid))
    check_data(configs, str(args.grid))
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
        out = args.out or Path("results") / name
        report = report_from_db(target, store, out, budget, keys=summary.keys)
    say(args, report["markdown"])
    counts = summary.counts
    say(args, f"sweep {name}: {counts['done']} done, {counts['diverged']} diverged, {counts['failed']} failed; "
              f"{summary.wall_seconds:.1f} s")
    result = {"sweep": name, **summary.to_dict(), "report": report}
    if counts["failed"]:  # the report is written; the exit status says that runs failed (vaekit.cli.main)
        result["exit_status"] = 1
        result["error"] = (f"{counts['failed']} of {len(set(summary.keys))} runs of sweep {name} failed; the report "
                           f"(each failure's error under 'failed:') is in {out}")
    return result


def check_options(configs: Sequence[dict[str, Any]], where: str) -> None:
    """Refuse an option value of any grid point that ``vaekit fit`` refuses on its command line: each value goes
    through fit's own option (type and choices), as a ``vaekit fit --config`` file's values do."""
    from ..sweep import OPTIONS

    parser = argparse.ArgumentParser(prog="vaekit")
    fit.add_parser(parser.add_subparsers(dest="command"))
    actions = {a.dest: a for a in subparser(parser, fit.NAME)._actions}
    checked: set[str] = set()
    for config in configs:
        for key in OPTIONS:
            if key not in config:
                continue
            marker = json.dumps([key, config[key]], default=str)
            if marker not in checked:
                if key in actions:
                    convert(actions[key], config[key], where)
                checked.add(marker)
        marker = json.dumps([config.get(k) for k in COMPONENT_KEYS], default=str)
        if marker not in checked:
            _check_components(config, where)
            checked.add(marker)


#: the options without a ``vaekit fit`` flag of their own, checked by building a tiny model with them
COMPONENT_KEYS = ("likelihood", "prior", "likelihood_kwargs", "prior_kwargs", "n_tasks", "mmd_alpha",
                  "task_latent_dim")


def _check_components(config: dict[str, Any], where: str) -> None:
    """Refuse likelihood/prior options and task settings that the model would refuse, before any run starts."""
    from ..errors import ConfigError
    from ..model import VAE

    for key in ("likelihood_kwargs", "prior_kwargs"):
        if not isinstance(config.get(key, {}), dict):
            raise ConfigError(f"{where}: {key} must be a table of options, e.g. {{b = 0.001}}, got {config[key]!r}")
    if config.get("likelihood_kwargs") and not config.get("likelihood"):
        raise ConfigError(f"{where}: likelihood_kwargs needs likelihood (without it the likelihood is chosen from "
                          "the data, which the options may not fit)")
    n_tasks = config.get("n_tasks", 0)
    if isinstance(n_tasks, bool) or not isinstance(n_tasks, int) or n_tasks < 0:
        raise ConfigError(f"{where}: n_tasks must be a whole number >= 0, got {n_tasks!r}")
    tasks = n_tasks or (2 if config.get("mmd_alpha") or config.get("task_latent_dim") else 0)
    try:
        VAE(2, 2, config.get("likelihood") or "student-t", config.get("prior", "standard"), (2,), n_tasks=tasks,
            mmd_alpha=float(config.get("mmd_alpha", 0.0)), task_latent_dim=int(config.get("task_latent_dim", 0)),
            likelihood_kwargs=config.get("likelihood_kwargs", {}), prior_kwargs=config.get("prior_kwargs", {}))
    except (ConfigError, TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None
