"""Shape floor: what the matrix products of a workload cost at their own shapes, measured beside the workload.

A large-square GEMM bound (FLOPs over the rate of a 2048² ``matmul``) is unreachable for thin products: at batch
100 a 100×784×500 product runs at about half the large-square rate. The fair yardstick is the same products at
their real shapes. :func:`record_products` runs one call of the workload (a training step: forward and backward;
an evaluation: forward only) under a ``TorchDispatchMode`` and records every ``mm``/``addmm``/``bmm``/``baddbmm``
with its operands' sizes and strides (so a grad-weight product keeps its transposed layout). :class:`ShapeFloor`
replays them as bare products (no bias, no elementwise work, no autograd) plus, for training, one fused Adam
update of the trained parameters; that is the least any implementation of the same algorithm with the same
library kernels must pay.

:func:`interleaved` alternates repetitions of the floor, the workload and the large-square peak in one process,
so that load from other processes on a shared machine hits all of them alike, and reports medians together with
the load average before and after.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_PRODUCTS = {
    torch.ops.aten.mm.default: "mm",
    torch.ops.aten.addmm.default: "addmm",
    torch.ops.aten.bmm.default: "bmm",
    torch.ops.aten.baddbmm.default: "baddbmm",
}


@dataclass(frozen=True)
class Product:
    """One matrix product as it ran: kind, operand sizes and strides (the bias of ``addmm`` is left out)."""

    kind: str
    a_size: tuple[int, ...]
    a_stride: tuple[int, ...]
    b_size: tuple[int, ...]
    b_stride: tuple[int, ...]

    @property
    def flops(self) -> int:
        *batch, m, k = self.a_size
        n = self.b_size[-1]
        return 2 * m * k * n * (batch[0] if batch else 1)


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[Product | tuple[int, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kind = _PRODUCTS.get(func)
        if kind is not None:
            a, b = (args[1], args[2]) if kind in ("addmm", "baddbmm") else (args[0], args[1])
            self.events.append(Product(kind, tuple(a.shape), tuple(a.stride()), tuple(b.shape), tuple(b.stride())))
        return func(*args, **(kwargs or {}))


def record_products(fn: Callable[[], Any]) -> list[Product | tuple[int, ...]]:
    """The matrix products of one call of ``fn`` (forward and, where ``fn`` calls ``backward``, backward), in
    order, and each optimiser step as the tuple of its parameters' element counts (replayed as one fused Adam
    update of parameters of those sizes)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    recorder = _Recorder()

    def on_step(optimiser, args, kwargs):  # type: ignore[no-untyped-def]
        sizes = tuple(p.numel() for group in optimiser.param_groups for p in group["params"] if p.grad is not None)
        recorder.events.append(sizes)

    handle = register_optimizer_step_post_hook(on_step)
    try:
        with recorder:
            fn()
    finally:
        handle.remove()
    return recorder.events


def _operand(size: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    return torch.empty_strided(size, stride).uniform_(-1, 1)


class ShapeFloor:
    """Replays recorded events (products at their shapes and strides, fused Adam updates) ``repeat`` times per
    call: the floor of one measured unit of the workload."""

    def __init__(self, events: Iterable[Product | tuple[int, ...]], repeat: int = 1) -> None:
        self.events = list(events)
        self.repeat = repeat
        self._calls: list[Callable[[], Any]] = []
        operands: dict[tuple, torch.Tensor] = {}
        optimisers: dict[tuple[int, ...], torch.optim.Optimizer] = {}
        for e in self.events:
            if isinstance(e, Product):
                a = operands.setdefault((e.a_size, e.a_stride), _operand(e.a_size, e.a_stride))
                b = operands.setdefault((e.b_size, e.b_stride, "b"), _operand(e.b_size, e.b_stride))
                op = torch.bmm if e.kind in ("bmm", "baddbmm") else torch.mm
                self._calls.append(lambda op=op, a=a, b=b: op(a, b))
            else:
                if e not in optimisers:
                    params = [torch.nn.Parameter(torch.randn(n) * 0.1) for n in e]
                    for p in params:
                        p.grad = torch.randn_like(p) * 1e-3
                    optimisers[e] = torch.optim.Adam(params, lr=1e-3, fused=True)
                self._calls.append(optimisers[e].step)

    @property
    def products(self) -> list[Product]:
        return [e for e in self.events if isinstance(e, Product)]

    @property
    def flops(self) -> int:
        """Matrix-multiply FLOPs of one recorded call (the large-square bound's numerator)."""
        return sum(p.flops for p in self.products)

    def __call__(self) -> None:
        calls = self._calls
        for _ in range(self.repeat):
            for call in calls:
                call()

    def describe(self) -> dict[str, Any]:
        shapes: dict[str, int] = {}
        for p in self.products:
            key = f"{p.kind} {'x'.join(map(str, p.a_size))} @ {'x'.join(map(str, p.b_size))}"
            shapes[key] = shapes.get(key, 0) + 1
        steps = [e for e in self.events if not isinstance(e, Product)]
        return {"products": len(self.products), "matmul_flops": self.flops, "product_shapes": shapes,
                "fused_adam_updates": len(steps), "adam_parameters": sorted({sum(e) for e in steps})}


def square_peak(n: int = 2048, repeats: int = 3) -> float:
    """fp32 rate (FLOP/s) of an n×n ``matmul``: the best of ``repeats`` (the large-square GEMM bound's rate),
    timed by the process's CPU clock with one torch thread (not disturbed by waiting for a core), else by wall."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = float("inf")
    clock = time.process_time if torch.get_num_threads() == 1 else time.perf_counter
    for _ in range(repeats):
        start = clock()
        torch.matmul(a, b)
        best = min(best, clock() - start)
    return 2 * n**3 / best


def _seconds(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall and process-CPU seconds of one call. With one torch thread on a shared machine the CPU time is the
    work done, without the time spent waiting for a core."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


@dataclass
class Interleaved:
    """Per-round wall and CPU seconds of the floor and of each workload, the large-square peaks, the load."""

    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    peaks: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)

    def ratios(self, name: str, flops: float, clock: str) -> dict[str, Any]:
        """``name`` against the floor with ``clock`` ("cpu" or "wall"): the median of the per-round ratios (floor
        and workload measured back to back, so both saw the same load) and the ratio of the medians; and against
        the large-square GEMM bound of ``flops`` per unit."""
        times, floor = getattr(self, clock)[name], getattr(self, clock)[FLOOR]
        per_round = [t / f for t, f in zip(times, floor)]
        bound = flops / statistics.median(self.peaks)
        return {"seconds_median": round(statistics.median(times), 5),
                "x_shape_floor": round(statistics.median(per_round), 3),
                "x_shape_floor_ratio_of_medians": round(statistics.median(times) / statistics.median(floor), 3),
                "x_shape_floor_quartiles": [round(q, 3) for q in statistics.quantiles(per_round, n=4)]
                if len(per_round) > 1 else None,
                "x_square_gemm_bound": round(statistics.median(times) / bound, 3)}

    def report(self, flops: float, clock: str) -> dict[str, Any]:
        """Everything for the result file: the floor, the bound, each workload's ratios with ``clock`` and with
        the other clock, the load average during the measurement."""
        other = "wall" if clock == "cpu" else "cpu"
        floor = statistics.median(getattr(self, clock)[FLOOR])
        bound = flops / statistics.median(self.peaks)
        return {
            "clock": clock, "rounds": len(self.wall[FLOOR]),
            "shape_floor_seconds_median": round(floor, 5),
            "square_gemm_gflops_median": round(statistics.median(self.peaks) / 1e9, 1),
            "square_gemm_bound_seconds": round(bound, 5),
            "shape_floor_x_square_gemm_bound": round(floor / bound, 3),
            "workloads": {name: {**self.ratios(name, flops, clock), other: self.ratios(name, flops, other)}
                          for name in self.wall if name != FLOOR},
            "load_average_1min_during": [round(v, 2) for v in self.load],
        }


FLOOR = "shape floor"


def interleaved(floor: Callable[[], Any], workloads: dict[str, Callable[[], Any]], rounds: int,
                warmup: bool = True) -> Interleaved:
    """``rounds`` rounds of: the large-square peak, then the floor and each workload back to back (their order
    rotated every round). Keep one call short (a fraction of a second to a few seconds) and ``rounds`` large, so
    that load from other processes hits the floor and the workloads alike. The first call of each is a warm-up
    (not recorded) when ``warmup``."""
    calls = {FLOOR: floor, **workloads}
    if warmup:
        for fn in calls.values():
            fn()
    out = Interleaved(wall={name: [] for name in calls}, cpu={name: [] for name in calls})
    names = list(calls)
    for r in range(rounds):
        if r % 5 == 0:
            out.load.append(os.getloadavg()[0])
            out.peaks.append(square_peak())
        for name in names[r % len(names):] + names[: r % len(names)]:
            wall, cpu = _seconds(calls[name])
            out.wall[name].append(wall)
            out.cpu[name].append(cpu)
    out.load.append(os.getloadavg()[0])
    return out
