"""``vaekit report``: tables and figures of a thesis target from the results database alone."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..names import BUDGETS
from ..validation import Database, OutputDir, check_database, check_output_dir
from .options import common_options
from .output import say
from .results import DEFAULT_DB, open_store

NAME = "report"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help="tables and figures of a target from the results database alone")
    p.add_argument("target")
    p.add_argument("--db", type=Database(), default=DEFAULT_DB, help=f"results database (default {DEFAULT_DB})")
    p.add_argument("--out", type=OutputDir(), help="report folder (default results/TARGET)")
    p.add_argument(
        "--budget", choices=BUDGETS, help="which budget's runs (default: that of the latest reproduce)"
    )
    common_options(p)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ..experiments.report import report_from_db
    from ..experiments.targets import get_target

    target = get_target(args.target)
    nothing = f"nothing run yet for {args.target} in {args.db} — run `vaekit reproduce {args.target}`"
    if not args.db.is_file():
        raise ConfigError(nothing)
    check_database(args.db)
    check_output_dir(args.out or Path("results") / target.name, "report folder")
    with open_store(args.db) as store:
        if not store.rows(target.name):
            raise ConfigError(nothing)
        report = report_from_db(target, store, args.out or Path("results") / target.name, args.budget)
    say(args, report["markdown"])
    return {"target": target.name, **report}
