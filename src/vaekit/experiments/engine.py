"""Grid engine: run a target's configurations on a local process pool, on Ray or in this process; record each.

Only this driver writes the database. Each run executes in a worker (:func:`execute_run`, self-contained: it
imports the target by name, seeds torch/numpy/random with the run's seed, and returns a JSON-ready record); a
raised exception becomes a ``failed`` row and the grid goes on. A worker that dies (kill -9, out of memory)
has its runs retried; runs that were in flight together when a pool broke are retried one at a time, so the
one that kills its worker is found and marked failed after :data:`MAX_CRASHES` deaths without blaming others.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import random
import signal
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..training import DEVICE_ENV
from .store import FINAL, Store, json_ready, pid_alive
from .targets import get_target, load_targets

#: the backends ``vaekit reproduce --backend`` offers; :func:`make_backend` also takes ``"inprocess"`` (tests, debugging)
BACKENDS = ("local", "ray")
#: deaths of a run's worker before the run is marked failed
MAX_CRASHES = 2
#: seconds between lease renewals of running rows
HEARTBEAT_SECONDS = 10.0


def cpu_count() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# ------------------------------------------------------------------------------------------- worker side
def execute_run(target_name: str, config: dict[str, Any], threads: int | None = None) -> dict[str, Any]:
    """Run one configuration in this process; never raises for the run's own errors.

    Returns ``{"status", "metrics", "history", "error", "wall_seconds", "host", "pid"}``; ``status`` is
    ``diverged`` when the target reports ``metrics["diverged"] is True``.
    """
    if threads:
        torch.set_num_threads(threads)
    seed = int(config.get("seed", 0))
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    start = time.perf_counter()
    record: dict[str, Any] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "metrics": None,
        "history": None,
        "error": None,
    }
    try:
        with contextlib.redirect_stdout(sys.stderr):  # keep the driver's stdout for its own (JSON) output
            metrics = dict(get_target(target_name).execute(dict(config)))
        history = metrics.pop("history", None)
        record.update(
            metrics=json_ready(metrics),
            history=json_ready(history),
            status="diverged" if metrics.get("diverged") is True else "done",
        )
    except Exception:  # noqa: BLE001 - a failed run is recorded, the grid goes on
        record.update(status="failed", error=traceback.format_exc(limit=20)[-8000:])
    record["wall_seconds"] = time.perf_counter() - start
    return record


def _init_local_worker(threads: int, driver: int, target_modules: str) -> None:
    """Process-pool initializer: thread budget, the driver's target modules, and exit when the driver dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it releases the runs and ends us
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    if target_modules:
        os.environ["VAEKIT_TARGET_MODULES"] = target_modules

    parent = os.getppid()  # the driver (spawn) or its fork server, which exits with the driver

    def watch() -> None:
        while os.getppid() == parent and pid_alive(driver):
            time.sleep(0.5)
        os._exit(1)  # the driver was killed: stop computing a result nobody will record

    threading.Thread(target=watch, daemon=True).start()


# ------------------------------------------------------------------------------------------------ backends
@dataclasses.dataclass
class Event:
    """A run came back (``record``), or the worker(s) running ``keys`` died (``crash`` says how)."""

    keys: tuple[str, ...]
    record: dict[str, Any] | None = None
    crash: str | None = None


class Backend(Protocol):
    capacity: int

    def submit(self, key: str, target: str, config: dict[str, Any]) -> None: ...

    def wait(self, timeout: float) -> list[Event]: ...

    def close(self, cancel: bool) -> None: ...


def _context() -> multiprocessing.context.BaseContext:
    """forkserver where there is one (workers fork from a process that imported torch once), else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["vaekit.experiments.engine", "vaekit.trained"])
    return context


class LocalBackend:
    """``ProcessPoolExecutor`` (forkserver or spawn): ``workers`` processes of ``threads`` torch threads."""

    def __init__(self, workers: int, threads: int) -> None:
        self.capacity, self.threads = workers, threads
        self.pool: ProcessPoolExecutor | None = None
        self.futures: dict[Future, str] = {}

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                self.capacity,
                mp_context=_context(),
                initializer=_init_local_worker,
                initargs=(self.threads, os.getpid(), os.environ.get("VAEKIT_TARGET_MODULES", "")),
            )
        return self.pool

    def submit(self, key: str, target: str, config: dict[str, Any]) -> None:
        try:
            future = self._pool().submit(execute_run, target, config, self.threads)
        except (EOFError, ConnectionError):  # the process that forks the workers died: start a new pool, once
            self.close(cancel=True)
            future = self._pool().submit(execute_run, target, config, self.threads)
        except BrokenProcessPool as err:  # a worker died since the last wait: this run goes back with the others
            (future := Future()).set_exception(err)
        self.futures[future] = key

    def wait(self, timeout: float) -> list[Event]:
        done, _ = wait(list(self.futures), timeout=timeout, return_when=FIRST_COMPLETED)
        if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
            # a broken pool fails every run still in it; keep those that had finished
            done = set(self.futures)
            wait(done, timeout=60)
        events, broken = [], []
        for future in done:
            key = self.futures.pop(future)
            error = future.exception() if future.done() else BrokenProcessPool()
            if error is None:
                events.append(Event((key,), record=future.result()))
            elif isinstance(error, BrokenProcessPool):
                broken.append(key)
            else:  # the result did not come back (e.g. it could not be pickled)
                events.append(Event((key,), crash=f"{type(error).__name__}: {error}"))
        if broken:
            self.close(cancel=True)
            events.append(Event(tuple(broken), crash="worker process died (killed, or out of memory)"))
        return events

    def close(self, cancel: bool) -> None:
        if self.pool is not None:
            if cancel:
                for process in list(getattr(self.pool, "_processes", {}).values()):
                    with contextlib.suppress(Exception):
                        process.kill()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


class RayBackend:
    """Ray remote tasks (one CPU each); results come back to this driver, which alone writes the database."""

    def __init__(self, workers: int, address: str | None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--backend ray needs Ray: pip install 'vaekit[ray]'") from None
        self.ray = ray
        self.owned = not ray.is_initialized()
        if self.owned:  # a local instance inherits this environment; a cluster's nodes need vaekit installed
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        self.capacity = max(workers, int(ray.cluster_resources().get("CPU", workers)))
        # vaekit reproduce --device: sent to every task (Ray workers need not inherit this environment); a CUDA
        # device asks Ray for one GPU per task, which Ray then makes the task's "cuda"
        device = os.environ.get(DEVICE_ENV) or None
        gpus = int(device is not None and device.startswith("cuda"))
        if gpus and not ray.cluster_resources().get("GPU"):
            if self.owned:
                ray.shutdown()
            raise ConfigError(f"--device {device}: the Ray cluster has no GPU")
        env = {"env_vars": {DEVICE_ENV: "cuda" if gpus else device}} if device else None
        self.remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0, runtime_env=env)(execute_run)
        self.refs: dict[Any, str] = {}

    def submit(self, key: str, target: str, config: dict[str, Any]) -> None:
        self.refs[self.remote.remote(target, config, 1)] = key

    def wait(self, timeout: float) -> list[Event]:
        if not self.refs:
            return []
        ready, _ = self.ray.wait(list(self.refs), num_returns=1, timeout=timeout)
        events = []
        for ref in ready:
            key = self.refs.pop(ref)
            try:
                events.append(Event((key,), record=self.ray.get(ref)))
            except self.ray.exceptions.RayError as err:
                events.append(Event((key,), crash=f"Ray worker lost: {type(err).__name__}: {str(err)[:300]}"))
        return events

    def close(self, cancel: bool) -> None:
        if cancel:
            for ref in self.refs:
                with contextlib.suppress(Exception):
                    self.ray.cancel(ref, force=True)
        self.refs.clear()
        if self.owned:
            self.ray.shutdown()


class InProcessBackend:
    """Each run executes in this process when it is submitted, one at a time (for tests and debugging: a
    breakpoint or a profiler sees the run). It seeds this process's random generators like a worker would and
    sets torch's threads only when ``threads`` is given; no lease is renewed while a run computes."""

    capacity = 1

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads
        self.events: list[Event] = []

    def submit(self, key: str, target: str, config: dict[str, Any]) -> None:
        self.events.append(Event((key,), record=execute_run(target, config, self.threads)))

    def wait(self, timeout: float) -> list[Event]:
        events, self.events = self.events, []
        return events

    def close(self, cancel: bool) -> None:
        self.events.clear()


def make_backend(
    backend: str, workers: int, threads: int | None = None, ray_address: str | None = None
) -> Backend:
    if backend == "local":
        return LocalBackend(workers, threads or max(1, cpu_count() // workers))
    if backend == "ray":
        return RayBackend(workers, ray_address)
    if backend == "inprocess":
        return InProcessBackend(threads)
    raise ConfigError(f"unknown backend {backend!r}; choose one of {(*BACKENDS, 'inprocess')}")


# -------------------------------------------------------------------------------------------------- driver
@dataclasses.dataclass
class GridSummary:
    """What one grid invocation did."""

    target: str
    keys: list[str]
    counts: dict[str, int]  #: final status of every run of the grid: done / diverged / failed / busy
    already_finished: int  #: runs found finished in the database before this invocation (``shared`` included)
    executed: int  #: runs this invocation computed
    failures: list[dict[str, Any]]  #: {"key", "config", "error"} of the grid's failed runs
    wall_seconds: float
    shared: int = 0  #: runs finished from a twin of another target of the same run family (no run time)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"keys": len(self.keys)}


def run_grid(
    store: Store,
    target: str,
    configs: Sequence[dict[str, Any]],
    budget: str,
    *,
    workers: int = 1,
    backend: str = "local",
    threads: int | None = None,
    ray_address: str | None = None,
    retry_failed: bool = True,
    progress: bool = True,
) -> GridSummary:
    """Run every configuration not yet finished in ``store``; return the grid's final state.

    Runs another target of the same run family already finished are copied, not rerun. Runs claimed by another
    live driver are left to it (counted as ``busy``). On an interrupt the runs in flight go back to pending, so
    the next invocation redoes them.
    """
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    start = time.perf_counter()
    keys = store.add(configs, budget)
    config_of = dict(zip(keys, configs))
    todo, finished = _unfinished(store, keys)
    shared = _adopt_twins(store, target, todo, config_of, retry_failed)
    grid = _Grid(store, target, config_of, todo, retry_failed)
    bar = tqdm(total=len(set(keys)), initial=finished + shared, unit="run", desc=target,
               disable=None if progress else True, dynamic_ncols=True)
    try:
        runner = make_backend(backend, min(workers, len(todo)), threads, ray_address) if todo else None
        grid.drive(runner, bar)
    finally:
        bar.close()
    return _summarise(store, target, keys, finished + shared, grid.executed, shared, start)


def _unfinished(store: Store, keys: Sequence[str]) -> tuple[deque[str], int]:
    """The grid's keys still to run (each once, in order), and how many were already final."""
    before = {r["key"]: r["status"] for r in store.rows(keys=keys)}
    finished = sum(before[k] in FINAL for k in keys)
    return deque(k for k in dict.fromkeys(keys) if before[k] not in FINAL), finished


def _adopt_twins(store: Store, target: str, todo: deque[str], config_of: dict[str, dict[str, Any]],
                 retry_failed: bool) -> int:
    """Finish the runs of ``todo`` that a target of the same run family already ran; drop them from ``todo``."""
    family = get_target(target).run_family
    if family is None or not todo:
        return 0
    siblings = [name for name, t in load_targets().items() if t.run_family == family]
    adopted = set(store.adopt({k: config_of[k] for k in todo}, siblings, retry_failed))
    for key in adopted:
        todo.remove(key)
    return len(adopted)


@dataclasses.dataclass
class _Grid:
    """The driver loop's state: runs to do, runs whose pool broke (retried one at a time), runs in flight."""

    store: Store
    target: str
    config_of: dict[str, dict[str, Any]]
    todo: deque[str]
    retry_failed: bool
    suspects: deque[str] = dataclasses.field(default_factory=deque)
    in_flight: set[str] = dataclasses.field(default_factory=set)
    executed: int = 0

    def drive(self, runner: Backend | None, bar: tqdm) -> None:
        """Hand out runs and record what comes back until none is left; on any interrupt put the runs in flight
        back to pending and stop the workers."""
        last_beat = time.monotonic()
        try:
            while self.todo or self.suspects or self.in_flight:
                self._hand_out(runner)
                if not self.in_flight:
                    continue
                for event in runner.wait(timeout=HEARTBEAT_SECONDS):
                    self._record(event, bar)
                if time.monotonic() - last_beat > HEARTBEAT_SECONDS / 2:
                    self.store.heartbeat(self.in_flight)
                    last_beat = time.monotonic()
        except BaseException:
            self.store.release(self.in_flight)
            if runner is not None:
                runner.close(cancel=True)
            raise
        if runner is not None:
            runner.close(cancel=False)

    def _hand_out(self, runner: Backend) -> None:
        """A suspect alone on an empty pool, else fresh runs up to the backend's capacity."""
        while self.suspects and not self.in_flight:
            if self._submit(runner, self.suspects.popleft()):
                break
        while self.todo and not self.suspects and len(self.in_flight) < runner.capacity:
            self._submit(runner, self.todo.popleft())

    def _submit(self, runner: Backend, key: str) -> bool:
        """Claim ``key`` and hand it to a worker; False when it is final or another driver holds it."""
        if key in self.in_flight or not self.store.claim(key, self.retry_failed):
            return False
        self.in_flight.add(key)  # first, so that an interrupt during the hand-over still releases it
        runner.submit(key, self.target, self.config_of[key])
        return True

    def _record(self, event: Event, bar: tqdm) -> None:
        """Store a run that came back, or deal with the death of its worker."""
        self.in_flight.difference_update(event.keys)
        if event.record is None:
            _crashed(self.store, event, self.suspects, bar)
            return
        record = event.record
        self.store.finish(event.keys[0], record["status"], record["metrics"], record["history"], record["error"],
                          record["wall_seconds"], record["host"], record["pid"])
        self.executed += 1
        bar.update(1)


def _summarise(store: Store, target: str, keys: list[str], already: int, executed: int, shared: int,
               start: float) -> GridSummary:
    """The grid's final state from the database."""
    rows = store.rows(keys=list(dict.fromkeys(keys)))
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "diverged", "failed")}
    counts["busy"] = len(rows) - sum(counts.values())
    failures = [
        {"key": r["key"], "config": r["config"], "error": r["error"]} for r in rows if r["status"] == "failed"
    ]
    return GridSummary(target, keys, counts, already, executed, failures, time.perf_counter() - start, shared)


def _crashed(store: Store, event: Event, suspects: deque[str], bar: tqdm) -> None:
    """A worker died: retry its runs (alone when several shared the pool); fail a run that died too often."""
    if len(event.keys) > 1:
        store.release(event.keys)
        suspects.extend(event.keys)
        return
    key = event.keys[0]
    if store.crashes(key) + 1 >= MAX_CRASHES:
        store.finish(
            key, "failed", error=f"{event.crash}; the run's worker died {MAX_CRASHES} times", crashed=True
        )
        bar.update(1)
    else:
        store.release([key], crashed=True)
        suspects.append(key)
