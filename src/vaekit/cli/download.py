"""``vaekit download``: fetch a registered data set's public source into the cache."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError
from .options import common_options
from .output import say

NAME = "download"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help="fetch a data set's public source into the cache")
    p.add_argument("name", help="a registered data set (see vaekit datasets)")
    common_options(p)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ..data import DATASETS
    from ..data.registry import load_arrays

    if args.name not in DATASETS:
        raise ConfigError(f"unknown dataset {args.name!r}; known: {', '.join(sorted(DATASETS))}")
    arrays = load_arrays(DATASETS[args.name], download=True)
    say(args, f"{args.name}: x {arrays['x'].shape}")
    return {"name": args.name, "shape": list(arrays["x"].shape)}
