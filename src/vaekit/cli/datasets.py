"""``vaekit datasets``: the known data sets, whether they are present here, and their shapes."""

from __future__ import annotations

import argparse
from typing import Any

from .options import common_options
from .output import say

NAME = "datasets"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help="list known data sets, whether they are present, and their shapes")
    common_options(p)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ..data import dataset_status

    rows = dataset_status()
    table = [("name", "state", "shape", "description")]
    for row in rows:
        state = "present" if row["present"] else ("bundled" if row["bundled_fallback"] else "missing")
        table.append((row["name"], state, "x".join(map(str, row.get("shape", []))) or "-", row["description"]))
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for r in table:
        say(args, "  ".join(f"{cell:<{w}}" for cell, w in zip(r, widths)) + "  " + r[3])
    return {"datasets": rows}
