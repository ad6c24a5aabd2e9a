"""Cost of one training epoch per prior: matrix-multiply FLOPs and seconds, standard vs VampPrior vs implicit.

The chapter-4 MNIST model (gated 500-500, z = 40, Bernoulli, batch 100) on N x 784 binary rows; the priors:
standard, VampPrior (K = 500 pseudo-inputs), and the implicit prior with J2 in ``--schedules`` classifier epochs
per VAE epoch on M = N ancestral samples (reused posteriors of the VAE pass, ``ancestral="reuse"``). FLOPs of a
whole epoch (VAE pass and the prior's own phase) are counted with ``torch.utils.flop_counter`` on ``--count-rows``
rows and scaled to N (every part is linear in N); seconds are the best of ``--repeats`` epochs on N rows.
The thesis reports the implicit prior 2.83x faster per epoch than the VampPrior; this shows what the schedule
makes of that.

Usage: PYTHONPATH=src python benchmarks/prior_cost.py [--n 10000] [--schedules 1,3,10] [--threads T]
Writes benchmarks/results/prior_cost.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of, count_flops, machine, write_result  # noqa: E402

from vaekit import VAE, TrainConfig, Trainer  # noqa: E402


def model_for(prior: str, prior_kwargs: dict[str, Any]) -> VAE:
    torch.manual_seed(0)
    return VAE(784, 40, likelihood="bernoulli", prior=prior, hidden=(500, 500), gated=True,
               prior_kwargs=prior_kwargs)


def epoch(model: VAE, x: torch.Tensor) -> None:
    Trainer(TrainConfig(epochs=1, batch_size=100, patience=None, progress=False)).fit(model, x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--count-rows", type=int, default=1000)
    parser.add_argument("--schedules", default="1,3,10")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(args.n, 784, generator=g) > 0.5).float()
    setups: list[tuple[str, str, dict[str, Any]]] = [("standard", "standard", {}),
                                                     ("VampPrior K=500", "vamp", {"n_components": 500})]
    setups += [(f"implicit J2={j}", "implicit", {"ratio_epochs": j}) for j in map(int, args.schedules.split(","))]
    rows = []
    for label, prior, kwargs in setups:
        model = model_for(prior, kwargs)
        flops = count_flops(lambda m=model: epoch(m, x[:args.count_rows])) * args.n / args.count_rows
        model = model_for(prior, kwargs)
        seconds = best_of(lambda m=model: epoch(m, x), args.repeats)
        rows.append({"prior": label, "epoch_gflop": round(flops / 1e9, 1), "epoch_seconds": round(seconds, 2)})
    vamp = next(r for r in rows if r["prior"].startswith("Vamp"))
    lines = ["| prior | GFLOP per epoch | s per epoch | VampPrior ÷ this (FLOPs) | VampPrior ÷ this (time) |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['prior']} | {r['epoch_gflop']:.0f} | {r['epoch_seconds']:.2f} | "
                     f"{vamp['epoch_gflop'] / r['epoch_gflop']:.2f} | {vamp['epoch_seconds'] / r['epoch_seconds']:.2f} |")
    text = (f"One epoch on {args.n} rows (gated 500-500, z=40, batch 100, {torch.get_num_threads()} torch "
            "threads):\n\n" + "\n".join(lines))
    write_result("prior_cost", {"benchmark": "prior_cost", "n_rows": args.n, "machine": machine(), "rows": rows,
                                "markdown": text})
    print(text)


if __name__ == "__main__":
    main()
