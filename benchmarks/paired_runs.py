"""A paired comparison of two methods over seeds, from committed raw results (a report's ``runs.jsonl``).

    python benchmarks/paired_runs.py docs/results/chapter4/table-4.2-numerics-3/runs.jsonl \
        --dataset mnist --metric test_ll_normalised_k1000 --a implicit --b-metric test_ll_k1000 --b standard

Prints the mean ± std (over seeds) of a - b, the seeds where a > b, and the paired t-test's two-sided p-value
(scipy). ``--b-metric`` compares a different metric of b (default: the same metric).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from vaekit.experiments.report import load_raw  # noqa: E402


def per_seed(results: list[dict], dataset: str, method: str, metric: str) -> dict[int, float]:
    return {r["config"]["seed"]: float(r["metrics"][metric]) for r in results
            if r.get("status") == "done" and r["config"].get("dataset") == dataset
            and r["config"].get("method") == method and (r.get("metrics") or {}).get(metric) is not None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", type=Path)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--metric", required=True)
    parser.add_argument("--a", required=True)
    parser.add_argument("--b", required=True)
    parser.add_argument("--b-metric")
    args = parser.parse_args()
    results = load_raw(args.raw)
    a = per_seed(results, args.dataset, args.a, args.metric)
    b = per_seed(results, args.dataset, args.b, args.b_metric or args.metric)
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        print("fewer than two seeds with both methods finished", file=sys.stderr)
        return 2
    diff = [a[s] - b[s] for s in seeds]
    p = stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue
    print(f"{args.dataset}: {args.a} {args.metric} - {args.b} {args.b_metric or args.metric} = "
          f"{statistics.fmean(diff):+.2f} ± {statistics.stdev(diff):.2f} over seeds {seeds}; "
          f"{sum(d > 0 for d in diff)} of {len(seeds)} seeds > 0; paired t-test p = {p:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
