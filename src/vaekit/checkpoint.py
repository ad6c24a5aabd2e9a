"""Checkpoint files: atomic writes, a format version, and loading that never executes code (``weights_only``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import torch

from ._version import NUMERICS_VERSION, __version__
from .errors import CheckpointError, ConfigError

FORMAT = "vaekit-checkpoint"
FORMAT_VERSION = 1


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path`` and rename it into place on success.

    The file gets the usual permissions (0666 less the umask), not ``mkstemp``'s private 0600.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except (FileExistsError, NotADirectoryError, FileNotFoundError, PermissionError) as err:
        raise ConfigError(f"cannot write {path} ({err.strerror or err}); choose another folder") from None
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    return False


def _swap_into_place(new: Path, path: Path) -> None:
    """Make the complete folder ``new`` appear at ``path``; the previous folder (if any) is removed afterwards."""
    if not path.exists():
        os.rename(new, path)
        return
    if _exchange(new, path):
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the previous run
        return
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
    os.rmdir(old)
    os.rename(path, old)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _carry_over(src: Path, dst: Path, skip: set[str]) -> None:
    """Hard-link (or copy) the other entries of an existing folder into its replacement."""
    for entry in src.iterdir():
        if entry.name in skip:
            continue
        target = dst / entry.name
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, target)


def _link_or_copy(src: Any, dst: Any) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


#: entries of a run folder that describe the model it held (its figures, the options that trained it, a detector
#: around it): a new model written into the folder does not inherit them
STALE_WITH_MODEL = ("plots", "run.toml", "detector.pt")


def replace_directory(path: str | Path, files: dict[str, Callable[[Any], None]],
                      drop: Collection[str] = STALE_WITH_MODEL) -> Path:
    """Write a folder's files as one atomic update: afterwards ``path`` holds either its previous complete
    contents or all of the new ``files`` (``name -> write(file)``), never a mix.

    The files are written into a fresh sibling folder, synced, and swapped into place in one rename (an atomic
    exchange where the system has one); other entries of the previous folder are carried over, except ``drop``.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} exists and is not a folder; choose another path or remove it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        new = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new"))
    except (FileExistsError, NotADirectoryError, FileNotFoundError, PermissionError) as err:
        raise ConfigError(f"cannot write {path} ({err.strerror or err}); choose another folder") from None
    try:
        os.chmod(new, 0o777 & ~current_umask())
        if path.is_dir():
            _carry_over(path, new, {*files, *drop})
        for name, write in files.items():
            with open(new / name, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
        _fsync_dir(new)
        _swap_into_place(new, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    return path


def checkpoint_record(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The record :func:`save_checkpoint` writes: ``payload`` with format and library versions."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "vaekit_version": __version__,
            "numerics_version": NUMERICS_VERSION, "kind": kind, **python_values(payload)}


def save_checkpoint(path: str | Path, kind: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts only) with format and library versions."""
    record = checkpoint_record(kind, payload)
    atomic_write_bytes(Path(path), lambda f: torch.save(record, f))
    return Path(path)


def is_vaekit_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a checkpoint vaekit wrote (of any kind), read without running anything in it."""
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any unreadable file is simply not one
        return False
    return isinstance(record, dict) and record.get("format") == FORMAT


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
        if "unsupported operand" in str(err).lower():  # torch reports any non-pickle bytes as a weights-only failure
            raise CheckpointError(
                f"{path} is not a PyTorch checkpoint (text, random bytes or another format); point at the "
                "model.pt that vaekit fit wrote, or retrain"
            ) from err
        if "weights only load failed" in str(err).lower() or "unsupported global" in str(err).lower():
            raise CheckpointError(
                f"{path} holds Python objects other than tensors and plain values (a pickle that could run code), "
                "so vaekit refuses to load it; retrain, or restore the checkpoint vaekit wrote"
            ) from err
        if not zipfile.is_zipfile(path):  # every checkpoint vaekit writes is torch's zip archive
            raise CheckpointError(
                f"{path} is not a PyTorch checkpoint (text, random bytes, a truncated copy or another format); "
                "point at the model.pt that vaekit fit wrote, or retrain"
            ) from err
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path} is not a loadable vaekit checkpoint (truncated, corrupt or unsafe: "
            f"{first if len(first) <= 200 else first[:197] + '...'}); "
            "retrain or restore the file"
        ) from err
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a PyTorch file but not a vaekit checkpoint")
    version = record.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path} has an invalid checkpoint format version {version!r} (expected a whole "
                              f"number such as {FORMAT_VERSION}); the file is damaged or was not written by vaekit")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {record.get('format_version')!r}, newer than this vaekit "
            f"({__version__}) reads (format {FORMAT_VERSION}); upgrade vaekit"
        )
    if record.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {record.get('kind')!r} model, not a {kind!r} model")
    return record


def python_values(value: Any) -> Any:
    """``value`` with NumPy scalars (``np.int64(2)``, ``np.float32(0.1)``, ``np.bool_``) as the Python numbers they
    hold, through dicts, lists and tuples: options read from arrays or DataFrames then save as JSON and load from a
    weights-only checkpoint (tensors and other objects are returned as they are)."""
    if isinstance(value, dict):
        return {k: python_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(python_values(v) for v in value)
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def plain_fields(instance: Any) -> None:
    """Replace every NumPy scalar in a dataclass ``instance``'s fields by its Python value (:func:`python_values`)."""
    from dataclasses import fields

    for field in fields(instance):
        setattr(instance, field.name, python_values(getattr(instance, field.name)))
