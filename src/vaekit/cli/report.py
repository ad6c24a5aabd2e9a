"""``vaekit report``: tables and figures of a thesis target from the results database alone, or from saved raw
per-run results (the ``runs.jsonl`` beside every committed report) with ``--raw``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..names import BUDGETS
from ..validation import Database, InputFile, OutputDir, check_database, check_output_dir
from .options import common_options
from .output import say
from .results import DEFAULT_DB, open_store

NAME = "report"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help="tables and figures of a target from the results database alone")
    p.add_argument("target")
    p.add_argument("--db", type=Database(), default=DEFAULT_DB, help=f"results database (default {DEFAULT_DB})")
    p.add_argument("--out", type=OutputDir(), help="report folder (default results/TARGET)")
    p.add_argument("--raw", type=InputFile(), metavar="FILE",
                   help="rebuild the report from saved raw results (a runs.jsonl or results.json) instead of --db")
    p.add_argument(
        "--budget", choices=BUDGETS, help="which budget's runs (default: that of the latest reproduce)"
    )
    common_options(p)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ..experiments.report import report_from_db
    from ..experiments.targets import get_target

    target = get_target(args.target)
    out = args.out or Path("results") / target.name
    if args.raw is not None:
        return _from_raw(args, target, out)
    flag = "" if args.budget in (None, "quick") else (" --full" if args.budget == "full" else f" --budget {args.budget}")
    nothing = f"nothing run yet for {args.target} in {args.db} — run `vaekit reproduce {args.target}{flag}`"
    if not args.db.is_file():
        raise ConfigError(nothing)
    check_database(args.db)
    check_output_dir(out, "report folder")
    with open_store(args.db) as store:
        if not store.rows(target.name):
            raise ConfigError(nothing)
        report = report_from_db(target, store, out, args.budget)
    say(args, report["markdown"])
    return {"target": target.name, **report}


def _from_raw(args: argparse.Namespace, target: Any, out: Path) -> dict[str, Any]:
    """The report of ``target`` rebuilt from the raw results file ``args.raw`` alone (no database, nothing run)."""
    from ..experiments.report import load_raw, report_from_raw

    check_output_dir(out, "report folder")
    try:
        check_raw_target(target, load_raw(args.raw), args.raw)
        report = report_from_raw(target, args.raw, out)
    except ConfigError:
        raise
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"--raw {args.raw} is not raw vaekit results for {target.name} (one JSON run per line "
                          f"with config, status and metrics, or a results.json list): {err!r}") from None
    say(args, report["markdown"])
    return {"target": target.name, "raw": str(args.raw), **report}


def check_raw_target(target: Any, records: list[dict[str, Any]], raw: Path) -> None:
    """Refuse raw results recorded for another target: each record's ``config["target"]`` must be ``target`` or a
    target of its run family (they share runs; e.g. Tables 5.2-5.4 read Table 5.3's file). Records without one (the
    older ``results.json`` lists) pass."""
    from ..experiments.targets import load_targets

    targets = load_targets()
    family = target.run_family
    named = {str(r["config"]["target"]) for r in records if isinstance(r["config"], dict) and "target" in r["config"]}
    foreign = sorted(name for name in named if name != target.name
                     and (family is None or getattr(targets.get(name), "run_family", None) != family))
    if foreign:
        again = f"; report them with `vaekit report {foreign[0]} --raw {raw}`" if len(foreign) == 1 else ""
        raise ConfigError(f"--raw {raw}: these raw results are for {', '.join(foreign)}, not {target.name}{again}")
