"""The Bernoulli log-density of one decoded importance-sampling block, by formulation, and softplus against its
alternatives: the measurement behind ``vaekit.likelihoods.BernoulliRows`` and docs/performance.md.

One block is what ``vaekit.evaluation.log_likelihood`` decodes at a time for the MNIST model: logits
``[K, B, 784]`` with K·B ≈ 1,340 rows (4 MiB), data ``[B, 784]`` broadcast over the K samples. Each formulation is
checked against the elementwise one, then all are timed interleaved (``--rounds`` rounds of ``--repeats`` calls,
one torch thread, process CPU clock; medians).

Usage: PYTHONPATH=src python benchmarks/bernoulli_log_density.py [--rounds 20]
Writes benchmarks/results/bernoulli_log_density.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.distributions import Independent
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_result  # noqa: E402

from vaekit.likelihoods import BernoulliRows, LogitBernoulli  # noqa: E402

K, B, D = 67, 20, 784


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(K, B, D, generator=g) * 3
    x = (torch.rand(B, D, generator=g) > 0.5).float()
    flat = logits.reshape(-1, D)
    log_density = {
        "elementwise (previous: Independent sum of x*l - softplus(l))":
            lambda: Independent(LogitBernoulli(logits=logits, validate_args=False), 1).log_prob(x),
        "BernoulliRows (batched x-logits product + softplus sum)": lambda: BernoulliRows(logits).log_prob(x),
        "binary_cross_entropy_with_logits on broadcast data":
            lambda: -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1),
    }
    softplus = {
        "softplus": lambda: F.softplus(flat),
        "-logsigmoid(-l)": lambda: -F.logsigmoid(-flat),
        "logaddexp(l, 0)": lambda: torch.logaddexp(flat, torch.zeros(())),
        "relu(l) + log1p(exp(-|l|))": lambda: flat.clamp(min=0) + torch.log1p(torch.exp(-flat.abs())),
        "exp (reference pass)": lambda: torch.exp(flat),
        "tanh (reference pass)": lambda: torch.tanh(flat),
    }
    reference = next(iter(log_density.values()))()
    for name, fn in log_density.items():
        torch.testing.assert_close(fn(), reference, rtol=1e-5, atol=1e-3, msg=name)
    for name, fn in list(softplus.items())[:4]:
        torch.testing.assert_close(fn(), F.softplus(flat), rtol=1e-5, atol=1e-5, msg=name)
    workloads = {**log_density, **softplus}
    times: dict[str, list[float]] = {name: [] for name in workloads}
    for _ in range(args.rounds):
        for name, fn in workloads.items():
            start = time.process_time()
            for _ in range(args.repeats):
                fn()
            times[name].append((time.process_time() - start) / args.repeats)
    medians = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    previous = medians[next(iter(log_density))]
    result = {
        "benchmark": "bernoulli_log_density", "block": f"logits [{K}, {B}, {D}], data [{B}, {D}]",
        "machine": {**machine(), "load_average_before": round(os.getloadavg()[0], 2)},
        "clock": "process CPU, 1 thread", "rounds": args.rounds,
        "ms_median": {k: round(v, 3) for k, v in medians.items()},
        "log_density_x_previous": {k: round(medians[k] / previous, 3) for k in log_density},
        "softplus_ms_per_million_elements": round(medians["softplus"] / (flat.numel() / 1e6), 3),
    }
    path = write_result("bernoulli_log_density", result)
    for name, ms in medians.items():
        print(f"{ms:8.3f} ms  {name}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
