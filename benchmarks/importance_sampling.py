"""Importance-sampled test log-likelihood with K samples: time against its GEMM bound, and peak memory against K.

Model: the MNIST VAE (784-500-500-40 tanh, Bernoulli, standard prior; untrained weights — the cost does not depend
on them). Data: the MNIST test set from ``$VAEKIT_DATA`` (fixed binarisation) when present, else random binary
rows. The FLOPs of ``vaekit.evaluation.log_likelihood`` are counted by ``torch.utils.flop_counter`` at two small
K on the same rows (cost = encoder + K x decoder, so two counts give both parts exactly) and extrapolated; the
bound is those FLOPs over the in-process peak fp32 matmul rate. Peak memory: in a fresh process per K, the growth
of the maximum resident set size during ``log_likelihood`` of 100 rows; chunking over K must keep it flat.

Usage: PYTHONPATH=src python benchmarks/importance_sampling.py [--rows 1000] [--samples 5000] [--threads T]
(``--rows 10000`` is the whole MNIST test set: about 10 minutes on two cores.)
Writes benchmarks/results/importance_sampling.json and prints a README line.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import count_flops, machine, matmul_peak, profile_table, write_result

from vaekit import VAE
from vaekit.errors import DatasetNotFoundError
from vaekit.evaluation import log_likelihood


def test_rows(n: int) -> tuple[torch.Tensor, str]:
    try:
        from vaekit.data import load_dataset

        data = load_dataset("mnist")
        _, _, test = data.splits(seed=0)
        return torch.from_numpy(test.x[:n]).float(), f"MNIST test set, first {n} rows"
    except DatasetNotFoundError:
        g = torch.Generator().manual_seed(0)
        return (torch.rand(n, 784, generator=g) > 0.5).float(), f"{n} random binary rows (MNIST absent)"


def max_rss_mib(reset: bool = False) -> float:
    """Peak resident set size (MiB). On Linux the peak (VmHWM) is reset first with ``reset=True``, so that an
    earlier transient (imports) does not hide what follows."""
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
    torch.manual_seed(0)
    model = VAE(784, 40, likelihood="bernoulli", hidden=(500, 500), activation="tanh").eval()
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
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--prior", default="standard", help="standard, or vamp (K = 500 components)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x, source = test_rows(args.rows)
    torch.manual_seed(0)
    model = VAE(784, 40, likelihood="bernoulli", prior=args.prior, hidden=(500, 500), activation="tanh").eval()

    probe = x[:100]
    log_likelihood(model, probe, n_samples=2)  # a VampPrior encodes its pseudo-inputs once, here (then cached)
    f1 = count_flops(lambda: log_likelihood(model, probe, n_samples=10))
    f2 = count_flops(lambda: log_likelihood(model, probe, n_samples=20))
    per_sample, encoder = (f2 - f1) / 10 / len(probe), (2 * f1 - f2) / len(probe)
    flops = len(x) * (encoder + args.samples * per_sample)

    memory = {k: round(rss_growth_in_child(k), 1) for k in sorted({50, 500, args.samples})}
    peak = matmul_peak()
    start = time.perf_counter()
    ll = log_likelihood(model, x, n_samples=args.samples)
    seconds = time.perf_counter() - start
    peak = max(peak, matmul_peak())
    bound = flops / peak
    result = {
        "benchmark": "importance_sampling",
        "data": source, "rows": len(x), "importance_samples": args.samples,
        "model": f"784-500-500-40 tanh, Bernoulli, {args.prior} prior",
        "machine": machine(),
        "flops": flops, "tflop": round(flops / 1e12, 2), "flops_per_sample_per_row": per_sample,
        "peak_matmul_gflops": round(peak / 1e9, 1), "gemm_bound_seconds": round(bound, 2),
        "seconds": round(seconds, 2), "ratio_to_bound": round(seconds / bound, 3), "target_ratio": 1.3,
        "rss_growth_mib_by_k": memory,
        "mean_log_likelihood": float(ll.mean()),
    }
    result["profile_100_rows"] = profile_table(lambda: log_likelihood(model, x[:100], n_samples=min(args.samples, 1000)))
    name = "importance_sampling" + ("" if args.prior == "standard" else f"-{args.prior}")
    path = write_result(name, result, args.out)
    print(f"importance sampling ({args.prior} prior) K={args.samples} on {len(x)} rows ({flops / 1e12:.1f} TFLOP, "
          f"{torch.get_num_threads()} threads): {seconds:.1f} s = {result['ratio_to_bound']:.2f}x GEMM bound "
          f"({bound:.1f} s at {peak / 1e9:.0f} GFLOP/s); peak memory growth while scoring 100 rows, by K: {memory} "
          f"MiB (flat once K x 100 rows fill one 20,000-row chunk); written to {path}")


if __name__ == "__main__":
    main()
