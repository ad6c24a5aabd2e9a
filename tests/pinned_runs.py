"""A fixed set of small seeded runs whose numbers are pinned under the current numerics version.

``python tests/pinned_runs.py`` rewrites ``tests/pinned/numerics.json`` from the current code; do that only together
with a bump of :data:`vaekit._version.NUMERICS_VERSION` (a change that moves a number) — a refactor must leave
every number as it is, which ``tests/test_pinned_numbers.py`` checks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

PINNED = Path(__file__).parent / "pinned" / "numerics.json"
LIKELIHOODS = ("gaussian", "map", "student-t", "bernoulli")
PRIORS = ("standard", "vamp", "implicit", "avb")


def _data(binary: bool, tasks: bool = False) -> Any:
    from vaekit import Dataset

    rng = np.random.default_rng(7)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    x[:, 1] += 0.5 * x[:, 0] ** 2
    if binary:
        x = (x > 0).astype(np.float32)
    s = np.repeat([0, 1], 60) if tasks else None
    return Dataset("pinned", x, s=s, split=(0.6, 0.2, 0.2), binary=binary)


def _summary(summary: dict[str, Any]) -> dict[str, Any]:
    keep = ("test_log_likelihood", "test_log_likelihood_normalised", "test_elbo_estimate", "log_normaliser",
            "best_epoch", "best_val_loss")
    out = {k: summary.get(k) for k in keep}
    out["train_loss"] = [r.get("train_loss") for r in summary["history"] if "train_loss" in r]
    out["val_loss"] = [r.get("val_loss") for r in summary["history"] if "val_loss" in r]
    return out


def _fit(likelihood: str, prior: str = "standard", tasks: bool = False, **options: Any) -> dict[str, Any]:
    from vaekit import TrainConfig, fit

    kwargs: dict[str, Any] = {}
    if prior == "implicit":
        kwargs["prior_kwargs"] = {"ratio_hidden": (8,), "ratio_epochs": 1, "normaliser_samples": 1000}
    if prior == "vamp":
        kwargs["prior_kwargs"] = {"n_components": 5}
    _, summary = fit(_data(likelihood == "bernoulli", tasks), likelihood=likelihood, prior=prior, latent_dim=2,
                     hidden=(8,), importance_samples=3, train=TrainConfig(epochs=2, batch_size=24, seed=0),
                     **kwargs, **options)
    return _summary(summary)


def runs() -> dict[str, Any]:
    """Every likelihood x prior, the chapter-5 models, the detector and a reproduce target's run."""
    from vaekit import VAEDetector
    from vaekit.experiments.targets import load_targets

    torch.set_num_threads(1)
    out: dict[str, Any] = {}
    for likelihood in LIKELIHOODS:
        for prior in PRIORS:
            out[f"{likelihood}/{prior}"] = _fit(likelihood, prior)
    out["cvae"] = _fit("gaussian", n_tasks=2, tasks=True)
    out["beta-cvae"] = _fit("gaussian", n_tasks=2, task_latent_dim=2, tasks=True)
    out["vfae"] = _fit("gaussian", n_tasks=2, mmd_alpha=1.0, tasks=True)
    out["proposed"] = _fit("student-t", "implicit", n_tasks=2, tasks=True)
    x = _data(False).x
    detector = VAEDetector(likelihood="student-t", latent_dim=2, hidden=(8,), epochs=2, batch_size=24,
                           importance_samples=3, random_state=0).fit(x)
    out["detector"] = {"scores": detector.decision_function(x[:8]).tolist(), "threshold": float(detector.threshold_)}
    toy = load_targets()["toy"]
    config = {**toy.runs("quick", seeds=1)[0], "epochs": 2, "n_rows": 200}
    metrics = toy.execute(config)
    out["reproduce/toy"] = {"test_log_likelihood": metrics["test_log_likelihood"],
                            "train_loss": [r.get("train_loss") for r in metrics["history"] if "train_loss" in r]}
    return out


def main() -> int:
    from vaekit._version import NUMERICS_VERSION

    PINNED.parent.mkdir(parents=True, exist_ok=True)
    PINNED.write_text(json.dumps({"numerics_version": NUMERICS_VERSION, "runs": runs()}, indent=1) + "\n")
    print(f"wrote {PINNED} (numerics version {NUMERICS_VERSION})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
