"""``vaekit datasets``: the known data sets, whether they are present here, and their shapes."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from .options import common_options
from .output import say

NAME = "datasets"
log = logging.getLogger("vaekit")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help="list known data sets, whether they are present, and their shapes")
    common_options(p)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ..data import dataset_status
    from ..data.sources import data_dir

    folder = data_dir()
    if folder is not None and not folder.is_dir():
        log.warning("VAEKIT_DATA=%s is not a folder here: every data set that needs a file shows as missing (fix "
                    "the path, or unset it to use the download cache)", folder)
    rows = dataset_status()
    table = [("name", "state", "shape", "description")]
    for row in rows:
        state = "present" if row["present"] else ("bundled" if row["bundled_fallback"] else "missing")
        if row.get("error"):  # a corrupt or incomplete file: loading it would fail
            state = "error"
            log.warning("%s: %s", row["name"], row["error"])
        table.append((row["name"], state, "x".join(map(str, row.get("shape", []))) or "-", row["description"]))
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for r in table:
        say(args, "  ".join(f"{cell:<{w}}" for cell, w in zip(r, widths)) + "  " + r[3])
    return {"datasets": rows}
