"""Shared pieces of the performance benchmarks: the machine's fp32 matmul peak, FLOP counting, result files."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

RESULTS = Path(__file__).resolve().parent / "results"


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Peak fp32 matrix-multiply rate (FLOP/s) of this process: the best of ``repeats`` square n×n products."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)  # warm-up: thread pool, caches
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def count_flops(step: Callable[[], Any]) -> int:
    """Matrix-multiply FLOPs of one call of ``step`` (forward and backward), by ``torch.utils.flop_counter``."""
    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    """Smallest wall time (s) of ``repeats`` calls: the least disturbed by other work on the machine."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def profile_table(fn: Callable[[], Any], rows: int = 12) -> list[dict[str, Any]]:
    """``torch.profiler``'s operators by self CPU time for one call of ``fn``: name, share of the total, ms."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [{"op": e.key, "share": round(e.self_cpu_time_total / total, 3), "ms": round(e.self_cpu_time_total / 1e3, 1),
             "calls": e.count} for e in events[:rows]]


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_before": round(os.getloadavg()[0], 2),
    }


def write_result(name: str, result: dict[str, Any], out: Path | None = None) -> Path:
    """Write ``result`` as JSON to ``benchmarks/results/NAME.json`` (or ``out``) and return the path."""
    path = out or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    result = {**result, "load_average_after": round(os.getloadavg()[0], 2)}
    path.write_text(json.dumps(result, indent=1) + "\n")
    return path
