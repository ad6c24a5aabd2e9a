"""Option and path validation that runs before any work starts.

The argument types below are what the ``vaekit`` parser uses instead of bare ``int``/``float``: argparse calls them
while parsing, so a bad value is refused (exit 2, one line) before a data set is loaded or a model trained. Each type
lists a few of its own invalid values (:attr:`invalid_examples`), from which the test suite builds its table of
invalid command lines, so a new option is covered as soon as it uses one of these types.

Output paths (``--out``, ``--save``, ``--output``) and results databases (``--db``) are checked the same way: the
path must not be the wrong kind of thing, and its nearest existing folder must accept a new file.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigError

#: seeds go to torch, numpy and scikit-learn; the last two take 0 .. 2**32 - 1
MAX_SEED = 2**32 - 1
#: placeholders in :attr:`invalid_examples` that the tests replace by real paths
EXISTING_FILE, EXISTING_DIR, BAD_DATABASE = "{existing_file}", "{existing_dir}", "{bad_database}"


class _Type:
    """An argparse ``type``: parses one value or raises :class:`argparse.ArgumentTypeError` with a one-line reason."""

    metavar_text = "a value"

    def invalid_examples(self) -> list[str]:
        return []

    def __repr__(self) -> str:  # argparse shows the type's name in "invalid <name> value" messages
        return type(self).__name__


class IntRange(_Type):
    """An integer in ``[low, high]`` (either end may be open)."""

    def __init__(self, low: int | None = None, high: int | None = None) -> None:
        self.low, self.high = low, high

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"an integer from {self.low} to {self.high}"
        if self.low is not None:
            return f"an integer >= {self.low}"
        return "an integer" if self.high is None else f"an integer <= {self.high}"

    def __call__(self, text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}") from None
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        return value

    def invalid_examples(self) -> list[str]:
        examples = ["abc", "1.5", ""]
        if self.low is not None:
            examples.append(str(self.low - 1))
        if self.high is not None:
            examples.append(str(self.high + 1))
        return examples


class FloatRange(_Type):
    """A finite number in a range; ``low_open``/``high_open`` exclude the ends."""

    def __init__(self, low: float | None = None, high: float | None = None, low_open: bool = False,
                 high_open: bool = False) -> None:
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return "a finite number" + (" " + " and ".join(parts) if parts else "")

    def check(self, value: float, text: str) -> float:
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        return value

    def __call__(self, text: str) -> float:
        try:
            value = float(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}") from None
        return self.check(value, text)

    def invalid_examples(self) -> list[str]:
        examples = ["abc", "nan", "inf", "-inf", "1e400"]
        if self.low is not None:
            examples.append(repr(self.low) if self.low_open else repr(self.low - 1.0))
        if self.high is not None:
            examples.append(repr(self.high) if self.high_open else repr(self.high + 1.0))
        return examples


class AutoOr(_Type):
    """``auto`` (chosen from the data, e.g. the detector's shape rule) or a value of the wrapped type."""

    def __init__(self, inner: _Type) -> None:
        self.inner = inner

    def __call__(self, text: str) -> object:
        return "auto" if str(text).strip() == "auto" else self.inner(text)

    def invalid_examples(self) -> list[str]:
        return [e for e in self.inner.invalid_examples() if e != "auto"]

    def __repr__(self) -> str:
        return f"auto or {self.inner!r}"


class IntList(_Type):
    """Comma-separated positive integers (layer sizes)."""

    def __call__(self, text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in str(text).split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
        if not values or min(values) < 1:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1, got {text!r}")
        return values

    def invalid_examples(self) -> list[str]:
        return ["abc", "", "8,,8", "0", "8,-1", "1.5"]


class SplitFractions(_Type):
    """``TRAIN,VAL,TEST``: three positive finite fractions summing to at most 1, or three whole sizes."""

    def __call__(self, text: str) -> tuple[float, ...]:
        try:
            values = tuple(float(v) for v in str(text).split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected TRAIN,VAL,TEST numbers, got {text!r}") from None
        if len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values):
            raise argparse.ArgumentTypeError(
                f"expected three positive finite numbers TRAIN,VAL,TEST (e.g. 0.5,0.1,0.4), got {text!r}")
        return values

    def invalid_examples(self) -> list[str]:
        return ["abc", "nan,0.1,0.1", "inf,0.1,0.1", "0.5,-0.1,0.4", "0.5,0.1", "0.5,0,0.4"]


class KeyValues(_Type):
    """``KEY=V1,V2``: a setting's name and the values to keep (``vaekit reproduce --only``)."""

    def __call__(self, text: str) -> tuple[str, list[str]]:
        key, sep, values = str(text).partition("=")
        chosen = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not chosen:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE[,VALUE...] (e.g. method=implicit or seed=1,2), "
                                             f"got {text!r}")
        return key.strip(), chosen

    def invalid_examples(self) -> list[str]:
        return ["method", "=implicit", "method=", "method=,"]


class DeviceName(_Type):
    """A device that exists here: cpu, cuda, cuda:N, mps or auto."""

    def __call__(self, text: str) -> str:
        from .training import resolve_device

        try:
            resolve_device(str(text))
        except ConfigError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return str(text)

    def invalid_examples(self) -> list[str]:
        return ["meta", "nosuch", "cuda:99999", "cpu:abc"]


class OutputDir(_Type):
    """A folder to (re)write: absent or a folder, inside a folder that accepts new files."""

    def __call__(self, text: str) -> Path:
        try:
            return check_output_dir(_path(text))
        except ConfigError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    def invalid_examples(self) -> list[str]:
        return [EXISTING_FILE, f"{EXISTING_FILE}/sub", ""]


class RunFolder(OutputDir):
    """``fit --out``: absent, empty, or a previous run's folder (holding ``model.pt`` or ``result.json``)."""

    def __call__(self, text: str) -> Path:
        path = super().__call__(text)
        try:
            return check_run_folder(path)
        except ConfigError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    def invalid_examples(self) -> list[str]:
        return super().invalid_examples() + [EXISTING_DIR]


class OutputFile(_Type):
    """A file to (re)write: absent or a plain file, inside a folder that accepts new files."""

    def __call__(self, text: str) -> Path:
        try:
            return check_output_file(_path(text))
        except ConfigError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    def invalid_examples(self) -> list[str]:
        return [EXISTING_DIR, f"{EXISTING_FILE}/scores.csv", ""]


class InputFile(_Type):
    """A file to read: it exists and is a plain file."""

    def __call__(self, text: str) -> Path:
        try:
            path = _path(text)
        except ConfigError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        if not path.exists():
            raise argparse.ArgumentTypeError(f"{path} does not exist")
        if not path.is_file():
            raise argparse.ArgumentTypeError(f"{path} is not a file")
        return path

    def invalid_examples(self) -> list[str]:
        return [EXISTING_DIR, f"{EXISTING_DIR}/missing.jsonl", ""]


class Database(_Type):
    """A results database: absent (created later) or an SQLite file that opens."""

    def __call__(self, text: str) -> Path:
        try:
            return check_database(_path(text))
        except ConfigError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    def invalid_examples(self) -> list[str]:
        return [EXISTING_FILE, EXISTING_DIR, BAD_DATABASE, f"{EXISTING_FILE}/db.sqlite", ""]


# ------------------------------------------------------------------------------------------------------ paths
def _path(text: str) -> Path:
    if not str(text).strip():
        raise ConfigError("the path is empty")  # Path("") would silently mean the current folder
    return Path(text).expanduser()


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and not path.is_symlink():
        path = path.parent
    return path


def _check_writable_folder(path: Path, what: str) -> None:
    """The nearest existing ancestor of ``path`` must be a folder in which a file can be created."""
    anchor = _nearest_existing(path.parent)
    if not anchor.is_dir():
        raise ConfigError(f"{what} {path}: {anchor} is not a folder; choose another path")
    try:  # a real probe: os.access says yes to root on read-only mounts and on /proc
        fd, probe = tempfile.mkstemp(dir=anchor, prefix=".vaekit-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ConfigError(f"{what} {path}: cannot create files in {anchor} ({err.strerror}); "
                          "choose a writable location") from None


def check_output_dir(path: Path, what: str = "output folder") -> Path:
    """Refuse an output folder that is a file, sits under a file, or cannot be created; creates nothing."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} exists and is not a folder; choose another path or remove it")
    _check_writable_folder(path / "x" if path.is_dir() else path, what)
    return path


RUN_FILES = ("model.pt", "result.json")


def check_run_folder(path: Path) -> Path:
    """A run folder is replaced as a whole when a run is saved, so refuse a folder that holds other things and
    no run (e.g. ``--out .`` or a home folder)."""
    if path.is_dir() and any(path.iterdir()) and not any((path / name).exists() for name in RUN_FILES):
        raise ConfigError(f"--out {path} is a folder that holds other files and no vaekit run; choose a new or "
                          "empty folder")
    model = path / RUN_FILES[0]
    if model.is_file():
        from .checkpoint import is_vaekit_checkpoint

        if not is_vaekit_checkpoint(model):
            raise ConfigError(f"--out {path} holds a {model.name} that vaekit did not write (another program's, or "
                              "damaged), which a new run would replace; choose a new or empty folder")
    return path


def check_output_file(path: Path, what: str = "output file", example: str = "scores.csv") -> Path:
    """Refuse an output file that is a folder, sits under a file, or cannot be created; creates nothing."""
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; give a file name, e.g. {path / example}")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{what} {path} exists and is not a plain file; choose another path")
    _check_writable_folder(path, what)
    return path


SQLITE_MAGIC = b"SQLite format 3\x00"


def check_database(path: Path) -> Path:
    """Refuse a results database path that is a folder, a non-SQLite file, or a damaged database."""
    path = check_output_file(path, "results database", "vaekit.sqlite")
    if not path.exists() or path.stat().st_size == 0:
        return path
    with open(path, "rb") as f:
        magic = f.read(len(SQLITE_MAGIC))
    if magic != SQLITE_MAGIC:
        raise ConfigError(f"results database {path} is not an SQLite database; give another --db path")
    # a read-only connection to a WAL database creates its -wal and -shm files; when neither is there (no
    # connection is open, every write is in the file) read the file as immutable, which creates nothing
    side_files = any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-shm"))
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?{'mode=ro' if side_files else 'immutable=1'}",
                                                uri=True)) as db:
            result = db.execute("PRAGMA quick_check").fetchone()
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as err:
        raise ConfigError(f"results database {path} cannot be read ({err}); restore it or give another --db "
                          "path") from None
    if not result or result[0] != "ok":
        raise ConfigError(f"results database {path} is damaged ({result[0] if result else 'no answer'}); restore "
                          "it or give another --db path")
    if tables and "runs" not in tables:  # vaekit would add its tables to another program's database
        raise ConfigError(f"{path} is another program's SQLite database (tables {', '.join(sorted(tables))}), not "
                          "vaekit's results; give another --db path")
    return path


# ------------------------------------------------------------------------------------------------------- lock
@contextlib.contextmanager
def output_lock(path: Path, what: str = "--out") -> Iterator[None]:
    """Hold an exclusive lock on the output ``path`` while a command writes it; a second holder is refused.

    The lock file lives in the nearest existing folder above ``path`` (named from the path's hash) and is removed
    on release, so no folder is created just to lock it.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks; last writer wins
        yield
        return
    resolved = Path(os.path.abspath(path))
    anchor = _nearest_existing(resolved.parent)
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:16]
    lock_path = anchor / f".vaekit-{resolved.name}-{digest}.lock"
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ConfigError(f"{what} {path} is being written by {holder}; wait for it to finish or choose "
                              "another path") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"vaekit process {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                lock_path.unlink()
            fcntl.flock(handle, fcntl.LOCK_UN)

