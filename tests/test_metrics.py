"""Chapter-5 metrics: active units, MMD, kNN protocol, I(S;Z)."""

import math

import numpy as np
import pytest
import torch

from sklearn.neighbors import KNeighborsClassifier

from vaekit import metrics
from vaekit.metrics import active_units, gaussian_mmd, knn_accuracy, knn_predict, task_mutual_information


def test_active_units_counts_a_planted_dead_dimension():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(500, 4))
    means[:, 2] = 0.05 * rng.normal(size=500)  # variance 0.0025 < 0.01: inactive
    assert active_units(means) == 3
    assert active_units(means, delta=0.001) == 4


def test_mmd_zero_for_identical_samples_and_grows_with_shift():
    torch.manual_seed(0)
    a = torch.randn(200, 3)
    assert float(gaussian_mmd(a, a.clone())) == pytest.approx(0.0, abs=1e-6)
    values = [float(gaussian_mmd(a, torch.randn(200, 3) + shift, bandwidths=[1.0])) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert all(x < y for x, y in zip(values, values[1:])), values


def test_mmd_is_differentiable():
    a = torch.randn(20, 2, requires_grad=True)
    gaussian_mmd(a, torch.randn(20, 2) + 1).backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()


def test_knn_uses_only_the_labelled_points():
    rng = np.random.default_rng(0)
    z_lab = np.r_[rng.normal(-3, 1, (50, 2)), rng.normal(3, 1, (50, 2))]
    y_lab = np.r_[np.zeros(50), np.ones(50)]
    z_test = np.r_[rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (100, 2))]
    y_test = np.r_[np.zeros(100), np.ones(100)]
    assert knn_accuracy(z_lab, y_lab, z_test, y_test) > 0.95
    # flipping the labelled labels flips the predictions: nothing but those labels is used
    assert knn_accuracy(z_lab, 1 - y_lab, z_test, y_test) < 0.05


@pytest.mark.parametrize("dims", [2, 20])  # scikit-learn's kd-tree and its brute-force search
def test_knn_in_chunks_predicts_exactly_what_one_call_does(dims):
    rng = np.random.default_rng(1)
    z_lab, y_lab = rng.normal(size=(300, dims)), rng.integers(0, 3, 300)  # 3 classes: votes can tie
    z_test, y_test = rng.normal(size=(1001, dims)), rng.integers(0, 3, 1001)
    classifier = KNeighborsClassifier(n_neighbors=3).fit(z_lab, y_lab)
    whole = classifier.predict(z_test)
    for chunk_rows in (1, 7, 256, 5000):
        np.testing.assert_array_equal(knn_predict(classifier, z_test, chunk_rows=chunk_rows), whole)
    assert knn_accuracy(z_lab, y_lab, z_test, y_test, chunk_rows=7) == classifier.score(z_test, y_test)


def test_knn_shows_a_bar_and_logs_its_expected_cost(monkeypatch, caplog, capsys):
    rng = np.random.default_rng(0)
    monkeypatch.setattr(metrics, "ANNOUNCE_DISTANCES", 0)
    with caplog.at_level("INFO", logger="vaekit.metrics"):
        knn_accuracy(rng.normal(size=(20, 2)), rng.integers(0, 2, 20), rng.normal(size=(50, 2)),
                     rng.integers(0, 2, 50), progress=True, chunk_rows=10)
    assert "50 test rows x 20 labelled rows (2-d) = 1,000 distances" in caplog.text
    assert "s expected (from the first 10 rows)" in caplog.text
    assert "3-NN" in capsys.readouterr().err  # the tqdm bar
    knn_accuracy(rng.normal(size=(20, 2)), rng.integers(0, 2, 20), rng.normal(size=(50, 2)), rng.integers(0, 2, 50))
    assert "3-NN" not in capsys.readouterr().err  # progress=False: no bar


def test_task_mutual_information_zero_when_independent_and_log2_when_determined():
    rng = np.random.default_rng(0)
    s = np.repeat([0, 1], 300)
    independent = rng.normal(size=(600, 3))
    assert task_mutual_information(independent, s) < 0.02
    separated = independent + 10 * s[:, None]
    assert task_mutual_information(separated, s) == pytest.approx(math.log(2), abs=0.02)
