"""The results database of ``vaekit reproduce``, ``report`` and ``sweep``: its default path, opening it, and the
machine record of an invocation."""

from __future__ import annotations

import argparse
import platform
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..names import cpu_count

if TYPE_CHECKING:  # pragma: no cover - the experiments (torch) load inside the commands
    from ..experiments.store import Store

DEFAULT_DB = Path("results") / "vaekit.sqlite"


def machine(args: argparse.Namespace) -> dict[str, Any]:
    """Where an invocation ran (host, cores, versions, backend), recorded with its runs."""
    import torch

    return {
        "host": platform.node(),
        "cpus": cpu_count(),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "backend": args.backend,
        "workers": args.workers,
        "ray_address": args.ray_address,
        "device": getattr(args, "device", None) or "cpu",
    }


def open_store(path: Path) -> Store:
    """Open (or create) the results database; a database this call created is removed again if opening fails
    (e.g. a full disk), and SQLite's errors become one-line :class:`ConfigError`."""
    from ..experiments.store import Store

    existed = path.exists()
    try:
        return Store(path)
    except (sqlite3.Error, OSError) as err:
        if not existed:
            for leftover in (path, path.with_name(path.name + "-journal"), path.with_name(path.name + "-wal"),
                             path.with_name(path.name + "-shm")):
                leftover.unlink(missing_ok=True)
        raise ConfigError(f"results database {path} cannot be opened ({' '.join(str(err).split())}); give "
                          "another --db path") from None
