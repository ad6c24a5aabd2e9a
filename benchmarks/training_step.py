"""One training epoch against its GEMM bound: vaekit's Trainer and a textbook PyTorch loop, same model and data.

The model is the MNIST VAE of the performance issue: 784-500-500-40 tanh encoder and decoder, Bernoulli decoder,
standard prior, batch 100, Adam, on N x 784 random binary rows (timing does not depend on the pixel values).
The GEMM bound is the epoch's matrix-multiply FLOPs (counted by ``torch.utils.flop_counter`` on one step, forward
and backward) divided by the peak fp32 rate of a large square ``torch.matmul`` measured in the same process with
the same threads. Reported: seconds per epoch and its ratio to the bound, best of ``--repeats`` epochs (the least
disturbed by other work), alternating the two loops.

Usage: PYTHONPATH=src python benchmarks/training_step.py [--n 50000] [--threads T] [--repeats 3]
Writes benchmarks/results/training_step.json and prints a README line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of, count_flops, machine, matmul_peak, profile_table, write_result

from vaekit import VAE, TrainConfig, Trainer

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


def textbook_epoch(model: TextbookVAE, optimiser: torch.optim.Optimizer, loader: torch.utils.data.DataLoader) -> None:
    for (xb,) in loader:
        loss = model.loss(xb)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        _ = loss.item()  # the per-step logging of the examples


def compiled_epochs(x: torch.Tensor, repeats: int) -> dict[str, float]:
    """vaekit's loss compiled by ``torch.compile``, in a plain index-batched loop with fused Adam: the first
    epoch's seconds (compilation included) and the best later epoch."""
    torch.manual_seed(0)
    model = VAE(X_DIM, LATENT, likelihood="bernoulli", hidden=HIDDEN, activation="tanh")
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    loss_fn = torch.compile(lambda xb: model.loss(xb, None, 1.0, 1).loss)

    def epoch() -> None:
        for idx in torch.randperm(len(x)).split(BATCH):
            loss = loss_fn(x[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()

    first = best_of(epoch, 1)
    return {"first_epoch_seconds": round(first, 3), "epoch_seconds": round(best_of(epoch, repeats), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="training rows (default: MNIST's 50,000)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per loop (best is kept)")
    parser.add_argument("--compile", action="store_true",
                        help="also time vaekit's loss under torch.compile (inductor; needs a C++ compiler)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = (torch.rand(args.n, X_DIM) > 0.5).float()

    model = VAE(X_DIM, LATENT, likelihood="bernoulli", hidden=HIDDEN, activation="tanh")
    trainer = Trainer(TrainConfig(epochs=1, batch_size=BATCH, patience=None, progress=False))
    step_flops = count_flops(lambda: model.loss(x[:BATCH], None, 1.0, 1).loss.backward())
    epoch_flops = step_flops * (args.n // BATCH)

    reference = TextbookVAE()
    ref_optimiser = torch.optim.Adam(reference.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=BATCH, shuffle=True)

    peak = matmul_peak()
    bound = epoch_flops / peak
    vaekit_times, textbook_times = [], []
    for _ in range(args.repeats):  # alternate, so that drifting load hits both alike
        vaekit_times.append(best_of(lambda: trainer.fit(model, x), 1))
        textbook_times.append(best_of(lambda: textbook_epoch(reference, ref_optimiser, loader), 1))
    compiled: dict[str, float] = {}
    if args.compile:
        compiled = compiled_epochs(x, args.repeats)
    peak = max(peak, matmul_peak())  # the higher of the two peak measurements: the stricter bound
    bound = epoch_flops / peak
    result = {
        "benchmark": "training_step",
        "n_rows": args.n, "batch_size": BATCH, "model": "784-500-500-40 tanh, Bernoulli, standard prior",
        "machine": machine(),
        "step_matmul_flops": step_flops, "epoch_matmul_flops": epoch_flops,
        "peak_matmul_gflops": round(peak / 1e9, 1), "gemm_bound_seconds": round(bound, 3),
        "vaekit_epoch_seconds": [round(t, 3) for t in vaekit_times],
        "textbook_epoch_seconds": [round(t, 3) for t in textbook_times],
        "vaekit_ratio_to_bound": round(min(vaekit_times) / bound, 3),
        "textbook_ratio_to_bound": round(min(textbook_times) / bound, 3),
        "target_ratio": 1.3,
    }
    result["profile_vaekit_epoch"] = profile_table(lambda: trainer.fit(model, x[: 20 * BATCH]))
    if compiled:
        result["compiled"] = {**compiled, "ratio_to_bound": round(compiled["epoch_seconds"] / bound, 3)}
    path = write_result("training_step", result, args.out)
    print(f"training epoch ({args.n} x 784, batch {BATCH}, {torch.get_num_threads()} threads): vaekit "
          f"{min(vaekit_times):.2f} s = {result['vaekit_ratio_to_bound']:.2f}x GEMM bound ({bound:.2f} s at "
          f"{peak / 1e9:.0f} GFLOP/s); textbook PyTorch loop {min(textbook_times):.2f} s = "
          f"{result['textbook_ratio_to_bound']:.2f}x" + (f"; torch.compile {compiled['epoch_seconds']:.2f} s "
          f"(first epoch {compiled['first_epoch_seconds']:.1f} s)" if compiled else "") + f"; written to {path}")


if __name__ == "__main__":
    main()
