"""Options the command modules share: the validated option types, option groups and ``--help`` defaults.

Imports only argparse-level modules, so building the parser (``vaekit --help``) stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..validation import MAX_SEED, FloatRange, IntList, IntRange, OutputDir

#: argparse types of the options (vaekit.validation): a bad value is refused while parsing, before any work
INT_LIST = IntList()
POSITIVE_INT = IntRange(1)
NON_NEGATIVE_INT = IntRange(0)
SEED = IntRange(0, MAX_SEED)
POSITIVE_FLOAT = FloatRange(0.0, low_open=True)
NON_NEGATIVE_FLOAT = FloatRange(0.0)
FRACTION = FloatRange(0.0, 1.0, high_open=True)


def common_options(p: argparse.ArgumentParser) -> None:
    """``--json``, ``--debug`` and ``--quiet``, which every command has."""
    p.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")


def tracking_options(p: argparse.ArgumentParser) -> None:
    """``--mlflow``, ``--mlflow-experiment``, ``--tensorboard`` (read by :func:`~vaekit.tracking.tracking_callbacks`)."""
    p.add_argument("--mlflow", metavar="URI",
                   help="log the run to this MLflow tracking URI, e.g. file:./mlruns (pip install 'vaekit[mlflow]')")
    p.add_argument("--mlflow-experiment", default="vaekit", help="MLflow experiment name")
    p.add_argument("--tensorboard", metavar="DIR", type=OutputDir(),
                   help="write TensorBoard event files into this folder (pip install 'vaekit[tensorboard]')")


class ColumnList(argparse.Action):
    """Collects column names given space- or comma-separated, over repeated uses of the option."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        names = [c.strip() for value in values for c in str(value).split(",") if c.strip()]
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), *names])


def user_file_options(p: argparse.ArgumentParser) -> None:
    """Options for a user's CSV: columns to skip and a row-ID column."""
    p.add_argument("--ignore-columns", nargs="+", action=ColumnList, default=[], metavar="COLUMN",
                   help="CSV columns to skip (e.g. a timestamp), space- or comma-separated")
    p.add_argument("--id-column", help="CSV column of row IDs: kept out of x, carried into score outputs")


def data_column_options(p: argparse.ArgumentParser, task: bool = True) -> None:
    """``--label-column`` (and ``--task-column`` unless ``task`` is false) plus :func:`user_file_options`."""
    p.add_argument("--label-column", help="CSV column holding labels (e.g. anomaly flags), kept out of x")
    if task:
        p.add_argument("--task-column", help="CSV column holding the task index s, kept out of x")
    user_file_options(p)


def file_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for :func:`vaekit.data.load_dataset` from the CLI's column options."""
    options: dict[str, Any] = {}
    for name in ("label_column", "task_column", "id_column"):
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    if getattr(args, "ignore_columns", None):
        options["ignore_columns"] = list(args.ignore_columns)
    return options


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
