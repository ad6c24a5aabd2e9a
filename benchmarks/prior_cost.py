"""Cost of one training epoch per prior: matrix-multiply FLOPs and seconds, standard vs VampPrior vs implicit.

The chapter-4 MNIST model (gated 500-500, z = 40, Bernoulli, batch 100) on N x 784 binary rows; the priors:
standard, VampPrior (K = 500 pseudo-inputs), and the implicit prior with J2 in ``--schedules`` classifier epochs
per VAE epoch on M = N ancestral samples (reused posteriors of the VAE pass, ``ancestral="reuse"``). FLOPs of a
whole epoch (VAE pass and the prior's own phase) are counted with ``torch.utils.flop_counter`` on ``--count-rows``
rows and scaled to N (every part is linear in N); seconds are the best of ``--repeats`` epochs on N rows.
The thesis reports the implicit prior 2.83x faster per epoch than the VampPrior; this shows what the schedule
makes of that.

``--floors`` instead measures each prior's own hot path against its shape floor (``benchmarks/shape_floor.py``:
the path's matrix products at their recorded shapes, plus its fused Adam updates), interleaved for ``--rounds``
rounds with one torch thread by the process's CPU clock: a standard-prior and a VampPrior training unit (10 steps
of ``Trainer._train_epoch``; the VampPrior's includes its component pass), the VampPrior's component pass alone
(log p(z) of a batch of z through the K pseudo-inputs' posteriors, with its backward), and the implicit prior's
classifier phase (``fit_auxiliary`` with J2 = 1 on M = 1,000 reused posteriors).

Usage: PYTHONPATH=src python benchmarks/prior_cost.py [--n 10000] [--schedules 1,3,10] [--threads T]
       PYTHONPATH=src python benchmarks/prior_cost.py --floors [--rounds 20]
Writes benchmarks/results/prior_cost.json (or prior_cost-floors.json) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of, count_flops, machine, write_result  # noqa: E402
from shape_floor import ShapeFloor, interleaved, record_products  # noqa: E402

from vaekit import VAE, TrainConfig, Trainer  # noqa: E402


def model_for(prior: str, prior_kwargs: dict[str, Any]) -> VAE:
    torch.manual_seed(0)
    return VAE(784, 40, likelihood="bernoulli", prior=prior, hidden=(500, 500), gated=True,
               prior_kwargs=prior_kwargs)


def epoch(model: VAE, x: torch.Tensor) -> None:
    Trainer(TrainConfig(epochs=1, batch_size=100, patience=None, progress=False)).fit(model, x)


def floors(rounds: int) -> None:
    """Each prior's hot path against its own shape floor (one thread, CPU clock)."""
    import os

    from vaekit.nets import adam

    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    x = (torch.rand(1000, 784, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    trainer = Trainer(TrainConfig(epochs=1, batch_size=100, patience=None))

    def train_unit(prior: str, kwargs: dict[str, Any]):  # type: ignore[no-untyped-def]
        model = model_for(prior, kwargs)
        params = [p for p in model.parameters() if id(p) not in {id(a) for a in model.prior.auxiliary_parameters()}]
        optimiser, generator = adam(params, 1e-3), torch.Generator().manual_seed(0)
        return lambda: trainer._train_epoch(model, optimiser, params, x, None, 1.0, generator)

    vamp = model_for("vamp", {"n_components": 500})
    z = torch.randn(1, 100, 40, requires_grad=True)
    vamp.train()

    def component_pass() -> None:
        vamp.zero_grad(set_to_none=True)
        vamp.prior.log_prob(z).sum().backward()

    implicit = model_for("implicit", {"ratio_epochs": 1})
    trainer.fit(implicit, x)  # one VAE epoch: the posteriors the classifier phase reuses
    implicit.eval()
    paths = {"standard prior, 10 training steps": train_unit("standard", {}),
             "VampPrior K=500, 10 training steps": train_unit("vamp", {"n_components": 500}),
             "VampPrior K=500, component pass (batch 100)": component_pass,
             "implicit prior, classifier phase (J2=1, M=1000)": lambda: implicit.prior.fit_auxiliary(x, None)}
    rows = []
    for name, fn in paths.items():
        floor = ShapeFloor(record_products(fn))
        report = interleaved(floor, {name: fn}, rounds).report(floor.flops, "cpu")
        rows.append({"path": name, "shape_floor": floor.describe(), **report})
    lines = ["| hot path | × shape floor (median, quartiles) | × 2048² GEMM bound | floor × bound |", "|---|---|---|---|"]
    for r in rows:
        w = r["workloads"][r["path"]]
        q = w["x_shape_floor_quartiles"]
        lines.append(f"| {r['path']} | **{w['x_shape_floor']:.2f}** ({q[0]:.2f}–{q[2]:.2f}) | "
                     f"{w['x_square_gemm_bound']:.2f} | {r['shape_floor_x_square_gemm_bound']:.2f} |")
    text = (f"Prior hot paths against their shape floors (gated 500-500, z = 40, 1 torch thread, CPU clock, "
            f"{rounds} interleaved rounds, load average {load_before:.1f}):\n\n" + "\n".join(lines))
    write_result("prior_cost-floors", {"benchmark": "prior_cost --floors", "rounds": rounds,
                                        "machine": {**machine(), "load_average_before": round(load_before, 2)},
                                        "rows": rows, "markdown": text})
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--count-rows", type=int, default=1000)
    parser.add_argument("--schedules", default="1,3,10")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--floors", action="store_true", help="hot paths against their shape floors instead")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if args.floors:
        floors(args.rounds)
        return
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
