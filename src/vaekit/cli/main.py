"""The ``vaekit`` command line. Every command has ``--help``; with ``--json`` the last stdout line is one JSON object.

Errors that vaekit raises on purpose print one line on stderr and exit with status 2 (a traceback only with
``--debug``); an interrupted command exits with 130.
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import sys
import traceback
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from .._version import __version__
from ..errors import VaekitError
from ..interrupts import StopSignals
from ..runconfig import apply_config, subparser
from . import datasets, detect, download, evaluate, fit, plot, report, reproduce, score, sweep
from .options import show_defaults

# torch, scikit-learn and the models load inside each command's run(), so --help and --version stay fast

#: the sub-commands in --help order; each module has ``add_parser(subparsers)`` and ``run(args) -> dict``
COMMANDS: dict[str, ModuleType] = {module.NAME: module for module in (
    datasets, download, fit, evaluate, score, detect, reproduce, report, plot, sweep,
)}
#: commands that stop on SIGTERM as on Ctrl-C: fit/detect keep the best model, reproduce/sweep put their runs in
#: flight back to pending (a scheduler's SIGTERM must not leave them "running"); the others keep Python's default
STOPPABLE = ("fit", "detect", "reproduce", "sweep")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``vaekit CMD: error: <problem> (see vaekit CMD --help)``, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every sub-command in :data:`COMMANDS`, with ``(default: X)`` in the help texts."""
    parser = Parser(prog="vaekit", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vaekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        module.add_parser(sub)
    show_defaults(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 1 the machine failed, 2 bad input, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # name the command, and its --help, in the error (argparse would blame `vaekit`)
            subparser(parser, args.command).error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as stop:  # argparse: --help/--version (0) or a bad option (2, one line on stderr)
        return stop.code if isinstance(stop.code, int) else 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s",
                        stream=sys.stderr, force=True)
    warnings.formatwarning = _one_line_warning
    signals = StopSignals(enabled=args.command in STOPPABLE)
    try:
        with signals:
            if getattr(args, "config", None) is not None:
                args = apply_config(parser, args, argv)
            result = COMMANDS[args.command].run(args)
    except VaekitError as err:
        if args.debug:
            traceback.print_exc()
        print(f"vaekit {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vaekit {args.command}: interrupted", file=sys.stderr)
        return signals.exit_status
    except (OSError, sqlite3.Error) as err:  # the machine, not the input: full disk, lost mount, locked database
        if args.debug:
            traceback.print_exc()
        print(f"vaekit {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as err:  # numpy's _ArrayMemoryError; torch.OutOfMemoryError (a RuntimeError)
        if not isinstance(err, MemoryError) and "out of memory" not in str(err).lower():
            raise
        if args.debug:
            traceback.print_exc()
        print(f"vaekit {args.command}: error: out of memory ({_one_line(err) or 'no detail'}); use smaller data or "
              "batches (--batch-size), or a .npy file with --memory-map where the command offers it", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, allow_nan=False, default=str))
    if result.get("exit_status"):  # finished, with a result to report, but not successfully (e.g. runs failed)
        print(f"vaekit {args.command}: error: {_one_line(str(result.get('error', 'failed')))}", file=sys.stderr)
        return int(result["exit_status"])
    if result.get("interrupted"):
        print(f"vaekit {args.command}: interrupted; the best model so far was saved to {result.get('out')}",
              file=sys.stderr)
        return signals.exit_status
    return 0


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def _one_line_warning(message: Warning | str, category: type[Warning], *rest: Any, **kwargs: Any) -> str:
    return f"vaekit: warning: {message}\n"
