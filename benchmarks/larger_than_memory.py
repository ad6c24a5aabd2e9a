"""Training on a file larger than the process may hold: peak resident memory under a memory limit, and the
epoch time of the memory-mapped path against the in-memory path.

Part 1 (bounded memory): writes a ``--gib`` GiB ``.npy`` of random binary 784-column float32 rows, then, in a fresh
process whose data segment is limited to ``--limit-mib`` MiB (``resource.setrlimit(RLIMIT_DATA)``; Linux counts
every private writable and anonymous mapping, i.e. every array the process could load, but not a read-only file
map), runs ``vaekit.trained_mapped.fit_memory_mapped`` for one epoch over the whole training split (a small
784-64-2 model, batch 1,000, so that the pass over the file is quick) and K = 1 on the test split. Reported: the
peak resident set size (VmHWM; its file-backed and anonymous parts at the end) and, as a control, that loading
the same file into memory under the same limit fails.

Part 2 (epoch time): the MNIST-size model (784-500-500-40 tanh Bernoulli, batch 100) for one epoch on ``--rows``
rows, in memory (a tensor) and memory-mapped (:class:`~vaekit.data.mapped.MappedRows` over a ``.npy``, page cache
warm), alternated ``--repeats`` times; medians.

Usage: PYTHONPATH=src python benchmarks/larger_than_memory.py [--gib 3] [--limit-mib 1024] [--rows 10000]
Writes benchmarks/results/larger_than_memory.json. The big file goes to ``--dir`` (kept there and reused by the
next run; default: a temporary directory, deleted afterwards).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_result  # noqa: E402

WIDTH = 784


def write_binary_npy(path: Path, rows: int, seed: int = 0) -> None:
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, WIDTH))
    rng = np.random.default_rng(seed)
    step = 20_000
    for start in range(0, rows, step):
        stop = min(start + step, rows)
        out[start:stop] = rng.random((stop - start, WIDTH), dtype=np.float32) < 0.3
    out.flush()
    del out


def _status() -> dict[str, float]:
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def bounded_run(path: str, limit_mib: int, threads: int) -> dict[str, Any]:
    """In a fresh process: limit the data segment, then train one epoch on the mapped file (and try to load it)."""
    torch.set_num_threads(threads)
    from vaekit.trained_mapped import fit_memory_mapped
    from vaekit.training import TrainConfig

    limit = limit_mib * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    after_imports = _status()
    start = time.perf_counter()
    _, summary = fit_memory_mapped(path, hidden=(64,), latent_dim=2, importance_samples=1,
                                   train=TrainConfig(epochs=1, batch_size=1000, patience=None))
    seconds = time.perf_counter() - start
    end = _status()
    try:
        np.load(path)
        in_memory = "loaded (the limit did not bind)"
    except MemoryError as err:
        in_memory = f"MemoryError: {err}"[:200]
    return {"after_imports_mib": after_imports, "at_end_mib": end, "peak_rss_mib": end["VmHWM"],
            "fit_seconds": round(seconds, 1), "n_train": summary["n_train"], "n_test": summary["n_test"],
            "train_loss": summary["best_val_loss"], "in_memory_load_under_the_same_limit": in_memory}


def epoch_times(path: Path, rows: int, repeats: int) -> dict[str, Any]:
    from vaekit import VAE, TrainConfig, Trainer
    from vaekit.data.mapped import MappedRows, open_memory_map

    mapped = MappedRows(open_memory_map(path))
    memory = torch.from_numpy(np.load(path))
    trainer = Trainer(TrainConfig(epochs=1, batch_size=100, patience=None))

    def model() -> VAE:
        torch.manual_seed(0)
        return VAE(WIDTH, 40, likelihood="bernoulli", hidden=(500, 500), activation="tanh")

    times: dict[str, list[float]] = {"in_memory": [], "memory_mapped": []}
    cpu: dict[str, list[float]] = {"in_memory": [], "memory_mapped": []}
    for r in range(repeats + 1):
        for name, data in ((("in_memory", memory), ("memory_mapped", mapped)) if r % 2 == 0
                           else (("memory_mapped", mapped), ("in_memory", memory))):
            m = model()
            start, cpu_start = time.perf_counter(), time.process_time()
            trainer.fit(m, data)
            if r:  # the first round warms up both
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - cpu_start)
    med = {k: statistics.median(v) for k, v in times.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
    return {"rows": rows, "wall_seconds": {k: [round(t, 3) for t in v] for k, v in times.items()},
            "cpu_seconds": {k: [round(t, 3) for t in v] for k, v in cpu.items()},
            "median_seconds": {k: round(v, 3) for k, v in med.items()},
            "median_cpu_seconds": {k: round(v, 3) for k, v in cpu_med.items()},
            "mapped_over_in_memory": round(med["memory_mapped"] / med["in_memory"], 3),
            "mapped_over_in_memory_cpu": round(cpu_med["memory_mapped"] / cpu_med["in_memory"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=3.0, help="size of the big file (GiB)")
    parser.add_argument("--limit-mib", type=int, default=1024, help="RLIMIT_DATA of the training process (MiB)")
    parser.add_argument("--rows", type=int, default=10_000, help="rows of the epoch-time comparison")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as tmp:
        big = (args.dir or Path(tmp)) / "big.npy"
        rows = int(args.gib * 2**30 // (4 * WIDTH))
        start = time.perf_counter()
        expected_size = 128 + rows * 4 * WIDTH
        if not (big.exists() and abs(big.stat().st_size - expected_size) < 4096):  # reuse a file from --dir
            write_binary_npy(big, rows)
        write_seconds = time.perf_counter() - start
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            bounded = pool.apply(bounded_run, (str(big), args.limit_mib, args.threads))
        small = Path(tmp) / "small.npy"
        write_binary_npy(small, args.rows, seed=1)
        timing = epoch_times(small, args.rows, args.repeats)
    result = {
        "benchmark": "larger_than_memory", "machine": {**machine(), "load_average_before": load_before},
        "file_gib": round(rows * 4 * WIDTH / 2**30, 2), "file_rows": rows, "file_write_seconds": round(write_seconds, 1),
        "rlimit_data_mib": args.limit_mib, "bounded_run": bounded,
        "file_over_limit": round(rows * 4 * WIDTH / 2**20 / args.limit_mib, 2),
        "epoch_time": timing,
    }
    path = write_result("larger_than_memory", result)
    print(f"{result['file_gib']} GiB file ({rows} rows) under RLIMIT_DATA {args.limit_mib} MiB: one epoch + K=1 "
          f"test pass in {bounded['fit_seconds']} s, peak RSS {bounded['peak_rss_mib']:.0f} MiB; in-memory load: "
          f"{bounded['in_memory_load_under_the_same_limit'][:40]}; epoch on {args.rows} rows (784-500-500-40): "
          f"in memory {timing['median_seconds']['in_memory']} s, memory-mapped "
          f"{timing['median_seconds']['memory_mapped']} s ({timing['mapped_over_in_memory']}x wall, "
          f"{timing['mapped_over_in_memory_cpu']}x CPU); written to {path}")


if __name__ == "__main__":
    main()
