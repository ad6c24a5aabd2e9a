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
        self.products: list[Product] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kind = _PRODUCTS.get(func)
        if kind is not None:
            a, b = (args[1], args[2]) if kind in ("addmm", "baddbmm") else (args[0], args[1])
            self.products.append(Product(kind, tuple(a.shape), tuple(a.stride()), tuple(b.shape), tuple(b.stride())))
        return func(*args, **(kwargs or {}))


def record_products(fn: Callable[[], Any]) -> list[Product]:
    """The matrix products of one call of ``fn`` (forward and, where ``fn`` calls ``backward``, backward)."""
    recorder = _Recorder()
    with recorder:
        fn()
    return recorder.products


def _operand(size: tuple[int, ...], stride: tuple[int, ...]) -> torch.Tensor:
    return torch.empty_strided(size, stride).uniform_(-1, 1)


class ShapeFloor:
    """Replays recorded products (and optionally one fused Adam update of ``params``) ``repeat`` times per call.

    ``repeat`` is the number of workload steps in one measured unit (e.g. the steps of an epoch), so that one
    call of :meth:`__call__` is the floor of one measured unit.
    """

    def __init__(self, products: Iterable[Product], repeat: int = 1,
                 params: Iterable[torch.nn.Parameter] | None = None) -> None:
        self.products = list(products)
        self.repeat = repeat
        self._calls = []
        for p in self.products:
            a, b = _operand(p.a_size, p.a_stride), _operand(p.b_size, p.b_stride)
            op = torch.bmm if p.kind in ("bmm", "baddbmm") else torch.mm
            self._calls.append((op, a, b))
        self.optimiser = None
        if params is not None:
            copies = [torch.nn.Parameter(p.detach().clone()) for p in params if p.requires_grad]
            for c in copies:
                c.grad = torch.randn_like(c) * 1e-3
            self.optimiser = torch.optim.Adam(copies, lr=1e-3, fused=True)
            self.n_params = sum(c.numel() for c in copies)

    @property
    def flops_per_step(self) -> int:
        return sum(p.flops for p in self.products)

    def __call__(self) -> None:
        calls, optimiser = self._calls, self.optimiser
        for _ in range(self.repeat):
            for op, a, b in calls:
                op(a, b)
            if optimiser is not None:
                optimiser.step()

    def describe(self) -> dict[str, Any]:
        shapes: dict[str, int] = {}
        for p in self.products:
            key = f"{p.kind} {'x'.join(map(str, p.a_size))} @ {'x'.join(map(str, p.b_size))}"
            shapes[key] = shapes.get(key, 0) + 1
        out: dict[str, Any] = {"products_per_step": len(self.products), "flops_per_step": self.flops_per_step,
                               "steps_per_unit": self.repeat, "product_shapes": shapes}
        if self.optimiser is not None:
            out["fused_adam_parameters"] = self.n_params
        return out


def square_peak(n: int = 2048, repeats: int = 3) -> float:
    """fp32 rate (FLOP/s) of an n×n ``matmul``: the best of ``repeats`` (the large-square GEMM bound's rate)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def _seconds(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclass
class Interleaved:
    """Per-repetition seconds of the floor and of each measured workload, the large-square peaks, the load."""

    floor: list[float] = field(default_factory=list)
    measured: dict[str, list[float]] = field(default_factory=dict)
    peaks: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)

    def median(self, name: str) -> float:
        return statistics.median(self.measured[name])

    @property
    def floor_median(self) -> float:
        return statistics.median(self.floor)

    @property
    def peak_median(self) -> float:
        return statistics.median(self.peaks)

    def ratios(self, name: str, flops: float) -> dict[str, Any]:
        """Median seconds of ``name`` and its ratio to the shape floor and to the large-square GEMM bound of
        ``flops`` (per measured unit), both from the same repetitions."""
        seconds = self.median(name)
        bound = flops / self.peak_median
        return {"seconds_median": round(seconds, 4), "seconds": [round(t, 4) for t in self.measured[name]],
                "x_shape_floor": round(seconds / self.floor_median, 3),
                "x_square_gemm_bound": round(seconds / bound, 3),
                # the same ratio per repetition (floor and workload measured back to back): its spread shows the noise
                "x_shape_floor_per_repeat": [round(t / f, 3) for t, f in zip(self.measured[name], self.floor)]}

    def summary(self, flops: float) -> dict[str, Any]:
        return {"shape_floor_seconds_median": round(self.floor_median, 4),
                "shape_floor_seconds": [round(t, 4) for t in self.floor],
                "square_gemm_gflops_median": round(self.peak_median / 1e9, 1),
                "square_gemm_bound_seconds": round(flops / self.peak_median, 4),
                "shape_floor_x_square_gemm_bound": round(self.floor_median / (flops / self.peak_median), 3),
                "load_average_1min_during": [round(v, 2) for v in self.load]}


def interleaved(floor: Callable[[], Any], workloads: dict[str, Callable[[], Any]], repeats: int,
                warmup: bool = True) -> Interleaved:
    """Alternate ``repeats`` rounds of: large-square peak, floor, each workload (order rotated every round).

    The first call of each is a warm-up (not recorded) when ``warmup``.
    """
    if warmup:
        floor()
        for fn in workloads.values():
            fn()
    out = Interleaved(measured={name: [] for name in workloads})
    names = list(workloads)
    for r in range(repeats):
        out.load.append(os.getloadavg()[0])
        out.peaks.append(square_peak())
        order = ["<floor>", *names]
        order = order[r % len(order):] + order[: r % len(order)]
        for name in order:
            if name == "<floor>":
                out.floor.append(_seconds(floor))
            else:
                out.measured[name].append(_seconds(workloads[name]))
    out.load.append(os.getloadavg()[0])
    return out
