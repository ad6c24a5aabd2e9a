"""VAEDetector: scikit-learn contract, PyOD semantics, detection quality on planted outliers, robustness, CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_estimator

from vaekit.cli import main
from vaekit.detect import VAEDetector
from vaekit.errors import CheckpointError, ConfigError, DataError

#: A small network budget that keeps every fit in this file well under a second.
SMALL = dict(latent_dim=2, hidden=(16,), epochs=15, batch_size=50, importance_samples=10, random_state=0)


@pytest.fixture(scope="module")
def planted():
    """300 correlated Gaussian inliers in 4-d and 6 outliers at distance 9 in random directions."""
    rng = np.random.default_rng(1)
    inliers = rng.normal(size=(300, 4)) @ np.diag([1.0, 0.5, 2.0, 1.0])
    directions = rng.normal(size=(6, 4))
    outliers = 9 * directions / np.linalg.norm(directions, axis=1, keepdims=True) * np.array([1.0, 0.5, 2.0, 1.0])
    x = np.concatenate([inliers, outliers])
    y = np.r_[np.zeros(300, int), np.ones(6, int)]
    return x, y


@pytest.fixture(scope="module")
def fitted(planted):
    return VAEDetector(**SMALL, contamination=0.05).fit(planted[0])


def test_check_estimator_passes():
    check_estimator(VAEDetector(hidden=(8,), epochs=3, importance_samples=5))


def test_params_round_trip_and_clone():
    det = VAEDetector(likelihood="gaussian", hidden=(4, 4), contamination=0.2)
    assert det.get_params()["likelihood"] == "gaussian"
    assert clone(det).set_params(latent_dim=3).get_params()["latent_dim"] == 3
    assert det.get_params()["latent_dim"] == "auto"  # chosen from the data shape at fit (vaekit.detect_auto)


def test_planted_outliers_ranked_on_top(planted, fitted):
    _, y = planted
    top = np.argsort(-fitted.decision_scores_)[: y.sum()]
    assert set(top) == set(np.flatnonzero(y))


def test_pyod_attributes_and_sign_conventions(planted, fitted):
    x, _ = planted
    scores = fitted.decision_function(x)
    np.testing.assert_allclose(scores, fitted.decision_scores_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fitted.score_samples(x), -scores)
    assert fitted.threshold_ == pytest.approx(np.percentile(fitted.decision_scores_, 95))
    np.testing.assert_array_equal(fitted.labels_, fitted.predict(x))
    assert set(np.unique(fitted.labels_)) == {0, 1}
    for method in ("linear", "unify"):
        proba = fitted.predict_proba(x, method=method)
        assert proba.shape == (len(x), 2) and np.allclose(proba.sum(1), 1) and (proba >= 0).all()
        # probabilities order the rows like the scores
        assert np.corrcoef(proba[:, 1], scores)[0, 1] > 0.5
    with pytest.raises(ConfigError, match="linear"):
        fitted.predict_proba(x, method="softmax")


@pytest.mark.parametrize("contamination", [0.02, 0.1, 0.25])
def test_predict_flags_the_requested_fraction(contamination):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 3))
    det = VAEDetector(**{**SMALL, "epochs": 3}, contamination=contamination).fit(x)
    # PyOD's rule (score > the 1 - c percentile, interpolated) flags ceil(c * (n - 1)) rows: within one of c * n
    expected = int(np.ceil(contamination * (len(x) - 1)))
    assert det.predict(x).sum() == det.labels_.sum() == expected
    assert abs(expected - contamination * len(x)) < 1


@pytest.mark.parametrize("likelihood", ["student-t", "gaussian"])
def test_scores_finite_far_outside_training_range(planted, likelihood):
    det = VAEDetector(**SMALL, likelihood=likelihood).fit(planted[0])
    far = np.array([[1e6, 1e6, 1e6, 1e6], [-1e6, 0, 0, 0], [0, 0, 0, 1e6], [1e6, -1e6, 1e6, -1e6]])
    scores = det.decision_function(far)
    assert np.isfinite(scores).all()
    # far points are more anomalous than every training row
    assert scores.min() > det.decision_scores_.max()


def test_scores_deterministic_and_batch_independent(planted, fitted):
    x = planted[0][:40]
    torch.manual_seed(123)
    full = fitted.score_samples(x)
    torch.manual_seed(7)
    pieces = np.concatenate([fitted.score_samples(x[i : i + 7]) for i in range(0, 40, 7)])
    np.testing.assert_allclose(full, pieces, rtol=0, atol=1e-9)


def test_fit_is_seeded_and_leaves_global_rng_alone(planted):
    x = planted[0][:120]
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a = VAEDetector(**{**SMALL, "epochs": 3}).fit(x).decision_scores_
    after = torch.rand(1)
    b = VAEDetector(**{**SMALL, "epochs": 3}).fit(x).decision_scores_
    c = VAEDetector(**{**SMALL, "epochs": 3, "random_state": 1}).fit(x).decision_scores_
    assert torch.equal(before, after)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_bad_input_gives_clear_errors(planted, fitted):
    x = planted[0]
    with pytest.raises(NotFittedError):
        VAEDetector().decision_function(x)
    with pytest.raises(DataError, match="NaN"):
        VAEDetector(**SMALL).fit(np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x))
    with pytest.raises(DataError, match="NaN"):
        fitted.score_samples(np.full((2, 4), np.nan))
    with pytest.raises(DataError, match="3 features, but VAEDetector is expecting 4"):
        fitted.predict(x[:, :3])
    with pytest.raises(DataError, match="minimum of 3"):
        VAEDetector(**SMALL).fit(x[:2])
    with pytest.raises(ConfigError, match="contamination"):
        VAEDetector(**SMALL, contamination=0.7).fit(x)
    with pytest.raises(ConfigError, match="validation_fraction must be in"):  # 0.99 left 2 rows to train on
        VAEDetector(**SMALL, validation_fraction=0.99).fit(x)
    with pytest.raises(ConfigError, match="unknown likelihood"):
        VAEDetector(**SMALL, likelihood="laplace").fit(x)
    with pytest.raises(DataError, match="constant"):  # the default drops constant columns; "error" refuses them
        VAEDetector(**SMALL, constant_columns="error").fit(np.c_[x, np.ones(len(x))])


def test_bernoulli_likelihood_and_other_priors_by_name():
    rng = np.random.default_rng(3)
    x = (rng.uniform(size=(120, 6)) < 0.3).astype(float)
    det = VAEDetector(**{**SMALL, "epochs": 3}, likelihood="bernoulli").fit(x)
    assert np.isfinite(det.decision_scores_).all()
    with pytest.raises(DataError, match="binary"):
        det.score_samples(x + 0.5)


def test_save_load_round_trip_identical_scores(planted, fitted, tmp_path):
    x = planted[0]
    fitted.save(tmp_path / "det")
    loaded = VAEDetector.load(tmp_path / "det")
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.decision_function(x), fitted.decision_function(x))
    np.testing.assert_array_equal(loaded.labels_, fitted.labels_)
    assert loaded.threshold_ == fitted.threshold_
    # a second fit with the same seed reproduces the saved scores exactly
    refit = VAEDetector(**SMALL, contamination=0.05).fit(x)
    np.testing.assert_array_equal(refit.decision_function(x), loaded.decision_function(x))


def test_load_rejects_other_checkpoints(tmp_path, blobs):
    from vaekit import TrainConfig, fit

    trained, _ = fit(_dataset(blobs), likelihood="gaussian", latent_dim=2, hidden=(8,), importance_samples=2,
                     train=TrainConfig(epochs=1, batch_size=50))
    trained.save(tmp_path)
    detector = VAEDetector.load(tmp_path)  # a fit directory: one model format for every command (issue 18)
    assert detector.trained_.model.config == trained.model.config and not hasattr(detector, "threshold_")
    assert detector.calibrate(blobs).labels_.mean() == pytest.approx(0.1, abs=0.01)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        VAEDetector.load(tmp_path / "elsewhere")
    with pytest.raises(CheckpointError, match="'vae' model, not a 'detector'"):
        VAEDetector.load(tmp_path / "model.pt")


def _dataset(x):
    from vaekit import Dataset

    return Dataset("blobs", x)


# ------------------------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def labelled_csv(planted, tmp_path_factory):
    x, y = planted
    path = tmp_path_factory.mktemp("d") / "planted.csv"
    np.savetxt(path, np.c_[x, y], delimiter=",", header="a,b,c,d,attack", comments="", fmt="%.6f")
    return path


CLI_BUDGET = ["--latent-dim", "2", "--hidden", "16", "--epochs", "15", "--batch-size", "50",
              "--importance-samples", "10", "--seed", "0"]


def test_cli_detect_end_to_end(labelled_csv, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    code = main(["detect", "--data", str(labelled_csv), "--label-column", "attack", "--contamination", "0.0196",
                 *CLI_BUDGET, "--output", str(out), "--save", str(tmp_path / "det"), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n_rows"] == 306 and summary["n_flagged"] == 6 and summary["n_labelled_anomalies"] == 6
    assert summary["roc_auc"] == pytest.approx(1.0) and summary["average_precision"] == pytest.approx(1.0)
    table = np.genfromtxt(out, delimiter=",", names=True)
    assert table.dtype.names == ("row", "anomaly_score", "flagged", "label") and len(table) == 306
    # scoring with the saved detector gives the same scores
    code = main(["detect", "--data", str(labelled_csv), "--label-column", "attack", "--model", str(tmp_path / "det"),
                 "--output", str(tmp_path / "again.csv"), "--json"])
    assert code == 0
    again = np.genfromtxt(tmp_path / "again.csv", delimiter=",", names=True)
    np.testing.assert_array_equal(again["anomaly_score"], table["anomaly_score"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["roc_auc"] == summary["roc_auc"]


def test_cli_detect_without_labels_prints_csv(labelled_csv, tmp_path, capsys, planted):
    unlabelled = tmp_path / "x.csv"
    np.savetxt(unlabelled, planted[0], delimiter=",")
    assert main(["detect", "--data", str(unlabelled), *CLI_BUDGET[:-2], "--epochs", "2"]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    # stdout is the table alone (vaekit detect ... > flags.csv); the summary line goes to stderr
    assert lines[0] == "row,anomaly_score,flagged" and len(lines) == 1 + 306  # header, rows
    assert all(len(line.split(",")) == 3 for line in lines) and "rows flagged" in err


def test_cli_detect_json_without_output_holds_the_rows(planted, tmp_path, capsys):
    """``--json`` without ``--output`` prints no table, so the JSON object carries the per-row results."""
    x = planted[0]
    with_ids = tmp_path / "ids.csv"
    with_ids.write_text("id,a,b,c,d\n" + "".join(f"r{i}," + ",".join(f"{v:.6f}" for v in row) + "\n"
                                                 for i, row in enumerate(x)))
    code = main(["detect", "--data", str(with_ids), "--id-column", "id", *CLI_BUDGET, "--save", str(tmp_path / "det"),
                 "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = VAEDetector.load(tmp_path / "det")
    np.testing.assert_allclose(summary["scores"], saved.decision_scores_, rtol=1e-12)
    assert summary["flagged"] == saved.labels_.tolist() and sum(summary["flagged"]) == summary["n_flagged"]
    assert summary["ids"] == [f"r{i}" for i in range(len(x))]
    code = main(["detect", "--data", str(with_ids), "--id-column", "id", "--model", str(tmp_path / "det"),
                 "--output", str(tmp_path / "s.csv"), "--json"])
    assert code == 0  # with --output the rows are in that file, not in the JSON object
    assert "scores" not in json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fit_run(labelled_csv, tmp_path_factory):
    """A ``vaekit fit --out`` run folder (model.pt) trained on the labelled CSV."""
    out = tmp_path_factory.mktemp("fit") / "run"
    assert main(["fit", "--data", str(labelled_csv), "--label-column", "attack", "--latent-dim", "2", "--hidden",
                 "16", "--epochs", "2", "--importance-samples", "5", "--no-progress", "--out", str(out)]) == 0
    return out


def test_cli_detect_saves_a_calibrated_fit_model(fit_run, labelled_csv, tmp_path, capsys):
    base = ["detect", "--data", str(labelled_csv), "--label-column", "attack"]
    code = main([*base, "--model", str(fit_run), "--save", str(tmp_path / "det"), "--output", str(tmp_path / "a.csv"),
                 "--json"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["threshold_from"] == "scored rows" and summary["config"] == {"latent_dim": 2, "hidden": [16]}
    loaded = VAEDetector.load(tmp_path / "det")
    assert loaded.config_ == {"latent_dim": 2, "hidden": (16,)} and loaded.threshold_ == summary["threshold"]
    with pytest.warns(UserWarning, match="--likelihood, --epochs: a saved detector .--model. is used as it was"):
        code = main([*base, "--model", str(tmp_path / "det"), "--output", str(tmp_path / "b.csv"),
                     "--likelihood", "gaussian", "--epochs", "7"])  # ignored, with a warning
    assert code == 0
    first, again = (np.genfromtxt(tmp_path / f, delimiter=",", names=True) for f in ("a.csv", "b.csv"))
    np.testing.assert_array_equal(again["anomaly_score"], first["anomaly_score"])
    np.testing.assert_array_equal(again["flagged"], first["flagged"])
    from sklearn.exceptions import NotFittedError

    from vaekit.trained import TrainedModel

    with pytest.raises(NotFittedError, match="calibrate"):  # from_trained without calibrate has no threshold
        VAEDetector.from_trained(TrainedModel.load(fit_run)).save(tmp_path / "uncalibrated")
    assert not (tmp_path / "uncalibrated").exists()



def test_cli_detect_model_scores_a_fit_run_with_its_scoring_options(fit_run, labelled_csv, tmp_path, capsys):
    """Reviewer-found: with --model, --importance-samples and --seed were dropped without a word (always K = 100,
    seed 0), scikit-learn warned about feature names, and the JSON reported the detector default trim_fraction."""
    import warnings

    base = ["detect", "--data", str(labelled_csv), "--label-column", "attack", "--model", str(fit_run), "--json"]
    scores = {}
    for extra in (("--importance-samples", "3"), ("--importance-samples", "3", "--seed", "1"), ()):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no feature-name warning from scikit-learn
            assert main([*base, *extra]) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        scores[extra] = np.array(summary["scores"])
        assert summary["trim_fraction"] is None and summary["epochs_run"] == 2  # the fit run's, recorded at fit
    assert not np.allclose(scores[("--importance-samples", "3")], scores[()])
    assert not np.allclose(scores[("--importance-samples", "3")], scores[("--importance-samples", "3", "--seed", "1")])
    assert main(["score", str(fit_run), "--data", str(labelled_csv), "--label-column", "attack",
                 "--importance-samples", "3", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    np.testing.assert_allclose(-np.array(scored["scores"]), scores[("--importance-samples", "3")], rtol=1e-4)
    assert main([*base[:-3], "--model", str(fit_run), "--save", str(tmp_path / "det")]) == 0
    capsys.readouterr()
    with pytest.warns(UserWarning, match="--importance-samples: ignored with --model"):
        assert main([*base[:-3], "--model", str(tmp_path / "det"), "--importance-samples", "7",
                     "--output", str(tmp_path / "o.csv")]) == 0


def test_cli_evaluate_of_a_detector_asks_for_data(fit_run, labelled_csv, tmp_path, capsys):
    """A detector trains on every row of its file: no held-out split to evaluate, and no false 'file changed'."""
    base = ["--data", str(labelled_csv), "--label-column", "attack"]
    det = tmp_path / "det"
    assert main(["detect", *base, *CLI_BUDGET, "--save", str(det), "--output", str(tmp_path / "s.csv")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(det), "--importance-samples", "5"]) == 2
    err = capsys.readouterr().err
    assert "pass --data" in err and "changed" not in err and len(err.strip().splitlines()) == 1
    assert main(["evaluate", str(det), *base, "--importance-samples", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n_test"] == 306
    # a detector around a fit model keeps that model's test split
    calibrated = tmp_path / "calibrated"
    assert main(["detect", *base, "--model", str(fit_run), "--save", str(calibrated), "--json"]) == 0
    capsys.readouterr()
    results = []
    for model in (calibrated, fit_run):
        assert main(["evaluate", str(model), "--importance-samples", "5", "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert results[0]["data"].endswith("(test split)") and results[0]["n_test"] < 306
    assert results[0]["test_log_likelihood"] == results[1]["test_log_likelihood"]


def test_cli_detect_refuses_to_save_into_another_models_fit_run(fit_run, labelled_csv, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(fit_run, run_dir)
    before = sorted(p.name for p in run_dir.iterdir())
    base = ["detect", "--data", str(labelled_csv), "--label-column", "attack"]
    other = tmp_path / "other"
    assert main([*base, *CLI_BUDGET, "--save", str(other), "--output", str(tmp_path / "o.csv")]) == 0
    capsys.readouterr()
    for model in ([], ["--model", str(other)]):  # a new detector, or another saved one
        code = main([*base, *CLI_BUDGET, *model, "--save", str(run_dir), "--output", str(tmp_path / "new.csv")])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and "choose another --save folder" in err and "model.pt" in err
        assert sorted(p.name for p in run_dir.iterdir()) == before and not (tmp_path / "new.csv").exists()
    # the run's own model, calibrated and saved beside it, is the same network: allowed
    assert main([*base, "--model", str(run_dir), "--save", str(run_dir), "--output", str(tmp_path / "c.csv")]) == 0
    assert (run_dir / "detector.pt").is_file()


def test_cli_detect_refuses_to_replace_a_detector_pt_it_did_not_write(labelled_csv, tmp_path, capsys):
    save = tmp_path / "save"
    save.mkdir()
    (save / "detector.pt").write_bytes(b"not a checkpoint" * 64)
    code = main(["detect", "--data", str(labelled_csv), *CLI_BUDGET, "--save", str(save),
                 "--output", str(tmp_path / "s.csv")])
    assert code == 2 and "detector.pt that vaekit did not write" in capsys.readouterr().err
    assert (save / "detector.pt").read_bytes() == b"not a checkpoint" * 64 and not (tmp_path / "s.csv").exists()


def test_cli_detect_bad_label_column_exits_2(labelled_csv, capsys):
    code = main(["detect", "--data", str(labelled_csv), "--label-column", "nope", *CLI_BUDGET, "--json"])
    assert code == 2
    out, err = capsys.readouterr()
    assert out == "" and "no column named 'nope'" in err and len(err.strip().splitlines()) == 1


def test_cli_detect_non_binary_labels_exit_2(labelled_csv, capsys):
    code = main(["detect", "--data", str(labelled_csv), "--label-column", "a", *CLI_BUDGET])
    assert code == 2 and "0 (normal) or 1 (anomaly)" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "value"), [("--validation-fraction", "0.99"), ("--trim-fraction", "0.5")])
def test_cli_detect_refuses_fractions_the_detector_refuses_while_parsing(labelled_csv, option, value, capsys):
    assert main(["detect", "--data", str(labelled_csv), option, value, *CLI_BUDGET]) == 2
    out, err = capsys.readouterr()
    assert out == "" and f"argument {option}: expected a finite number >= 0 and <" in err


def test_cli_detect_as_subprocess(labelled_csv):
    """``python -m vaekit.cli detect`` finds the command registered by its feature module."""
    done = subprocess.run([sys.executable, "-m", "vaekit.cli", "detect", "--data", str(labelled_csv),
                           "--label-column", "attack", "--hidden", "8", "--epochs", "2", "--importance-samples", "5",
                           "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["n_rows"] == 306


def test_too_few_rows_say_what_to_do():
    from vaekit.detect import MIN_SAMPLES

    with pytest.raises(DataError, match=f"trains on at least {MIN_SAMPLES} rows .* give more rows"):
        VAEDetector(epochs=1).fit(np.zeros((MIN_SAMPLES - 1, 3)) + np.arange(3))


def test_a_detector_says_what_it_lacks(fit_run):
    """Reviewer-found: a detector loaded from a fit run raised a bare AttributeError from predict until calibrated;
    an unfitted one from calibrate; prior='avb' trained the whole budget and then could not score."""
    from sklearn.exceptions import NotFittedError

    x = np.random.default_rng(0).normal(size=(50, 3))
    loaded = VAEDetector.load(fit_run)
    for call in (loaded.predict, loaded.predict_proba, loaded.predict_confidence):
        with pytest.raises(NotFittedError, match="no threshold yet: call fit, or calibrate"):
            call(np.zeros((2, loaded.n_features_in_)))
    with pytest.raises(NotFittedError, match="no model to calibrate"):
        VAEDetector().calibrate(x)
    with pytest.raises(ConfigError, match="prior='avb' cannot score rows"):
        VAEDetector(prior="avb", epochs=1).fit(x)
