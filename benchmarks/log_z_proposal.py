"""The log Z proposal's density, the main per-epoch cost of the implicit prior on MNIST, against its floor.

Each implicit-prior epoch estimates log Z (``vaekit.priors.normaliser.estimate_log_normaliser``) for early stopping:
the density of 10,000 draws under the defensive mixture of all N training posteriors, in float64 (N = 50,000 and
z = 40 on MNIST: 5e8 component densities).
This times one chunk of it (``--rows`` draws x N components, the chunk ``_mixture_log_prob`` hands over) three
ways, interleaved over ``--rounds`` rounds by the process's CPU clock with one torch thread (so a busy machine
slows all alike):

- ``vaekit``: :class:`vaekit.priors.mixture.DiagonalGaussianMixture` ``.log_prob`` without gradients (one product
  [-z^2/2, z, 1] x [P, mu P, c + log w], then log-sum-exp in place, the far tail clamped above the slow ``exp``
  range);
- ``before``: the formulation it replaced (two products, two [rows, N] additions, ``torch.logsumexp``);
- the floor: the one product at its shape plus one in-place ``exp`` over its result (any exact evaluation
  computes every component's exponential at least once).

Then the whole estimate (10,000 draws, N posteriors) once each way.

Usage: PYTHONPATH=src python benchmarks/log_z_proposal.py [--n 50000] [--dim 40] [--rows 400] [--rounds 20]
Writes benchmarks/results/log_z_proposal.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import torch
from torch.distributions import Categorical, Independent, Normal

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_result  # noqa: E402
from shape_floor import FLOOR, interleaved  # noqa: E402

from vaekit.priors.mixture import DiagonalGaussianMixture  # noqa: E402
from vaekit.priors.normaliser import estimate_log_normaliser  # noqa: E402


def before_log_prob(self: DiagonalGaussianMixture, z: torch.Tensor) -> torch.Tensor:
    """The formulation vaekit used up to 2026-12-04 (the reference this benchmark compares against)."""
    normal = self.component_distribution.base_dist
    centre = normal.loc.mean(0)
    loc, zc = normal.loc - centre, z - centre
    precision = normal.scale.pow(-2)
    constant = (-0.5 * (loc.pow(2) * precision).sum(-1) - normal.scale.log().sum(-1)
                - 0.5 * loc.shape[-1] * math.log(2 * math.pi))
    flat = zc.reshape(-1, zc.shape[-1])
    components = -0.5 * flat.pow(2) @ precision.T + flat @ (loc * precision).T + constant
    log_weights = torch.log_softmax(self.mixture_distribution.logits, -1)
    return torch.logsumexp(components + log_weights, -1).reshape(z.shape[:-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="posteriors in the mixture (MNIST: 50,000)")
    parser.add_argument("--dim", type=int, default=40)
    parser.add_argument("--rows", type=int, default=400, help="draws per chunk (20M / N for N = 50,000)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--samples", type=int, default=10_000, help="draws of the whole estimate")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    loc = 0.8 * torch.randn(args.n, args.dim, generator=g, dtype=torch.float64)
    scale = 0.05 + 0.3 * torch.rand(args.n, args.dim, generator=g, dtype=torch.float64)
    probs = torch.full((args.n,), 1.0 / args.n, dtype=torch.float64)
    mixture = DiagonalGaussianMixture(Categorical(probs=probs), Independent(Normal(loc, scale), 1))
    z = loc[: args.rows] + scale[: args.rows] * torch.randn(args.rows, args.dim, generator=g, dtype=torch.float64)
    left = torch.randn(args.rows, 2 * args.dim + 1, dtype=torch.float64)
    right = torch.randn(args.n, 2 * args.dim + 1, dtype=torch.float64)

    with torch.no_grad():
        difference = float((mixture.log_prob(z) - before_log_prob(mixture, z)).abs().max())
        timing = interleaved(lambda: (left @ right.T).exp_(),
                             {"vaekit": lambda: mixture.log_prob(z), "before": lambda: before_log_prob(mixture, z)},
                             args.rounds)
    chunk = {name: round(statistics.median(timing.cpu[name]), 4) for name in timing.cpu}
    per_round = {name: [t / f for t, f in zip(timing.cpu[name], timing.cpu[FLOOR])] for name in ("vaekit", "before")}

    def whole(patched: bool) -> float:
        start = time.process_time()
        with mock.patch.object(DiagonalGaussianMixture, "log_prob", before_log_prob) if patched else contextlib.nullcontext():
            estimate_log_normaliser(lambda t: t.new_zeros(len(t)), args.dim, loc, scale, n_samples=args.samples)
        return round(time.process_time() - start, 2)

    estimate = {"vaekit": whole(False), "before": whole(True)}
    result = {"shape": {"n": args.n, "dim": args.dim, "rows_per_chunk": args.rows, "samples": args.samples},
              "chunk_cpu_seconds_median": chunk,
              "x_floor_median": {k: round(statistics.median(v), 2) for k, v in per_round.items()},
              "estimate_cpu_seconds": estimate,
              "speedup_estimate": round(estimate["before"] / estimate["vaekit"], 2),
              "max_abs_difference": difference,
              "load_average_1min_during": [round(v, 2) for v in timing.load], "machine": machine(),
              "command": "PYTHONPATH=src python benchmarks/log_z_proposal.py " + " ".join(sys.argv[1:])}
    path = write_result("log_z_proposal", result, args.out)
    print(f"| way | one chunk ({args.rows} x {args.n}), CPU s | x floor | whole estimate ({args.samples:,} draws), "
          "CPU s |\n|---|---|---|---|")
    for name in ("vaekit", "before"):
        print(f"| {name} | {chunk[name]} | {result['x_floor_median'][name]} | {estimate[name]} |")
    print(f"| floor (product + exp) | {chunk[FLOOR]} | 1 | |\nmax |difference| {difference:.1e}; written to {path}")


if __name__ == "__main__":
    main()
