"""``toy``: a seconds-long grid on generated data, to check an installation and the grid engine end to end.

Gaussian vs Student-t decoders on two generated data sets (Gaussian blobs, and the same blobs with
heavy-tailed noise), a tiny VAE trained for a few epochs per run. Not a thesis result: ``reproduce all`` skips
it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..data import Dataset
from ..errors import ConfigError
from ..fitting import fit
from ..training import TrainConfig
from .report import plot_curves, write_table
from .targets import Target, register_target

DATASETS = ("blobs", "heavy-tailed")
LIKELIHOODS = ("gaussian", "student-t")
SETTINGS = {
    "quick": {"seeds": 2, "epochs": 2, "n_rows": 600, "hidden": [32, 32]},
    "full": {"seeds": 5, "epochs": 20, "n_rows": 2000, "hidden": [64, 64]},
}


def make_data(name: str, n_rows: int, seed: int = 0) -> np.ndarray:
    """Two 8-d Gaussian clusters; ``heavy-tailed`` adds Student-t (3 dof) noise to them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (2, 8))
    x = centres[rng.integers(0, 2, n_rows)] + rng.normal(0, 1, (n_rows, 8))
    if name == "heavy-tailed":
        x += rng.standard_t(3, (n_rows, 8))
    elif name != "blobs":
        raise ConfigError(f"unknown toy data set {name!r}; choose from {DATASETS}")
    return x.astype(np.float32)


@register_target
class ToyTarget(Target):
    name = "toy"
    description = "smoke test: Gaussian vs Student-t VAE on generated data (not a thesis result)"
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        b: {**s, "datasets": list(DATASETS), "runs": s["seeds"] * len(DATASETS) * len(LIKELIHOODS)}
        for b, s in SETTINGS.items()
    }
    include_in_all = False

    def runs(
        self, budget: str = "quick", seeds: int | None = None, datasets: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        settings = SETTINGS[budget]
        for d in datasets or ():
            if d not in DATASETS:
                raise ConfigError(f"toy has no data set {d!r}; choose from {', '.join(DATASETS)}")
        return [
            {
                "target": self.name,
                "dataset": d,
                "likelihood": lik,
                "seed": seed,
                "epochs": settings["epochs"],
                "n_rows": settings["n_rows"],
                "hidden": settings["hidden"],
                "latent_dim": 2,
                "batch_size": 50,
                "lr": 1e-3,
                "importance_samples": 20,
                "data_seed": 0,
            }
            for d in (datasets or DATASETS)
            for lik in LIKELIHOODS
            for seed in range(seeds or settings["seeds"])
        ]

    def execute(self, config: dict[str, Any]) -> dict[str, Any]:
        data = Dataset(
            config["dataset"],
            make_data(config["dataset"], config["n_rows"], config["data_seed"]),
            split=(0.6, 0.2, 0.2),
        )
        train = TrainConfig(
            epochs=config["epochs"],
            batch_size=config["batch_size"],
            lr=config["lr"],
            patience=None,
            seed=config["seed"],
        )
        _, summary = fit(
            data,
            likelihood=config["likelihood"],
            latent_dim=config["latent_dim"],
            hidden=config["hidden"],
            importance_samples=config["importance_samples"],
            train=train,
        )
        keep = (
            "test_log_likelihood",
            "best_val_loss",
            "best_epoch",
            "epochs_run",
            "diverged",
            "train_seconds",
            "history",
        )
        return {k: summary[k] for k in keep}

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        table = write_table(
            results,
            out,
            "toy",
            metric="test_log_likelihood",
            row="dataset",
            column="likelihood",
            rows=[d for d in DATASETS if any(r["config"]["dataset"] == d for r in results)],
            columns=list(LIKELIHOODS),
            row_header="Data",
            reference=self.thesis_reference,
        )
        curves = plot_curves(
            results,
            Path(out) / "toy-curves.png",
            key="val_loss",
            group=lambda c: f"{c['dataset']} / {c['likelihood']}",
            title="toy: validation loss",
            ylabel="validation negative ELBO",
        )
        markdown = "Test log-likelihood (nats, higher is better):\n\n" + table["markdown"]
        return {"markdown": markdown, "files": [*table["files"], curves]}
