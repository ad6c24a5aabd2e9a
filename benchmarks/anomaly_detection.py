"""Anomaly-detection benchmark: vaekit's Student-t and Gaussian VAE detectors against PyOD's VAE, IForest and ECOD.

Protocol (unsupervised, labels never seen by a method): for each seed, every method is fit on the same seeded
random subsample of the rows (``--train-fraction``; default 10 % of SMTP as in the thesis's section 3.3, all rows of
the small sets; anomalies stay in at their natural rate) and then scores *every* row of the data set. ROC-AUC and
average precision (scikit-learn) compare the scores with the labels. vaekit's detectors score by the
importance-sampled -log p(x) with ``--importance-samples`` samples; PyOD's models use their defaults.

PyOD is a benchmark-only dependency (``pip install pyod``); the library and its tests never import it.

Run from the repository root (one CPU thread per process)::

    VAEKIT_DATA=../shared/data PYTHONPATH=src python benchmarks/anomaly_detection.py --seeds 0 1 2 3 4

Writes ``benchmarks/results/anomaly_detection.json`` (every run, after each one; ``--resume`` skips runs already
there) and ``benchmarks/results/anomaly_detection.md`` (mean ± std over seeds, bold = best or not significantly
worse by a paired t-test over seeds).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from vaekit.checkpoint import atomic_write_bytes
from vaekit.data import load_dataset
from vaekit.detect import VAEDetector
from vaekit.experiments.stats import markdown_table, mean_std

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("vaekit Student-t VAE", "vaekit Gaussian VAE", "PyOD VAE", "PyOD IForest", "PyOD ECOD")
#: Default training fraction per data set (SMTP: the thesis's 10 % training split; small sets: all rows).
TRAIN_FRACTION = {"smtp": 0.1}


def make_detector(method: str, seed: int, args: argparse.Namespace) -> Any:
    """A fresh, seeded detector with PyOD's interface (``fit``, ``decision_function``, higher = more anomalous)."""
    if method.startswith("vaekit"):
        return VAEDetector(
            likelihood="student-t" if "Student-t" in method else "gaussian", latent_dim=args.latent_dim,
            hidden=tuple(args.hidden), epochs=args.epochs, patience=args.patience,
            importance_samples=args.importance_samples, training_noise=0.0, constant_columns="error",
            random_state=seed,  # the settings of the committed results (before the shape-rule defaults)
        )
    if method == "PyOD VAE":
        from pyod.models.vae import VAE

        return VAE(random_state=seed, verbose=0, device="cpu")
    if method == "PyOD IForest":
        from pyod.models.iforest import IForest

        return IForest(random_state=seed)
    if method == "PyOD ECOD":
        from pyod.models.ecod import ECOD

        return ECOD()
    raise ValueError(f"unknown method {method!r}")


def run_one(method: str, dataset: str, x: np.ndarray, y: np.ndarray, seed: int, fraction: float,
            args: argparse.Namespace) -> dict[str, Any]:
    """Fit ``method`` on a seeded subsample of ``x`` and score all of ``x``."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(x), int(round(fraction * len(x))), replace=False)) if fraction < 1 else None
    train = x if rows is None else x[rows]
    detector = make_detector(method, seed, args)
    start = time.perf_counter()
    detector.fit(train)
    fitted = time.perf_counter()
    scores = np.asarray(detector.decision_function(x), dtype=float)
    scored = time.perf_counter()
    finite = np.isfinite(scores)
    ranked = np.nan_to_num(scores, nan=-np.inf, posinf=np.finfo(float).max, neginf=np.finfo(float).min)
    record: dict[str, Any] = {
        "dataset": dataset, "method": method, "seed": seed, "n_train": len(train), "n_scored": len(x),
        "roc_auc": float(roc_auc_score(y, ranked)), "average_precision": float(average_precision_score(y, ranked)),
        "fit_seconds": fitted - start, "score_seconds": scored - fitted, "non_finite_scores": int((~finite).sum()),
    }
    if isinstance(detector, VAEDetector):
        result = detector.train_result_
        record.update(epochs_run=result.epochs_run, best_epoch=result.best_epoch, diverged=result.diverged)
    return record


def tables(runs: list[dict[str, Any]], methods: list[str], datasets: list[str]) -> str:
    """Markdown tables of ROC-AUC, AP and mean fit + score seconds (rows: data sets, columns: methods)."""
    out = []
    for metric, title in (("roc_auc", "ROC-AUC"), ("average_precision", "Average precision")):
        rows = {}
        for ds in datasets:
            cells = {}
            for m in methods:
                by_seed = sorted((r["seed"], r[metric]) for r in runs if r["dataset"] == ds and r["method"] == m)
                if by_seed:
                    cells[m] = [v for _, v in by_seed]
            seeds = sorted({r["seed"] for r in runs if r["dataset"] == ds})
            rows[f"{ds} ({len(seeds)} seeds)"] = cells
        out.append(f"**{title}** (mean ± std over seeds; bold: best mean, or not different from it by a paired "
                   f"t-test at 5 %)\n\n" + markdown_table(rows, methods))
    time_rows = ["| Dataset | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for ds in datasets:
        cells = []
        for m in methods:
            secs = [r["fit_seconds"] + r["score_seconds"] for r in runs if r["dataset"] == ds and r["method"] == m]
            cells.append(f"{mean_std(secs)[0]:.1f}" if secs else "–")
        time_rows.append(f"| {ds} | " + " | ".join(cells) + " |")
    out.append("**Seconds per run** (fit + score all rows, one CPU thread, mean over seeds)\n\n" + "\n".join(time_rows))
    return "\n\n".join(out) + "\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores (shared), torch {torch.__version__}, python {platform.python_version()}"


def write_json(path: Path, payload: dict[str, Any]) -> None:
    text = json.dumps(payload, indent=1, allow_nan=False)
    atomic_write_bytes(path, lambda f: f.write(text.encode()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["smtp", "cancer"])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, metavar="METHOD")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--train-fraction", type=float, help="override the per-data-set training fraction")
    p.add_argument("--importance-samples", type=int, default=50)
    p.add_argument("--latent-dim", type=int, default=2)
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--out", type=Path, default=RESULTS / "anomaly_detection.json")
    p.add_argument("--resume", action="store_true", help="keep the runs already in --out and skip them")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    config = {k: v for k, v in vars(args).items() if k not in ("out", "resume", "seeds", "datasets", "methods")}
    runs: list[dict[str, Any]] = []
    if args.resume and args.out.is_file():
        previous = json.loads(args.out.read_text())
        if previous["meta"]["config"] != config:
            sys.exit(f"{args.out} was made with other settings {previous['meta']['config']}; drop --resume")
        runs = previous["runs"]
    done = {(r["dataset"], r["method"], r["seed"]) for r in runs}
    meta = {
        "command": "PYTHONPATH=src python benchmarks/anomaly_detection.py " + shlex.join(argv or sys.argv[1:]),
        "config": config, "machine": machine(), "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "protocol": "fit on a seeded random subsample (train_fraction; labels unused), score every row",
    }
    start = time.perf_counter()
    for name in args.datasets:
        data = load_dataset(name)
        if data.y is None:
            sys.exit(f"{name} has no labels")
        fraction = args.train_fraction or TRAIN_FRACTION.get(name, 1.0)
        for seed in args.seeds:
            for method in args.methods:
                if (name, method, seed) in done:
                    continue
                record = run_one(method, name, data.x, data.y.astype(int), seed, fraction, args)
                runs.append(record)
                print(f"{name} seed {seed} {method:<22} ROC-AUC {record['roc_auc']:.4f} "
                      f"AP {record['average_precision']:.4f} ({record['fit_seconds'] + record['score_seconds']:.1f} s)",
                      flush=True)
                meta["wall_seconds_this_invocation"] = time.perf_counter() - start
                write_json(args.out, {"meta": meta, "runs": runs})
    meta["wall_seconds_this_invocation"] = time.perf_counter() - start
    meta["total_run_seconds"] = sum(r["fit_seconds"] + r["score_seconds"] for r in runs)
    write_json(args.out, {"meta": meta, "runs": runs})
    text = tables(runs, args.methods, args.datasets)
    table_path = args.out.with_suffix(".md")
    atomic_write_bytes(table_path, lambda f: f.write((f"Command: `{meta['command']}`\n\n{text}").encode()))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
