"""Training steps against their shape floor (and the large-square GEMM bound): vaekit's Trainer, a textbook
PyTorch loop and vaekit's loss under torch.compile, same model and data.

The model is the MNIST VAE of the performance issues: 784-500-500-40 tanh encoder and decoder, Bernoulli decoder,
standard prior, batch 100, Adam, on random binary rows (timing does not depend on the pixel values). One measured
unit is ``--unit`` steps (default 10: 1,000 rows) of the trainer's epoch loop (``Trainer._train_epoch``: shuffling,
batching, forward, backward, the finiteness check, the fused Adam update); an epoch of N rows is N / 1,000 units.
The **shape floor** of a unit is the same unit's matrix products — recorded from one real unit with their shapes
and strides (forward, grad-input, grad-weight) — replayed as bare products, plus one fused Adam update per step
(``benchmarks/shape_floor.py``). Floor, workloads and a 2048² matmul (the large-square rate) are interleaved for
``--rounds`` rounds in this process, so machine load affects all alike; ratios are the median of per-round ratios.
With one torch thread the clock is the process's CPU time (robust to other processes on a shared machine); with
more, wall time. Both are recorded.

Usage: PYTHONPATH=src python benchmarks/training_step.py [--threads 1] [--rounds 30] [--compile] [--epoch-rows N]
Writes benchmarks/results/training_step[-tT].json and prints a README line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, profile_table, write_result  # noqa: E402
from shape_floor import ShapeFloor, interleaved, record_products  # noqa: E402

from vaekit import VAE, TrainConfig, Trainer  # noqa: E402
from vaekit.nets import adam  # noqa: E402

HIDDEN, LATENT, X_DIM, BATCH = (500, 500), 40, 784, 100


class TextbookVAE(nn.Module):
    """The loop a user writes from the PyTorch examples: the same architecture, no vaekit code."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(X_DIM, 500), nn.Tanh(), nn.Linear(500, 500), nn.Tanh(),
                                     nn.Linear(500, 2 * LATENT))
        self.decoder = nn.Sequential(nn.Linear(LATENT, 500), nn.Tanh(), nn.Linear(500, 500), nn.Tanh(),
                                     nn.Linear(500, X_DIM))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        mu, log_var = self.encoder(x).chunk(2, dim=-1)
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        reconstruction = F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="sum")
        kl = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())
        return (reconstruction + kl) / len(x)


def vaekit_unit(x: torch.Tensor):  # type: ignore[no-untyped-def]
    """One unit of vaekit's epoch loop on the rows ``x`` (the trainer's own method, its state kept across calls)."""
    torch.manual_seed(0)
    model = VAE(X_DIM, LATENT, likelihood="bernoulli", hidden=HIDDEN, activation="tanh")
    trainer = Trainer(TrainConfig(epochs=1, batch_size=BATCH, patience=None))
    params = list(model.parameters())
    optimiser = adam(params, 1e-3)
    generator = torch.Generator().manual_seed(0)
    return lambda: trainer._train_epoch(model, optimiser, params, x, None, 1.0, generator)


def compiled_unit(x: torch.Tensor):  # type: ignore[no-untyped-def]
    """The trainer's loop with vaekit's loss compiled by ``torch.compile`` (inductor): same batching, check and
    fused Adam."""
    torch.manual_seed(0)
    model = VAE(X_DIM, LATENT, likelihood="bernoulli", hidden=HIDDEN, activation="tanh")
    params = list(model.parameters())
    optimiser = adam(params, 1e-3)
    generator = torch.Generator().manual_seed(0)
    loss_fn = torch.compile(lambda xb: model.loss(xb, None, 1.0, 1).loss, dynamic=False)

    def unit() -> None:
        model.train()
        for idx in torch.randperm(len(x), generator=generator).split(BATCH):
            loss = loss_fn(x[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params])
            if not bool(torch.isfinite(loss) & torch.isfinite(grad_norm)):
                raise FloatingPointError("non-finite loss")
            optimiser.step()

    return unit


def textbook_unit(x: torch.Tensor):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = TextbookVAE()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=BATCH, shuffle=True)

    def unit() -> None:
        for (xb,) in loader:
            loss = model.loss(xb)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            _ = loss.item()  # the per-step logging of the examples

    return unit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU-time clock)")
    parser.add_argument("--unit", type=int, default=10, help="steps per measured unit")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds (medians are reported)")
    parser.add_argument("--compile", action="store_true",
                        help="also time the loop with vaekit's loss under torch.compile (needs a C++ compiler)")
    parser.add_argument("--epoch-rows", type=int, default=0,
                        help="also time whole Trainer.fit epochs on this many rows (wall clock, 3 alternations)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = "cpu" if args.threads == 1 else "wall"
    torch.manual_seed(0)
    x = (torch.rand(args.unit * BATCH, X_DIM) > 0.5).float()
    load_before = os.getloadavg()[0]

    workloads = {"vaekit": vaekit_unit(x), "textbook PyTorch loop": textbook_unit(x)}
    compile_seconds = None
    if args.compile:
        start = time.perf_counter()
        workloads["vaekit, loss under torch.compile"] = compiled_unit(x)
        workloads["vaekit, loss under torch.compile"]()
        compile_seconds = time.perf_counter() - start
    floor = ShapeFloor(record_products(vaekit_unit(x)))
    measured = interleaved(floor, workloads, args.rounds)
    report = measured.report(floor.flops, clock)
    result = {
        "benchmark": "training_step", "unit": f"{args.unit} steps of batch {BATCH} ({args.unit * BATCH} rows)",
        "model": "784-500-500-40 tanh, Bernoulli, standard prior, Adam",
        "machine": {**machine(), "load_average_before": round(load_before, 2)},
        "shape_floor": floor.describe(), **report,
        "compile_seconds_first_unit": None if compile_seconds is None else round(compile_seconds, 1),
        "target_x_shape_floor": 1.2,
    }
    if args.epoch_rows:
        big = (torch.rand(args.epoch_rows, X_DIM) > 0.5).float()
        trainer = Trainer(TrainConfig(epochs=1, batch_size=BATCH, patience=None))
        epochs = []
        for _ in range(3):
            torch.manual_seed(0)
            model = VAE(X_DIM, LATENT, likelihood="bernoulli", hidden=HIDDEN, activation="tanh")
            start = time.perf_counter()
            trainer.fit(model, big)
            epochs.append(round(time.perf_counter() - start, 2))
        units = args.epoch_rows / (args.unit * BATCH)
        result["whole_epochs"] = {"rows": args.epoch_rows, "wall_seconds": epochs,
                                  "floor_wall_seconds_estimate": round(
                                      units * sorted(measured.wall["shape floor"])[len(measured.wall["shape floor"]) // 2], 2)}
    result["profile_vaekit_unit"] = profile_table(workloads["vaekit"])
    suffix = "" if args.threads == 1 else f"-t{args.threads}"
    path = write_result(f"training_step{suffix}", result, args.out)
    w = report["workloads"]
    print(f"training ({result['unit']}, {args.threads} thread(s), {clock} clock, {args.rounds} rounds, load "
          f"{load_before:.1f}): " + "; ".join(f"{k} {v['x_shape_floor']:.2f}x shape floor "
                                              f"({v['x_square_gemm_bound']:.2f}x 2048² bound)" for k, v in w.items())
          + f"; floor = {report['shape_floor_x_square_gemm_bound']:.2f}x bound; written to {path}")


if __name__ == "__main__":
    main()
