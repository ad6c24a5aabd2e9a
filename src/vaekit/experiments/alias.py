"""``python -m vaekit.experiments.chapterN ARGS``: an alias of ``vaekit reproduce ARGS`` (one experiment driver).

The command runs ``python -m vaekit reproduce ARGS`` in a child process (the experiments never import the CLI),
so runs go into the results database and resume like any ``vaekit reproduce``. The one option of the old chapter
scripts kept here, ``--results FILE --out DIR``, rebuilds a target's report from saved raw results (a
``runs.jsonl`` or ``results.json``) without training or a database.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .report import report_from_raw as _rebuild
from .targets import get_target

#: options of the old chapter scripts that ``vaekit reproduce`` has not, and what to use instead
GONE = {
    "--threads": "reproduce gives each worker cores // --workers torch threads",
    "--methods": "run the target whole; finished runs are never redone",
    "--cache": "runs are kept in the results database (--db)",
    "--from-cache": "vaekit report TARGET --db DB reports what has finished",
}


def report_from_raw(target: str, raw: Path, out: Path) -> str:
    """Rebuild ``target``'s report into ``out`` from saved raw results alone; its markdown."""
    return _rebuild(get_target(target), raw, out)["markdown"]


def forward(module: str, argv: Sequence[str] | None = None) -> int:
    """Print a one-line note on stderr and run ``vaekit reproduce`` with ``argv``; its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    gone = [option for option in GONE if any(a == option or a.startswith(option + "=") for a in args)]
    if gone:
        for option in gone:
            print(f"python -m {module}: {option} is gone ({GONE[option]})", file=sys.stderr)
        return 2
    if "--results" in args:
        parser = argparse.ArgumentParser(prog=f"python -m {module}")
        parser.add_argument("target")
        parser.add_argument("--results", type=Path, required=True, help="a runs.jsonl or results.json")
        parser.add_argument("--out", type=Path, default=None, help="report folder (default results/TARGET)")
        known = parser.parse_args(args)
        print(report_from_raw(known.target, known.results, known.out or Path("results") / known.target))
        return 0
    print(f"note: python -m {module} is an alias of `vaekit reproduce`; running: vaekit reproduce "
          f"{shlex.join(args)}", file=sys.stderr, flush=True)
    return subprocess.call([sys.executable, "-m", "vaekit", "reproduce", *args])
