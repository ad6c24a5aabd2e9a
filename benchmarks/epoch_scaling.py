"""Seconds per training epoch against the number of rows N and against the hidden and latent sizes.

Bernoulli VAE on random binary 784-dim rows, batch 100, standard prior, vaekit's Trainer; best of ``--repeats``
epochs per point. Cost should be linear in N (seconds per 1,000 rows constant) and follow the matrix-multiply
FLOPs in the sizes (the FLOPs per step are counted with ``torch.utils.flop_counter`` and reported beside).

Usage: PYTHONPATH=src python benchmarks/epoch_scaling.py [--rows 10000,20000,50000] [--threads T] [--repeats 2]
Writes benchmarks/results/epoch_scaling.json and prints README lines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of, count_flops, machine, write_result

from vaekit import VAE, TrainConfig, Trainer


def epoch_seconds(n: int, hidden: tuple[int, ...], latent: int, repeats: int) -> tuple[float, int]:
    torch.manual_seed(0)
    x = (torch.rand(n, 784) > 0.5).float()
    model = VAE(784, latent, likelihood="bernoulli", hidden=hidden)
    trainer = Trainer(TrainConfig(epochs=1, batch_size=100, patience=None, progress=False))
    flops = count_flops(lambda: model.loss(x[:100], None, 1.0, 1).loss.backward())
    return best_of(lambda: trainer.fit(model, x), repeats), flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,20000,50000")
    parser.add_argument("--sizes", default="200x20,500x40,1000x40,500x100",
                        help="HIDDENxLATENT points (two hidden layers of that width), at 10,000 rows")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    by_rows = []
    for n in [int(v) for v in args.rows.split(",")]:
        seconds, flops = epoch_seconds(n, (500, 500), 40, args.repeats)
        by_rows.append({"rows": n, "seconds": round(seconds, 3), "seconds_per_1000_rows": round(seconds / n * 1000, 4)})
    by_size = []
    for size in args.sizes.split(","):
        width, latent = (int(v) for v in size.split("x"))
        seconds, flops = epoch_seconds(10_000, (width, width), latent, args.repeats)
        by_size.append({"hidden": [width, width], "latent": latent, "seconds": round(seconds, 3),
                        "step_matmul_gflop": round(flops / 1e9, 3),
                        "effective_gflops": round(flops * 100 / seconds / 1e9, 1)})
    result = {"benchmark": "epoch_scaling", "machine": machine(), "by_rows": by_rows, "by_size": by_size}
    path = write_result("epoch_scaling", result, args.out)
    print("seconds per epoch by N (500-500, z=40): " + ", ".join(
        f"{r['rows']}: {r['seconds']:.2f} s ({r['seconds_per_1000_rows']:.3f} s/1k rows)" for r in by_rows))
    print("by size at N=10,000: " + ", ".join(
        f"{s['hidden'][0]}x2, z={s['latent']}: {s['seconds']:.2f} s ({s['effective_gflops']:.0f} GFLOP/s)"
        for s in by_size) + f"; written to {path}")


if __name__ == "__main__":
    main()
