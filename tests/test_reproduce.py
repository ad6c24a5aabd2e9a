"""Grid engine, results database and reports: resume after kill -9, stable hashes, failures, Ray vs local."""

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vaekit
from vaekit.cli import main
from vaekit.errors import ConfigError
from vaekit.experiments import store as store_module
from vaekit.experiments import targets as targets_module
from vaekit.experiments.engine import run_grid
from vaekit.experiments.stats import paired_best
from vaekit.experiments.store import Store, config_key
from vaekit.experiments.targets import get_target
from vaekit.interrupts import StopSignals

TESTS = Path(__file__).resolve().parent
SRC = Path(vaekit.__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _test_targets(monkeypatch):
    """Workers and subprocesses find the test-only targets of reproduce_targets.py by name."""
    monkeypatch.setenv("VAEKIT_TARGET_MODULES", "reproduce_targets")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")])
    )


def rows(db):
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM runs")]


# ------------------------------------------------------------------------------------------------ hashing
TOY = get_target("toy").runs("quick")[0]


def test_same_configuration_hashes_the_same_across_processes():
    shuffled = dict(reversed(list(TOY.items())))
    code = (
        "import json, sys; from vaekit.experiments.store import config_key; "
        "print(config_key(json.loads(sys.argv[1])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(shuffled)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert done.stdout.strip() == config_key(TOY) == config_key(shuffled)


def test_changing_any_hyperparameter_or_the_code_version_changes_the_hash():
    changed = {
        "dataset": "heavy-tailed",
        "likelihood": "student-t",
        "seed": 1,
        "epochs": 3,
        "n_rows": 601,
        "hidden": [32, 16],
        "latent_dim": 3,
        "batch_size": 49,
        "lr": 2e-3,
        "importance_samples": 21,
        "data_seed": 1,
        "target": "toy2",
    }
    assert set(changed) == set(TOY)  # every axis of the configuration is covered
    keys = {config_key(TOY)} | {config_key({**TOY, k: v}) for k, v in changed.items()}
    keys |= {config_key(TOY, code_version="0.0.0"), config_key({**TOY, "lr": 1e-3 + 1e-12})}
    assert len(keys) == len(changed) + 3


# ------------------------------------------------------------------------------------------------ claiming
def test_claims_are_exclusive_and_abandoned_runs_are_reclaimed(tmp_path):
    db = tmp_path / "r.sqlite"
    config = {"target": "t-sleep", "dataset": "a", "method": "m1", "seed": 0, "sleep": 0}
    with Store(db) as a, Store(db) as b:
        (key,) = a.add([config], "quick")
        assert a.claim(key) and not b.claim(key)  # a is alive: b must not run it too
        a.finish(key, "done", {"value": 1})
        assert not b.claim(key) and not a.claim(key)  # done is final

        (key2,) = a.add([{**config, "seed": 1}], "quick")
        assert a.claim(key2)
    with Store(db) as c:  # a closed with key2 still running: its session is gone, so key2 is abandoned
        assert c.claim(key2)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        c.db.execute("UPDATE runs SET pid = ?, owner = 'x' WHERE key = ?", (dead.pid, key2))
        with Store(db) as d:
            assert d.claim(key2)  # same host, pid gone
            d.db.execute(
                "UPDATE runs SET host = 'elsewhere', heartbeat = ? WHERE key = ?", (time.time(), key2)
            )
            assert not c.claim(key2)  # another host with a fresh lease
            d.db.execute(
                "UPDATE runs SET heartbeat = ? WHERE key = ?",
                (time.time() - store_module.LEASE_SECONDS - 1, key2),
            )
            assert c.claim(key2)  # lease expired
    assert [r["attempts"] for r in rows(db)] == [1, 4]


# ------------------------------------------------------------------------------------------------ failures
def test_failed_run_is_kept_with_its_error_and_the_grid_goes_on(tmp_path):
    db = tmp_path / "r.sqlite"
    target = get_target("t-fail")
    with Store(db) as store:
        summary = run_grid(store, "t-fail", target.runs(), "quick", workers=2, progress=False)
        assert summary.counts == {"done": 2, "diverged": 1, "failed": 1, "busy": 0}
        assert len(summary.failures) == 1 and "boom: seed 1 always fails" in summary.failures[0]["error"]
        again = run_grid(
            store, "t-fail", target.runs(), "quick", workers=1, retry_failed=False, progress=False
        )
        assert again.executed == 0 and again.already_finished == 3
    by_seed = {json.loads(r["config"])["seed"]: r for r in rows(db)}
    assert by_seed[1]["status"] == "failed" and "ValueError" in by_seed[1]["error"]
    assert by_seed[2]["status"] == "diverged" and json.loads(by_seed[2]["metrics"])["value"] == 2.0
    assert json.loads(by_seed[3]["metrics"]) == {"value": 3.0, "diverged": False}


def test_killed_worker_run_is_redone_and_a_run_that_always_kills_it_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("T_CRASH_MARKER", str(tmp_path / "marker"))
    target = get_target("t-crash")
    with Store(tmp_path / "r.sqlite") as store:
        summary = run_grid(store, "t-crash", target.runs(), "quick", workers=2, progress=False)
    assert summary.counts == {"done": 3, "diverged": 0, "failed": 1, "busy": 0}
    by_name = {json.loads(r["config"])["crash"]: r for r in rows(tmp_path / "r.sqlite")}
    assert by_name["once"]["status"] == "done" and by_name["once"]["attempts"] >= 2  # redone after its death
    assert by_name["always"]["status"] == "failed" and "worker process died" in by_name["always"]["error"]
    assert by_name["always"]["crashes"] == 2  # died alone twice (not counted when it shared a broken pool)
    assert by_name["never"]["crashes"] == by_name["never-2"]["crashes"] == 0  # bystanders are not blamed


# ------------------------------------------------------------------------------------------------ resume
def _reproduce(db, out, *extra):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vaekit.cli",
            "reproduce",
            "t-sleep",
            "--seeds",
            "3",
            "--workers",
            "2",
            "--db",
            str(db),
            "--out",
            str(out),
            "--no-progress",
            "--json",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "T_SLEEP": "0.6"},
        start_new_session=True,
    )


def test_resume_after_kill_9_ends_with_one_done_row_per_configuration(tmp_path):
    db, out = tmp_path / "r.sqlite", tmp_path / "out"
    first = _reproduce(db, out)
    deadline = time.time() + 60
    while time.time() < deadline:
        with contextlib.suppress(sqlite3.OperationalError):  # the file may exist before its tables
            if db.exists() and sum(r["status"] == "done" for r in rows(db)) >= 2:
                break
        time.sleep(0.1)
    os.kill(first.pid, signal.SIGKILL)  # the driver only; its orphaned workers notice and exit
    first.communicate(timeout=30)  # returns once the workers, which share its stdout, are gone too
    before = {r["key"]: r for r in rows(db)}
    assert 2 <= sum(r["status"] == "done" for r in before.values()) < 12
    assert any(r["status"] == "running" for r in before.values())  # left behind by the killed driver

    second = _reproduce(db, out)
    stdout, stderr = second.communicate(timeout=120)
    assert second.returncode == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    after = rows(db)
    assert len(after) == 12 == len({r["config"] for r in after})
    assert all(r["status"] == "done" for r in after)
    assert result["executed"] + result["already_finished"] == 12 and result["executed"] < 12
    for r in after:  # finished runs were not redone; interrupted ones were
        if before[r["key"]]["status"] == "done":
            assert (r["finished"], r["attempts"]) == (before[r["key"]]["finished"], 1)
        if before[r["key"]]["status"] == "running":
            assert r["attempts"] == 2
    assert "| a |" in result["report"]["markdown"] and (out / "report.md").is_file()


def _wait_for_done(db, n, proc):
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        with contextlib.suppress(sqlite3.OperationalError):  # the file may exist before its tables
            if db.exists() and sum(r["status"] == "done" for r in rows(db)) >= n:
                return
        time.sleep(0.1)
    pytest.fail(f"fewer than {n} runs finished; driver exit status {proc.poll()}")


@pytest.mark.parametrize("to", ["driver", "process group"])
def test_sigterm_puts_the_runs_in_flight_back_to_pending_and_exits_143(tmp_path, to):
    db, out = tmp_path / "r.sqlite", tmp_path / "out"
    first = _reproduce(db, out)
    _wait_for_done(db, 2, first)
    # what a scheduler sends: to the driver alone, or (SLURM, systemd) to it and its workers at once
    os.kill(first.pid, signal.SIGTERM) if to == "driver" else os.killpg(first.pid, signal.SIGTERM)
    stdout, stderr = first.communicate(timeout=60)
    assert first.returncode == 143, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    statuses = [r["status"] for r in rows(db)]
    assert "running" not in statuses and "pending" in statuses and statuses.count("done") >= 2
    assert all(r["crashes"] == 0 for r in rows(db))  # a stop is not a worker's crash
    assert not out.exists()  # no report of a grid that did not finish

    second = _reproduce(db, out)
    stdout, stderr = second.communicate(timeout=120)
    assert second.returncode == 0, stderr
    assert [r["status"] for r in rows(db)] == ["done"] * 12


def test_a_sigint_the_parent_ignored_stays_ignored_and_sigterm_still_stops():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for a job started with `&` or nohup
    try:
        with StopSignals() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)
            assert stop.exit_status == 143
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, previous)
    with StopSignals() as stop:  # a SIGINT the parent did not ignore stops the command
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        assert stop.exit_status == 130


# ------------------------------------------------------------------------------------------------ reports
def test_report_from_the_database_alone(tmp_path, monkeypatch, capsys):
    db = tmp_path / "r.sqlite"
    target = get_target("t-sleep")
    values = {
        ("a", "m1"): [1.0, 2.0, 3.0],
        ("a", "m2"): [1.1, 2.2, 2.9],
        ("b", "m1"): [0.0, 0.1, 0.2],
        ("b", "m2"): [5.0, 5.1, 5.3],
    }
    with Store(db) as store:  # a hand-made database: nothing is executed
        for config in target.runs(seeds=3):
            (key,) = store.add([config], "quick")
            store.claim(key)
            store.finish(
                key,
                "done",
                {"value": values[config["dataset"], config["method"]][config["seed"]]},
                history=[{"epoch": 1, "loss": 0.0}],
            )
    monkeypatch.setattr(
        type(target), "execute", lambda self, config: pytest.fail("report must not run anything")
    )
    assert main(["report", "t-sleep", "--db", str(db), "--out", str(tmp_path / "out"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    table = result["markdown"]
    assert "| Dataset | m1 | m1 (thesis) | m2 |" in table
    assert "| a | **2.000 ± 1.000** | 1.500 | **2.067 ± 0.907** |" in table  # tie within noise: both bold
    assert "| b | 0.100 ± 0.100 | – | **5.133 ± 0.153** |" in table
    assert paired_best({"m1": values["b", "m1"], "m2": values["b", "m2"]}) == {"m1": False, "m2": True}
    csv = (tmp_path / "out" / "t-sleep.csv").read_text().splitlines()
    assert csv[0] == "dataset,column,mean,std,n,missing,bold,thesis" and csv[1].startswith(
        "a,m1,2.0,1.0,3,0,1,1.5"
    )
    assert "Runs: 12 done, 0 diverged, 0 failed" in table


def test_report_rebuilds_from_the_raw_results_beside_a_report(tmp_path, capsys):
    """``vaekit report TARGET --raw runs.jsonl`` gives the same table as the database it was exported from, and a
    missing or foreign file is a clear error with exit status 2 and no report folder."""
    db = tmp_path / "r.sqlite"
    target = get_target("t-sleep")
    with Store(db) as store:
        for config in target.runs(seeds=3):
            (key,) = store.add([config], "quick")
            store.claim(key)
            value = {"m1": 1.0, "m2": 2.0}[config["method"]] + 0.1 * config["seed"] + (config["dataset"] == "b")
            store.finish(key, "done", {"value": value})
    assert main(["report", "t-sleep", "--db", str(db), "--out", str(tmp_path / "db"), "--json"]) == 0
    from_db = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["markdown"]
    raw = tmp_path / "db" / "runs.jsonl"
    assert main(["report", "t-sleep", "--raw", str(raw), "--out", str(tmp_path / "raw"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    table = [line for line in result["markdown"].splitlines() if line.startswith("|")]
    assert table and table == [line for line in from_db.splitlines() if line.startswith("|")]
    assert "| b | 2.100 ± 0.100 |" in result["markdown"] and "12 done" in result["markdown"]
    assert (tmp_path / "raw" / "report.md").read_text() == result["markdown"]
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"name": "not a run"}\n')
    for bad, message in ((tmp_path / "absent.jsonl", "does not exist"), (foreign, "is not raw vaekit results")):
        assert main(["report", "t-sleep", "--raw", str(bad), "--out", str(tmp_path / "bad")]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()


def test_toy_report_writes_table_and_figure(tmp_path):
    target = get_target("toy")
    results = [
        {
            "config": c,
            "status": "done",
            "metrics": {
                "test_log_likelihood": -10.0 - c["seed"] - (c["likelihood"] == "gaussian"),
                "history": [{"epoch": e, "val_loss": 12.0 - e} for e in (1, 2)],
            },
        }
        for c in target.runs("quick")
    ]
    report = target.report(results, tmp_path)
    assert "| blobs | -11.500 ± 0.707 | **-10.500 ± 0.707** |" in report["markdown"]
    png = tmp_path / "toy-curves.png"
    assert str(png) in report["files"] and png.read_bytes()[:4] == b"\x89PNG"


def test_cli_errors_are_one_line_and_a_broken_target_module_hides_only_its_targets(capsys, monkeypatch):
    monkeypatch.setenv("VAEKIT_TARGET_MODULES", "reproduce_targets,no_such_target_module")
    try:
        assert main(["reproduce", "no-such-target"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "unknown target 'no-such-target'" in err
        assert "no_such_target_module failed to import" in err
        assert main(["reproduce", "--list", "--json"]) == 0
        out, err = capsys.readouterr()
        listed = {t["name"] for t in json.loads(out.strip().splitlines()[-1])["targets"]}
        assert {"toy", "t-sleep"} <= listed and "no_such_target_module" in err
    finally:
        targets_module.TARGET_LOAD_ERRORS.pop("no_such_target_module", None)



def test_a_budget_by_name_reaches_the_grid_and_the_recorded_command(tmp_path, capsys, monkeypatch):
    import argparse

    from vaekit.cli.reproduce import _command_line

    assert main(["reproduce", "toy", "--budget", "intermediate", "--db", str(tmp_path / "r.sqlite")]) == 2
    assert "toy has no 'intermediate' budget; it has quick, full" in capsys.readouterr().err
    assert not (tmp_path / "r.sqlite").exists()
    assert main(["reproduce", "toy", "--budget", "huge"]) == 2  # not a budget name at all
    from vaekit.cli import reproduce as reproduce_cli

    seen = []

    def stop(args, target):  # record which targets `all` would run, then stop before anything runs
        seen.append(target.name)
        raise ConfigError("stop here")

    monkeypatch.setattr(reproduce_cli, "_configs", stop)
    assert main(["reproduce", "all", "--budget", "intermediate", "--db", str(tmp_path / "r.sqlite")]) == 2
    assert seen == ["table-4.2"]  # `all --budget intermediate`: the targets that have that budget
    args = argparse.Namespace(budget="intermediate", seeds=1, datasets=None, only=None, workers=2, backend="local")
    assert _command_line(args, "table-4.2") == ("vaekit reproduce table-4.2 --budget intermediate --seeds 1 "
                                                "--workers 2 --backend local")
    assert _command_line(argparse.Namespace(**{**vars(args), "budget": "full"}), "t").startswith(
        "vaekit reproduce t --full --seeds 1")


def test_only_runs_the_chosen_settings_and_a_later_full_run_finds_them_done(tmp_path, capsys):
    db, out = str(tmp_path / "r.sqlite"), str(tmp_path / "out")
    common = ["--db", db, "--out", out, "--workers", "1", "--no-progress", "--json"]
    assert main(["reproduce", "t-sleep", "--only", "method=m2", "--only", "seed=0,2", *common]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ran = sorted((c["dataset"], c["method"], c["seed"]) for c in (json.loads(r["config"]) for r in rows(db)))
    assert ran == [("a", "m2", 0), ("a", "m2", 2), ("b", "m2", 0), ("b", "m2", 2)] and summary["executed"] == 4
    with sqlite3.connect(db) as con:
        assert "--only method=m2 --only seed=0,2" in con.execute("SELECT command FROM invocations").fetchone()[0]
    assert main(["reproduce", "t-sleep", *common]) == 0  # the whole grid: the four are found done, not rerun
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["already_finished"], summary["executed"]) == (4, 8)
    for bad, message in [("method", "expected KEY=VALUE[,VALUE...]"), ("colour=red", "no run of this grid has that "
                         "setting; its settings: dataset, method, seed"), ("method=m3", "these options select no runs")]:
        assert main(["reproduce", "t-sleep", "--only", bad, "--db", str(tmp_path / "x.sqlite")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.sqlite").exists()


def test_a_datasets_name_no_run_uses_is_refused_with_the_targets_names(tmp_path, capsys):
    """Reviewer-found: a misspelt --datasets name was dropped without a word (alone: "select no runs")."""
    for argv, message in ((["table-3.2", "--datasets", "cancer,cancr"], "--datasets cancr: no run of table-3.2 "
                           "uses it; did you mean cancer?"),
                          (["toy", "--datasets", "x"], "toy has no data set 'x'"),
                          (["figure-3.4", "--datasets", "cancer"], "figure-3.4 has no data sets to choose from")):
        assert main(["reproduce", *argv, "--db", str(tmp_path / "r.sqlite")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "r.sqlite").exists()


# ------------------------------------------------------------------------------------------------ Ray
def _metrics(db):
    out = {}
    for r in rows(db):
        metrics = json.loads(r["metrics"])
        metrics.pop("train_seconds")
        history = [{k: v for k, v in h.items() if k != "seconds"} for h in json.loads(r["history"])]
        out[r["key"]] = (r["status"], metrics, history)
    return out


def test_ray_backend_matches_the_local_backend(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'vaekit[ray]')")
    configs = get_target("toy").runs("quick", seeds=2, datasets=["blobs"])
    assert len(configs) == 4
    with Store(tmp_path / "local.sqlite") as store:
        local = run_grid(store, "toy", configs, "quick", workers=2, threads=1, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        with Store(tmp_path / "ray.sqlite") as store:
            remote = run_grid(store, "toy", configs, "quick", backend="ray", workers=2, progress=False)
    finally:
        ray.shutdown()
    assert local.counts["done"] == remote.counts["done"] == 4
    assert _metrics(tmp_path / "local.sqlite") == _metrics(tmp_path / "ray.sqlite")
    assert {r["pid"] for r in rows(tmp_path / "ray.sqlite")} != {os.getpid()}


def test_a_grid_resumes_from_the_exported_raw_results_on_a_fresh_database(tmp_path, capsys):
    """--resume-from: the runs.jsonl beside a report (what docs/results/ commits) seeds a new database, so a grid
    continues on another machine or in a later session without redoing a finished run."""
    def reproduce(db, out, *extra):
        argv = ["reproduce", "t-fail", "--seeds", "4", "--workers", "1", "--db", str(db), "--out", str(out),
                "--no-progress", "--json", *extra]
        code = main(argv)
        return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1]) if code == 0 else None

    code, first = reproduce(tmp_path / "a.sqlite", tmp_path / "r1")
    assert code == 0 and first["executed"] == 4 and first["counts"] == {"done": 2, "diverged": 1, "failed": 1,
                                                                        "busy": 0}
    raw = tmp_path / "r1" / "runs.jsonl"
    exported = [json.loads(line) for line in raw.read_text().splitlines()]
    assert ["boom: seed 1" in r.get("error", "") for r in exported if r["status"] == "failed"] == [True]  # kept
    # `report --raw` of an export holding an unfinished run: left out, not counted as failed
    pending = dict(exported[0], status="pending", metrics={}, config=dict(exported[0]["config"], seed=7))
    (tmp_path / "with-pending.jsonl").write_text(raw.read_text() + json.dumps(pending) + "\n")
    assert main(["report", "t-fail", "--raw", str(tmp_path / "with-pending.jsonl"), "--out", str(tmp_path / "rp"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["counts"] == {"done": 2, "diverged": 1,
                                                                                     "failed": 1}
    from vaekit.experiments.report import load_raw

    assert sorted(r["status"] for r in load_raw(tmp_path / "with-pending.jsonl")) == ["diverged", "done", "done",
                                                                                      "failed"]
    code, second = reproduce(tmp_path / "b.sqlite", tmp_path / "r2", "--resume-from", str(raw))
    assert code == 0
    assert (second["already_finished"], second["executed"]) == (3, 1)  # the failed run is run again
    imported = {r["key"]: r for r in rows(tmp_path / "b.sqlite")}
    for r in rows(tmp_path / "a.sqlite"):
        if r["status"] in ("done", "diverged"):
            assert (imported[r["key"]]["metrics"], imported[r["key"]]["status"]) == (r["metrics"], r["status"])
    # an edited export is refused, and nothing of it lands
    lines = raw.read_text().splitlines()
    record = json.loads(lines[0])
    record["config"]["seed"] = 99
    edited = tmp_path / "edited.jsonl"
    edited.write_text("\n".join([lines[1], json.dumps(record)]) + "\n")
    code, _ = reproduce(tmp_path / "c.sqlite", tmp_path / "r3", "--resume-from", str(edited))
    assert code == 2 and "not the hash of its configuration" in capsys.readouterr().err
    assert not (tmp_path / "c.sqlite").exists()  # every export is read and checked before the database opens
    (tmp_path / "empty.jsonl").write_text("\n")
    (tmp_path / "foreign.jsonl").write_text('{"a": 1}\n')
    for bad, message in (("empty.jsonl", "holds no runs"), ("foreign.jsonl", "a line is not a run")):
        code, _ = reproduce(tmp_path / "e.sqlite", tmp_path / "r5", "--resume-from", str(raw), "--resume-from",
                            str(tmp_path / bad))  # a good export first: it does not land either
        assert code == 2 and message in capsys.readouterr().err
        assert not (tmp_path / "e.sqlite").exists()
        assert main(["report", "t-fail", "--raw", str(tmp_path / bad), "--out", str(tmp_path / "r6")]) == 2
        assert not (tmp_path / "r6").exists()
    capsys.readouterr()
    code, _ = reproduce(tmp_path / "d.sqlite", tmp_path / "r4", "--resume-from", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_ray_backend_sends_the_device_to_every_run(tmp_path, monkeypatch, capsys):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'vaekit[ray]')")
    configs = get_target("toy").runs("quick", seeds=1, datasets=["blobs"])[:1]
    monkeypatch.delenv("VAEKIT_DEVICE", raising=False)
    ray.init(num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:  # Ray started before the device was set: its workers cannot have inherited it
        monkeypatch.setenv("VAEKIT_DEVICE", "mps")  # no MPS on this machine: a run that sees it fails saying so
        with Store(tmp_path / "mps.sqlite") as store:
            summary = run_grid(store, "toy", configs, "quick", backend="ray", workers=1, progress=False)
        assert summary.counts["failed"] == 1 and "MPS" in summary.failures[0]["error"]
        monkeypatch.setenv("VAEKIT_DEVICE", "cuda")
        if not ray.cluster_resources().get("GPU"):
            with Store(tmp_path / "cuda.sqlite") as store, pytest.raises(ConfigError, match="no GPU"):
                run_grid(store, "toy", configs, "quick", backend="ray", workers=1, progress=False)
        db = tmp_path / "cli.sqlite"
        code = main(["reproduce", "toy", "--datasets", "blobs", "--seeds", "1", "--backend", "ray", "--workers", "1",
                     "--device", "cpu", "--db", str(db), "--out", str(tmp_path / "out"), "--no-progress", "--json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert json.loads(out.strip().splitlines()[-1])["counts"]["done"] == 2  # toy: 2 likelihoods x 1 seed
    finally:
        ray.shutdown()
    code = main(["reproduce", "toy", "--backend", "ray", "--device", "tpu", "--db", str(tmp_path / "x.sqlite")])
    assert code == 2 and "tpu" in capsys.readouterr().err



def test_the_cpu_time_estimate_uses_committed_measurements_and_extrapolates_by_epochs_and_rows():
    from vaekit.experiments.listing import COST_SHAPE_KEYS, estimate_seconds, partial_estimate

    target = get_target("toy")
    quick, full = target.runs("quick"), target.runs("full")
    names = {f"{c.get('dataset')}/{c.get('method')}" for c in quick + full}
    shape = {k: full[0].get(k) for k in COST_SHAPE_KEYS}  # as if measured on runs of the full grid's size
    per = {n: {"seconds_per_run": 2.0, "seconds_per_epoch": 0.5, "seconds_per_row": 0.01, "test_rows": 100.0,
               "shape": shape} for n in names}
    assert estimate_seconds(target, "quick", {"toy": {"quick": per}}) == (2.0 * len(quick), "committed")
    expected = sum(0.5 * c["epochs"] + 0.01 * 100.0 for c in full)
    total, source = estimate_seconds(target, "full", {"toy": {"quick": per}})
    assert source == "extrapolated" and total == pytest.approx(expected)
    smaller = {n: {**e, "shape": {k: quick[0].get(k) for k in COST_SHAPE_KEYS}} for n, e in per.items()}
    assert estimate_seconds(target, "full", {"toy": {"quick": smaller}}) is None  # other data size: no guess
    one_missing = dict(list(per.items())[1:])
    assert estimate_seconds(target, "quick", {"toy": {"quick": one_missing}}) is None
    # the listing then shows a lower bound over the runs that have a measurement, with their number
    left = [c for c in quick if f"{c.get('dataset')}/{c.get('method')}" in one_missing]
    assert 0 < len(left) < len(quick)
    assert partial_estimate(target, "quick", {"toy": {"quick": one_missing}}) == (2.0 * len(left), "committed",
                                                                                   len(left))
    assert partial_estimate(target, "quick", {}) is None
    from vaekit.experiments.listing import budget_table

    row = {"target": "x", "budget": "full", "runs": 10, "cpu_seconds_estimate": None, "settings": {},
           "cpu_estimate_source": "extrapolated", "cpu_seconds_lower_bound": 7200.0, "estimated_runs": 4}
    assert ">= 2.0 h ~ (4 runs)" in budget_table([row])


def test_the_committed_measurements_cover_table_3_2_at_both_budgets(data_dir):
    """Table 3.2's grid (which depends on the data sets present) is costed from committed measurements."""
    from vaekit.experiments.listing import budget_rows

    rows = {(r["target"], r["budget"]): r for r in budget_rows({"table-3.2": get_target("table-3.2")})}
    assert rows["table-3.2", "quick"]["cpu_estimate_source"] == "committed"
    # the committed full-budget runs (which do not name their budget) are costed as full, not mixed into quick
    assert rows["table-3.2", "full"]["cpu_estimate_source"] == "committed"
    assert rows["table-3.2", "full"]["cpu_seconds_estimate"] > rows["table-3.2", "quick"]["cpu_seconds_estimate"]


def test_the_cpu_time_estimate_borrows_per_epoch_costs_from_the_run_family(data_dir):
    """A target that shares its runs (chapter 5) is estimated from a sibling's per-epoch measurement, as an
    extrapolation, where the sibling measured no whole run of the same configurations; without any measurement it
    stays unknown."""
    from vaekit.experiments.listing import COST_SHAPE_KEYS, estimate_seconds

    target = get_target("table-5.4")
    runs = target.runs("quick")
    per = {f"{c['dataset']}/{c['method']}": {"seconds_per_epoch": 0.5,
                                             "shape": {k: c.get(k) for k in COST_SHAPE_KEYS}} for c in runs}
    total, source = estimate_seconds(target, "quick", {"table-5.3": {"quick": per}})
    assert source == "extrapolated" and total == pytest.approx(sum(0.5 * c["epochs"] for c in runs))
    assert estimate_seconds(target, "quick", {"table-3.2": {"quick": per}}) is None  # not of its family
    assert estimate_seconds(target, "quick", {}) is None


def test_the_cpu_time_estimate_uses_a_siblings_measured_runs_only_for_the_same_configurations(data_dir):
    """Figures 4.1 and 4.2 train the same grid: one's measured run time is the other's committed cost (they list
    the same hours). A sibling's mean over a sweep is not lent to a run that is only part of it, but the mean over
    one configuration is (Table 3.2's runs inside Figure 3.6's sweep). Mutation caught: any sibling mean borrowed,
    or none."""
    from vaekit.experiments.listing import cost_name, estimate_seconds, partial_estimate

    onehot = {cost_name(c): {"seconds_per_run": 100.0 * (i + 1)}
              for i, c in enumerate(get_target("figure-4.2").runs("full")[:4])}
    total, source = estimate_seconds(get_target("figure-4.1"), "full", {"figure-4.2": {"full": onehot}})
    assert source == "committed" and total == pytest.approx(8 * (100 + 200 + 300 + 400))
    sweep = get_target("figure-3.6").runs("full")
    gaussian = {"smtp/Gaussian": {"seconds_per_run": 7.0}}
    # Figure 3.6's Gaussian runs span a sweep: its mean is no cost for Table 3.2's single configuration
    assert partial_estimate(get_target("table-3.2"), "full", {"figure-3.6": {"full": gaussian}}) is None
    # Table 3.2's mean is the cost of exactly its configuration, which Figure 3.6 runs at batch 100, lr 1e-3
    found = partial_estimate(get_target("figure-3.6"), "full", {"table-3.2": {"full": gaussian}})
    twins = [c for c in sweep if c["method"] == "Gaussian" and c["batch_size"] == 100 and c["lr"] == 1e-3]
    assert found is not None and found[2] == len(twins) == 10 and found[0] == pytest.approx(70.0)


def test_the_cpu_time_estimate_of_runs_shared_by_budgets_uses_their_measured_cost():
    """ADBench's runs carry no budget (a quick run is the same run as the full grid's): a run's measured cost is
    used whichever budget recorded it, keyed by set and detector."""
    from vaekit.experiments.listing import cost_name, estimate_seconds

    target = get_target("adbench")
    runs = [{"target": "adbench", "dataset": f"adbench:s{i}", "detector": m, "seed": 0, "max_rows": 3000}
            for i in range(2) for m in ("vaekit", "KNN")]
    target_runs = target.runs
    target.runs = lambda budget="quick", **_: runs  # type: ignore[method-assign]
    try:
        per = {cost_name(c): {"seconds_per_run": 3.0 if c["detector"] == "vaekit" else 0.5} for c in runs}
        assert cost_name(runs[0]) == "adbench:s0/vaekit"
        assert estimate_seconds(target, "full", {"adbench": {"quick": per}}) == (7.0, "committed")
        del per["adbench:s1/KNN"]
        assert estimate_seconds(target, "full", {"adbench": {"quick": per}}) is None
    finally:
        target.runs = target_runs  # type: ignore[method-assign]


@pytest.mark.parametrize("reader, source, budgets", [
    ("figure-3.5", "table-3.2", ("full",)),  # Figure 3.5 at the full budget is Table 3.2's seed 0
    ("figure-4.2", "figure-4.1", ("quick", "full")),  # the OneHot figures plot the same runs
])
def test_targets_that_read_the_same_runs_share_them(reader, source, budgets, data_dir):
    """One run family: the engine adopts the other target's finished runs instead of training them again."""
    from vaekit.experiments.store import _shared_part

    assert get_target(reader).run_family == get_target(source).run_family is not None
    for budget in budgets:
        wanted = {_shared_part(c) for c in get_target(reader).runs(budget)}
        assert wanted and wanted <= {_shared_part(c) for c in get_target(source).runs(budget)}


def test_the_chapter_3_sweeps_adopt_table_32s_runs_at_its_settings(data_dir):
    """Figures 3.6-3.7 at the full budget: their reference lines and default-setting points are Table 3.2's
    Gaussian and Student-t runs (the configurations differ only in the ``sweep`` label); nothing else is."""
    from vaekit.experiments.store import _shared_part

    table = {_shared_part(c) for c in get_target("table-3.2").runs("full")}
    for name in ("figure-3.6", "figure-3.7"):  # (Figure 3.7's MAP runs also carry their swept "b": not twins)
        runs = get_target(name).runs("full")
        assert get_target(name).run_family == get_target("table-3.2").run_family
        twins = [c for c in runs if _shared_part(c) in table]
        assert sorted((c["method"], c["seed"]) for c in twins) == [(m, s) for m in ("Gaussian", "Student-t")
                                                                   for s in range(10)]
        assert all(c["batch_size"] == 100 and c["lr"] == 1e-3 for c in twins)


def test_an_import_completes_pending_or_failed_rows_and_requests_budgetless_runs_only_for_its_grid(tmp_path):
    """Reviewer-found: an export's finished run was ignored when an interrupted invocation had left its key pending
    (or failed), so it trained again; and a run whose configuration names no budget (chapter 3) was requested under
    the importing command's budget even when that budget's grid does not hold it (another budget, an older
    numerics version), mixing it into that budget's report."""
    from vaekit.experiments.store import CODE_VERSION, Store, config_key

    def record(config, value):
        return {"key": config_key(config), "config": config, "code_version": CODE_VERSION, "status": "done",
                "metrics": {"test_log_likelihood": value, "seconds": 1.0}}

    pending, failed, done, live = (dict(TOY, seed=s) for s in (10, 11, 12, 13))
    with Store(tmp_path / "db.sqlite") as store:
        store.add([pending, failed, done, live], "quick")
        assert store.claim(config_key(failed)) and store.claim(config_key(done)) and store.claim(config_key(live))
        store.finish(config_key(failed), "failed", error="boom")
        store.finish(config_key(done), "done", {"test_log_likelihood": -3.0}, [], wall_seconds=1.0)
        imported = [record(pending, -1.0), record(failed, -2.0), record(done, -9.0), record(live, -9.0)]
        assert store.import_finished(imported, "quick") == 2
        by_key = {r["key"]: r for r in store.rows("toy")}
        assert [(by_key[config_key(c)]["status"], by_key[config_key(c)]["metrics"]["test_log_likelihood"])
                for c in (pending, failed, done)] == [("done", -1.0), ("done", -2.0), ("done", -3.0)]
        assert by_key[config_key(live)]["status"] == "running"  # a live claim is never overwritten
        elsewhere, ours = dict(TOY, seed=20), dict(TOY, seed=21)  # no "budget" key, as chapter 3's configs
        assert store.import_finished([record(elsewhere, -1.0), record(ours, -1.0)], "full",
                                     grid_keys={config_key(ours)}) == 2
        requested = {k for (k,) in store.db.execute("SELECT key FROM requests WHERE budget = 'full'")}
        assert requested == {config_key(ours)}


def test_a_gpus_runs_are_keyed_apart_from_the_cpus(monkeypatch, tmp_path):
    """Reviewer-found: --device was not part of a run's key, so `--device cuda` found the CPU's runs done (and a
    CPU resume took the committed H200 timings for its own)."""
    import argparse

    import torch

    from vaekit.cli import reproduce as cli_reproduce
    from vaekit.experiments.store import config_key

    args = argparse.Namespace(budget="quick", seeds=None, datasets=None, only=None, out=None)
    cpu = cli_reproduce._configs(args, get_target("toy"))
    monkeypatch.setattr("vaekit.training.resolve_device", lambda name: torch.device("cuda"))
    monkeypatch.setenv("VAEKIT_DEVICE", "")  # run() sets it; monkeypatch puts the original back afterwards
    monkeypatch.setattr(cli_reproduce, "_reproduce_one", lambda args, target, store, configs: configs)
    monkeypatch.setattr(cli_reproduce, "check_output_dir", lambda *a: None)
    gpu = cli_reproduce.run(argparse.Namespace(**vars(args), device="cuda", list=False, target="toy",
                                               resume_from=None, db=tmp_path / "db.sqlite"))
    assert [dict(c, device="cuda") for c in cpu] == gpu
    assert not {config_key(c) for c in cpu} & {config_key(c) for c in gpu}


def test_the_committed_h200_runs_carry_the_gpu_grids_keys():
    """The committed H200 timing runs are found done by `reproduce timing-4.5.3 --full --device cuda` only."""
    import argparse

    from vaekit.cli import reproduce as cli_reproduce
    from vaekit.experiments.report import load_raw
    from vaekit.experiments.store import config_key

    timing = get_target("timing-4.5.3").runs("full")
    if not timing:  # the no-data clone: the target lists no runs without mnist.npz
        pytest.skip("needs MNIST (../shared/data): the timing target's grid is empty without it")
    args = argparse.Namespace(budget="full", seeds=None, datasets=None, only=None, device_kind="cuda")
    gpu = {config_key(c) for c in cli_reproduce._configs(args, get_target("timing-4.5.3"))}
    raw = Path(__file__).parents[1] / "docs/results/chapter4/timing-4.5.3-gpu/runs.jsonl"
    committed = {r["key"] for r in load_raw(raw)}
    assert committed and committed <= gpu and not committed & {config_key(c) for c in timing}


def test_a_report_from_the_database_uses_each_configurations_newest_numerics_version(tmp_path):
    """A database kept across a numerics change holds a configuration twice; the report counts it once, newest."""
    from vaekit.experiments.report import newest_per_configuration, report_from_db
    from vaekit.experiments.store import CODE_VERSION, Store, config_key

    config = dict(TOY, budget="quick")
    older = f"numerics-{int(CODE_VERSION.rpartition('-')[2]) - 1}"
    records = [{"key": config_key(config, version), "config": config, "code_version": version, "status": "done",
                "metrics": {"test_log_likelihood": value, "seconds": 1.0}}
               for version, value in ((CODE_VERSION, -1.0), (older, -100.0))]
    with Store(tmp_path / "db.sqlite") as store:
        assert store.import_finished(records) == 2
        rows = store.rows("toy")
        assert [r["code_version"] for r in newest_per_configuration(rows)] == [CODE_VERSION]
        report_from_db(get_target("toy"), store, tmp_path / "report", "quick")
    saved = [json.loads(line) for line in (tmp_path / "report" / "runs.jsonl").read_text().splitlines()]
    assert [(r["code_version"], r["metrics"]["test_log_likelihood"]) for r in saved] == [(CODE_VERSION, -1.0)]
    assert "numerics-3" not in (tmp_path / "report" / "report.md").read_text().split("Code of these runs:")[1]


def test_a_report_from_a_raw_file_uses_each_configurations_newest_numerics_version(tmp_path):
    """`vaekit report --raw` on a file holding a configuration under two numerics versions (the older one last)
    reports the newer once and says it left the other out. Mutation caught: the last line winning."""
    from vaekit.experiments.report import raw_line, report_from_raw
    from vaekit.experiments.store import CODE_VERSION, config_key

    config = dict(TOY, budget="quick")
    older = f"numerics-{int(CODE_VERSION.rpartition('-')[2]) - 1}"
    rows = [{"key": config_key(config, version), "config": config, "code_version": version, "status": "done",
             "metrics": {"test_log_likelihood": value, "seconds": 1.0}}
            for version, value in ((CODE_VERSION, -1.0), (older, -100.0))]
    raw = tmp_path / "runs.jsonl"
    raw.write_text("".join(raw_line(r) for r in rows))
    report = report_from_raw(get_target("toy"), raw, tmp_path / "out")
    assert report["counts"]["done"] == 1 and "1 older records of the same configurations left out" in report["markdown"]
    assert "-1.000" in report["markdown"] and "-100.000" not in report["markdown"]
