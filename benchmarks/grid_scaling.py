"""Wall time of one fixed grid with 1 vs 2 local workers: is the process pool worth its overhead?

Usage: PYTHONPATH=src python benchmarks/grid_scaling.py [--target toy] [--budget full] [--seeds 2]
[--setups 1x2,1x1,2x1]. A setup WxT is W workers of T torch threads each; the default compares one worker
using every core (what ``--workers 1`` does), one single-threaded worker, and one single-threaded worker per
core (``--workers CORES``). Writes benchmarks/results/grid_scaling.json and prints a line for the README. Each
setup runs the whole grid into a fresh database, so nothing is reused between them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from vaekit import __version__
from vaekit.experiments.engine import cpu_count, run_grid
from vaekit.experiments.store import Store
from vaekit.experiments.targets import get_target

RESULTS = Path(__file__).resolve().parent / "results" / "grid_scaling.json"


def measure(target: str, budget: str, seeds: int, workers: int, threads: int) -> dict:
    configs = get_target(target).runs(budget, seeds)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.sqlite") as store:
        start = time.perf_counter()
        summary = run_grid(store, target, configs, budget, workers=workers, threads=threads, progress=False)
        wall = time.perf_counter() - start
        run_seconds = [r["wall_seconds"] for r in store.rows(target)]
    assert summary.counts["done"] + summary.counts["diverged"] == len(configs), summary.counts
    return {
        "workers": workers,
        "threads_per_worker": threads,
        "runs": len(configs),
        "wall_seconds": round(wall, 2),
        "mean_run_seconds": round(sum(run_seconds) / len(run_seconds), 2),
        "load_average_before": round(load, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="toy")
    parser.add_argument("--budget", default="full")
    parser.add_argument("--seeds", type=int, default=2)
    cores = cpu_count()
    parser.add_argument(
        "--setups",
        default=f"1x{cores},1x1,{cores}x1",
        help="comma-separated WORKERSxTHREADS (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    setups = [tuple(int(v) for v in setup.split("x")) for setup in args.setups.split(",")]
    rows = [measure(args.target, args.budget, args.seeds, w, t) for w, t in setups]
    base = rows[0]["wall_seconds"]
    for row in rows:
        row["speed_up"] = round(base / row["wall_seconds"], 2)
    record = {
        "grid": f"{args.target} --{args.budget} --seeds {args.seeds}",
        "vaekit": __version__,
        "cpus": cpu_count(),
        "platform": platform.platform(terse=True),
        "date": time.strftime("%Y-%m-%d"),
        "command": f"PYTHONPATH=src python benchmarks/grid_scaling.py --target {args.target} --budget "
        f"{args.budget} --seeds {args.seeds} --setups {args.setups}",
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(
        f"{record['grid']} ({rows[0]['runs']} runs, {record['cpus']} cores): "
        + ", ".join(
            f"{r['workers']} worker(s) x {r['threads_per_worker']} thread(s) {r['wall_seconds']:.1f} s "
            f"(x{r['speed_up']:.2f})"
            for r in rows
        )
        + f"; load average {rows[0]['load_average_before']:.1f} at the start"
    )


if __name__ == "__main__":
    main()
