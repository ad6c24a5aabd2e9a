"""The everyday path of issue 18: predictable scoring, one model format, a user's own CSV, readable output,
PyOD parity, tracking and runs from a file. Each test names the friction point it guards."""

import csv
import json
import logging
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import binom

import vaekit
from cli_run import last_json, run
from vaekit import TrainConfig, VAEDetector
from vaekit.cli import build_parser, main
from vaekit.columns import LabelLikeColumnWarning
from vaekit.data import load_dataset
from vaekit.errors import ConfigError, DataError
from vaekit.tracking import MemoryTracker

TINY = ["--latent-dim", "2", "--hidden", "8", "--epochs", "2", "--batch-size", "50", "--importance-samples", "5"]



def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3)) * [1.0, 5.0, 0.2] + [10.0, -3.0, 0.0]
    label = (rng.random(200) < 0.1).astype(int)
    return x, label


@pytest.fixture(scope="module")
def user_csv(table, tmp_path_factory):
    x, label = table
    rows = [[f"id{i}", f"2024-01-{1 + i % 28:02d}", *x[i], label[i]] for i in range(len(x))]
    return write_csv(tmp_path_factory.mktemp("csv") / "mine.csv", ["id", "when", "a", "b", "c", "label"], rows)


@pytest.fixture(scope="module")
def fitted_dir(user_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    code = main(["fit", "--data", str(user_csv), "--id-column", "id", "--ignore-columns", "when",
                 "--label-column", "label", "--likelihood", "gaussian", *TINY, "--out", str(out), "--json"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def trained(fitted_dir):
    return vaekit.TrainedModel.load(fitted_dir)


# ------------------------------------------------------------------------------------ scoring you can repeat
def test_score_samples_is_deterministic_and_independent_of_the_batch(trained, table):
    x = table[0][:40]
    first, second = trained.score_samples(x, n_samples=20), trained.score_samples(x, n_samples=20)
    np.testing.assert_array_equal(first, second)
    alone = trained.score_samples(x[:1], n_samples=20)
    np.testing.assert_allclose(alone, first[:1], rtol=0, atol=1e-9)
    reordered = trained.score_samples(x[::-1], n_samples=20)[::-1]
    np.testing.assert_allclose(reordered, first, rtol=0, atol=1e-9)
    other_seed = trained.score_samples(x, n_samples=20, seed=1)
    assert not np.allclose(other_seed, first)


def test_cli_score_repeats_and_puts_the_scores_in_the_json(fitted_dir, user_csv, capsys):
    argv = ("score", fitted_dir, "--data", user_csv, "--id-column", "id", "--ignore-columns", "when",
            "--label-column", "label", "--importance-samples", "10", "--json")
    code, out, _ = run(capsys, *argv)
    first = last_json(out)
    assert code == 0 and len(first["scores"]) == 200 and first["ids"][:2] == ["id0", "id1"]
    second = last_json(run(capsys, *argv)[1])
    assert second["scores"] == first["scores"]
    third = last_json(run(capsys, *argv, "--seed", "3")[1])
    assert third["seed"] == 3 and third["scores"] != first["scores"]


def test_score_output_file_carries_the_id_column(fitted_dir, user_csv, capsys, tmp_path):
    code, out, _ = run(capsys, "score", fitted_dir, "--data", user_csv, "--id-column", "id", "--ignore-columns",
                       "when", "--label-column", "label", "--output", tmp_path / "s.csv", "--json")
    result = last_json(out)
    assert code == 0 and result["output"] == str(tmp_path / "s.csv") and "scores" not in result
    rows = list(csv.reader(open(tmp_path / "s.csv")))
    assert rows[0] == ["id", "log_likelihood"] and rows[1][0] == "id0" and len(rows) == 201


def test_test_subsample_in_fit_and_evaluate(user_csv, fitted_dir, capsys, tmp_path):
    code, out, _ = run(capsys, "fit", "--data", user_csv, "--ignore-columns", "id,when", "--label-column",
                       "label", *TINY, "--test-subsample", "7", "--out", tmp_path / "r", "--json")
    summary = last_json(out)
    assert code == 0 and summary["test_subsample"] == 7 and summary["n_test"] == 7
    code, out, _ = run(capsys, "evaluate", fitted_dir, "--data", user_csv, "--id-column", "id", "--ignore-columns",
                       "when", "--label-column", "label", "--test-subsample", "11", "--importance-samples", "4",
                       "--json")
    metrics = last_json(out)
    assert code == 0 and metrics["test_subsample"] == 11 and metrics["n_test"] == 11


def test_evaluate_of_other_labelled_rows_says_why_there_is_no_knn_accuracy(fitted_dir, user_csv, capsys):
    options = ("--id-column", "id", "--ignore-columns", "when", "--label-column", "label", "--importance-samples", "4",
               "--json")
    own = last_json(run(capsys, "evaluate", fitted_dir, "--json", "--importance-samples", "4")[1])
    assert own["knn_accuracy"] is not None and "knn_accuracy_note" not in own  # the training file's test split
    metrics = last_json(run(capsys, "evaluate", fitted_dir, "--data", user_csv, *options)[1])  # every row of a file
    assert metrics["knn_accuracy"] is None and "leave out --data" in metrics["knn_accuracy_note"]
    assert metrics["n_test"] == 200 and metrics["active_units"] is not None


def test_evaluate_is_repeatable(fitted_dir, user_csv, capsys):
    argv = ("evaluate", fitted_dir, "--data", user_csv, "--id-column", "id", "--ignore-columns", "when",
            "--label-column", "label", "--importance-samples", "4", "--json")
    assert last_json(run(capsys, *argv)[1])["test_log_likelihood"] == \
        last_json(run(capsys, *argv)[1])["test_log_likelihood"]


def test_long_importance_sampling_announces_its_cost(trained, table, caplog, monkeypatch):
    monkeypatch.setattr("vaekit.evaluation.ANNOUNCE_EVALUATIONS", 100)
    with caplog.at_level(logging.INFO, logger="vaekit.evaluation"):
        trained.score_samples(np.repeat(table[0], 2, axis=0), n_samples=5)
    text = caplog.text
    assert "400 rows x K=5 = 2,000 decoder evaluations" in text and "s expected" in text


# -------------------------------------------------------------------------------------- one model everywhere
def test_a_fit_model_works_with_detect_model(fitted_dir, user_csv, capsys):
    argv = ("detect", "--data", user_csv, "--id-column", "id", "--ignore-columns", "when", "--label-column",
            "label", "--model", fitted_dir, "--json")
    code, out, err = run(capsys, *argv)
    result = last_json(out)
    assert code == 0, err
    assert result["threshold_from"] == "scored rows" and result["n_flagged"] == 20  # 10 % of 200 rows
    code, out, _ = run(capsys, *argv, "--contamination", "0.2")
    assert code == 0 and last_json(out)["n_flagged"] == 40


def test_a_detector_works_with_score_evaluate_and_rethresholds(user_csv, capsys, tmp_path):
    det = tmp_path / "det"
    base = ("--data", user_csv, "--id-column", "id", "--ignore-columns", "when", "--label-column", "label")
    code, out, err = run(capsys, "detect", *base, *TINY[:-2], "--save", det, "--json")
    assert code == 0, err
    assert last_json(out)["n_flagged"] == 20
    code, out, _ = run(capsys, "detect", *base, "--model", det, "--contamination", "0.25", "--json")
    assert code == 0 and last_json(out)["n_flagged"] == 50 and last_json(out)["contamination"] == 0.25
    code, out, err = run(capsys, "score", det, *base, "--importance-samples", "5", "--json")
    assert code == 0, err
    assert len(last_json(out)["scores"]) == 200
    code, out, err = run(capsys, "evaluate", det, *base, "--importance-samples", "5", "--json")
    assert code == 0 and last_json(out)["n_test"] == 200


def test_a_directory_without_a_model_names_both_commands(capsys, tmp_path):
    code, _, err = run(capsys, "score", tmp_path, "--data", "cancer")
    assert code == 2 and "vaekit fit --out" in err and "vaekit detect --save" in err


# ----------------------------------------------------------------------------------------- your own data
def test_score_matches_columns_by_name(fitted_dir, user_csv, table, capsys, tmp_path):
    x, label = table
    swapped = write_csv(tmp_path / "swapped.csv", ["id", "c", "a", "b", "when", "label"],
                        [[f"id{i}", x[i, 2], x[i, 0], x[i, 1], "t", label[i]] for i in range(len(x))])
    common = ("--id-column", "id", "--ignore-columns", "when", "--label-column", "label", "--importance-samples",
              "5", "--json")
    original = last_json(run(capsys, "score", fitted_dir, "--data", user_csv, *common)[1])["scores"]
    code, out, _ = run(capsys, "score", fitted_dir, "--data", swapped, *common)
    assert code == 0 and last_json(out)["scores"] == original
    renamed = write_csv(tmp_path / "renamed.csv", ["id", "a", "b", "d", "when", "label"],
                        [[f"id{i}", *x[i], "t", label[i]] for i in range(len(x))])
    code, _, err = run(capsys, "score", fitted_dir, "--data", renamed, *common)
    assert code == 2 and "missing ['c']" in err and "unexpected ['d']" in err


def test_a_label_like_feature_column_warns(user_csv):
    with pytest.warns(LabelLikeColumnWarning, match="--label-column label"):
        load_dataset(str(user_csv), ignore_columns=["id", "when"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset(str(user_csv), ignore_columns=["id", "when"], label_column="label")


def test_ignore_and_id_columns_skip_non_numeric_columns(user_csv):
    with pytest.raises(DataError, match="not numeric"):
        load_dataset(str(user_csv), label_column="label")
    data = load_dataset(str(user_csv), id_column="id", ignore_columns=["when"], label_column="label")
    assert data.x.shape == (200, 3) and data.meta["columns"] == ["a", "b", "c"] and data.meta["ids"][5] == "id5"
    with pytest.raises(DataError, match="no column named 'nope'"):
        load_dataset(str(user_csv), ignore_columns=["nope"])


def test_user_files_train_on_most_rows_and_say_so(fitted_dir, capsys, user_csv, tmp_path):
    summary = json.loads((fitted_dir / "result.json").read_text())
    assert summary["split"] == [0.8, 0.1, 0.1] and summary["n_train"] == 160
    assert summary["split_source"] == "user-file default"
    assert load_dataset("cancer").split == (0.5, 0.1, 0.4)  # the thesis data sets keep theirs
    _, out, _ = run(capsys, "fit", "--data", user_csv, "--ignore-columns", "id,when", "--label-column", "label",
                    *TINY, "--out", tmp_path / "r")
    assert "split 80/10/10 train/val/test (user-file default; 160 training rows)" in out


def test_fit_takes_arrays_and_dataframes_like_the_same_file(fitted_dir, table, capsys, tmp_path):
    import pandas as pd  # in the test extra

    x, _ = table
    options = {"likelihood": "gaussian", "latent_dim": 2, "hidden": (8,), "importance_samples": 5,
               "train": TrainConfig(epochs=2, batch_size=50)}
    from_file = json.loads((fitted_dir / "result.json").read_text())
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    for data in (x, frame):  # the same rows, split and seed as the CSV fit: the same model and the same number
        model, summary = vaekit.fit(data, out=tmp_path / "frame", **options)
        assert summary["split_source"] == "user-data default" and summary["n_train"] == from_file["n_train"]
        assert summary["test_log_likelihood"] == pytest.approx(from_file["test_log_likelihood"], abs=1e-9)
    assert model.info["columns"] == ["a", "b", "c"]
    with pytest.raises(DataError, match=r"columns \['kind'\] are not numeric"):
        vaekit.fit(frame.assign(kind="x"))
    gap = frame.copy()
    gap.iloc[7, 1] = np.nan
    with pytest.raises(DataError, match=r"1 rows have missing values \(first rows \[7\]\)"):
        vaekit.fit(gap)
    code, _, err = run(capsys, "evaluate", tmp_path / "frame")
    assert code == 2 and "fitted on in-memory rows" in err and "pass --data" in err


def test_transform_reconstruct_and_sample_are_in_the_data_units(trained, table):
    x = table[0]
    z = trained.transform(x)
    assert z.shape == (200, 2)
    recon = trained.reconstruct(x)
    assert recon.shape == x.shape
    assert (abs(recon.mean(0) - x.mean(0)) < x.std(0)).all()  # in the data's units, not standardised
    samples = trained.sample(500, seed=0)
    assert samples.shape == (500, 3)
    assert (abs(samples.mean(0) - x.mean(0)) < 1.5 * x.std(0)).all()
    np.testing.assert_array_equal(samples, trained.sample(500, seed=0))
    assert abs(np.log(samples.std(0) / x.std(0))).max() < np.log(5)  # the spread of each column comes back


# ------------------------------------------------------------------------------------------- readable output
def test_every_option_has_help_and_shows_its_default():
    parser = build_parser()
    missing, no_default = [], []
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        text = sub.format_help()
        for action in sub._actions:
            if not action.option_strings or action.dest == "help":
                continue
            if not action.help:
                missing.append(f"{name} {action.option_strings[0]}")
            if action.default not in (None, False, [], ()) and action.nargs != 0 and isinstance(
                    action.default, (int, float, str, tuple)):
                flat = re.sub(r"\s+", " ", text)
                if f"{action.option_strings[0]}" in flat and "default" not in (action.help or "") and \
                        f"(default: " not in flat:
                    no_default.append(f"{name} {action.option_strings[0]}")
    assert not missing, f"options without help: {missing}"
    assert not no_default
    fit_help = re.sub(r"\s+", " ", parser._subparsers._group_actions[0].choices["fit"].format_help())
    for shown in ("dimension of the latent code z (default: 20)", "maximum training epochs (default: 500)",
                  "Adam learning rate (default: 0.001)", "(default: standard)"):
        assert shown in fit_help


def test_human_text_rounds_floats_json_keeps_them(user_csv, capsys, tmp_path):
    code, out, err = run(capsys, "fit", "--data", user_csv, "--ignore-columns", "id,when", "--label-column",
                         "label", *TINY, "--out", tmp_path / "r", "--json")
    assert code == 0
    line = next(l for l in err.splitlines() if "test log-likelihood" in l)
    assert not re.search(r"\d\.\d{6,}", line), line
    value = last_json(out)["test_log_likelihood"]
    assert f"{value:.4g}" in line and len(repr(value)) > 8


def test_human_text_names_the_metric_each_prior_has(capsys, tmp_path):
    np.save(tmp_path / "rows.npy", np.random.default_rng(1).normal(size=(300, 4)).astype(np.float32))
    lines = {}
    for prior in ("avb", "implicit"):
        code, out, err = run(capsys, "fit", "--data", tmp_path / "rows.npy", "--prior", prior, "--epochs", "1",
                             "--hidden", "8", "--latent-dim", "2", "--batch-size", "50", "--ratio-epochs", "1",
                             "--out", tmp_path / prior, "--json")
        assert code == 0, err
        lines[prior] = next(l for l in err.splitlines() if "saved to" in l)
        summary = last_json(out)
        if prior == "avb":
            assert f"test ELBO estimate {summary['test_elbo_estimate']:.4g}" in lines[prior]
        else:
            assert f"normalised {summary['test_log_likelihood_normalised']:.4g}" in lines[prior]
        assert not re.search(r"\d\.\d{6,}", lines[prior]), lines[prior]  # the memory-mapped line rounds too
    code, out, err = run(capsys, "evaluate", tmp_path / "avb", "--json")
    assert code == 0 and f"test ELBO estimate {last_json(out)['test_elbo_estimate']:.4g}" in err


# --------------------------------------------------------------------------------------------- PyOD parity
@pytest.fixture(scope="module")
def detector(table):
    return VAEDetector(latent_dim=2, hidden=(8,), epochs=2, importance_samples=10, random_state=0).fit(table[0])


def test_pyod_fit_predict_and_confidence(detector, table):
    x = table[0]
    labels = VAEDetector(latent_dim=2, hidden=(8,), epochs=2, importance_samples=10, random_state=0).fit_predict(x)
    np.testing.assert_array_equal(labels, detector.labels_)
    predicted, confidence = detector.predict(x[:30], return_confidence=True)
    np.testing.assert_array_equal(predicted, detector.predict(x[:30]))
    np.testing.assert_allclose(confidence, detector.predict_confidence(x[:30]))
    assert ((confidence >= 0) & (confidence <= 1)).all()
    # PyOD's formula, written out for one row
    n, score = len(detector.decision_scores_), detector.decision_function(x[:1])[0]
    p = (1 + np.count_nonzero(detector.decision_scores_ <= score)) / (2 + n)
    expected = 1 - binom.cdf(n - int(n * detector.contamination), n, p)
    expected = expected if predicted[0] == 1 else 1 - expected
    assert confidence[0] == pytest.approx(expected)


def test_device_reaches_the_detector(table, capsys, user_csv):
    if torch.cuda.is_available():
        pytest.skip("this check needs a machine without CUDA")
    with pytest.raises(ConfigError, match="CUDA"):
        VAEDetector(epochs=1, device="cuda").fit(table[0])
    assert VAEDetector(epochs=1, hidden=(8,), device="cpu", random_state=0).fit(table[0]).labels_.shape == (200,)
    code, _, err = run(capsys, "detect", "--data", user_csv, "--ignore-columns", "id,when", "--label-column",
                       "label", "--epochs", "1", "--device", "cuda")
    assert code == 2 and "CUDA" in err


# ------------------------------------------------------------------------------------------------ tracking
def test_trackers_see_every_epoch_and_the_final_metrics(table, tmp_path):
    tracker = MemoryTracker()
    data = vaekit.Dataset("t", table[0])
    _, summary = vaekit.fit(data, likelihood="gaussian", latent_dim=2, hidden=(8,), importance_samples=5,
                            train=TrainConfig(epochs=3, patience=None), out=tmp_path / "r", callbacks=[tracker])
    assert [e for e, _ in tracker.epochs] == [1, 2, 3]
    assert tracker.epochs[-1][1]["train_loss"] == summary["history"][-1]["train_loss"]
    assert tracker.metrics["test_log_likelihood"] == summary["test_log_likelihood"]
    assert tracker.params["model"]["latent_dim"] == 2
    assert {p.name for p in tracker.artifacts} == {"model.pt", "result.json"}
    det_tracker = MemoryTracker()
    det = VAEDetector(epochs=2, hidden=(8,), random_state=0, callbacks=[det_tracker]).fit(table[0])
    # both phases: 2 epochs, then the trimmed refit's 1
    assert len(det_tracker.epochs) == det.train_result_.epochs_run == 3 and "threshold" in det_tracker.metrics


def test_mlflow_logger_writes_a_local_file_store(table, tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="MLflow is optional: pip install 'vaekit[mlflow]'")
    from vaekit.tracking import MLflowLogger

    uri = (tmp_path / "mlruns").as_uri()
    logger = MLflowLogger(uri, experiment="tests", run_name="tiny")
    vaekit.fit(vaekit.Dataset("t", table[0]), likelihood="gaussian", latent_dim=2, hidden=(8,),
               importance_samples=5, train=TrainConfig(epochs=2, patience=None), out=tmp_path / "r",
               callbacks=[logger])
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    run_ = client.get_run(logger.run_id)
    assert run_.info.status == "FINISHED" and run_.data.params["model.latent_dim"] == "2"
    assert "test_log_likelihood" in run_.data.metrics
    assert [m.step for m in client.get_metric_history(logger.run_id, "train_loss")] == [1, 2]
    assert {a.path for a in client.list_artifacts(logger.run_id)} == {"model.pt", "result.json"}


def test_tensorboard_logger_writes_event_files(table, tmp_path, capsys, user_csv):
    pytest.importorskip("tensorboard", reason="TensorBoard is optional: pip install 'vaekit[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from vaekit.tracking import TensorBoardLogger

    def events(folder):
        accumulator = EventAccumulator(str(folder))
        accumulator.Reload()
        return accumulator

    logger = TensorBoardLogger(tmp_path / "tb", run_name="tiny")
    _, summary = vaekit.fit(vaekit.Dataset("t", table[0]), likelihood="gaussian", latent_dim=2, hidden=(8,),
                            importance_samples=5, train=TrainConfig(epochs=2, patience=None), out=tmp_path / "r",
                            callbacks=[logger])
    written = events(tmp_path / "tb" / "tiny")
    losses = written.Scalars("train_loss")
    assert [e.step for e in losses] == [1, 2]
    assert losses[-1].value == pytest.approx(summary["history"][-1]["train_loss"], rel=1e-6)
    assert written.Scalars("test_log_likelihood")[0].value == pytest.approx(summary["test_log_likelihood"])
    params = written.Tensors("params/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| model.latent_dim | 2 |" in params
    code, _, err = run(capsys, "fit", "--data", user_csv, "--ignore-columns", "id,when", "--label-column", "label",
                       "--epochs", "1", "--hidden", "8", "--importance-samples", "2", "--out", tmp_path / "cli",
                       "--tensorboard", tmp_path / "tb-cli")
    assert code == 0, err
    assert [e.step for e in events(tmp_path / "tb-cli").Scalars("train_loss")] == [1]


def test_tensorboard_missing_is_a_clear_error(monkeypatch, capsys, user_csv, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard -> ImportError
    code, _, err = run(capsys, "fit", "--data", user_csv, "--ignore-columns", "id,when", "--label-column", "label",
                       "--epochs", "1", "--out", tmp_path / "r", "--tensorboard", tmp_path / "tb")
    assert code == 2 and "pip install 'vaekit[tensorboard]'" in err and len(err.strip().splitlines()) == 1, err


# ---------------------------------------------------------------------------------------- runs from a file
def test_fit_config_file_runs_validates_and_repeats(user_csv, capsys, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(f'data = "{user_csv}"\nignore-columns = ["id", "when"]\nlabel_column = "label"\n'
                      'likelihood = "gaussian"\nlatent_dim = 2\nhidden = [8]\nepochs = 2\nbatch_size = 50\n'
                      "importance_samples = 5\n")
    code, out, err = run(capsys, "fit", "--config", config, "--out", tmp_path / "a", "--json")
    first = last_json(out)
    assert code == 0, err
    assert first["model"]["hidden"] == [8] and first["epochs_run"] == 2
    saved = tmp_path / "a" / "run.toml"
    assert 'likelihood = "gaussian"' in saved.read_text()
    # the output folder is not repeated: `fit --config RUN/run.toml --seed 1` must not write over RUN
    assert not [line for line in saved.read_text().splitlines() if line.startswith("out =")]
    code, out, _ = run(capsys, "fit", "--config", saved, "--out", tmp_path / "b", "--json")
    assert code == 0 and last_json(out)["test_log_likelihood"] == first["test_log_likelihood"]
    code, out, _ = run(capsys, "fit", "--config", saved, "--epochs", "1", "--out", tmp_path / "c", "--json")
    assert last_json(out)["epochs_run"] == 1  # the command line wins over the file
    for bad, message in (("latent_dims = 2\n", "unknown option 'latent_dims'"),
                         ('epochs = "many"\n', "--epochs"), ('likelihood = "cauchy"\n', "must be one of"),
                         ("epochs = [\n", "not valid TOML")):
        (tmp_path / "bad.toml").write_text(bad)
        code, _, err = run(capsys, "fit", "--config", tmp_path / "bad.toml", "--data", user_csv)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_fit_config_reads_a_relative_data_path_from_the_files_folder(user_csv, capsys, tmp_path, monkeypatch):
    """As in a sweep grid: a run file and its data can move together, whatever the current directory."""
    folder = tmp_path / "project" / "cfg"
    folder.mkdir(parents=True)
    (folder / "rows.csv").write_text(Path(user_csv).read_text())
    (folder / "run.toml").write_text('data = "rows.csv"\nignore_columns = ["id", "when"]\nlabel_column = "label"\n'
                                     'likelihood = "gaussian"\nlatent_dim = 2\nhidden = [8]\nepochs = 1\n'
                                     "importance_samples = 5\n")
    monkeypatch.chdir(tmp_path)  # rows.csv is not in the current directory
    code, out, err = run(capsys, "fit", "--config", "project/cfg/run.toml", "--out", "r", "--json")
    assert code == 0, err
    assert last_json(out)["n_train"] == 160
    assert f'data = "{(folder / "rows.csv").resolve()}"' in (tmp_path / "r" / "run.toml").read_text()
    code, _, err = run(capsys, "fit", "--config", "project/cfg/run.toml", "--data", "rows.csv", "--out", "r2")
    assert code == 2 and "rows.csv" in err  # the command line's path is the current directory's


def test_reproduce_device_reaches_every_run(capsys, monkeypatch, tmp_path, table):
    if torch.cuda.is_available():
        pytest.skip("this check needs a machine without CUDA")
    monkeypatch.setenv("VAEKIT_DEVICE", "")
    code, _, err = run(capsys, "reproduce", "toy", "--device", "cuda", "--db", tmp_path / "db.sqlite")
    assert code == 2 and "CUDA" in err and not (tmp_path / "db.sqlite").exists()
    monkeypatch.setenv("VAEKIT_DEVICE", "cuda")  # what reproduce --device hands its workers
    with pytest.raises(ConfigError, match="CUDA"):
        vaekit.fit(vaekit.Dataset("t", table[0]), likelihood="gaussian", hidden=(8,),
                   train=TrainConfig(epochs=1, patience=None))


# ----------------------------------------------------------------------------------------------- start-up
def test_help_and_version_do_not_import_torch_or_sklearn():
    import subprocess
    import sys

    code = ("import sys, vaekit.cli, contextlib, io\n"
            "for argv in (['--version'], ['--help'], ['fit', '--help'], ['detect', '--help'], ['reproduce', '--help']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "        vaekit.cli.main(argv)\n"
            "print(sorted(m for m in ('torch', 'sklearn', 'scipy', 'matplotlib') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_light_name_lists_match_the_registries():
    from vaekit import names
    from vaekit.experiments import engine, targets
    from vaekit.likelihoods import LIKELIHOODS
    from vaekit.priors import PRIORS
    from vaekit.training import DIVERGENCE_POLICIES

    assert set(names.LIKELIHOOD_NAMES) == set(LIKELIHOODS) and set(names.PRIOR_NAMES) == set(PRIORS)
    from vaekit.nets import ACTIVATIONS

    assert set(names.ACTIVATION_NAMES) == set(ACTIVATIONS)
    assert names.DIVERGENCE_POLICIES == DIVERGENCE_POLICIES and names.BUDGETS == targets.BUDGETS
    assert tuple(names.BACKENDS) == tuple(engine.BACKENDS) and names.cpu_count() == engine.cpu_count()
    assert set(vaekit.__all__) <= set(dir(vaekit)) and vaekit.VAEDetector is VAEDetector


def test_fit_takes_the_model_options_at_once_or_as_keywords_not_both():
    """One configuration path: fit(data, model=ModelConfig or dict, train=TrainConfig) builds the same model as the
    keywords, and mixing both is refused."""
    import vaekit
    from vaekit import ModelConfig, TrainConfig
    from vaekit.errors import ConfigError

    train = TrainConfig(epochs=2, seed=0, patience=None)
    options = {"likelihood": "gaussian", "latent_dim": 3, "hidden": [16], "prior": "vamp",
               "prior_kwargs": {"n_components": 7}}
    _, by_keywords = vaekit.fit("cancer", train=train, importance_samples=2, **options)
    _, by_dict = vaekit.fit("cancer", model=options, train=train, importance_samples=2)
    _, by_config = vaekit.fit("cancer", model=ModelConfig(x_dim=1, **options), train=train, importance_samples=2)
    assert by_dict["model"] == by_keywords["model"] == by_config["model"]
    assert by_dict["test_log_likelihood"] == by_keywords["test_log_likelihood"] == by_config["test_log_likelihood"]
    with pytest.raises(ConfigError, match="not both"):
        vaekit.fit("cancer", model=options, latent_dim=5, train=train)
    with pytest.raises(ConfigError, match="unknown model options"):
        vaekit.fit("cancer", model={"latent_dims": 5}, train=train)


def test_fit_takes_the_training_options_as_keywords_too(table, tmp_path):
    """fit(X, epochs=2, lr=...) trains exactly as fit(X, train=TrainConfig(epochs=2, lr=...)); a misspelt option
    names the close ones, before anything is read or written."""
    import vaekit
    from vaekit import TrainConfig
    from vaekit.errors import ConfigError

    x = table[0]
    common = {"likelihood": "gaussian", "latent_dim": 2, "hidden": (8,), "importance_samples": 3}
    _, by_config = vaekit.fit(x, train=TrainConfig(epochs=2, lr=3e-3, batch_size=40, patience=None), **common)
    _, by_keywords = vaekit.fit(x, epochs=2, lr=3e-3, batch_size=40, patience=None, **common)
    assert by_keywords["train"] == by_config["train"] and by_keywords["train"]["epochs"] == 2
    assert by_keywords["test_log_likelihood"] == by_config["test_log_likelihood"]
    with pytest.raises(ConfigError, match=r"unknown option 'epoch' \(did you mean epochs\?\)"):
        vaekit.fit(x, epoch=2, out=tmp_path / "never", **common)
    with pytest.raises(ConfigError, match="either as train=TrainConfig"):
        vaekit.fit(x, epochs=2, train=TrainConfig(), **common)
    with pytest.raises(ConfigError, match="epochs must be"):
        vaekit.fit(x, epochs=0, **common)
    assert not (tmp_path / "never").exists()


def test_plot_with_data_that_cannot_be_read_fails_before_writing_anything(fitted_dir, tmp_path, capsys):
    """`vaekit plot RUN --data X`: a typo'd name or a file with NaN is an error (exit 2), not a page without its
    latent plot, and no figure is left behind. Mutations caught: the explicit data's error swallowed as for the
    run's own data; the curves written before the data are read."""
    bad = tmp_path / "nan.csv"
    bad.write_text("a,b,c\n1,2,3\n" + "1,nan,3\n" * 5)
    for data, message in (("canser", "did you mean cancer"), (str(bad), "NaN")):
        code, _, err = run(capsys, "plot", fitted_dir, "--data", data, "--out", tmp_path / "p", "--json")
        assert code == 2 and message in err, err
        assert not (tmp_path / "p").exists()


def test_refitting_into_a_run_folder_drops_what_described_the_old_model(user_csv, tmp_path, capsys):
    """Reviewer-found: re-fitting into a run folder carried over the old model's plots/ (and, after an .npy fit,
    its run.toml). Other files of the folder are still kept. Mutation caught: every entry carried over."""
    out = tmp_path / "run"
    args = ["--data", user_csv, "--id-column", "id", "--ignore-columns", "when", "--label-column", "label",
            "--likelihood", "gaussian", *TINY, "--out", out]
    assert run(capsys, "fit", *args)[0] == 0
    assert run(capsys, "plot", out)[0] == 0 and (out / "plots" / "index.html").is_file()
    (out / "notes.txt").write_text("mine")
    assert run(capsys, "fit", *args, "--seed", "1")[0] == 0
    assert not (out / "plots").exists() and (out / "notes.txt").read_text() == "mine"
    assert "seed = 1" in (out / "run.toml").read_text()  # the new run's options


def test_a_fit_that_diverges_in_its_first_epoch_says_nothing_was_trained(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(300, 4)) * 1e3
    np.savez(tmp_path / "wide.npz", x=x)
    code, out, _ = run(capsys, "fit", "--data", tmp_path / "wide.npz", "--likelihood", "gaussian", "--lr", "1e8",
                       "--epochs", "3", "--hidden", "8", "--latent-dim", "2", "--out", tmp_path / "run")
    assert code == 0 and "diverged at epoch 1; nothing was trained" in out


def test_numpy_scalar_options_save_and_load(tmp_path):
    """Reviewer-found: np.int64 options (from np.arange, a grid over arrays, a DataFrame cell) trained the whole
    budget and then failed to save as JSON, or saved a checkpoint that a weights-only load refused as code."""
    x = np.random.default_rng(0).normal(size=(200, 4))
    model, summary = vaekit.fit(x, latent_dim=np.int64(2), hidden=(np.int64(8),), epochs=np.int64(2),
                                lr=np.float32(1e-3), importance_samples=np.int64(5), out=tmp_path / "run")
    assert summary["epochs_run"] == 2 and type(model.model.config.latent_dim) is int
    np.testing.assert_allclose(vaekit.TrainedModel.load(tmp_path / "run").score_samples(x[:3], n_samples=5),
                               model.score_samples(x[:3], n_samples=5))
    detector = VAEDetector(latent_dim=np.int64(2), hidden=(8,), epochs=np.int64(1), contamination=np.float64(0.1),
                           random_state=np.int64(0)).fit(x)
    detector.save(tmp_path / "det")
    assert VAEDetector.load(tmp_path / "det").threshold_ == detector.threshold_


def test_a_dataframe_is_scored_by_column_name(tmp_path):
    """Reviewer-found: TrainedModel recorded a DataFrame's column names but scored a reordered DataFrame as if in
    order (silently wrong), and accepted renamed columns; a detector built from the fit did the same."""
    import pandas as pd

    x = np.random.default_rng(0).normal(size=(200, 4)) * [1, 100, 1, 1] + [0, 0, 50, 0]
    frame = pd.DataFrame(x, columns=list("abcd"))
    model, _ = vaekit.fit(frame, latent_dim=2, hidden=(8,), epochs=2, importance_samples=5, out=tmp_path / "run")
    in_order = model.score_samples(frame.iloc[:5], n_samples=5)
    np.testing.assert_allclose(model.score_samples(frame.iloc[:5][list("dcba")], n_samples=5), in_order)
    with pytest.raises(DataError, match=r"missing \['a'\], unexpected \['zz'\]"):
        model.score_samples(frame.iloc[:5].rename(columns={"a": "zz"}), n_samples=5)
    detector = VAEDetector.load(tmp_path / "run").calibrate(frame)
    with pytest.raises(DataError):
        detector.decision_function(frame[list("dcba")])


def test_a_dataframe_with_a_bool_column_fits():
    import pandas as pd

    x = np.random.default_rng(0).normal(size=(200, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "flag": x[:, 1] > 0})
    model, _ = vaekit.fit(frame, latent_dim=2, hidden=(8,), epochs=1, importance_samples=5)
    assert model.info["columns"] == ["a", "b", "flag"]


def test_a_trimmed_detectors_history_and_trackers_cover_both_phases(table):
    """Reviewer-found: with the default trim_fraction the refit replaced the history (epochs renumbered from 1)
    and its epochs never reached the trackers, while epochs_run counted both phases."""
    tracker = MemoryTracker()
    detector = VAEDetector(latent_dim=2, hidden=(8,), epochs=4, patience=None, importance_samples=5, random_state=0,
                           callbacks=[tracker]).fit(table[0])
    epochs = [r["epoch"] for r in detector.train_result_.history if "train_loss" in r]
    assert epochs == list(range(1, detector.train_result_.epochs_run + 1)) == [1, 2, 3, 4, 5, 6]
    assert [e for e, _ in tracker.epochs] == epochs


def test_a_bad_out_is_refused_before_training_and_saves_raise_configerror(tmp_path):
    """Reviewer-found: vaekit.fit(out=a file) trained every epoch, then lost the model to a raw FileExistsError;
    TrainedModel.save and VAEDetector.save raised raw OS errors."""
    (tmp_path / "afile").write_text("x")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    epochs = []
    x = np.random.default_rng(0).normal(size=(200, 3))
    for out, message in ((tmp_path / "afile", "exists and is not a folder"),
                         (tmp_path / "afile" / "sub", "afile"),
                         (tmp_path / "foreign", "holds other files and no vaekit run")):
        with pytest.raises(ConfigError, match=message):
            vaekit.fit(x, out=out, hidden=(8,), latent_dim=2, epochs=1, callbacks=[lambda *a, **k: epochs.append(1)])
    assert epochs == [] and (tmp_path / "foreign" / "notes.txt").read_text() == "mine"
    (tmp_path / "other").mkdir()  # another program's model.pt: a run would have replaced it without a word
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other" / "model.pt")
    for argv_out in (["--out", str(tmp_path / "other")],):
        assert main(["fit", "--data", "cancer", "--epochs", "1", "--hidden", "8", *argv_out]) == 2
    with pytest.raises(ConfigError, match="holds a model.pt that vaekit did not write"):
        vaekit.fit(x, out=tmp_path / "other", hidden=(8,), latent_dim=2, epochs=1)
    assert set(torch.load(tmp_path / "other" / "model.pt", weights_only=True)) == {"weights"}
    trained, _ = vaekit.fit(x, hidden=(8,), latent_dim=2, epochs=1, importance_samples=2)
    with pytest.raises(ConfigError, match="cannot write"):
        trained.save(tmp_path / "afile")
    detector = vaekit.VAEDetector(hidden=(8,), latent_dim=2, epochs=1, importance_samples=2).fit(x)
    with pytest.raises(ConfigError, match="cannot write"):
        detector.save(tmp_path / "afile" / "det")


def test_a_text_or_truncated_checkpoint_is_named_as_not_a_pytorch_checkpoint(tmp_path):
    """Reviewer-found: a text file said "unsafe: 101", a truncated one printed torch's zip-reader internals."""
    from vaekit.errors import CheckpointError

    trained, _ = vaekit.fit(np.random.default_rng(0).normal(size=(300, 3)), hidden=(8,), latent_dim=2, epochs=1,
                            importance_samples=2)
    trained.save(tmp_path / "good")
    data = (tmp_path / "good" / "model.pt").read_bytes()
    for name, blob in (("text", b"hello world\n" * 10), ("truncated", data[: len(data) // 2])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.pt").write_bytes(blob)
        with pytest.raises(CheckpointError) as caught:
            vaekit.TrainedModel.load(tmp_path / name)
        assert "is not a PyTorch checkpoint" in str(caught.value) and "miniz" not in str(caught.value)


def test_a_folder_given_as_the_results_database_is_told_a_database_file_name(tmp_path):
    from vaekit.validation import check_database

    with pytest.raises(ConfigError, match=r"is a folder; give a file name, e\.g\. .*vaekit\.sqlite"):
        check_database(tmp_path)
    import sqlite3

    with sqlite3.connect(tmp_path / "other.sqlite") as db:
        db.execute("CREATE TABLE songs (title TEXT)")
    with pytest.raises(ConfigError, match="another program's SQLite database"):
        check_database(tmp_path / "other.sqlite")


def test_checking_a_wal_database_leaves_no_files_beside_it(tmp_path):
    """Reviewer-found: the read-only probe of a damaged WAL database left its -wal and -shm files behind."""
    import contextlib
    import sqlite3

    from vaekit.experiments.store import Store
    from vaekit.validation import check_database

    good = tmp_path / "good.sqlite"
    Store(good).close()
    with contextlib.closing(sqlite3.connect(good)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(good.read_bytes()[:6000])
    before = sorted(p.name for p in tmp_path.iterdir())
    assert before == ["damaged.sqlite", "good.sqlite"]
    assert check_database(good) == good
    with pytest.raises(ConfigError, match="damaged|cannot be read"):
        check_database(damaged)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_python_api_bad_values_raise_vaekit_errors_with_one_line_messages():
    """Reviewer-found: score_samples(n_samples=0 / -2), fit(latent_dim="2") and VAEDetector.fit on NaN or text
    raised raw ValueError/RuntimeError/TypeError, or scikit-learn's multi-line advice."""
    x = np.random.default_rng(0).normal(size=(300, 3))
    with pytest.raises(ConfigError, match="latent_dim must be an integer"):
        vaekit.fit(x, latent_dim="2", hidden=(8,), epochs=1)
    with pytest.raises(ConfigError, match="hidden sizes must be positive integers"):
        vaekit.fit(x, latent_dim=2, hidden=("8",), epochs=1)
    trained, _ = vaekit.fit(x, hidden=(8,), latent_dim=2, epochs=1, importance_samples=2)
    for bad in (0, -2, 2.5):
        with pytest.raises(ConfigError, match="n_samples"):
            trained.score_samples(x[:5], n_samples=bad)
    with_nan = x.copy()
    with_nan[3, 1] = np.nan
    for data, message in ((with_nan, "NaN"), (np.array([["a", "b"]] * 60), "numbers only")):
        with pytest.raises(DataError, match=message) as caught:
            VAEDetector(hidden=(8,), latent_dim=2, epochs=1).fit(data)
        assert "\n" not in str(caught.value) and "HistGradientBoosting" not in str(caught.value)
