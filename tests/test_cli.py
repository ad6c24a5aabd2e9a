"""Every CLI command, in-process (fast) and once as a real subprocess; errors exit non-zero with one line."""

import json
import subprocess
import sys

import numpy as np
import pytest

from vaekit.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def toy_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("d") / "toy.csv"
    x = rng.normal(size=(200, 3))
    np.savetxt(path, x, delimiter=",", header="a,b,c", comments="")
    return path


@pytest.fixture(scope="module")
def fitted(toy_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = main(["fit", "--data", str(toy_csv), "--likelihood", "gaussian", "--latent-dim", "2", "--hidden", "8",
                 "--epochs", "2", "--batch-size", "50", "--importance-samples", "5", "--out", str(out), "--json"])
    assert code == 0
    return out


def test_fit_json_and_files(fitted, toy_csv, capsys, tmp_path):
    code, out, _ = run(capsys, "fit", "--data", str(toy_csv), "--likelihood", "student-t", "--latent-dim", "2",
                       "--hidden", "8", "--epochs", "2", "--batch-size", "50", "--importance-samples", "5",
                       "--out", str(tmp_path / "r"), "--json")
    assert code == 0
    summary = last_json(out)
    for key in ("test_log_likelihood", "diverged", "epochs_run", "train_seconds"):
        assert key in summary
    assert summary["epochs_run"] == 2 and summary["diverged"] is False
    assert (tmp_path / "r" / "model.pt").is_file()
    saved = json.loads((tmp_path / "r" / "result.json").read_text())
    assert len(saved["history"]) == 2


def test_evaluate_defaults_to_test_split_of_a_user_file(fitted, toy_csv, capsys):
    code, out, _ = run(capsys, "evaluate", str(fitted), "--data", str(toy_csv), "--importance-samples", "4",
                       "--json")
    assert code == 0
    metrics = last_json(out)
    assert metrics["n_test"] == 200 and np.isfinite(metrics["test_log_likelihood"])
    # a target task the rows do not have is refused (it was echoed back as if used)
    code, _, err = run(capsys, "evaluate", str(fitted), "--data", str(toy_csv), "--target-task", "1", "--json")
    assert code == 2 and "--target-task 1 is not a task index" in err


def test_evaluate_progress_bars_follow_no_progress(fitted, toy_csv, capsys, monkeypatch):
    import vaekit.tasks

    seen, real = [], vaekit.tasks.representation_metrics
    monkeypatch.setattr(vaekit.tasks, "representation_metrics",
                        lambda *a, **kw: seen.append(kw["progress"]) or real(*a, **kw))
    for extra in ([], ["--no-progress"]):
        code, _, _ = run(capsys, "evaluate", str(fitted), "--data", str(toy_csv), "--importance-samples", "2", *extra)
        assert code == 0
    assert seen == [None, False]  # None: bars on a terminal only (as score and fit)


def test_evaluate_named_dataset_uses_its_test_split(capsys, tmp_path, data_dir):
    assert main(["fit", "--data", "cancer", "--latent-dim", "2", "--hidden", "8", "--epochs", "1",
                 "--importance-samples", "2", "--out", str(tmp_path), "--json"]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, "evaluate", str(tmp_path), "--importance-samples", "3", "--json")
    assert code == 0 and last_json(out)["n_test"] == 146


def test_score_writes_csv(fitted, toy_csv, capsys, tmp_path):
    code, out, _ = run(capsys, "score", str(fitted), "--data", str(toy_csv), "--output", str(tmp_path / "s.csv"),
                       "--importance-samples", "3", "--json")
    assert code == 0
    scores = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
    assert scores.shape == (200, 2) and np.isfinite(scores[:, 1]).all()
    assert last_json(out)["n_rows"] == 200


def test_datasets_lists_presence(capsys, data_dir):
    code, out, _ = run(capsys, "datasets", "--json")
    rows = {r["name"]: r for r in last_json(out)["datasets"]}
    assert code == 0 and rows["smtp"]["present"] and rows["smtp"]["shape"] == [95156, 3]
    assert not rows["aloi"]["present"]


@pytest.mark.parametrize("argv, match", [
    (["score", "{run}", "--data", "{wide}"], "expected 3 columns"),
    (["score", "{run}", "--data", "{nan}"], "NaN"),
    (["fit", "--data", "{nonbinary}", "--likelihood", "bernoulli", "--epochs", "1"], "binary"),
    (["fit", "--data", "missing.npz"], "no such data file"),
    (["fit", "--data", "aloi"], "aloi.npz"),
    (["fit", "--data", "{toy}", "--latent-dim", "0"], "argument --latent-dim: expected an integer >= 1"),
    (["fit", "--data", "{toy}", "--batch-size", "5000"], "batch size"),
    (["fit", "--data", "{toy}", "--split", "0.9,0.2,0.1"], "fractions"),
    (["evaluate", "{nowhere}"], "no checkpoint"),
    (["detect", "--data", "{toy}", "--task-column", "t"],
     "vaekit detect: error: unrecognized arguments: --task-column t (see vaekit detect --help)"),
])
def test_bad_input_exits_2_with_one_line(argv, match, fitted, toy_csv, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    np.savetxt(tmp_path / "wide.csv", np.ones((5, 4)), delimiter=",")
    nan = np.ones((5, 3))
    nan[2, 1] = np.nan
    np.savetxt(tmp_path / "nan.csv", nan, delimiter=",")
    np.savetxt(tmp_path / "nonbinary.csv", np.random.default_rng(0).random((200, 3)), delimiter=",")
    names = {"run": fitted, "wide": tmp_path / "wide.csv", "nan": tmp_path / "nan.csv", "toy": toy_csv,
             "nonbinary": tmp_path / "nonbinary.csv", "nowhere": tmp_path / "nowhere"}
    argv = [a.format(**names) for a in argv] + ["--out", str(tmp_path / "out")] * (argv[0] == "fit")
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_subprocess_help_and_json_last_line(fitted, toy_csv):
    for cmd in ("datasets", "download", "fit", "evaluate", "score"):
        done = subprocess.run([sys.executable, "-m", "vaekit.cli", cmd, "--help"], capture_output=True, text=True)
        assert done.returncode == 0 and "usage" in done.stdout
    done = subprocess.run([sys.executable, "-m", "vaekit.cli", "evaluate", str(fitted), "--data", str(toy_csv),
                           "--importance-samples", "2", "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "test_log_likelihood" in json.loads(done.stdout.strip().splitlines()[-1])


def test_fit_defaults_to_bernoulli_on_binary_data(capsys, tmp_path):
    x = (np.random.default_rng(0).random((120, 6)) > 0.5).astype(float)
    np.savez(tmp_path / "binary.npz", x=x)
    code, out, _ = run(capsys, "fit", "--data", str(tmp_path / "binary.npz"), "--latent-dim", "2", "--hidden", "8",
                       "--epochs", "1", "--batch-size", "20", "--importance-samples", "2", "--out",
                       str(tmp_path / "run"), "--json", "--no-progress")
    assert code == 0 and last_json(out)["model"]["likelihood"] == "bernoulli"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_fit_on_a_missing_gpu_fails_clearly(capsys, toy_csv, tmp_path):
    code, _, err = run(capsys, "fit", "--data", str(toy_csv), "--device", "cuda", "--epochs", "1",
                       "--out", str(tmp_path / "run"))
    assert code == 2 and "no CUDA GPU" in err and not (tmp_path / "run").exists()


def test_datasets_names_a_missing_data_folder_and_a_corrupt_file(tmp_path, monkeypatch, capsys):
    """Reviewer-found: a typo in VAEKIT_DATA listed everything as missing without a word, and a corrupt file
    showed as "present"."""
    from vaekit.cli import main

    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path / "cache"))
    assert main(["datasets"]) == 0
    assert "is not a folder here" in capsys.readouterr().err
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "smtp.npz").write_bytes(b"not an archive")
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "data"))
    assert main(["datasets"]) == 0
    out, err = capsys.readouterr()
    assert any(line.split()[:2] == ["smtp", "error"] for line in out.splitlines()) and "smtp:" in err


def test_out_of_memory_is_one_line_and_other_runtime_errors_are_not_hidden(capsys, monkeypatch):
    """Host and GPU out-of-memory (MemoryError; torch.OutOfMemoryError, a RuntimeError) end in one line, exit 1."""
    import importlib

    cli_main = importlib.import_module("vaekit.cli.main")

    for error in (MemoryError("Unable to allocate 97.7 MiB"), RuntimeError("CUDA out of memory. Tried to allocate")):
        monkeypatch.setattr(cli_main.COMMANDS["datasets"], "run", lambda args, e=error: (_ for _ in ()).throw(e))
        assert main(["datasets"]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "out of memory" in err and "--batch-size" in err
    monkeypatch.setattr(cli_main.COMMANDS["datasets"], "run",
                        lambda args: (_ for _ in ()).throw(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        main(["datasets"])


def test_counts_in_messages_agree_with_their_number():
    from vaekit.cli.output import counted

    assert (counted(1, "epoch"), counted(2, "epoch"), counted(0, "row")) == ("1 epoch", "2 epochs", "0 rows")
