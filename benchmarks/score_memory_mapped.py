"""Scoring a file larger than the process may hold: ``vaekit score --memory-map`` under a memory limit.

Writes (or reuses, with ``--dir``) a ``--gib`` GiB ``.npy`` of random binary 784-column float32 rows, trains a small
784-64-2 Bernoulli VAE for one epoch on its first 20,000 rows (saved with ``vaekit fit``'s layout), then, in a
fresh process whose data segment is limited to ``--limit-mib`` MiB (``RLIMIT_DATA``, as in
``larger_than_memory.py``), runs ``vaekit score RUN --data big.npy --memory-map --output scores.csv`` over every row
with K = ``--samples``. Reported: peak resident set size (VmHWM), the resident size sampled every second (and its
maximum per quarter of the run: flat when memory is bounded), rows scored, seconds, the output's size, and as a
control that the in-memory ``vaekit score`` of the same file fails under the same limit.

Usage: PYTHONPATH=src python benchmarks/score_memory_mapped.py [--gib 3] [--limit-mib 1024] [--samples 1]
Writes benchmarks/results/score_memory_mapped.json. Memory, not speed, is the result: the seconds depend on load.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_result  # noqa: E402
from larger_than_memory import WIDTH, _status, write_binary_npy  # noqa: E402


def fit_small_model(big: Path, out: Path) -> None:
    """One epoch of a 784-64-2 Bernoulli VAE on the file's first 20,000 rows, saved to ``out``."""
    import vaekit
    from vaekit import TrainConfig
    from vaekit.data import Dataset

    rows = np.load(big, mmap_mode="r")[:20_000]
    data = Dataset("first-rows", np.asarray(rows), binary=True, split=(0.8, 0.1, 0.1))
    vaekit.fit(data, likelihood="bernoulli", latent_dim=2, hidden=(64,), importance_samples=1, out=out,
               train=TrainConfig(epochs=1, batch_size=1000, patience=None))


def bounded_score(big: str, run: str, output: str, limit_mib: int, samples: int, memory_map: bool) -> dict[str, Any]:
    """In a fresh process: limit the data segment, then score every row of ``big`` with ``vaekit score``."""
    import torch

    from vaekit.cli import main

    torch.set_num_threads(1)
    limit = limit_mib * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    after_imports = _status()
    trace: list[tuple[float, float]] = []  # (seconds, resident MiB) every second: flat means bounded
    done = threading.Event()

    def sample() -> None:
        while not done.wait(1.0):
            trace.append((round(time.perf_counter() - start, 1), round(_status()["VmRSS"], 1)))

    start = time.perf_counter()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    argv = ["score", run, "--data", big, "--importance-samples", str(samples), "--output", output, "--quiet",
            "--no-progress", *(["--memory-map"] if memory_map else [])]
    try:
        code = main(argv)
        outcome = f"exit {code}"
    except MemoryError as err:  # the in-memory control may die inside numpy before the CLI can report it
        code, outcome = 1, f"MemoryError: {err}"[:200]
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    end = _status()
    quarters = [max((m for t, m in trace if q * seconds / 4 <= t < (q + 1) * seconds / 4), default=None)
                for q in range(4)]
    return {"argv": argv, "exit_code": code, "outcome": outcome, "seconds": round(seconds, 1),
            "after_imports_mib": after_imports, "at_end_mib": end, "peak_rss_mib": end["VmHWM"],
            "max_rss_mib_per_quarter_of_the_run": quarters, "rss_trace_mib": trace}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=3.0, help="size of the big file (GiB)")
    parser.add_argument("--limit-mib", type=int, default=1024, help="RLIMIT_DATA of the scoring process (MiB)")
    parser.add_argument("--samples", type=int, default=1, help="K, importance samples per row")
    parser.add_argument("--dir", type=Path, default=None, help="keep (and reuse) the big file here")
    args = parser.parse_args()
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as tmp:
        big = (args.dir or Path(tmp)) / "big.npy"
        rows = int(args.gib * 2**30 // (4 * WIDTH))
        if not (big.exists() and abs(big.stat().st_size - (128 + rows * 4 * WIDTH)) < 4096):
            write_binary_npy(big, rows)
        run = Path(tmp) / "run"
        fit_small_model(big, run)
        context = multiprocessing.get_context("spawn")
        results = {}
        for name, mapped in (("memory_mapped", True), ("in_memory_control", False)):
            output = Path(tmp) / f"{name}.csv"
            with context.Pool(1) as pool:
                results[name] = pool.apply(bounded_score, (str(big), str(run), str(output), args.limit_mib,
                                                           args.samples, mapped))
            with open(output) if output.exists() else contextlib.nullcontext([]) as lines:
                results[name]["output_lines"] = sum(1 for _ in lines)
            results[name]["output_mib"] = round(output.stat().st_size / 2**20, 1) if output.exists() else 0
    result = {"benchmark": "score_memory_mapped", "machine": {**machine(), "load_average_before": load_before},
              "file_gib": round(rows * 4 * WIDTH / 2**30, 2), "file_rows": rows, "rlimit_data_mib": args.limit_mib,
              "importance_samples": args.samples, **results}
    path = write_result("score_memory_mapped", result)
    mapped = results["memory_mapped"]
    print(f"{result['file_gib']} GiB ({rows} rows) under RLIMIT_DATA {args.limit_mib} MiB: score --memory-map "
          f"{mapped['outcome']}, {mapped['output_lines'] - 1} scores in {mapped['seconds']} s, peak RSS "
          f"{mapped['peak_rss_mib']:.0f} MiB (max per quarter {mapped['max_rss_mib_per_quarter_of_the_run']}); in memory: {results['in_memory_control']['outcome'][:60]}; "
          f"written to {path}")


if __name__ == "__main__":
    main()
