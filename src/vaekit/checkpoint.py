"""Checkpoint files: atomic writes, a format version, and loading that never executes code (``weights_only``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ._version import NUMERICS_VERSION, __version__
from .errors import CheckpointError

FORMAT = "vaekit-checkpoint"
FORMAT_VERSION = 1


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path`` and rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | Path, kind: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts only) with format and library versions."""
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, "vaekit_version": __version__,
              "numerics_version": NUMERICS_VERSION, "kind": kind,
              **payload}
    atomic_write_bytes(Path(path), lambda f: torch.save(record, f))
    return Path(path)


def load_checkpoint(path: str | Path, kind: str) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` for a model of type ``kind``.

    Truncated, random, foreign and code-carrying files raise :class:`CheckpointError`; nothing in the file is
    executed (``torch.load(..., weights_only=True)``).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train a model first (vaekit fit --out DIR)")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - an untrusted file can make the parser fail in any way
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path} is not a loadable vaekit checkpoint (truncated, corrupt or unsafe: {first[:200]}); "
            "retrain or restore the file"
        ) from err
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a PyTorch file but not a vaekit checkpoint")
    if not isinstance(record.get("format_version"), int) or record["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {record.get('format_version')!r}, newer than this vaekit "
            f"({__version__}) reads (format {FORMAT_VERSION}); upgrade vaekit"
        )
    if record.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {record.get('kind')!r} model, not a {kind!r} model")
    return record
