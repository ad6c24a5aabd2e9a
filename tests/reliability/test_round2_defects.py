"""Issue #17 (reliability, second round): each defect found by adversarial use, as a test.

Item numbers refer to the issue's "Wrong answers or lost work" list; the rest are named after its other lists.
"""

import copy
import json
import os
import sqlite3
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from vaekit import TrainConfig, TrainedModel, fit
from vaekit.cli import main
from vaekit.data import Dataset, load_dataset
from vaekit.errors import CheckpointError, ConfigError, DataError
from vaekit.labels import anomaly_labels
from vaekit.model import VAE
from vaekit.training import Trainer
from vaekit.validation import output_lock

TINY_FIT = ["--latent-dim", "2", "--hidden", "4", "--epochs", "1", "--batch-size", "10", "--importance-samples", "2"]
TINY_DETECT = ["--latent-dim", "1", "--hidden", "4", "--epochs", "2", "--batch-size", "20", "--importance-samples",
               "2", "--json"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, match):
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert match in err, err


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if any training starts."""
    def refuse(*args, **kwargs):
        raise AssertionError("training started although an option was invalid")

    monkeypatch.setattr(Trainer, "fit", refuse)


@pytest.fixture
def numeric_csv(tmp_path):
    path = tmp_path / "num.csv"
    rng = np.random.default_rng(0)
    np.savetxt(path, rng.normal(size=(40, 3)), delimiter=",", header="a,b,c", comments="")
    return path


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    rng = np.random.default_rng(0)
    out = tmp_path_factory.mktemp("small") / "run"
    model, summary = fit(Dataset("toy", rng.normal(size=(60, 3))), latent_dim=2, hidden=(4,), out=out,
                         train=TrainConfig(epochs=1, batch_size=10), importance_samples=2)
    return model, out


# ------------------------------------------------------------------------------- 1. detect label polarity
def _labelled_csv(path, names):
    rng = np.random.default_rng(1)
    x = np.r_[rng.normal(size=(90, 2)), rng.normal(6, 1, size=(10, 2))]
    labels = [names[0]] * 90 + [names[1]] * 10  # (normal, anomaly)
    path.write_text("a,b,label\n" + "".join(f"{u:.6f},{v:.6f},{lab}\n" for (u, v), lab in zip(x, labels)))
    return path


@pytest.mark.parametrize("names", [("normal", "anom"), ("normal", "anomaly"), ("no", "yes"), ("n", "o"),
                                   ("benign", "attack"), ("inlier", "outlier")])
def test_detect_string_labels_keep_their_meaning(names, tmp_path, capsys):
    """Item 1: 'anom' < 'normal' in sorted order made the normal class positive; metrics were mirrored."""
    numeric = _labelled_csv(tmp_path / "numeric.csv", ("0", "1"))
    named = _labelled_csv(tmp_path / "named.csv", names)
    results = []
    for path in (numeric, named):
        code, out, err = run(capsys, "detect", "--data", path, "--label-column", "label", *TINY_DETECT)
        assert code == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[1]["n_labelled_anomalies"] == 10
    assert results[1]["roc_auc"] == results[0]["roc_auc"]
    assert results[1]["average_precision"] == results[0]["average_precision"]


def test_detect_refuses_ambiguous_labels_and_takes_positive_label(tmp_path, capsys, no_training):
    path = _labelled_csv(tmp_path / "ab.csv", ("alpha", "beta"))
    code, _, err = run(capsys, "detect", "--data", path, "--label-column", "label", *TINY_DETECT)
    one_line_error(code, err, "--positive-label")
    code, _, err = run(capsys, "detect", "--data", path, "--label-column", "label", "--positive-label", "gamma",
                       *TINY_DETECT)
    one_line_error(code, err, "not one of the labels")


def test_anomaly_labels_rules():
    assert anomaly_labels(np.array([0, 1, 1])).tolist() == [0, 1, 1]
    assert anomaly_labels(np.array([True, False])).tolist() == [1, 0]
    assert anomaly_labels(np.array([0, 1]), ["anom", "normal"]).tolist() == [1, 0]
    assert anomaly_labels(np.array([0, 1]), ["ATTACK", "Normal"]).tolist() == [1, 0]
    assert anomaly_labels(np.array(["x", "y", "x"]), positive_label="y").tolist() == [0, 1, 0]
    assert anomaly_labels(np.array([0, 0]), ["normal"]).tolist() == [0, 0]
    for bad in (np.array([-1, 1]), np.array([1, 2]), np.array([0, 1, 2])):
        with pytest.raises(ConfigError):
            anomaly_labels(bad)


def test_anomaly_label_errors_name_where_the_labels_came_from():
    """A data set's own y cannot be fixed by picking another --label-column; a blank label is a missing label, not
    a third class."""
    with pytest.raises(ConfigError, match=r"3 classes .* in the data set's labels \(its y\); these are not anomaly"):
        anomaly_labels(np.array([0, 1, 2]))
    with pytest.raises(ConfigError, match="in --label-column 'kind'; pick the right --label-column"):
        anomaly_labels(np.array([0, 1, 2]), label_column="kind")
    with pytest.raises(ConfigError, match=r"2 row\(s\) have no anomaly label .* first is data row 2\)"):
        anomaly_labels(np.array([1, 0, 2, 0]), ["", "0", "1"], label_column="y")
    with pytest.raises(ConfigError, match="first is data row 3"):  # NaN in a numeric y
        anomaly_labels(np.array([0.0, 1.0, np.nan]))


# ------------------------------------------------------------------------- 2. a save never mixes two runs
def test_failure_between_the_two_writes_keeps_the_old_run(small_run, tmp_path, monkeypatch):
    """Item 2: model.pt was renamed into place before result.json was written; a full disk in between left the
    new model beside the old result."""
    from vaekit.fitting import save_run

    model, _ = small_run
    newer = copy.deepcopy(model)
    with torch.no_grad():
        next(newer.model.parameters()).add_(1.0)  # another model: model.pt differs between the two runs
    out = tmp_path / "run"
    save_run(model, {"run": "old"}, [], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = []
    real_fsync = os.fsync

    def failing_fsync(fd):
        calls.append(fd)
        if len(calls) == 2:  # the second file's data: a full disk
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        save_run(newer, {"run": "new"}, [], out)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary folder left behind


# ----------------------------------------------------------------------- 3. output paths checked first
@pytest.mark.parametrize("argv, match", [
    (["fit", "--data", "{csv}", "--out", "{file}"], "not a folder"),
    (["fit", "--data", "{csv}", "--out", "{file}/sub"], "is not a folder"),
    (["fit", "--data", "{csv}", "--out", "/proc/vaekit-run"], "cannot create files"),
    (["detect", "--data", "{csv}", "--save", "{file}"], "not a folder"),
    (["score", "{model}", "--data", "{csv}", "--output", "{dir}"], "is a folder"),
    (["reproduce", "toy", "--out", "{file}", "--db", "{dir}/db.sqlite"], "not a folder"),
    (["report", "toy", "--out", "{file}"], "not a folder"),
    (["reproduce", "toy", "--db", "{file}"], "not an SQLite database"),
    (["reproduce", "toy", "--db", "{dir}"], "is a folder"),
])
def test_output_paths_are_checked_before_any_work(argv, match, tmp_path, numeric_csv, small_run, capsys,
                                                  no_training, monkeypatch):
    """Item 3: a bad --out/--save/--output/--db failed with a traceback after training; the model was lost."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "dir").mkdir()
    names = dict(csv=numeric_csv, file=tmp_path / "file.txt", dir=tmp_path / "dir", model=small_run[1])
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, _, err = run(capsys, *[a.format(**names) for a in argv])
    one_line_error(code, err, match)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


# ---------------------------------------------------------------------- 5. rollback with every epoch diverged
def test_rollback_where_every_epoch_diverges_reports_divergence(monkeypatch):
    """Item 5: reported diverged: false, status ok, epochs_run 0 with untrained weights."""
    monkeypatch.setattr(Trainer, "_train_epoch", lambda self, *a, **k: None)  # a non-finite loss in every epoch
    result = Trainer(TrainConfig(epochs=3, batch_size=10, on_divergence="rollback")).fit(
        VAE(3, 2, hidden=(4,)), torch.randn(20, 3))
    assert result.diverged is True and result.diverged_epoch == 1
    assert result.epochs_run == 3 and result.rollbacks == 3


# ----------------------------------------------------------------------------- 6. silent input changes
def test_negative_warmup_is_refused(numeric_csv, capsys, no_training):
    code, _, err = run(capsys, "fit", "--data", numeric_csv, "--warmup", "-2", *TINY_FIT)
    one_line_error(code, err, "--warmup")
    with pytest.raises(ConfigError, match="warm-up"):
        TrainConfig(warmup_epochs=-2)


def test_duplicate_header_names_are_refused(tmp_path):
    (tmp_path / "d.csv").write_text("a,a,b\n1,2,3\n4,5,6\n")
    with pytest.raises(DataError, match="more than one column"):
        load_dataset(tmp_path / "d.csv", label_column="a")


def test_utf8_bom_is_not_data(tmp_path):
    (tmp_path / "plain.csv").write_bytes(b"\xef\xbb\xbf1,2\n3,4\n5,6\n")
    assert load_dataset(tmp_path / "plain.csv").x.tolist() == [[1, 2], [3, 4], [5, 6]]
    (tmp_path / "named.csv").write_bytes(b"\xef\xbb\xbfkind,b\n0,2\n1,4\n")
    data = load_dataset(tmp_path / "named.csv", label_column="kind")
    assert data.y.tolist() == [0, 1] and data.x.tolist() == [[2], [4]]


def test_complex_data_is_refused(tmp_path):
    np.savez(tmp_path / "c.npz", x=np.ones((5, 2)) * (1 + 2j))
    with pytest.raises(DataError, match="complex"):
        load_dataset(tmp_path / "c.npz")


@pytest.mark.parametrize("s", [np.array([0.5, 1.5, 0.5, 1.5]), np.array(["a", "b", "a", "b"]),
                               np.array([0, np.nan, 1, 1])])
def test_task_indices_are_whole_numbers(s, tmp_path):
    np.savez(tmp_path / "t.npz", x=np.arange(8.0).reshape(4, 2), s=s)
    with pytest.raises(DataError, match="task indices"):
        load_dataset(tmp_path / "t.npz")


def test_a_file_whose_name_contains_an_arrow_is_a_file(tmp_path):
    folder = tmp_path / "a->b"
    folder.mkdir()
    (folder / "d.csv").write_text("1,2\n3,4\n")
    assert load_dataset(str(folder / "d.csv")).x.shape == (2, 2)
    (tmp_path / "usps->mnist.csv").write_text("1,2\n3,4\n")
    assert load_dataset(str(tmp_path / "usps->mnist.csv")).x.shape == (2, 2)


# ------------------------------------------------------------------ tracebacks instead of one-line errors
def test_importance_samples_checked_before_training(numeric_csv, tmp_path, capsys, no_training):
    for value in ("0", "-3"):
        code, _, err = run(capsys, "fit", "--data", numeric_csv, "--importance-samples", value, "--out",
                           tmp_path / "o", "--latent-dim", "2", "--epochs", "1", "--batch-size", "10")
        one_line_error(code, err, "--importance-samples")
    with pytest.raises(ConfigError, match="importance_samples"):
        fit(Dataset("d", np.random.default_rng(0).normal(size=(40, 2))), importance_samples=0,
            train=TrainConfig(epochs=1, batch_size=10))


def test_random_bytes_csv_and_string_task_npz(tmp_path, capsys):
    (tmp_path / "r.csv").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError, match="not UTF-8"):
        load_dataset(tmp_path / "r.csv")
    (tmp_path / "nul.csv").write_bytes(b"1,2\n3,\x004\n")
    with pytest.raises(DataError):
        load_dataset(tmp_path / "nul.csv")
    code, _, err = run(capsys, "fit", "--data", tmp_path / "r.csv", *TINY_FIT)
    one_line_error(code, err, "not UTF-8")


def test_download_without_network_says_where_to_put_the_file(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    code, _, err = run(capsys, "download", "smtp")
    one_line_error(code, err, "could not reach")
    assert "smtp.npz" in err


def test_truncated_database_is_refused(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (a)")
        con.executemany("INSERT INTO t VALUES (?)", [(b"x" * 1000,)] * 200)
    db.write_bytes(db.read_bytes()[:6000])
    before = db.read_bytes()
    code, _, err = run(capsys, "reproduce", "toy", "--db", db)
    one_line_error(code, err, "results database")
    assert db.read_bytes() == before


def _broken(small_run, tmp_path, change):
    _, out = small_run
    record = torch.load(out / "model.pt", weights_only=True)
    change(record)
    torch.save(record, tmp_path / "model.pt")
    return tmp_path


@pytest.mark.parametrize("change, match", [
    (lambda r: r["preprocessor"].update(keep=torch.tensor([0, 1, 7])), "indices"),
    (lambda r: r["preprocessor"].update(keep="0,1,2"), "does not match"),
    (lambda r: r["preprocessor"].update(scale=torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)), "scale"),
    (lambda r: r["state_dict"].update({k: v * float("nan") for k, v in r["state_dict"].items()}), "NaN"),
    (lambda r: r.update(model_config={**r["model_config"], "n_tasks": 10**9}), "do not fit"),
    (lambda r: r.update(model_config={**r["model_config"], "hidden": "lots"}), "does not match"),
    (lambda r: r.update(state_dict=[1, 2]), "state_dict"),
    (lambda r: r.update(info=[1]), "info"),
])
def test_internally_broken_checkpoints_raise_checkpoint_error(change, match, small_run, tmp_path):
    with pytest.raises(CheckpointError, match=match):
        TrainedModel.load(_broken(small_run, tmp_path, change))


def test_huge_task_index_with_conditional_is_refused(tmp_path, capsys, no_training):
    path = tmp_path / "t.csv"
    path.write_text("a,b,t\n" + "".join(f"{i},{i % 7},{10**9 if i == 0 else i % 2}\n" for i in range(40)))
    code, _, err = run(capsys, "fit", "--data", path, "--task-column", "t", "--conditional", *TINY_FIT)
    one_line_error(code, err, "recode them")


# --------------------------------------------------------------------------------------------- smaller
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_output_files_respect_the_umask(umask, mode, small_run, tmp_path, numeric_csv, capsys):
    model, _ = small_run
    previous = os.umask(umask)
    try:
        code, _, err = run(capsys, "score", small_run[1], "--data", numeric_csv, "--output", tmp_path / "s.csv")
        from vaekit.fitting import save_run

        save_run(model, {}, [], tmp_path / "run")
    finally:
        os.umask(previous)
    assert code == 0, err
    assert (tmp_path / "s.csv").stat().st_mode & 0o777 == mode
    assert (tmp_path / "run" / "model.pt").stat().st_mode & 0o777 == mode
    assert (tmp_path / "run").stat().st_mode & 0o777 == 0o777 & ~umask


@pytest.mark.parametrize("argv", [["--workers", "0"], ["--datasets", "nosuch"], ["--seeds", "0"]])
def test_refused_reproduce_creates_no_database(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "reproduce", "toy", "--db", tmp_path / "r.sqlite", *argv)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_evaluate_a_model_trained_on_a_moved_user_file(tmp_path, numeric_csv, capsys):
    out = tmp_path / "run"
    code, _, err = run(capsys, "fit", "--data", numeric_csv, "--out", out, *TINY_FIT)
    assert code == 0, err
    code, out_text, err = run(capsys, "evaluate", out, "--importance-samples", "2", "--json")
    assert code == 0, err
    assert json.loads(out_text.strip().splitlines()[-1])["n_test"] == 4  # the user-file split 80/10/10 of 40 rows
    moved = tmp_path / "elsewhere.csv"
    numeric_csv.rename(moved)
    code, _, err = run(capsys, "evaluate", out, "--importance-samples", "2")
    one_line_error(code, err, "pass --data")
    code, out_text, err = run(capsys, "evaluate", out, "--data", moved, "--importance-samples", "2", "--json")
    assert code == 0, err
    assert json.loads(out_text.strip().splitlines()[-1])["n_test"] == 40  # --data: every row of the file
    moved.write_text(moved.read_text().replace("\n", "\n", 1) + "0,0,0\n")
    moved.rename(numeric_csv)  # back in place but changed
    code, _, err = run(capsys, "evaluate", out, "--importance-samples", "2")
    one_line_error(code, err, "changed since this model was trained")


def test_messages(tmp_path, small_run, capsys):
    np.savez(tmp_path / "big.npz", x=np.full((4, 2), 1e300))
    with pytest.raises(DataError, match="float32"):
        load_dataset(tmp_path / "big.npz")
    np.savez(tmp_path / "nox.npz", data=np.ones((4, 2)))
    with pytest.raises(DataError, match="array named 'x'"):
        load_dataset(tmp_path / "nox.npz")
    (tmp_path / "nan.csv").write_text("a,b,c\n1,2,nan\n")
    code, _, err = run(capsys, "score", small_run[1], "--data", tmp_path / "nan.csv")
    one_line_error(code, err, "NaN")
    assert "before training" not in err
    (tmp_path / "v").mkdir()
    with pytest.raises(CheckpointError, match="invalid checkpoint format version"):
        TrainedModel.load(_broken(small_run, tmp_path / "v", lambda r: r.update(format_version="1")))


def test_pickle_checkpoint_message_never_suggests_weights_only_false(tmp_path):
    torch.save({"format": "vaekit-checkpoint", "payload": object.__new__(Dataset)}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError) as caught:
        TrainedModel.load(tmp_path)
    assert "weights_only" not in str(caught.value) and "refuses" in str(caught.value)


def test_a_second_fit_into_the_same_out_is_refused(tmp_path, numeric_csv, capsys, no_training):
    out = tmp_path / "run"
    with output_lock(out):
        code, _, err = run(capsys, "fit", "--data", numeric_csv, "--out", out, *TINY_FIT)
    one_line_error(code, err, "being written by vaekit process")
    assert not out.exists() and list(tmp_path.iterdir()) == [numeric_csv]


def test_a_changed_cached_download_is_refused(tmp_path, monkeypatch):
    """Downloads: a cached file is re-verified against the pinned content checksum each time it is read."""
    from vaekit.data import DATASETS, load_arrays
    from vaekit.data.sources import save_npz_atomic

    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path / "cache"))
    save_npz_atomic(tmp_path / "cache" / "smtp.npz", x=np.zeros((3, 3), np.float32), y=np.zeros(3, np.int8))
    with pytest.raises(DataError, match="does not match the published content"):
        load_arrays(DATASETS["smtp"])


def test_run_folder_swap_keeps_other_files_and_refuses_foreign_folders(small_run, tmp_path, numeric_csv, capsys,
                                                                         no_training):
    """The atomic run-folder swap must never swallow a folder that is not a run (e.g. ``--out .``), and keeps
    extra files (plots, notes) of a run folder."""
    from vaekit.fitting import save_run

    model, _ = small_run
    out = tmp_path / "run"
    save_run(model, {"run": 1}, [], out)
    (out / "plot.png").write_bytes(b"png")
    (out / ".notes").write_text("hidden")
    save_run(model, {"run": 2}, [], out)
    assert (out / "plot.png").read_bytes() == b"png" and (out / ".notes").read_text() == "hidden"
    assert json.loads((out / "result.json").read_text())["run"] == 2
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="no vaekit run"):
        save_run(model, {}, [], foreign)
    code, _, err = run(capsys, "fit", "--data", numeric_csv, "--out", foreign, *TINY_FIT)
    one_line_error(code, err, "no vaekit run")
    assert [p.name for p in foreign.iterdir()] == ["thesis.tex"]


@pytest.mark.parametrize("kwargs, match", [(dict(split=(float("nan"), 0.1, 0.1)), "finite"),
                                           (dict(split=(float("inf"), 0.1, 0.1)), "finite")])
def test_python_api_refuses_non_finite_splits(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        fit(Dataset("d", np.random.default_rng(0).normal(size=(40, 2))), train=TrainConfig(epochs=1, batch_size=10),
            **kwargs)


@pytest.mark.parametrize("seed", [-1, 99999999999])
def test_python_api_refuses_seeds_numpy_cannot_take(seed):
    with pytest.raises(ConfigError, match="seed"):
        TrainConfig(seed=seed)
