"""Runs from a file: ``vaekit fit --config run.toml``, and the ``run.toml`` saved beside every fitted model.

A run file holds command-line options by name (``latent_dim = 2`` or ``latent-dim = 2``); each value is checked
as the option itself would check it (type, choices), unknown names are refused, and options given on the command
line override the file. ``vaekit fit`` writes the options it ran with to ``OUT/run.toml``, so
``vaekit fit --config OUT/run.toml`` repeats a run exactly::

    data = "my_rows.csv"
    likelihood = "student-t"
    latent_dim = 2
    hidden = [64, 64]
    epochs = 50
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError

RUN_CONFIG_NAME = "run.toml"
#: options that describe how a command prints, not what it computes: never read from or written to run files
NOT_SAVED = {"command", "json", "debug", "quiet", "config", "progress", "mlflow", "mlflow_experiment", "tensorboard"}
#: options a config file may set but a saved run.toml leaves out: repeating a run from its run.toml (e.g. with
#: another --seed) must not write over the run it came from
NOT_REPEATED = {"out"}


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file, with a one-line error naming the file."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        try:
            import tomli as tomllib
        except ImportError as err:
            raise ConfigError("reading TOML on Python 3.10 needs 'pip install tomli'") from err
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such config file: {path}")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid TOML ({err})") from err


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    raise ConfigError(f"no command {command!r}")


def _explicit(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """Destinations of the options written out in ``argv`` (they win over the file)."""
    given = {word.split("=", 1)[0] for word in argv if word.startswith("--")}
    return {a.dest for a in parser._actions if given.intersection(a.option_strings)}


def convert(action: argparse.Action, value: Any, where: str) -> Any:
    """``value`` as ``action`` would store it when given on the command line; ConfigError otherwise."""
    name = action.option_strings[0] if action.option_strings else action.dest
    if action.nargs == 0:  # a flag
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {name} is a flag; write true or false, got {value!r}")
        return value  # keys are destinations: progress = false is --no-progress
    if isinstance(value, dict):
        raise ConfigError(f"{where}: {name} takes a value, not a table")
    if isinstance(value, list) and action.nargs not in ("+", "*"):
        value = ",".join(map(str, value))
    values = value if isinstance(value, list) else [value]
    try:
        converted = [action.type(str(v)) if action.type is not None else str(v) for v in values]
    except (argparse.ArgumentTypeError, TypeError, ValueError) as err:
        said = str(err) or "invalid value"
        raise ConfigError(f"{where}: {name}: {said}" + ("" if "got " in said else f" (got {value!r})")) from err
    for v in converted:
        if action.choices is not None and v not in action.choices:
            raise ConfigError(f"{where}: {name} must be one of {sorted(map(str, action.choices))}, got {v!r}")
    return converted if isinstance(value, list) else converted[0]


def resolve_data_path(value: Any, base: Path) -> Any:
    """A relative data file path in a file of options, read relative to that file's folder ``base`` (never the
    current directory); data set names and absolute paths are kept."""
    if (isinstance(value, str) and Path(value).suffix.lower() in (".csv", ".npz", ".npy")
            and not Path(value).expanduser().is_absolute()):
        return str((base / Path(value).expanduser()).resolve())
    return value


def apply_config(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: Sequence[str]) -> argparse.Namespace:
    """``args`` with the values of ``args.config`` filled in where ``argv`` does not give the option (a relative
    ``data`` file path in it is read relative to the file's folder, as in a sweep grid)."""
    command_parser = subparser(parser, args.command)
    where = str(args.config)
    table = read_toml(args.config)
    by_dest = {a.dest: a for a in command_parser._actions if a.dest not in ("help",)}
    explicit = _explicit(command_parser, argv)
    for raw_key, value in table.items():
        key = raw_key.replace("-", "_")
        if key not in by_dest or key in NOT_SAVED:
            known = sorted(d for d in by_dest if d not in NOT_SAVED)
            raise ConfigError(f"{where}: unknown option {raw_key!r}; {args.command} takes {', '.join(known)}")
        if key in explicit:
            continue
        if key == "data":
            value = resolve_data_path(value, Path(args.config).parent)
        setattr(args, key, convert(by_dest[key], value, where))
    missing = [a.option_strings[0] for a in command_parser._actions
               if a.required and getattr(args, a.dest, None) is None]
    if missing:
        raise ConfigError(f"{where}: give {', '.join(missing)} in the file or on the command line")
    return args


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def run_config_text(args: argparse.Namespace) -> str:
    """The options of ``args`` as a run file (None values and the output folder left out; a data file as an
    absolute path)."""
    lines = [f"# vaekit {args.command}: the options of this run; repeat it with "
             f"vaekit {args.command} --config run.toml"]
    for key, value in sorted(vars(args).items()):
        if key in NOT_SAVED or key in NOT_REPEATED or key.startswith("_") or value is None:
            continue
        if key == "data" and Path(str(value)).is_file():
            value = str(Path(str(value)).resolve())
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def save_run_config(args: argparse.Namespace, out: Path) -> Path:
    """Write ``out/run.toml`` atomically; returns its path."""
    from .checkpoint import atomic_write_bytes

    path = Path(out) / RUN_CONFIG_NAME
    text = run_config_text(args)
    atomic_write_bytes(path, lambda f: f.write(text.encode()))
    return path
