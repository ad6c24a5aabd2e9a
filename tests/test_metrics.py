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


# ---------------------------------------------------------------- edges found by mutation testing (issue 13)
def test_active_units_use_the_population_variance_and_a_strict_threshold():
    """Burda et al.'s A_u = Cov_x(E_q[u]) > delta: means {0, 1} have population variance exactly 0.25, so the unit
    is inactive at delta = 0.25 and active just below. Mutations caught: the unbiased variance (0.5), ``>=``."""
    means = np.array([[0.0], [1.0]])
    assert active_units(means, delta=0.25) == 0
    assert active_units(means, delta=0.2499) == 1


def test_mmd_default_bandwidth_is_the_median_distance_even_when_all_distances_are_below_one():
    """Mutations caught: the median heuristic replaced by width 1 when no distance exceeds 1 (``> 1`` for ``> 0``),
    and a crash (median of nothing) on identical points, whose MMD is 0."""
    torch.manual_seed(0)
    a, b = 0.1 * torch.randn(30, 2), 0.1 * torch.randn(30, 2) + 0.05
    pooled = torch.cat([a, b])
    sq = torch.cdist(pooled, pooled).pow(2)
    width = float(sq[sq > 0].median().sqrt())
    assert float(sq.max()) < 1
    assert float(gaussian_mmd(a, b)) == pytest.approx(float(gaussian_mmd(a, b, bandwidths=[width])), rel=1e-6)
    assert float(gaussian_mmd(a, b)) != pytest.approx(float(gaussian_mmd(a, b, bandwidths=[1.0])), rel=1e-3)
    same = torch.ones(5, 2)
    assert float(gaussian_mmd(same, same.clone())) == 0.0


def test_knn_accepts_exactly_k_labelled_points_and_refuses_fewer():
    z, y = np.array([[0.0], [1.0], [2.0]]), np.array([0, 0, 1])
    assert knn_accuracy(z, y, np.array([[0.5]]), np.array([0])) == 1.0
    with pytest.raises(ValueError, match="need at least k=3 labelled points, got 2"):
        knn_accuracy(z[:2], y[:2], z, y)


def test_task_mutual_information_edges_and_reproducibility():
    """One task: I = 0 (mutation caught: 1.0). Two rows per task is the smallest stratified split (``<= 2``
    caught); one is refused. The MLP probe and the folds are seeded: the same call gives the same value (caught:
    ``random_state=None`` in the folds or the probe)."""
    rng = np.random.default_rng(0)
    assert task_mutual_information(rng.normal(size=(10, 2)), np.zeros(10)) == 0.0
    z4, s4 = rng.normal(size=(4, 2)), np.array([0, 0, 1, 1])
    assert task_mutual_information(z4 + 5 * s4[:, None], s4) >= 0.0
    with pytest.raises(ValueError, match="at least two points"):
        task_mutual_information(rng.normal(size=(5, 2)), np.array([0, 0, 0, 0, 1]))
    s = np.repeat([0, 1], 100)
    z = rng.normal(size=(200, 3)) + 0.8 * s[:, None]
    for probe in metrics.PROBES:
        assert task_mutual_information(z, s, seed=2, probe=probe) == task_mutual_information(z, s, seed=2, probe=probe)


def test_task_mutual_information_bounds_are_each_probes_bound_and_their_maximum():
    """Mutations caught: the tasks, the seed or the probe not passed on to each bound."""
    rng = np.random.default_rng(1)
    s = np.repeat([0, 1], 100)
    z = rng.normal(size=(200, 3)) + 0.6 * s[:, None] + 0.8 * (rng.normal(size=(200, 1)) ** 2) * s[:, None]
    bounds = metrics.task_mutual_information_bounds(z, s, seed=3)
    each = {p: task_mutual_information(z, s, seed=3, probe=p) for p in metrics.PROBES}
    assert each["linear"] != each["mlp"] and each["linear"] != task_mutual_information(z, s, seed=0)
    assert {k: bounds[f"task_mutual_information_{k}"] for k in each} == each
    assert bounds["task_mutual_information"] == max(each.values()) > 0


def test_task_mmd_passes_its_bandwidths_to_every_pair():
    """Two tasks: MMD(q(z|s=0), q(z|s=1)); three: sum_k MMD(q(z|s=k), q(z)) — at the given bandwidths (mutation
    caught: the bandwidths dropped, i.e. the median heuristic used instead)."""
    torch.manual_seed(0)
    z = torch.randn(60, 2) + torch.arange(60).remainder(3)[:, None].float()
    s = torch.arange(60).remainder(3)
    two = s < 2
    assert float(metrics.task_mmd(z[two], s[two], 2, [0.3])) == pytest.approx(
        float(gaussian_mmd(z[s == 0], z[s == 1], [0.3])), rel=1e-6)
    assert float(metrics.task_mmd(z, s, 3, [0.3])) == pytest.approx(
        sum(float(gaussian_mmd(z[s == k], z, [0.3])) for k in range(3)), rel=1e-6)
    assert float(metrics.task_mmd(z, s, 3, [0.3])) != pytest.approx(float(metrics.task_mmd(z, s, 3)), rel=1e-3)
