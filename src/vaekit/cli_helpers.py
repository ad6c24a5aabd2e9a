"""Small pieces the command modules share: number formatting, file options, --help defaults, seeding."""

from __future__ import annotations

import argparse
import contextlib
import math
from collections.abc import Iterator
from typing import Any


def fmt(value: Any, digits: int = 4) -> str:
    """A number for people: ``digits`` significant digits (``-0.6486``, ``0.996``), ``n/a`` for None/NaN.

    JSON output keeps full precision; only human-readable text goes through here."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.1f}"


def user_file_options(p: argparse.ArgumentParser) -> None:
    """Options for a user's CSV: columns to skip and a row-ID column."""
    p.add_argument("--ignore-columns", type=lambda text: [c for c in text.split(",") if c], default=[],
                   help="comma-separated CSV columns to skip (e.g. a timestamp)")
    p.add_argument("--id-column", help="CSV column of row IDs: kept out of x, carried into score outputs")


def file_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for :func:`vaekit.data.load_dataset` from the CLI's column options."""
    options: dict[str, Any] = {}
    for name in ("label_column", "task_column", "id_column"):
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    if getattr(args, "ignore_columns", None):
        options["ignore_columns"] = list(args.ignore_columns)
    return options


@contextlib.contextmanager
def torch_seeded(seed: int) -> Iterator[None]:
    """Seed torch for the block without changing the global random state afterwards."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: X)`` to every option's help whose default is a value (not None/False/empty)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or "default" in text or default in (None, False, argparse.SUPPRESS, [], ())
                or not action.option_strings or action.nargs == 0):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, (tuple, list)) else default
        return f"{text} (default: {str(shown).replace('%', '%%')})"


def show_defaults(parser: argparse.ArgumentParser) -> None:
    """Use :class:`DefaultsHelpFormatter` in ``parser`` and every sub-command's parser."""
    parser.formatter_class = DefaultsHelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                show_defaults(sub)
