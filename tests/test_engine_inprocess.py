"""The engine's in-process backend, and runs shared between the targets of a run family through the database."""

from __future__ import annotations

import pytest

from vaekit.experiments.engine import run_grid
from vaekit.experiments.store import Store, config_key
from vaekit.experiments.targets import get_target


@pytest.fixture()
def twins(monkeypatch):
    monkeypatch.setenv("VAEKIT_TARGET_MODULES", "reproduce_targets")
    import reproduce_targets

    reproduce_targets.EXECUTED.clear()
    return reproduce_targets.EXECUTED


def grid(store: Store, name: str, budget: str = "quick"):
    return run_grid(store, name, get_target(name).runs(budget), budget, backend="inprocess", progress=False)


def test_in_process_backend_runs_in_this_process_and_records_each_run(tmp_path, twins):
    with Store(tmp_path / "db.sqlite") as store:
        summary = grid(store, "t-twin-a")
        assert twins == {"t-twin-a": 2} and summary.executed == 2 and summary.counts["done"] == 2
        rows = store.rows("t-twin-a")
        assert sorted(r["metrics"]["value"] for r in rows) == [0.5, 1.5] and all(r["wall_seconds"] >= 0 for r in rows)
        assert grid(store, "t-twin-a").executed == 0 and twins == {"t-twin-a": 2}  # resumed: nothing redone


def test_a_run_family_shares_finished_runs_without_re_keying(tmp_path, twins):
    with Store(tmp_path / "db.sqlite") as store:
        grid(store, "t-twin-a")
        again = grid(store, "t-twin-b", budget="full")  # another target and budget: the same two runs
        assert twins == {"t-twin-a": 2} and again.executed == 0 and again.shared == 2
        assert again.already_finished == 2 and again.counts["done"] == 2
        b = store.rows("t-twin-b")
        assert sorted(r["key"] for r in b) == sorted(config_key(c) for c in get_target("t-twin-b").runs("full"))
        by_seed = {r["config"]["seed"]: r["metrics"] for r in store.rows("t-twin-a")}
        assert {r["config"]["seed"]: r["metrics"] for r in b} == by_seed == {0: {"value": 0.5}, 1: {"value": 1.5}}
        assert {r["wall_seconds"] for r in b} == {0}
        # the report's footer says so rather than stating the copies' zero seconds as their run time
        from vaekit.experiments.report import report_from_db

        footer = (tmp_path / "b" / "report.md").read_text() if report_from_db(
            get_target("t-twin-b"), store, tmp_path / "b") else ""
        assert "(2 runs adopted from a target of the same run family" in footer
        lone = grid(store, "t-loner")  # same configurations, no family: its own runs
        assert twins == {"t-twin-a": 2, "t-loner": 2} and lone.shared == 0


def test_a_twin_of_another_numerics_version_is_not_shared(tmp_path, twins, monkeypatch):
    from vaekit.experiments import store as store_module

    with Store(tmp_path / "db.sqlite") as store:
        monkeypatch.setattr(store_module, "CODE_VERSION", "numerics-0")
        grid(store, "t-twin-a")
        monkeypatch.undo()
        monkeypatch.setenv("VAEKIT_TARGET_MODULES", "reproduce_targets")
        assert grid(store, "t-twin-b").shared == 0 and twins == {"t-twin-a": 2, "t-twin-b": 2}


@pytest.mark.parametrize("failure", ["forker", "broken"])
def test_a_failed_submit_restarts_or_requeues_instead_of_ending_the_grid(tmp_path, monkeypatch, failure):
    """Two failures of submit found in the field: the forkserver of a running grid was killed (EOFError: the local
    backend starts a new pool once), and, under load in CI, a worker died after wait() returned
    (BrokenProcessPool: the run comes back as a crash with the pool's others and is run again). Either way the grid
    goes on instead of raising out of vaekit reproduce."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from vaekit.experiments.engine import run_grid

    original, failures = ProcessPoolExecutor.submit, []
    error = EOFError("unexpected EOF") if failure == "forker" else BrokenProcessPool("a child process died")

    def failing_once(self, *args, **kwargs):
        if not failures:
            failures.append(1)
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ProcessPoolExecutor, "submit", failing_once)
    configs = get_target("toy").runs("quick", seeds=1, datasets=["blobs"])[:2]
    with Store(tmp_path / "db.sqlite") as store:
        summary = run_grid(store, "toy", configs, "quick", workers=1, backend="local")
    assert failures == [1] and summary.counts["done"] == 2
