"""ADBench: the 47 registered sets and their loading, the detector's shape rule, the benchmark target and report."""

import json

import numpy as np
import pytest

from vaekit.cli import main
from vaekit.data import DATASETS, load_dataset
from vaekit.data.adbench import ADBENCH_FILES, ADBENCH_SETS, dataset_name
from vaekit.detect import VAEDetector
from vaekit.detect_auto import MAX_TRAIN_ROWS, auto_config
from vaekit.errors import DatasetNotFoundError
from vaekit.experiments.adbench import present_sets, split_rows
from vaekit.experiments.adbench_report import average_ranks, write_report


@pytest.fixture
def adbench_data():
    """Skip where the ADBench files are absent (the tests that read them need the shared data directory)."""
    if not present_sets(["wine", "hepatitis"]):
        pytest.skip("the ADBench sets (VAEKIT_DATA/adbench/) are not available")


# ------------------------------------------------------------------------------------------------ data
def test_all_47_sets_registered_under_one_convention():
    assert len(ADBENCH_FILES) == 47 and len(ADBENCH_SETS) == 47
    assert dataset_name("6_cardio") == "adbench:cardio"
    assert ADBENCH_SETS["adbench:magic.gamma"] == "22_magic.gamma"
    assert ADBENCH_SETS["adbench:satimage-2"] == "31_satimage-2"
    assert all(name in DATASETS for name in ADBENCH_SETS)
    assert DATASETS["adbench:smtp"].filename == "adbench/34_smtp.npz"


def test_present_set_loads_x_and_y(adbench_data):
    wine = load_dataset("adbench:wine")
    with np.load(f"{__import__('os').environ['VAEKIT_DATA']}/adbench/45_wine.npz") as raw:
        np.testing.assert_array_equal(wine.x, raw["X"].astype(np.float32))
        np.testing.assert_array_equal(wine.y, raw["y"])
    assert wine.x.shape == (129, 13) and set(np.unique(wine.y)) == {0, 1}


def test_absent_set_names_file_and_public_source(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("adbench:cardio")
    message = str(err.value)
    assert "adbench/6_cardio.npz" in message
    assert "Minqi824/ADBench" in message and "Classical/6_cardio.npz" in message
    assert present_sets(["cardio", "wine"]) == []


def test_cli_detect_reads_an_adbench_set(capsys, adbench_data):
    code = main(["detect", "--data", "adbench:hepatitis", "--epochs", "3", "--importance-samples", "5", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n_rows"] == 80 and summary["n_labelled_anomalies"] == 13
    assert summary["config"]["latent_dim"] == 5 and summary["config"]["hidden"] == [64, 64]
    assert summary["trim_fraction"] == 0.1  # the default refit, reported


# ------------------------------------------------------------------------------------------ shape rule
@pytest.mark.parametrize("shape, expected", [
    # ADBench's smallest set (hepatitis, 80 x 19): small batches, the 100-epoch cap, a 64-wide net
    ((80, 19), dict(train_rows=80, batch_size=16, epochs=100, patience=10, hidden=(64, 64), latent_dim=5)),
    # mnist-sized (5,322 training rows x 100): 1,000 steps of 128 rows
    ((5322, 100), dict(train_rows=5322, batch_size=128, epochs=27, patience=5, hidden=(256, 256), latent_dim=10)),
    # InternetAds (1,555 columns): the width and latent caps
    ((1376, 1555), dict(train_rows=1376, batch_size=77, epochs=59, patience=5, hidden=(256, 256),
                        latent_dim=16)),
    # donors-sized (619,326 x 10): a seeded 20,000-row training subsample and the 10-epoch floor
    ((619326, 10), dict(train_rows=MAX_TRAIN_ROWS, batch_size=128, epochs=10, patience=5, hidden=(64, 64),
                        latent_dim=4)),
    # http-sized (3 columns): the 2-d latent floor
    ((400000, 3), dict(train_rows=MAX_TRAIN_ROWS, batch_size=128, epochs=10, patience=5, hidden=(64, 64),
                       latent_dim=2)),
])
def test_default_rule_pins_the_configuration(shape, expected):
    chosen = auto_config(*shape).to_dict()
    assert {k: chosen[k] for k in expected} == expected


def test_default_detector_applies_the_rule_and_handles_awkward_columns():
    rng = np.random.default_rng(0)
    x = np.c_[rng.normal(size=(120, 3)), np.ones(120), rng.integers(0, 2, size=120)]  # constant + binary column
    x = np.r_[x, x[:30]]  # duplicated rows
    det = VAEDetector(epochs=5, random_state=0).fit(x)
    rule = auto_config(*x.shape)
    assert det.config_["latent_dim"] == rule.latent_dim and det.config_["hidden"] == rule.hidden
    assert det.config_["batch_size"] == rule.batch_size and det.config_["epochs"] == 5
    assert det.config_["max_train_rows"] is None and det.config_["training_noise"] == rule.training_noise
    assert np.isfinite(det.decision_scores_).all()
    assert len(det.trained_.preprocessor.keep_) == 4  # the constant column was dropped, not an error


def test_training_subsample_caps_the_rows_trained_on():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    det = VAEDetector(max_train_rows=100, validation_fraction=0.0, epochs=1, batch_size=10, random_state=0).fit(x)
    assert det.train_result_.history and len(det.decision_scores_) == 400
    # one epoch over 100 training rows in batches of 10 is 10 steps; over all 400 rows it would be 40
    full = VAEDetector(max_train_rows=None, validation_fraction=0.0, epochs=1, batch_size=10, random_state=0).fit(x)
    assert not np.array_equal(det.decision_scores_, full.decision_scores_)
    assert det.config_["max_train_rows"] == 100 and full.config_["max_train_rows"] is None


def test_trim_fraction_refits_without_the_top_scoring_rows():
    rng = np.random.default_rng(2)
    x = np.r_[rng.normal(size=(200, 4)), rng.normal(8, 1, size=(10, 4))]
    base = VAEDetector(epochs=20, importance_samples=10, trim_fraction=0.0, random_state=0).fit(x)
    trimmed = VAEDetector(epochs=20, importance_samples=10, random_state=0).fit(x)  # the default: 0.1
    assert VAEDetector().trim_fraction == 0.1
    assert trimmed.train_result_.epochs_run > base.train_result_.epochs_run  # a second phase ran
    assert not np.array_equal(base.decision_scores_, trimmed.decision_scores_)


def test_benchmark_detectors_are_the_default_and_its_stated_variants():
    """'vaekit' is whatever VAEDetector() is; the others state their trim_fraction, so a default change cannot
    silently change what they measure (the same holds for every candidate)."""
    from vaekit.experiments.adbench import CANDIDATES, FULL_DETECTORS, make_detector

    assert make_detector("vaekit", 3).get_params() == VAEDetector(random_state=3).get_params()
    no_trim, gaussian = make_detector("vaekit no trim", 0), make_detector("vaekit Gaussian no trim", 0)
    assert (no_trim.likelihood, no_trim.trim_fraction) == ("student-t", 0.0)
    assert (gaussian.likelihood, gaussian.trim_fraction) == ("gaussian", 0.0)
    assert {"vaekit", "vaekit no trim", "vaekit Gaussian no trim"} <= set(FULL_DETECTORS)
    assert all("trim_fraction" in options for options in CANDIDATES.values())


def test_detector_save_load_keeps_auto_config(tmp_path):
    x = np.random.default_rng(0).normal(size=(60, 3))
    det = VAEDetector(epochs=2, importance_samples=5, random_state=0).fit(x)
    det.save(tmp_path)
    loaded = VAEDetector.load(tmp_path)
    assert loaded.config_ == det.config_ and loaded.get_params() == det.get_params()
    np.testing.assert_array_equal(loaded.decision_function(x), det.decision_function(x))


# ------------------------------------------------------------------------------------------- benchmark
def test_split_is_stratified_seeded_and_capped():
    y = np.r_[np.zeros(900, int), np.ones(100, int)]
    train, test = split_rows(y, seed=0, max_rows=None)
    assert len(test) == 300 and y[test].sum() == 30 and not set(train) & set(test)
    again = split_rows(y, seed=0, max_rows=None)
    np.testing.assert_array_equal(again[1], test)
    assert not np.array_equal(split_rows(y, seed=1, max_rows=None)[1], test)
    train, test = split_rows(y, seed=0, max_rows=500)
    assert len(train) + len(test) == 500 and y[np.r_[train, test]].sum() == 50


def _fake_results():
    """Three detectors on four sets, two seeds: A always best, C always worst."""
    results = []
    for i, d in enumerate(["adbench:wine", "adbench:glass", "adbench:pima", "adbench:yeast"]):
        for seed in range(2):
            for m, auc in (("vaekit", 0.9), ("IForest", 0.8 - 0.01 * i), ("PyOD VAE", 0.7)):
                results.append({"config": {"target": "adbench", "dataset": d, "detector": m, "seed": seed},
                                "status": "done",
                                "metrics": {"roc_auc": auc + 0.001 * seed, "average_precision": auc / 2,
                                            "fit_seconds": 1.0 if m == "vaekit" else 0.5, "score_seconds": 0.5,
                                            "cpu_seconds": 1.0, "n_rows": 100, "n_features": 5}})
    return results


def test_average_ranks_of_a_known_ordering():
    means = {"a": {"x": 0.9, "y": 0.8, "z": 0.7}, "b": {"x": 0.9, "y": 0.9, "z": 0.1}, "c": {"x": 0.5}}
    ranks, complete = average_ranks(means, ["x", "y", "z"])
    assert complete == ["a", "b"]  # c lacks y and z
    np.testing.assert_allclose(ranks.mean(axis=0), [1.25, 1.75, 3.0])


def test_report_tables_ranks_times_and_raw_file(tmp_path):
    report = write_report("adbench", _fake_results(), tmp_path, ["vaekit", "IForest", "PyOD VAE"])
    md = report["markdown"]
    assert "| ROC-AUC | **1.00** | 2.00 | 3.00 |" in md
    assert "vaekit's fit + score time relative to IForest: median 1.5×" in md
    rows = (tmp_path / "adbench-runs.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 4 * 2 * 3 and rows[0].startswith("dataset,detector,seed,roc_auc")
    assert "Friedman test over 4 sets (ROC-AUC)" in md
    # vaekit beats both others on every set: 4 wins; the difference to IForest grows by 0.01 per set
    assert "| IForest | +0.115 ± 0.013 | 4/0/0 | 0.12 |" in md
    assert "| PyOD VAE | +0.200 ± 0.000 | 4/0/0 | 0.12 |" in md
    # a run without its score time leaves the seconds table; the other run's fit and score are summed together
    # (mutation caught: fit and score times paired by position across runs)
    results = _fake_results()
    first = next(r for r in results if r["config"]["dataset"] == "adbench:wine" and r["config"]["detector"] == "vaekit")
    first["metrics"]["score_seconds"], first["metrics"]["fit_seconds"] = None, 9.0
    md = write_report("adbench", results, tmp_path / "partial", ["vaekit", "IForest", "PyOD VAE"])["markdown"]
    assert next(line for line in md.split("**Seconds per run**")[1].splitlines()
                if line.startswith("| wine |")).startswith("| wine | 1.50 |")


def test_a_detector_missing_a_seed_on_a_set_leaves_that_set_out_of_its_ranks_and_tests(tmp_path):
    """Reviewer-found: a failed seed was dropped silently, and the detector's per-set mean over the other seeds
    entered the ranks, Friedman and Wilcoxon tests beside the others' means over every seed."""
    results = _fake_results()
    lost = next(r for r in results if r["config"]["dataset"] == "adbench:wine"
                and r["config"]["detector"] == "PyOD VAE" and r["config"]["seed"] == 1)
    lost.update(status="failed", metrics=None, error="Traceback (most recent call last):\nValueError: boom")
    md = write_report("adbench", results, tmp_path, ["vaekit", "IForest", "PyOD VAE"])["markdown"]
    assert "Friedman test over 3 sets (ROC-AUC)" in md
    assert "| PyOD VAE | +0.200 ± 0.000 | 3/0/0 |" in md and "| IForest | +0.115 ± 0.013 | 4/0/0 |" in md
    wine = next(line for line in md.split("**ROC-AUC** per set")[1].splitlines() if line.startswith("| wine |"))
    assert wine.endswith("| 0.700 (1 missing) |")
    assert "- failed: adbench:wine PyOD VAE seed 1: ValueError: boom" in md


def test_paired_comparison_counts_wins_and_tests_the_differences():
    from vaekit.experiments.adbench_report import paired_against

    means = {f"s{i}": {"a": 0.5 + 0.1 * i, "b": 0.5, "c": 0.5 + 0.1 * i} for i in range(8)}
    means["s8"] = {"a": 0.4, "b": 0.5}  # c absent here: paired over 8 sets only
    rows = {r["detector"]: r for r in paired_against(means, "a", ["b", "c"])}
    b, c = rows["b"], rows["c"]
    assert (b["sets"], b["wins"], b["ties"], b["losses"]) == (9, 7, 1, 1)
    assert b["mean"] == pytest.approx(np.mean([0.1 * i for i in range(8)] + [-0.1]))
    assert b["p"] == pytest.approx(__import__("scipy").stats.wilcoxon([0.1 * i for i in range(1, 8)] + [-0.1]).pvalue)
    assert (c["sets"], c["ties"], c["mean"]) == (8, 8, 0.0) and np.isnan(c["p"])  # identical: no test


def test_report_draws_the_cd_diagram(tmp_path):
    pytest.importorskip("scikit_posthocs")
    report = write_report("adbench", _fake_results(), tmp_path, ["vaekit", "IForest", "PyOD VAE"])
    assert (tmp_path / "adbench-cd-roc_auc.png").stat().st_size > 1000
    assert "adbench-cd-roc_auc.png" in report["markdown"]


@pytest.mark.slow
def test_reproduce_adbench_end_to_end(tmp_path, capsys, adbench_data):
    pytest.importorskip("pyod")
    code = main(["reproduce", "adbench", "--quick", "--datasets", "adbench:hepatitis", "--db",
                 str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "out"), "--workers", "1", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["counts"]["done"] == 8 and summary["counts"]["failed"] == 0
    rows = (tmp_path / "out" / "adbench-runs.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 8 and all(",adbench:hepatitis," not in r for r in rows[:1])
