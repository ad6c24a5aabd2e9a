"""One training epoch of the same VAE in vaekit and in pythae, alternating in one process.

Model: 784-500-500-40 tanh encoder and decoder, Bernoulli decoder (pythae: ``reconstruction_loss="bce"``),
standard prior, batch 100, Adam lr 1e-3, on N x 784 random binary rows. pythae's epoch is its
``BaseTrainer.train_step`` (its DataLoader loop with the per-step ``loss.item()``), vaekit's is ``Trainer.fit`` for
one epoch without validation. Best of ``--repeats`` epochs each, alternating.

pythae is not a dependency of vaekit: run this in its own virtual environment, e.g.
    python -m venv .venv-pythae && .venv-pythae/bin/pip install torch==2.13.0 pythae
    PYTHONPATH=src .venv-pythae/bin/python benchmarks/against_pythae.py [--n 50000] [--threads T] [--repeats 3]
Writes benchmarks/results/against_pythae.json and prints a README line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of, machine, write_result

import vaekit

try:
    import pythae
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE as PythaeVAE
    from pythae.models import VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
except ImportError as error:  # pragma: no cover - depends on the environment
    sys.exit(f"pythae is not installed in this environment ({error}); see this script's docstring")


class Encoder(BaseEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(784, 500), nn.Tanh(), nn.Linear(500, 500), nn.Tanh())
        self.mu, self.log_var = nn.Linear(500, 40), nn.Linear(500, 40)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = self.body(x)
        return ModelOutput(embedding=self.mu(h), log_covariance=self.log_var(h))


class Decoder(BaseDecoder):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(40, 500), nn.Tanh(), nn.Linear(500, 500), nn.Tanh(), nn.Linear(500, 784))

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=torch.sigmoid(self.body(z)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = (torch.rand(args.n, 784) > 0.5).float()

    ours = vaekit.VAE(784, 40, likelihood="bernoulli", hidden=(500, 500), activation="tanh")
    trainer = vaekit.Trainer(vaekit.TrainConfig(epochs=1, batch_size=100, lr=1e-3, patience=None, progress=False))

    theirs = PythaeVAE(VAEConfig(input_dim=(784,), latent_dim=40, reconstruction_loss="bce"),
                       encoder=Encoder(), decoder=Decoder())
    with tempfile.TemporaryDirectory() as tmp:
        their_trainer = BaseTrainer(theirs, train_dataset=BaseDataset(x, torch.zeros(len(x))), training_config=BaseTrainerConfig(
            output_dir=tmp, num_epochs=1, per_device_train_batch_size=100, learning_rate=1e-3,
            steps_saving=None, no_cuda=True))
        their_trainer.prepare_training()
        ours_s, theirs_s = [], []
        for epoch in range(1, args.repeats + 1):
            ours_s.append(best_of(lambda: trainer.fit(ours, x), 1))
            theirs_s.append(best_of(lambda e=epoch: their_trainer.train_step(e), 1))
    speedup = min(theirs_s) / min(ours_s)
    result = {
        "benchmark": "against_pythae", "n_rows": args.n, "batch_size": 100,
        "model": "784-500-500-40 tanh, Bernoulli, standard prior", "machine": machine(),
        "pythae_version": getattr(pythae, "__version__", "0.1.2"), "vaekit_version": vaekit.__version__,
        "vaekit_epoch_seconds": [round(t, 3) for t in ours_s],
        "pythae_epoch_seconds": [round(t, 3) for t in theirs_s],
        "vaekit_speedup": round(speedup, 3), "target_speedup": 1.5,
    }
    path = write_result("against_pythae", result, args.out)
    print(f"one epoch ({args.n} x 784, batch 100, {torch.get_num_threads()} threads): vaekit {min(ours_s):.2f} s, "
          f"pythae {min(theirs_s):.2f} s: vaekit {speedup:.2f}x faster; written to {path}")


if __name__ == "__main__":
    main()
