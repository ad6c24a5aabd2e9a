"""Results database: one SQLite row per run, keyed by a stable hash of the run's full configuration.

Only the driver process writes it. A run moves ``pending -> running -> done | diverged | failed``; claiming is
one ``BEGIN IMMEDIATE`` transaction, so two drivers sharing a file never run the same configuration at once. A
row left ``running`` by a process that died (same host and pid gone, or no heartbeat for
:data:`LEASE_SECONDS`) is claimable again; ``done`` and ``diverged`` rows are final and never redone.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Container, Iterable, Sequence
from pathlib import Path
from typing import Any

from .._version import CODE_VERSION, source_commit

STATUSES = ("pending", "running", "done", "diverged", "failed")
FINAL = ("done", "diverged")
#: a running row whose heartbeat is older than this is taken to be abandoned, whichever host ran it
LEASE_SECONDS = 300.0
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,          -- sha256 of canonical JSON {config, code_version}
    target TEXT NOT NULL,
    config TEXT NOT NULL,          -- canonical JSON of the configuration
    code_version TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'diverged', 'failed')),
    metrics TEXT,                  -- JSON object, without the history
    history TEXT,                  -- JSON list of per-epoch records
    error TEXT,
    wall_seconds REAL,
    host TEXT,
    pid INTEGER,
    owner TEXT,                    -- token of the driver session that claimed the run
    attempts INTEGER NOT NULL DEFAULT 0,
    crashes INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    heartbeat REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS runs_target ON runs (target, status);
CREATE TABLE IF NOT EXISTS requests (  -- which budget asked for which run
    key TEXT NOT NULL REFERENCES runs (key),
    budget TEXT NOT NULL,
    PRIMARY KEY (key, budget)
);
CREATE TABLE IF NOT EXISTS invocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    budget TEXT NOT NULL,
    command TEXT NOT NULL,
    machine TEXT NOT NULL,         -- JSON: host, cpus, platform, backend, workers
    code_version TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    summary TEXT                   -- JSON counts at the end
);
"""

#: driver sessions alive in this process (a row claimed by a finished session of this same pid is abandoned)
_LIVE_OWNERS: set[str] = set()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no whitespace and no NaN: the same value gives the same text in any process."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def config_key(config: dict[str, Any], code_version: str = CODE_VERSION) -> str:
    """Stable hash of a run: its configuration (axes, hyper-parameters, seed, budget) and the numerics version of
    the code (:data:`vaekit._version.CODE_VERSION`; see there for when it changes)."""
    return hashlib.sha256(
        canonical_json({"config": config, "code_version": code_version}).encode()
    ).hexdigest()


#: configuration keys that say where a run is reported, not what it computes: twins may differ in them only
#: (``sweep`` names the series of a chapter-3 figure a run belongs to, e.g. its reference lines)
LABEL_KEYS = ("target", "budget", "sweep")


def _shared_part(config: dict[str, Any]) -> str:
    """What two targets' runs share when they are twins: the configuration without its :data:`LABEL_KEYS`."""
    return canonical_json({k: v for k, v in config.items() if k not in LABEL_KEYS})


def json_ready(value: Any) -> Any:
    """``value`` with non-finite floats as None and tuples as lists, so it stores as strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return json_ready(value.item())
    return value


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux), or it just ended
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class Store:
    """The results database at ``path`` (created with its folder on first use)."""

    def __init__(self, path: str | Path, lease_seconds: float = LEASE_SECONDS) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lease_seconds = lease_seconds
        self.host = socket.gethostname()
        self.owner = uuid.uuid4().hex
        _LIVE_OWNERS.add(self.owner)
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        _LIVE_OWNERS.discard(self.owner)
        self.db.close()

    def __enter__(self) -> Store:  # noqa: PYI034 - Python 3.10 has no typing.Self
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ writing
    def add(self, configs: Sequence[dict[str, Any]], budget: str) -> list[str]:
        """Insert a pending row for each configuration not yet in the database; return their keys in order."""
        keys, now = [], time.time()
        with self._transaction():
            for config in configs:
                key = config_key(config)
                keys.append(key)
                self.db.execute(
                    "INSERT OR IGNORE INTO runs (key, target, config, code_version, status, created) "
                    "VALUES (?, ?, ?, ?, 'pending', ?)",
                    (key, str(config.get("target", "")), canonical_json(config), CODE_VERSION, now),
                )
                self.db.execute("INSERT OR IGNORE INTO requests (key, budget) VALUES (?, ?)", (key, budget))
        return keys

    def import_finished(self, records: Iterable[dict[str, Any]], budget: str = "",
                        grid_keys: Container[str] | None = None) -> int:
        """Insert the finished runs of exported raw results (the ``runs.jsonl`` beside a report) that the database
        lacks, so a grid resumes from committed results on another machine or in a later session. A record's key
        must be the hash of its configuration and code version, i.e. the row the engine itself would have stored;
        unfinished and failed records are skipped. A finished record replaces a row of the same key that is pending
        or failed (e.g. left by an interrupted invocation), never one that is final or running. A run is requested
        by its configuration's budget; one whose configuration names none (chapter 3, ADBench) by ``budget``, the
        importing command's, only when its key is among ``grid_keys`` (that budget's grid; all when None), so a
        run of another budget or numerics version never enters this budget's report. Returns the number of runs
        added."""
        added, now = 0, time.time()
        with self._transaction():
            for record in records:
                if record.get("status") not in ("done", "diverged"):
                    continue
                config, version = record.get("config"), record.get("code_version")
                if not isinstance(config, dict) or not version or record.get("key") != config_key(config, version):
                    raise ValueError(f"run {str(record.get('key'))[:12]}: its key is not the hash of its "
                                     "configuration and code version; the file was edited or is not a vaekit export")
                metrics = dict(record.get("metrics") or {})
                history = metrics.pop("history", None)
                cursor = self.db.execute(
                    "INSERT INTO runs (key, target, config, code_version, status, metrics, history, "
                    "wall_seconds, host, created, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'imported', ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET status = excluded.status, metrics = excluded.metrics, "
                    "history = excluded.history, wall_seconds = excluded.wall_seconds, host = 'imported', "
                    "error = NULL, pid = NULL, owner = NULL, heartbeat = NULL, finished = excluded.finished "
                    "WHERE runs.status IN ('pending', 'failed')",
                    (record["key"], str(config.get("target", "")), canonical_json(config), version,
                     record["status"], canonical_json(json_ready(metrics)),
                     None if history is None else canonical_json(json_ready(history)),
                     record.get("wall_seconds"), now, now),
                )
                added += cursor.rowcount
                if config.get("budget") or grid_keys is None or record["key"] in grid_keys:
                    self.db.execute("INSERT OR IGNORE INTO requests (key, budget) VALUES (?, ?)",
                                    (record["key"], str(config.get("budget") or budget)))
        return added

    def claim(self, key: str, retry_failed: bool = True) -> bool:
        """Atomically mark ``key`` as running by this driver; False when it is final or live elsewhere."""
        with self._transaction():
            row = self.db.execute(
                "SELECT status, host, pid, owner, heartbeat FROM runs WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                raise KeyError(key)
            claimable = (
                row["status"] == "pending"
                or (row["status"] == "failed" and retry_failed)
                or (row["status"] == "running" and self._abandoned(row))
            )
            if claimable:
                now = time.time()
                self.db.execute(
                    "UPDATE runs SET status = 'running', host = ?, pid = ?, owner = ?, started = ?, "
                    "heartbeat = ?, finished = NULL, error = NULL, attempts = attempts + 1 WHERE key = ?",
                    (self.host, os.getpid(), self.owner, now, now, key),
                )
        return claimable

    def heartbeat(self, keys: Iterable[str]) -> None:
        """Renew the lease of this driver's running rows."""
        keys = list(keys)
        if keys:
            with self._transaction():
                self.db.executemany(
                    "UPDATE runs SET heartbeat = ? WHERE key = ? AND owner = ?",
                    [(time.time(), k, self.owner) for k in keys],
                )

    def finish(
        self,
        key: str,
        status: str,
        metrics: dict[str, Any] | None = None,
        history: list[Any] | None = None,
        error: str | None = None,
        wall_seconds: float | None = None,
        host: str | None = None,
        pid: int | None = None,
        crashed: bool = False,
    ) -> None:
        """Record a run's outcome (``host``/``pid``: where it ran; ``crashed``: its worker died)."""
        if status not in ("done", "diverged", "failed"):
            raise ValueError(f"not a final status: {status!r}")
        with self._transaction():
            self.db.execute(
                "UPDATE runs SET status = ?, metrics = ?, history = ?, error = ?, wall_seconds = ?, "
                "host = COALESCE(?, host), pid = COALESCE(?, pid), finished = ?, crashes = crashes + ? "
                "WHERE key = ? AND owner = ?",
                (
                    status,
                    None if metrics is None else canonical_json(json_ready(metrics)),
                    None if history is None else canonical_json(json_ready(history)),
                    error,
                    wall_seconds,
                    host,
                    pid,
                    time.time(),
                    int(crashed),
                    key,
                    self.owner,
                ),
            )

    def release(self, keys: Iterable[str], crashed: bool = False) -> None:
        """Put this driver's running rows back to pending (interrupted, or their worker died)."""
        with self._transaction():
            self.db.executemany(
                "UPDATE runs SET status = 'pending', owner = NULL, crashes = crashes + ? "
                "WHERE key = ? AND owner = ? AND status = 'running'",
                [(int(crashed), k, self.owner) for k in keys],
            )

    def adopt(self, pending: dict[str, dict[str, Any]], targets: Sequence[str], retry_failed: bool = True
              ) -> list[str]:
        """Finish runs from their twins: for each ``pending`` key (its configuration) whose row is pending (or
        failed, with ``retry_failed``), copy the outcome of a final run of one of ``targets`` under this numerics
        version whose configuration differs only in its :data:`LABEL_KEYS` (target, budget, sweep). The copy's ``wall_seconds`` is 0
        (no run time spent). Returns the adopted keys; each keeps its own key, so nothing is re-keyed."""
        if not pending or not targets:
            return []
        twins: dict[str, sqlite3.Row] = {}
        marks = ", ".join("?" * len(targets))
        for row in self.db.execute(
            f"SELECT * FROM runs WHERE status IN ('done', 'diverged') AND code_version = ? AND target IN ({marks}) "
            "ORDER BY finished, key", (CODE_VERSION, *targets)
        ):
            twins.setdefault(_shared_part(json.loads(row["config"])), row)
        adopted, now = [], time.time()
        retry = ("pending", "failed") if retry_failed else ("pending",)
        with self._transaction():
            for key, config in pending.items():
                twin = twins.get(_shared_part(config))
                if twin is None or twin["key"] == key:
                    continue
                cursor = self.db.execute(
                    "UPDATE runs SET status = ?, metrics = ?, history = ?, error = NULL, wall_seconds = 0, "
                    "host = ?, pid = ?, owner = NULL, started = ?, heartbeat = NULL, finished = ? "
                    f"WHERE key = ? AND status IN ({', '.join('?' * len(retry))})",
                    (twin["status"], twin["metrics"], twin["history"], twin["host"], twin["pid"], now, now, key,
                     *retry),
                )
                if cursor.rowcount:
                    adopted.append(key)
        return adopted

    def crashes(self, key: str) -> int:
        return int(self.db.execute("SELECT crashes FROM runs WHERE key = ?", (key,)).fetchone()[0])

    def start_invocation(self, target: str, budget: str, command: str, machine: dict[str, Any]) -> int:
        with self._transaction():
            cur = self.db.execute(
                "INSERT INTO invocations (target, budget, command, machine, code_version, started) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (target, budget, command, canonical_json({**machine, "source_commit": source_commit()}), CODE_VERSION,
                 time.time()),
            )
        return int(cur.lastrowid)

    def end_invocation(self, invocation: int, summary: dict[str, Any]) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE invocations SET finished = ?, summary = ? WHERE id = ?",
                (time.time(), canonical_json(json_ready(summary)), invocation),
            )

    # ------------------------------------------------------------------------------------------ reading
    def rows(
        self, target: str | None = None, keys: Sequence[str] | None = None, budget: str | None = None
    ) -> list[dict[str, Any]]:
        """Rows as dicts with ``config``/``metrics``/``history`` decoded, oldest first."""
        sql, args = "SELECT runs.* FROM runs", []
        where = []
        if budget is not None:
            sql += " JOIN requests ON requests.key = runs.key"
            where.append("requests.budget = ?")
            args.append(budget)
        if target is not None:
            where.append("runs.target = ?")
            args.append(target)
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = [self._decode(r) for r in self.db.execute(sql + " ORDER BY runs.created, runs.key", args)]
        if keys is not None:
            order = {k: i for i, k in enumerate(keys)}
            rows = sorted((r for r in rows if r["key"] in order), key=lambda r: order[r["key"]])
        return rows

    def invocations(self, target: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM invocations" + (" WHERE target = ?" if target else "") + " ORDER BY id"
        out = []
        for r in self.db.execute(sql, (target,) if target else ()):
            d = dict(r)
            d["machine"] = json.loads(d["machine"])
            d["summary"] = json.loads(d["summary"]) if d["summary"] else None
            out.append(d)
        return out

    # ---------------------------------------------------------------------------------------- internals
    def _abandoned(self, row: sqlite3.Row) -> bool:
        if row["heartbeat"] is None or time.time() - row["heartbeat"] > self.lease_seconds:
            return True
        if row["host"] != self.host:
            return False
        if row["pid"] == os.getpid():
            return row["owner"] not in _LIVE_OWNERS
        return not pid_alive(int(row["pid"]))

    @staticmethod
    def _decode(row: sqlite3.Row) -> dict[str, Any]:
        d = dict(row)
        d["config"] = json.loads(d["config"])
        for name in ("metrics", "history"):
            d[name] = json.loads(d[name]) if d[name] is not None else None
        return d

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): the write lock is taken before any read."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
