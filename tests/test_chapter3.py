"""Chapter-3 targets: grids, tiny executions, reports from hand-made results, noise rows, Eq. (3.11) densities."""

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from vaekit.data import Preprocessor
from vaekit.experiments import TARGETS
from vaekit.experiments.alias import forward
from vaekit.experiments.chapter3 import (
    CHAPTER3_DATASETS,
    METHODS,
    TARGET_NAMES,
    add_uniform_noise,
    bin_changes,
    gaussian_log_density,
    student_t_log_density,
)
from vaekit.experiments.chapter3.instability import jump_epoch
from vaekit.experiments.chapter3.runs import SETUP, clean_units_offset
from vaekit.experiments.engine import run_grid
from vaekit.experiments.report import load_raw, report_from_db
from vaekit.experiments.report_helpers import dataset_available
from vaekit.experiments.store import Store
from vaekit.experiments.chapter3.table import epochs_for

TINY = {"hidden": [8, 8], "importance_samples": 4}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _present() -> list[str]:
    return [d for d in CHAPTER3_DATASETS if dataset_available(d)]


# ------------------------------------------------------------------------------------------------------ grids
def test_every_target_is_registered_with_both_budgets():
    for name in TARGET_NAMES:
        target = TARGETS[name]
        assert target.name == name and target.description
        assert set(target.budgets) == {"quick", "full"}


@pytest.mark.parametrize("budget", ["quick", "full"])
def test_table_grid_covers_present_datasets_methods_and_seeds(budget, data_dir):
    target = TARGETS["table-3.2"]
    runs = target.runs(budget)
    present = _present()
    assert "smtp" in present and "cancer" in present
    spec = target.budgets[budget]
    assert len(runs) == len(present) * len(METHODS) * spec["seeds"]
    assert len({(c["dataset"], c["method"], c["seed"]) for c in runs}) == len(runs)
    assert {c["dataset"] for c in runs} == set(present)  # absent data sets are skipped, not failed
    for c in runs:
        json.dumps(c, allow_nan=False)
        assert c["target"] == "table-3.2" and c["latent_dim"] == (2 if c["dataset"] == "smtp" else 20)
        assert c["epochs"] == epochs_for(spec, c["dataset"]) and c["hidden"] == [500, 500]
        assert c["batch_size"] == 100 and c["lr"] == 1e-3 and c["importance_samples"] == 100
    if budget == "full":
        assert spec["seeds"] == 10 and all(c["epochs"] == 500 and c["test_subsample"] is None for c in runs)
    assert len(target.runs(budget, seeds=2, datasets=["cancer"])) == len(METHODS) * 2


def test_figure_grids_follow_their_budgets(data_dir):
    for budget in ("quick", "full"):
        f36, f37, f38 = (TARGETS[n] for n in ("figure-3.6", "figure-3.7", "figure-3.8"))
        b = f36.budgets[budget]
        gaussian = len(b["batch_sizes"]) + len([lr for lr in b["lrs"] if lr != SETUP["lr"]])
        runs = f36.runs(budget)
        assert len(runs) == (gaussian + 1) * b["seeds"]
        assert len({(c["method"], c["batch_size"], c["lr"], c["seed"]) for c in runs}) == len(runs)
        b = f37.budgets[budget]
        runs = f37.runs(budget)
        assert len(runs) == (len(b["b"]) + 2) * b["seeds"]
        assert sorted({c["likelihood_kwargs"]["b"] for c in runs if c["likelihood"] == "map"}) == sorted(b["b"])
        b = f38.budgets[budget]
        assert len(f38.runs(budget)) == 2 * len(b["noise_ratios"]) * b["seeds"]
        assert len(TARGETS["figure-3.2"].runs(budget)) == 2 and len(TARGETS["figure-3.4"].runs(budget)) == 1
        assert len(TARGETS["figure-3.5"].runs(budget)) == len(_present()) * len(METHODS)
        for name in TARGET_NAMES:
            for c in TARGETS[name].runs(budget):
                assert c["target"] == name and "seed" in c
                assert c.get("dataset", "smtp") in CHAPTER3_DATASETS


# ----------------------------------------------------------------------------------------------- execution
def test_execute_tiny_table_run_returns_finite_json_metrics(data_dir):
    target = TARGETS["table-3.2"]
    config = next(c for c in target.runs("quick", seeds=1, datasets=["cancer"]) if c["method"] == "Student-t")
    metrics = target.execute({**config, **TINY, "epochs": 2})
    json.dumps(metrics, allow_nan=False)
    assert math.isfinite(metrics["test_log_likelihood"]) and metrics["epochs_run"] == 2
    assert metrics["diverged"] is False and len(metrics["history"]) == 2
    nu_min = metrics["likelihood_config"]["nu_min"]
    assert all(h["mean_nu"] > nu_min for h in metrics["history"])


def test_execute_tiny_sweep_run_evaluates_the_seeded_subsample_and_adds_noise(data_dir):
    target = TARGETS["figure-3.8"]
    config = next(c for c in target.runs("quick", seeds=1) if c["noise_ratio"] == 0.1 and c["method"] == "Gaussian")
    metrics = target.execute({**config, **TINY, "epochs": 1, "test_subsample": 300})
    assert metrics["n_test_evaluated"] == 300 and math.isfinite(metrics["test_log_likelihood"])
    clean = metrics["n_train"] - metrics["n_noise_rows"]
    assert metrics["n_noise_rows"] == round(0.1 * clean)


def test_execute_figure_32_tracks_per_point_loss_changes(data_dir):
    target = TARGETS["figure-3.2"]
    config = next(c for c in target.runs("quick") if c["method"] == "Gaussian")
    metrics = target.execute({**config, **TINY, "epochs": 2, "test_subsample": 200})
    per_point = metrics["per_point"]
    assert [e["epoch"] for e in per_point] == [1, 2] and "bins" not in per_point[0]
    assert sum(b[1] for b in per_point[1]["bins"]) == metrics["n_train"]
    json.dumps(metrics, allow_nan=False)


# --------------------------------------------------------------------------------------------------- reports
def _result(target, dataset, method, seed, ll, diverged=False, **config):
    history = [{"epoch": e, "train_loss": 3.0 - 0.1 * e + (2.0 if e == 4 else 0.0), "val_loss": 3.0,
                "seconds": 0.5 * e} for e in range(1, 7)]
    return {"config": {"target": target, "dataset": dataset, "method": method, "seed": seed,
                       "likelihood": METHODS.get(method, ("map", {}))[0], **config},
            "status": "diverged" if diverged else "done",  # as the engine stores them (engine.execute_run)
            "metrics": {"test_log_likelihood": ll, "diverged": diverged, "epochs_run": 6,
                                          "seconds": 1.0, "history": history}}


def test_table_report_bolds_best_and_not_significantly_worse(tmp_path):
    rng = np.random.default_rng(1)
    student = 1.0 + rng.normal(0, 0.1, 5)
    results = []
    for s in range(5):
        results += [
            _result("table-3.2", "smtp", "Student-t", s, float(student[s])),
            _result("table-3.2", "smtp", "Gaussian", s, float(student[s] - 2 + rng.normal(0, 0.05)), diverged=s == 0),
            _result("table-3.2", "smtp", "MAP (b=0.001)", s, float(student[s] + rng.normal(0, 0.05))),
            _result("table-3.2", "smtp", "MAP (b=1)", s, -5.0 + 0.01 * s),
        ]
    results.append({"config": {"dataset": "smtp", "method": "Gaussian", "seed": 5}, "status": "failed",
                    "metrics": {}, "error": "RuntimeError('boom')"})
    report = TARGETS["table-3.2"].report(results, tmp_path)
    row = next(line for line in report["markdown"].splitlines() if line.startswith("| smtp | ") and "±" in line)
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    bold = dict(zip(METHODS, [c.startswith("**") for c in cells]))
    assert bold == {"Gaussian": False, "MAP (b=1)": False, "MAP (b=0.001)": True, "Student-t": True}
    assert "1/5 / 0/5 / 0/5 / 0/5" in report["markdown"] and "boom" in report["markdown"]
    assert "aloi" in report["markdown"]  # absent data sets are named
    assert len((tmp_path / "table-3.2.csv").read_text().splitlines()) == 21
    lines = report["markdown"].splitlines()  # the thesis's row under the measured one, in METHODS order, not bold
    assert lines[lines.index(row) + 1] == "| smtp (thesis) | -1.248 ± 0.404 | -4.864 ± 0.020 | -1.932 ± 0.404 | 0.827 ± 0.105 |"
    assert "aloi (thesis)" not in report["markdown"]  # only under data sets that were measured


def test_figure_reports_write_small_pngs(tmp_path):
    results = {
        "figure-3.5": [_result("figure-3.5", d, m, 0, -1.0) for d in ("smtp", "cancer") for m in METHODS],
        "figure-3.6": [_result("figure-3.6", "smtp", "Gaussian", s, -2.0 + 0.1 * s + 0.01 * bs, batch_size=bs,
                               lr=1e-3, sweep="optimiser") for s in range(3) for bs in (50, 100)]
        + [_result("figure-3.6", "smtp", "Gaussian", s, -3.0 + 0.1 * s, batch_size=100, lr=1e-2,
                   sweep="optimiser", diverged=s == 0) for s in range(3)]
        + [_result("figure-3.6", "smtp", "Student-t", s, 0.5 + 0.1 * s, batch_size=100, lr=1e-3,
                   sweep="reference") for s in range(3)],
        "figure-3.7": [_result("figure-3.7", "smtp", f"MAP (b={b:g})", s, -2.0 - b + 0.1 * s, b=b, sweep="b")
                       for b in (1e-3, 1.0) for s in range(3)]
        + [_result("figure-3.7", "smtp", m, s, 0.1 * s, sweep="reference") for m in ("Gaussian", "Student-t")
           for s in range(3)],
        "figure-3.8": [_result("figure-3.8", "smtp", m, s, -r + 0.1 * s - (m == "Gaussian") * (1 + 0.01 * s * s),
                               noise_ratio=r, sweep="noise")
                       for m in ("Gaussian", "Student-t") for r in (0.0, 0.1) for s in range(3)],
    }
    for name, res in results.items():
        report = TARGETS[name].report(res, tmp_path / name)
        png = tmp_path / name / f"{name}.png"
        assert png.is_file() and png.stat().st_size < 200_000 and str(png) in report["files"]
    md = (tmp_path / "figure-3.6" / "figure-3.6.md").read_text()
    assert "| batch_size = 50 | Gaussian |" in md
    # a diverged run (status "diverged") stays in its mean and is counted (mutation: finished() keeps "done" only)
    assert "| lr = 0.01 | Gaussian | -2.900 ± 0.100 | 1/3 |" in md
    row = next(line for line in (tmp_path / "figure-3.8" / "figure-3.8.md").read_text().splitlines()
               if line.startswith("| noise_ratio = 0.1 | Gaussian |"))
    assert float(row.strip("|").split("|")[-1]) < 0.05  # paired with the Student-t runs at ratio 0.1


def test_figure_32_report_picks_the_jump_epoch(tmp_path):
    result = _result("figure-3.2", "smtp", "Gaussian", 0, -1.0)
    result["metrics"]["per_point"] = [{"epoch": 1}] + [
        {"epoch": e, "bins": [[-6, 10, 5.0 * (e == 4), 1.0], [0, 90, 0.1, 0.2]]} for e in range(2, 7)]
    assert jump_epoch(result["metrics"]["history"]) == 4
    report = TARGETS["figure-3.2"].report([result], tmp_path)
    assert "epoch 3 → 4" in report["markdown"] and "| -6 | 10 | +5.000 | 1.000 |" in report["markdown"]
    # one epoch-to-epoch rise of the training loss (+1.9 at epoch 4) above 1 nat, none above 5
    assert "| Gaussian | 0 | 6 | False | +1.900 (4) | 1 | 0 | -1.000 |" in report["markdown"]
    assert (tmp_path / "figure-3.2.png").is_file()


# ------------------------------------------------------------------------------------- noise rows, densities
def test_uniform_noise_rows_count_and_range():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32) * [1, 10, 0.1]
    noisy = add_uniform_noise(x, 0.25, np.random.default_rng(1))
    assert noisy.shape == (250, 3) and noisy.dtype == x.dtype
    np.testing.assert_array_equal(noisy[:200], x)
    assert (noisy[200:] >= x.min(0)).all() and (noisy[200:] <= x.max(0)).all()
    assert noisy[200:].std(0).min() > 0
    assert len(add_uniform_noise(x, 0.0, rng)) == 200 and len(add_uniform_noise(x, 0.013, rng)) == 203
    with pytest.raises(ValueError):
        add_uniform_noise(x, -0.1, rng)


def test_clean_units_offset_is_the_change_of_variables():
    """A Gaussian density fitted in the noisy standardisation, moved to the clean one, must equal the same
    density written directly in clean-standardised coordinates."""
    rng = np.random.default_rng(3)
    clean_x = rng.normal([1.0, -2.0], [0.5, 3.0], size=(300, 2)).astype(np.float32)
    noisy_x = add_uniform_noise(clean_x, 0.3, rng)
    noisy, clean = Preprocessor().fit(noisy_x), Preprocessor().fit(clean_x)
    rows = clean_x[:20]
    a, b = np.array([0.2, -0.1]), np.array([0.7, 1.3])  # the model: N(a, b^2) per column in noisy units
    log_p_noisy = stats.norm.logpdf(noisy.transform(rows), a, b).sum(1)
    s_n, m_n = noisy.scaler_.scale_, noisy.scaler_.mean_
    s_c, m_c = clean.scaler_.scale_, clean.scaler_.mean_
    direct = stats.norm.logpdf(clean.transform(rows), (a * s_n + m_n - m_c) / s_c, b * s_n / s_c).sum(1)
    np.testing.assert_allclose(log_p_noisy + clean_units_offset(noisy, clean), direct, rtol=1e-4)
    assert clean_units_offset(noisy, clean) < 0  # uniform rows widen the scale, so clean units are finer


def test_bin_changes_groups_by_rounded_min_log_variance():
    bins = bin_changes(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([-3.4, -2.6, -2.5, 0.2, np.nan]))
    assert [b[:3] for b in bins] == [[-3, 2, 1.5], [-2, 1, 3.0], [0, 1, 4.0]]


@pytest.mark.parametrize("nu", [0.3, 1.0, 2.5, 10.0, 150.0])
def test_student_t_density_matches_scipy(nu):
    x = torch.linspace(-30, 30, 301, dtype=torch.float64)
    for mu, lam in ((0.0, 1.0), (1.5, 4.0), (-2.0, 0.05)):
        ours = student_t_log_density(x, mu, lam, nu).numpy()
        ref = stats.t.logpdf(x.numpy(), df=nu, loc=mu, scale=lam ** -0.5)
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gaussian_log_density(x, 1.0, 4.0).numpy(), stats.norm.logpdf(x, 1.0, 0.5))


def test_student_t_tends_to_gaussian_and_figure_34_reports_it(tmp_path):
    x = torch.linspace(-4, 4, 81, dtype=torch.float64)
    gap = [float((student_t_log_density(x, 0, 1, nu) - gaussian_log_density(x)).abs().max()) for nu in (1, 10, 1e4)]
    assert gap[0] > gap[1] > gap[2] and gap[2] < 1e-2
    with Store(tmp_path / "db.sqlite") as store:  # the one driver, in this process
        summary = run_grid(store, "figure-3.4", TARGETS["figure-3.4"].runs("quick"), "quick", backend="inprocess",
                           progress=False)
        assert summary.executed == 1 and summary.counts["done"] == 1
        report = report_from_db(TARGETS["figure-3.4"], store, tmp_path / "report", "quick")
    assert any(f.endswith("figure-3.4.png") for f in report["files"])
    saved = load_raw(tmp_path / "report" / "runs.jsonl")
    assert saved[0]["status"] == "done" and len(saved[0]["metrics"]["x"]) == 401
    rows = [line for line in report["markdown"].splitlines() if line.startswith("| Student-t")]
    nus = [float(line.split("ν = ")[1].split(" ")[0]) for line in rows]
    assert nus == [0.5, 1, 3, 10, 100]  # in the order of nu (the stored keys sort as text: 10 before 3)
    tails = [float(line.split("|")[-2]) for line in rows]  # ln p(10) falls as nu grows: heavier tails first
    assert tails == sorted(tails, reverse=True)
    # the old entry point rebuilds a report from saved raw results, without training
    assert forward("vaekit.experiments.chapter3", ["figure-3.4", "--out", str(tmp_path / "again"), "--results",
                                                   str(tmp_path / "report" / "runs.jsonl")]) == 0
    assert (tmp_path / "again" / "figure-3.4.png").is_file()
