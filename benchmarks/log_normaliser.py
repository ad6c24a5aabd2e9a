"""log Z of the implicit prior, before and after: plain Monte Carlo from N(0, I) (vaekit 0.1.0, 100,000 samples)
against importance sampling with the aggregated posterior in a defensive mixture (10,000 samples), on aggregated
posteriors whose exact T(z) = log q(z) - log N(z) is known, so log Z = 0.

    python benchmarks/log_normaliser.py            # -> benchmarks/results/log_normaliser.{json,md}

Per dimension and estimator over 10 seeds: mean and largest |error|, coverage of the nominal 95 % interval, mean
effective sample size, and how many estimates the ESS rule flags as unreliable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_normaliser import aggregated_posterior, exact_log_ratio  # noqa: E402

from vaekit.priors.normaliser import estimate_log_normaliser  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CASES = [(2, 300), (10, 1000), (40, 2000)]
SEEDS = 10


def main() -> int:
    rows = []
    for dim, n in CASES:
        loc, scale = aggregated_posterior(n, dim, seed=dim)
        t = exact_log_ratio(loc, scale)
        for name, kwargs in (("plain Monte Carlo, N(0, I), 100,000 samples (before)", {"n_samples": 100_000}),
                             ("importance sampling, defensive aggregated posterior, 10,000 samples (after)",
                              {"loc": loc, "scale": scale, "n_samples": 10_000})):
            estimates = [estimate_log_normaliser(t, dim, seed=seed, **kwargs) for seed in range(SEEDS)]
            errors = np.array([e.log_z for e in estimates])
            covered = sum(lo <= 0.0 <= hi for lo, hi in (e.interval(0.95) for e in estimates))
            rows.append({"dim": dim, "posteriors": n, "estimator": name, "seeds": SEEDS,
                         "mean_error": float(errors.mean()), "max_abs_error": float(np.abs(errors).max()),
                         "min": float(errors.min()), "max": float(errors.max()),
                         "coverage_95": covered, "mean_stderr": float(np.mean([e.stderr for e in estimates])),
                         "mean_ess": float(np.mean([e.ess for e in estimates])),
                         "flagged_unreliable": sum(not e.reliable for e in estimates)})
            print(rows[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "log_normaliser.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["| dim | estimator | mean error | range | 95 % CI covers 0 | mean SE | mean ESS | flagged |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['dim']} | {r['estimator']} | {r['mean_error']:+.3f} | {r['min']:+.3f} to {r['max']:+.3f} | "
              f"{r['coverage_95']}/{r['seeds']} | {r['mean_stderr']:.3f} | {r['mean_ess']:.0f} | "
              f"{r['flagged_unreliable']}/{r['seeds']} |" for r in rows]
    (RESULTS / "log_normaliser.md").write_text(
        "log Z on aggregated posteriors with exact T (true log Z = 0); `python benchmarks/log_normaliser.py`\n\n"
        + "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
