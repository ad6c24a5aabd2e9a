"""Interruption and determinism, with real processes."""

import json
import signal
import subprocess
import sys
import time

import numpy as np

from vaekit import TrainedModel

FIT = [sys.executable, "-m", "vaekit.cli", "fit", "--data", "cancer", "--likelihood", "student-t", "--latent-dim",
       "2", "--hidden", "16", "--batch-size", "50", "--importance-samples", "5", "--json"]


def test_sigint_during_fit_saves_best_model_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(FIT + ["--epochs", "100000", "--patience", "0", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()  # logged as training starts
    assert "training on" in first, first
    time.sleep(5.0)  # a few epochs even on a loaded machine
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["interrupted"] is True and summary["epochs_run"] >= 1
    assert summary["test_log_likelihood"] is not None
    saved = json.loads((out / "result.json").read_text())
    assert saved["interrupted"] is True and len(saved["history"]) == summary["epochs_run"]
    model = TrainedModel.load(out)
    assert np.isfinite(model.score_samples(np.zeros((2, 30)), n_samples=2)).all()
    assert not list(out.glob("*.part"))


def test_same_seed_same_metrics_across_processes(tmp_path):
    results = []
    for i in range(2):
        done = subprocess.run(FIT + ["--epochs", "3", "--seed", "7", "--out", str(tmp_path / str(i))],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert results[0]["test_log_likelihood"] == results[1]["test_log_likelihood"]
    histories = [json.loads((tmp_path / str(i) / "result.json").read_text())["history"] for i in range(2)]
    strip = [[{k: v for k, v in r.items() if k != "seconds"} for r in h] for h in histories]
    assert strip[0] == strip[1]
