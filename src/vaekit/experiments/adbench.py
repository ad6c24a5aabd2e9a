"""ADBench (Han et al., NeurIPS 2022): vaekit's detector against PyOD's on the Classical sets present.

Protocol (ADBench's unsupervised setting): per seed, a seeded stratified 70/30 split of the set; each detector
is fit on the training part with its anomalies in and its labels unused, then scores the test part; ROC-AUC and
average precision of the test scores. Sets above ``max_rows`` rows are first reduced to a seeded stratified
subsample of ``max_rows`` rows (the anomaly rate is kept), which caps the cost of the neighbour-based detectors
and of the whole grid. PyOD (``pip install 'vaekit[bench]'``) supplies IForest, ECOD, KNN, LOF, HBOS and its VAE,
all at their defaults.

Two targets: ``adbench`` (the comparison) and ``adbench-candidates`` (vaekit's candidate defaults, from which
``VAEDetector()``'s default was chosen; see docs/anomaly.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

from ..data import load_dataset
from ..data.adbench import ADBENCH_SETS
from ..data.sources import find_file
from ..errors import ConfigError
from .targets import Target, register_target

#: the comparison's detectors: vaekit's default (Student-t, trim_fraction 0.1), vaekit with a Gaussian decoder
#: (no trimmed refit), PyOD's at their defaults
DETECTORS: tuple[str, ...] = ("vaekit", "vaekit Gaussian no trim", "IForest", "ECOD", "KNN", "LOF", "HBOS",
                              "PyOD VAE")
#: the full comparison adds the default without its contamination-robust refit (the default until numerics 4)
FULL_DETECTORS: tuple[str, ...] = (DETECTORS[0], "vaekit no trim", *DETECTORS[1:])
#: vaekit's candidate defaults (VAEDetector keyword arguments on top of its "auto" shape rule; each states its
#: trim_fraction, so a candidate means the same detector whatever the default)
CANDIDATES: dict[str, dict[str, Any]] = {
    "student-t": {"likelihood": "student-t", "trim_fraction": 0.0},
    "gaussian": {"likelihood": "gaussian", "trim_fraction": 0.0},
    "student-t implicit": {"likelihood": "student-t", "prior": "implicit", "trim_fraction": 0.0,
                           "prior_kwargs": {"ratio_hidden": [64, 64], "ratio_epochs": 2}},
    "student-t trim": {"likelihood": "student-t", "trim_fraction": 0.1},
    "student-t no-noise": {"likelihood": "student-t", "training_noise": 0.0, "trim_fraction": 0.0},
}
#: the small sets of ``--quick`` (fit in seconds each)
QUICK_SETS = ("adbench:hepatitis", "adbench:wine", "adbench:lymphography", "adbench:glass",
              "adbench:vertebral", "adbench:stamps", "adbench:wdbc", "adbench:breastw")
#: the sets of the candidate run: twelve spanning ADBench's sizes, widths and anomaly rates
CANDIDATE_SETS = ("adbench:hepatitis", "adbench:glass", "adbench:wdbc", "adbench:breastw", "adbench:vowels",
                  "adbench:cardiotocography", "adbench:thyroid", "adbench:satimage-2", "adbench:mammography",
                  "adbench:magic.gamma", "adbench:spambase", "adbench:smtp")
TEST_FRACTION = 0.3


def present_sets(names: Sequence[str] | None = None) -> list[str]:
    """The requested (default: all 47) ADBench sets whose file is present, in ADBench's order."""
    wanted = list(ADBENCH_SETS) if not names else [n if n.startswith("adbench:") else f"adbench:{n.lower()}"
                                                     for n in names]
    unknown = [n for n in wanted if n not in ADBENCH_SETS]
    if unknown:
        raise ConfigError(f"unknown ADBench set(s) {unknown}; names look like adbench:cardio "
                          f"(known: {', '.join(ADBENCH_SETS)})")
    return [n for n in wanted if find_file(f"adbench/{ADBENCH_SETS[n]}.npz") is not None]


#: a capped set keeps at least this many anomalies (all of them when it has fewer), so that a set with very rare
#: anomalies (smtp: 30 in 95,156 rows) still has anomalies in every test part
MIN_CAPPED_ANOMALIES = 30


def split_rows(y: np.ndarray, seed: int, max_rows: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded cap to ``max_rows`` rows, then a stratified 70/30 train/test split (row indices).

    The cap is stratified (the anomaly rate is kept) except that at least ``min(MIN_CAPPED_ANOMALIES, all)``
    anomalies are kept.
    """
    rows = np.arange(len(y))
    if max_rows is not None and len(y) > max_rows:
        rng = np.random.default_rng(seed)
        anomalies, normal = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
        n_anomalies = min(len(anomalies), max(round(max_rows * len(anomalies) / len(y)), MIN_CAPPED_ANOMALIES))
        rows = np.r_[rng.choice(anomalies, n_anomalies, replace=False),
                     rng.choice(normal, max_rows - n_anomalies, replace=False)]
    train, test = train_test_split(rows, test_size=TEST_FRACTION, stratify=y[rows], random_state=seed)
    return np.sort(train), np.sort(test)


def make_detector(name: str, seed: int) -> Any:
    """A fresh detector with PyOD's interface (``fit``, ``decision_function``: higher = more anomalous)."""
    from ..detect import VAEDetector

    if name == "vaekit":
        return VAEDetector(random_state=seed)
    if name == "vaekit no trim":
        return VAEDetector(trim_fraction=0.0, random_state=seed)
    if name == "vaekit Gaussian no trim":
        return VAEDetector(likelihood="gaussian", trim_fraction=0.0, random_state=seed)
    if name.startswith("candidate "):
        options = dict(CANDIDATES[name.removeprefix("candidate ")])
        return VAEDetector(**options, random_state=seed)
    try:
        if name == "IForest":
            from pyod.models.iforest import IForest
            return IForest(random_state=seed)
        if name == "ECOD":
            from pyod.models.ecod import ECOD
            return ECOD()
        if name == "KNN":
            from pyod.models.knn import KNN
            return KNN()
        if name == "LOF":
            from pyod.models.lof import LOF
            return LOF()
        if name == "HBOS":
            from pyod.models.hbos import HBOS
            return HBOS()
        if name == "PyOD VAE":
            from pyod.models.vae import VAE
            return VAE(random_state=seed, verbose=0, device="cpu")
    except ImportError as err:
        raise ConfigError(f"{name} needs PyOD: pip install 'vaekit[bench]' ({err})") from err
    raise ConfigError(f"unknown detector {name!r}; choose one of {DETECTORS}")


def run_detector(config: dict[str, Any]) -> dict[str, Any]:
    """One (set, detector, seed): fit on the 70 % training part, score the 30 % test part."""
    data = load_dataset(config["dataset"])
    x, y = np.asarray(data.x, dtype=np.float64), np.asarray(data.y).astype(int)
    train, test = split_rows(y, int(config["seed"]), config.get("max_rows"))
    detector = make_detector(config["detector"], int(config["seed"]))
    cpu, start = time.process_time(), time.perf_counter()
    detector.fit(x[train])
    fitted = time.perf_counter()
    scores = np.asarray(detector.decision_function(x[test]), dtype=np.float64)
    done = time.perf_counter()
    ranked = np.nan_to_num(scores, nan=-np.inf, posinf=np.finfo(float).max, neginf=np.finfo(float).min)
    metrics: dict[str, Any] = {
        "roc_auc": float(roc_auc_score(y[test], ranked)),
        "average_precision": float(average_precision_score(y[test], ranked)),
        "fit_seconds": fitted - start, "score_seconds": done - fitted, "cpu_seconds": time.process_time() - cpu,
        "n_rows": int(len(y)), "n_features": int(x.shape[1]), "n_train": int(len(train)), "n_test": int(len(test)),
        "test_anomalies": int(y[test].sum()), "non_finite_scores": int((~np.isfinite(scores)).sum()),
    }
    config_ = getattr(detector, "config_", None)
    if config_ is not None:
        metrics["vae_config"] = {k: list(v) if isinstance(v, tuple) else v for k, v in config_.items()}
        metrics["epochs_run"] = detector.train_result_.epochs_run
        metrics["diverged_training"] = bool(detector.train_result_.diverged)
    return metrics


class _ADBenchTarget(Target):
    """Shared grid and execution of the two ADBench targets."""

    detectors: ClassVar[tuple[str, ...]]

    def runs(self, budget: str = "quick", seeds: int | None = None,
             datasets: Sequence[str] | None = None) -> list[dict[str, Any]]:
        settings = self.budgets[budget]
        names = datasets or {"quick": QUICK_SETS, "candidates": CANDIDATE_SETS}.get(settings["sets"])
        # seed-major, smallest files first: an interrupted grid has whole seeds of complete (set x detector) blocks
        sets = sorted(present_sets(names), key=lambda d: os.path.getsize(find_file(f"adbench/{ADBENCH_SETS[d]}.npz")))
        return [{"target": self.name, "dataset": d, "detector": m, "seed": s, "max_rows": settings["max_rows"]}
                for s in range(seeds or settings["seeds"]) for d in sets
                for m in settings.get("detectors", self.detectors)]

    def execute(self, config: dict[str, Any]) -> dict[str, Any]:
        return run_detector(config)

    def report(self, results: list[dict[str, Any]], out: Any) -> dict[str, Any]:
        from .adbench_report import write_report

        return write_report(self.name, results, out, list(self.detectors))


@register_target
class ADBench(_ADBenchTarget):
    name = "adbench"
    description = ("ADBench Classical sets present: vaekit's default detector vs PyOD's IForest, ECOD, KNN, LOF, "
                   "HBOS and VAE (stratified 70/30 split, unsupervised; ROC-AUC, AP, ranks, Friedman/Nemenyi)")
    detectors = FULL_DETECTORS
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"sets": "quick", "seeds": 1, "max_rows": 3_000, "detectors": list(DETECTORS)},
        "full": {"sets": "all present", "seeds": 3, "max_rows": 3_000, "detectors": list(FULL_DETECTORS)},
    }


@register_target
class ADBenchCandidates(_ADBenchTarget):
    name = "adbench-candidates"
    description = "vaekit's candidate default detectors on the ADBench sets present (chooses VAEDetector()'s default)"
    detectors = tuple(f"candidate {c}" for c in CANDIDATES)
    include_in_all = False
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"sets": "quick", "seeds": 1, "max_rows": 1_500, "candidates": list(CANDIDATES)},
        "full": {"sets": "candidates", "seeds": 1, "max_rows": 1_500, "candidates": list(CANDIDATES)},
    }
