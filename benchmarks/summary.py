"""The shape-floor summary table of docs/performance.md and README, rebuilt from the committed result files.

Usage: python benchmarks/summary.py   (reads benchmarks/results/*.json; prints markdown)
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def cell(w: dict) -> str:
    q = w.get("x_shape_floor_quartiles") or [w["x_shape_floor"]] * 3
    return f"**{w['x_shape_floor']:.2f}×** ({q[0]:.2f}–{q[2]:.2f})"


def main() -> None:
    lines = ["| benchmark | command | workload | × shape floor (median; quartiles) | × 2048² GEMM bound | load avg |",
             "|---|---|---|---|---|---|"]
    for result, threads, command in (
            ("training_step", "1 thread, CPU clock", "`benchmarks/training_step.py --compile`"),
            ("training_step-t2", "2 threads, wall clock",
             "`benchmarks/training_step.py --threads 2 --compile --epoch-rows 50000`")):
        t = load(result)
        if not t:
            continue
        load_range = f"{min(t['load_average_1min_during']):.0f}–{max(t['load_average_1min_during']):.0f}"
        for name, w in t["workloads"].items():
            lines.append(f"| training, 784-500-500-40 Bernoulli, batch 100 ({t['unit']}; {threads}) | "
                         f"{command} | {name} | {cell(w)} | {w['x_square_gemm_bound']:.2f}× | {load_range} |")
    for name, label, command in (
            ("importance_sampling-mnist-k1000", "importance sampling, MNIST, K = 1,000",
             "`benchmarks/importance_sampling.py --samples 1000 --unit-rows 20`"),
            ("importance_sampling-mnist-k5000", "importance sampling, MNIST, K = 5,000",
             "`benchmarks/importance_sampling.py --samples 5000 --unit-rows 4 --memory`"),
            ("importance_sampling-smtp-k100", "importance sampling, SMTP test split, K = 100",
             "`benchmarks/importance_sampling.py --dataset smtp --samples 100 --unit-rows 200`")):
        r = load(name)
        if not r:
            continue
        load_range = f"{min(r['load_average_1min_during']):.0f}–{max(r['load_average_1min_during']):.0f}"
        for wname, w in r["workloads"].items():
            est = r["whole_evaluation_seconds_estimate"][wname]
            lines.append(f"| {label} ({r['unit']}; whole {r['rows']} rows ≈ {est:.0f} CPU s) | {command} | {wname} | "
                         f"{cell(w)} | {w['x_square_gemm_bound']:.2f}× | {load_range} |")
    p = load("prior_cost-floors")
    if p:
        for row in p["rows"]:
            w = row["workloads"][row["path"]]
            load_range = f"{min(row['load_average_1min_during']):.0f}–{max(row['load_average_1min_during']):.0f}"
            lines.append(f"| prior hot path (gated 500-500, z = 40) | `benchmarks/prior_cost.py --floors` | "
                         f"{row['path']} | {cell(w)} | {w['x_square_gemm_bound']:.2f}× | {load_range} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
