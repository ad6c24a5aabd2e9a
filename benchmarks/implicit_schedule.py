"""The implicit prior's classifier schedule: test log-likelihood against cost for J2 classifier epochs per VAE epoch.

Each run is table-4.2's quick MNIST configuration (5,000/1,000/1,000 rows, gated 500-500, z = 40, 30 epochs,
warm-up 10, lr 1e-3, one torch thread) with the implicit prior and J2 in ``--schedules``; the importance-sampled
test log-likelihood (K = 10 and 1,000, normalised by the Monte Carlo log Z) and the CPU seconds per epoch of the
whole run and of the classifier phase are recorded. Runs are spread over ``--workers`` processes. Differences
between schedules are paired by seed (same data subset and initialisation) and tested with a paired t-test.

Usage: VAEKIT_DATA=... PYTHONPATH=src python benchmarks/implicit_schedule.py [--schedules 1,3,10] [--seeds 3]
Writes benchmarks/results/implicit_schedule.json and .md.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_result

from vaekit.experiments.chapter4 import MNIST_QUICK, train_one


def run(config: dict[str, Any]) -> dict[str, Any]:
    metrics = train_one(config)
    history = metrics.pop("history")
    return {"config": config, "metrics": {k: v for k, v in metrics.items() if not isinstance(v, (list, dict))},
            "ratio_cpu_seconds_per_epoch": float(np.mean([h.get("ratio_cpu_seconds", 0.0) for h in history]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", default="1,3,10")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=MNIST_QUICK["epochs"])
    args = parser.parse_args()
    schedules = [int(v) for v in args.schedules.split(",")]
    configs = [{"dataset": "mnist", "method": "implicit", "seed": seed, **MNIST_QUICK, "epochs": args.epochs,
                "ratio_epochs": j2} for seed in range(args.seeds) for j2 in schedules]
    with ProcessPoolExecutor(args.workers) as pool:
        runs = list(pool.map(run, configs))
    header = ("| J2 (classifier epochs per VAE epoch) | test LL, K=10 (normalised) | test LL, K=1000 (normalised) "
              "| wall s per run | classifier CPU s per epoch |")
    lines = [header, "|---|---|---|---|---|"]
    table: dict[int, dict[str, list[float]]] = {}
    for j2 in schedules:
        mine = sorted((r for r in runs if r["config"]["ratio_epochs"] == j2), key=lambda r: r["config"]["seed"])
        table[j2] = {key: [r["metrics"][key] for r in mine] for key in
                     ("test_ll_normalised_k10", "test_ll_normalised_k1000", "wall_seconds")}
        table[j2]["ratio_cpu"] = [r["ratio_cpu_seconds_per_epoch"] for r in mine]
        cells = [f"{np.mean(v):.2f} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.2f}" for v in table[j2].values()]
        lines.append(f"| {j2} | " + " | ".join(cells) + " |")
    reference = max(schedules)
    for j2 in schedules:
        if j2 == reference or args.seeds < 2:
            continue
        a, b = table[j2]["test_ll_normalised_k1000"], table[reference]["test_ll_normalised_k1000"]
        d = np.subtract(a, b)
        lines.append(f"\nJ2 = {j2} − J2 = {reference} (K=1000): {d.mean():+.3f} ± {d.std(ddof=1):.3f} nats, "
                     f"paired t-test p = {stats.ttest_rel(a, b).pvalue:.3g}")
    text = (f"Implicit prior on MNIST (table-4.2 quick budget, {args.epochs} epochs, seeds 0–{args.seeds - 1}), "
            f"mean ± std over seeds:\n\n" + "\n".join(lines) + "\n")
    write_result("implicit_schedule", {"benchmark": "implicit_schedule", "machine": machine(), "runs": runs})
    (RESULTS / "implicit_schedule.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
