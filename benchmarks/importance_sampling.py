"""Importance-sampled test log-likelihood with K samples against its shape floor (and the large-square GEMM
bound), and peak memory against K.

Models (untrained weights; the cost does not depend on them): ``--dataset mnist`` is the MNIST VAE (784-500-500-40
tanh, Bernoulli, standard or VampPrior) on the MNIST test set (fixed binarisation; random binary rows when absent);
``--dataset smtp`` is the default ``vaekit fit`` model for SMTP (3-500-500-20 tanh, Student-t) on SMTP's test
split (seed 0). One measured unit is ``vaekit.evaluation.log_likelihood`` of ``--unit-rows`` rows with K samples;
its **shape floor** is the unit's own matrix products (encoder once, decoder on every chunk of samples; recorded
with their shapes and strides) replayed as bare products (``benchmarks/shape_floor.py``). Floor, workloads and a
2048² matmul are interleaved for ``--rounds`` rounds in one process (medians of per-round ratios; with one torch
thread by the process's CPU clock). The workloads are vaekit's ``log_likelihood`` and, for comparison, the same
with the previous release's Bernoulli log-density (elementwise x * logits - softplus(logits), summed: what
``vaekit.likelihoods.BernoulliRows`` replaces by one batched product for sample-broadcast data). The floor is
recorded from the elementwise variant, so it holds the encoder and decoder products only (the new log-density's
small x-logits product is not credited to the floor). The whole ``--rows`` evaluation time is extrapolated from the unit
(cost is linear in rows). Peak memory: in a fresh process per K, the growth of the maximum resident set size
while scoring 100 rows; it must stay flat in K.

Usage: PYTHONPATH=src python benchmarks/importance_sampling.py [--dataset mnist] [--samples 1000] [--rows 1000]
       [--threads 1] [--rounds 15] [--prior standard|vamp]
Writes benchmarks/results/importance_sampling[-DATASET][-PRIOR]-kK.json and prints a README line.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import sys
from pathlib import Path

import torch
from torch.distributions import Independent

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, profile_table, write_result  # noqa: E402
from shape_floor import ShapeFloor, interleaved, record_products  # noqa: E402

from vaekit import VAE  # noqa: E402
from vaekit.errors import DatasetNotFoundError  # noqa: E402
from vaekit.evaluation import log_likelihood  # noqa: E402
from vaekit.likelihoods import BernoulliRows  # noqa: E402


PREVIOUS = "vaekit, previous Bernoulli log-density (elementwise)"


@contextlib.contextmanager
def elementwise_bernoulli():  # type: ignore[no-untyped-def]
    """The previous release's Bernoulli log-density: torch's Independent sum of the elementwise terms."""
    saved = BernoulliRows.log_prob
    BernoulliRows.log_prob = Independent.log_prob  # type: ignore[method-assign]
    try:
        yield
    finally:
        BernoulliRows.log_prob = saved  # type: ignore[method-assign]


def previous(fn):  # type: ignore[no-untyped-def]
    def run():  # type: ignore[no-untyped-def]
        with elementwise_bernoulli():
            return fn()
    return run


def test_rows(dataset: str, n: int | None) -> tuple[torch.Tensor, str]:
    from vaekit.data import load_dataset
    from vaekit.data.dataset import Preprocessor

    try:
        data = load_dataset(dataset)
    except DatasetNotFoundError:
        if dataset != "mnist":
            raise
        g = torch.Generator().manual_seed(0)
        return (torch.rand(n or 1000, 784, generator=g) > 0.5).float(), f"{n} random binary rows (MNIST absent)"
    train, _, test = data.splits(seed=0)
    x = test.x[:n] if n else test.x
    if not data.binary:
        x = Preprocessor().fit(train.x).transform(x)
    return torch.from_numpy(x).float(), f"{dataset} test split, {'first ' if n else ''}{len(x)} rows"


def make_model(dataset: str, prior: str) -> VAE:
    torch.manual_seed(0)
    if dataset == "mnist":
        return VAE(784, 40, likelihood="bernoulli", prior=prior, hidden=(500, 500), activation="tanh").eval()
    return VAE(3, 20, likelihood="student-t", prior=prior, hidden=(500, 500), activation="tanh").eval()


def max_rss_mib(reset: bool = False) -> float:
    """Peak resident set size (MiB). On Linux the peak (VmHWM) is reset first with ``reset=True``."""
    status = Path("/proc/self/status")
    if status.exists():
        if reset:
            Path("/proc/self/clear_refs").write_text("5")
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_growth_mib(samples: int) -> float:
    """In this (fresh) process: growth of the peak RSS while scoring 100 rows with ``samples`` samples."""
    torch.set_num_threads(1)
    model = make_model("mnist", "standard")
    x = (torch.rand(100, 784) > 0.5).float()
    log_likelihood(model, x[:2], n_samples=2)  # allocator and kernels warmed up
    before = max_rss_mib(reset=True)
    log_likelihood(model, x, n_samples=samples)
    return max_rss_mib() - before


def rss_growth_in_child(samples: int) -> float:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(rss_growth_mib, (samples,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", choices=("mnist", "smtp"))
    parser.add_argument("--rows", type=int, default=None, help="rows the whole evaluation covers (default: "
                        "1,000 for MNIST, the whole test split for SMTP)")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--unit-rows", type=int, default=100, help="rows per measured unit")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prior", default="standard", help="standard, or vamp (500 components)")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory growth against K")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = "cpu" if args.threads == 1 else "wall"
    rows = args.rows or (1000 if args.dataset == "mnist" else None)
    x, source = test_rows(args.dataset, rows)
    model = make_model(args.dataset, args.prior)
    unit_x = x[: args.unit_rows]
    load_before = os.getloadavg()[0]
    log_likelihood(model, unit_x[:2], n_samples=2)  # a VampPrior encodes its pseudo-inputs once, here (cached)

    # equality: the default log-density gives the previous one's values (same noise)
    noise = torch.randn(args.samples, model.config.latent_dim, generator=torch.Generator().manual_seed(1))
    new = log_likelihood(model, unit_x, noise=noise)
    old = previous(lambda: log_likelihood(model, unit_x, noise=noise))()
    max_abs_difference = float((new - old).abs().max())

    workloads = {"vaekit": lambda: log_likelihood(model, unit_x, n_samples=args.samples),
                 PREVIOUS: previous(lambda: log_likelihood(model, unit_x, n_samples=args.samples))}
    floor = ShapeFloor(record_products(workloads[PREVIOUS]))
    measured = interleaved(floor, workloads, args.rounds)
    report = measured.report(floor.flops, clock)
    units = len(x) / len(unit_x)
    result = {
        "benchmark": "importance_sampling", "data": source, "rows": len(x), "importance_samples": args.samples,
        "unit": f"log_likelihood of {len(unit_x)} rows, K = {args.samples}",
        "model": str(model.config.to_dict()),
        "machine": {**machine(), "load_average_before": round(load_before, 2)},
        "shape_floor": {k: v for k, v in floor.describe().items() if k != "product_shapes"},
        "product_shapes_per_unit": floor.describe()["product_shapes"],
        **report,
        "whole_evaluation_seconds_estimate": {
            name: round(w["seconds_median"] * units, 1) for name, w in report["workloads"].items()},
        "whole_evaluation_tflop": round(floor.flops * units / 1e12, 3),
        "max_abs_difference_default_vs_previous_log_density": max_abs_difference,
        "target_x_shape_floor": 1.3,
    }
    if args.memory:
        result["rss_growth_mib_by_k"] = {k: round(rss_growth_in_child(k), 1) for k in (50, 500, 5000)}
    result["profile_unit"] = profile_table(workloads["vaekit"])
    name = f"importance_sampling-{args.dataset}" + ("" if args.prior == "standard" else f"-{args.prior}")
    path = write_result(f"{name}-k{args.samples}", result, args.out)
    w = report["workloads"]
    print(f"importance sampling {args.dataset} ({args.prior} prior) K={args.samples} ({result['unit']}; "
          f"{args.threads} thread(s), {clock} clock, load {load_before:.1f}): "
          + "; ".join(f"{k} {v['x_shape_floor']:.2f}x shape floor ({v['x_square_gemm_bound']:.2f}x 2048² bound)"
                      for k, v in w.items())
          + f"; whole {len(x)} rows ≈ {result['whole_evaluation_seconds_estimate']['vaekit']} s; "
          f"max |difference| vs previous log-density {max_abs_difference:.2e}; written to {path}")


if __name__ == "__main__":
    main()
