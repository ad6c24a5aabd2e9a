"""Issue #17 item 4: the model is saved before the test evaluation, a second Ctrl-C skips that evaluation, and
SIGTERM (what schedulers send) stops training like Ctrl-C — with real processes."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from vaekit import TrainedModel

FIT = [sys.executable, "-m", "vaekit.cli", "fit", "--data", "cancer", "--likelihood", "student-t", "--latent-dim",
       "2", "--hidden", "16", "--batch-size", "50", "--epochs", "100000", "--patience", "0", "--json"]


def _start(out, samples, data=None):
    command = FIT if data is None else [*FIT[:5], str(data), *FIT[6:]]  # a .npy file: the memory-mapped path
    proc = subprocess.Popen(command + ["--importance-samples", str(samples), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()
    assert "training on" in first, first
    time.sleep(4.0)  # a few epochs
    return proc


@pytest.mark.parametrize("memory_mapped", [False, True])
def test_second_ctrl_c_skips_the_evaluation_and_keeps_the_saved_model(tmp_path, memory_mapped):
    out = tmp_path / "run"
    data = None
    if memory_mapped:  # reviewer-found: the memory-mapped path saved only after its evaluation
        data = tmp_path.parent / f"{tmp_path.name}-rows.npy"
        np.save(data, np.random.default_rng(0).normal(size=(500, 30)).astype(np.float32))
    proc = _start(out, samples=500_000, data=data)  # an evaluation far longer than the test waits
    proc.send_signal(signal.SIGINT)
    lines = []
    while True:
        line = proc.stderr.readline()
        assert line, "".join(lines)
        lines.append(line)
        if "Ctrl-C again skips" in line:
            break
    assert "press Ctrl-C again to skip the evaluation" in "".join(lines)
    assert (out / "model.pt").is_file() and json.loads((out / "result.json").read_text())["evaluated"] is False
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "evaluation skipped" in stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["interrupted"] is True and summary["evaluation_skipped"] is True
    saved = json.loads((out / "result.json").read_text())
    assert saved["interrupted"] is True and saved["epochs_run"] == summary["epochs_run"] >= 1
    model = TrainedModel.load(out)
    assert np.isfinite(model.score_samples(np.zeros((2, 30)), n_samples=2)).all()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_sigterm_stops_training_like_ctrl_c(tmp_path):
    out = tmp_path / "run"
    proc = _start(out, samples=5)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["interrupted"] is True and summary["test_log_likelihood"] is not None
    saved = json.loads((out / "result.json").read_text())
    assert saved["evaluated"] is True and saved["interrupted"] is True
    TrainedModel.load(out)
