"""log Z of trained implicit priors: importance sampling (the library's default) against annealed importance
sampling, on Frey-faces models (40-d latent) trained at the quick Table 4.2 budget.

No exact value is known here, so the check is consistency: an estimator that works gives the same log Z from
different seeds and from more annealing steps, with many effective samples; log Z from too few effective samples
is biased low (Jensen) and varies from seed to seed.

    python benchmarks/log_normaliser_trained.py [--seeds 0 1] [--models DIR] [--steps 100 300 1000 3000]

Trains one implicit-prior model per seed (``vaekit reproduce table-4.2 --quick``'s Frey-faces settings: 100 epochs,
warm-up 10, lr 5e-4, gated 500-500, J2 = 10) unless ``DIR/frey-s{seed}`` holds one, then estimates log Z by
importance sampling (10,000 samples, the proposal the training used: the training rows' posteriors in a defensive
mixture; 3 seeds) and by AIS from N(0, I) (500 chains, each ``--steps``, 2 seeds). Appends one JSON line per
estimate to ``benchmarks/results/log_normaliser_trained.jsonl`` (replacing earlier lines of the same model seeds)
and writes a summary to ``log_normaliser_trained.md``: the estimates per model, and the committed quick Table 4.2's
Frey-faces runs (``docs/results/chapter4/table-4.2-numerics-3/runs.jsonl``; the same seeds and settings, hence the
same models: the importance estimate of seed 0 reproduces the run's ``log_normaliser``) with the implicit prior
normalised by both estimates, paired by seed against the standard prior and the VampPrior. Needs VAEKIT_DATA with
freyfaces.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaekit.data import load_dataset
from vaekit.fitting import fit
from vaekit.priors.annealed import annealed_log_normaliser
from vaekit.priors.normaliser import estimate_log_normaliser
from vaekit.trained import TrainedModel
from vaekit.training import TrainConfig

RESULTS = Path(__file__).resolve().parent / "results"
RAW = RESULTS / "log_normaliser_trained.jsonl"
TABLE_RUNS = Path(__file__).resolve().parents[1] / "docs/results/chapter4/table-4.2-numerics-3/runs.jsonl"


def trained_model(seed: int, models: Path) -> TrainedModel:
    from vaekit.experiments.chapter4.grid import FREY_QUICK
    from vaekit.experiments.chapter4.runs import _prior_kwargs, _run_data

    path = models / f"frey-s{seed}"
    if path.is_dir():
        return TrainedModel.load(path)
    config = {"dataset": "freyfaces", "method": "implicit", "seed": seed, **FREY_QUICK}
    spec, data = _run_data(config)
    train = TrainConfig(epochs=config["epochs"], batch_size=100, lr=config["lr"], patience=None,
                        warmup_epochs=config["warmup"], seed=seed, on_divergence="rollback")
    trained, _ = fit(data, likelihood=spec["likelihood"], prior="implicit", latent_dim=spec["latent"],
                     hidden=(500, 500), importance_samples=10, train=train, gated=True,
                     likelihood_kwargs=spec.get("likelihood_kwargs", {}), prior_kwargs=_prior_kwargs(config))
    trained.save(path)
    return trained


def summary(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | estimator | seeds | log Z (each seed) | spread | stated SE | ESS | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    keys = dict.fromkeys((r["model_seed"], r["method"], r["steps"]) for r in rows)
    for model_seed, method, steps in keys:
        group = [r for r in rows if (r["model_seed"], r["method"], r["steps"]) == (model_seed, method, steps)]
        values = [r["log_z"] for r in group]
        name = (f"importance, {group[0]['n']:,} samples" if method == "importance"
                else f"AIS, {group[0]['n']} chains × {steps} steps")
        lines.append(f"| seed {model_seed} | {name} | {len(group)} | {', '.join(f'{v:.2f}' for v in values)} | "
                     f"{max(values) - min(values):.2f} | {np.mean([r['stderr'] for r in group]):.2f} | "
                     f"{', '.join(format(r['ess'], '.0f') for r in group)} of {group[0]['n']:,} | "
                     f"{np.mean([r['seconds'] for r in group]):.0f} |")
    return "\n".join(lines)


def table_4_2_note(rows: list[dict[str, Any]], runs_file: Path = TABLE_RUNS, k: int = 1000) -> str:
    """The quick Table 4.2's Frey-faces test log-likelihoods (K = ``k``) per seed with the implicit prior normalised
    by the importance estimate its run used and by AIS (the mean of the estimates with the most steps), and the
    paired comparisons; only seeds whose model has an AIS estimate."""
    from scipy import stats

    runs = [json.loads(line) for line in runs_file.read_text().splitlines()]
    ll = {(r["config"]["method"], r["config"]["seed"]): r["metrics"] for r in runs
          if r["config"]["dataset"] == "freyfaces" and r["status"] == "done"}
    annealed = [r for r in rows if r["method"] == "annealed"]
    if not annealed:
        return ""
    seeds = sorted({r["model_seed"] for r in annealed})
    most = {s: max(r["steps"] for r in annealed if r["model_seed"] == s) for s in seeds}
    log_z = {s: float(np.mean([r["log_z"] for r in annealed if r["model_seed"] == s and r["steps"] == most[s]]))
             for s in seeds}
    columns = {
        "standard": [ll[("standard", s)][f"test_ll_k{k}"] for s in seeds],
        "vamp": [ll[("vamp", s)][f"test_ll_k{k}"] for s in seeds],
        "implicit raw": [ll[("implicit", s)][f"test_ll_k{k}"] for s in seeds],
        "implicit, importance log Z": [ll[("implicit", s)][f"test_ll_normalised_k{k}"] for s in seeds],
        "implicit, AIS log Z": [ll[("implicit", s)][f"test_ll_k{k}"] - log_z[s] for s in seeds],
    }
    lines = [(f"Quick Table 4.2, Frey faces, K = {k}, seeds {', '.join(map(str, seeds))} (AIS: the mean of the "
              "estimates with the most steps run on that model):"), "",
             "| seed | " + " | ".join(columns) + " | importance log Z | AIS log Z |",
             "|---" * (len(columns) + 3) + "|"]
    for i, s in enumerate(seeds):
        lines.append(f"| {s} | " + " | ".join(f"{v[i]:.2f}" for v in columns.values())
                     + f" | {ll[('implicit', s)]['log_normaliser']:.2f} | {log_z[s]:.2f} |")
    lines.append("| mean ± std | " + " | ".join(f"{np.mean(v):.2f} ± {np.std(v, ddof=1):.2f}" for v in columns.values())
                 + " | | |")
    lines.append("")
    for other in ("standard", "vamp"):
        for implicit in ("implicit, importance log Z", "implicit, AIS log Z"):
            diff = np.subtract(columns[implicit], columns[other])
            p = stats.ttest_rel(columns[implicit], columns[other]).pvalue
            lines.append(f"- {implicit} − {other}: {diff.mean():+.2f} ± {diff.std(ddof=1):.2f}, higher on "
                         f"{int((diff > 0).sum())} of {len(diff)} seeds, paired t-test p = {p:.2g}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--models", type=Path, default=Path("results/log-normaliser-models"))
    p.add_argument("--steps", type=int, nargs="+", default=[100, 300, 1000, 3000])
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows: list[dict[str, Any]] = []

    def record(model_seed: int, method: str, steps: int | None, seed: int, estimate: Any, started: float) -> None:
        rows.append({"model_seed": model_seed, "method": method, "steps": steps, "seed": seed,
                     "log_z": estimate.log_z, "stderr": estimate.stderr, "ess": estimate.ess, "n": estimate.n_samples,
                     "proposal": estimate.proposal, "seconds": time.perf_counter() - started})
        print(json.dumps(rows[-1]), flush=True)

    for model_seed in args.seeds:
        trained = trained_model(model_seed, args.models)
        prior = trained.model.prior
        prior.ratio.eval()
        x, _ = trained.prepare(load_dataset("freyfaces").splits(seed=model_seed)[0].x)
        with torch.no_grad():
            q = trained.model.encode(x)
        for seed in (0, 1, 2):
            started = time.perf_counter()
            record(model_seed, "importance", None, seed, estimate_log_normaliser(
                prior.ratio, prior.latent_dim, q.base_dist.loc, q.base_dist.scale, n_samples=10_000, seed=seed),
                started)
        for steps in args.steps:
            for seed in (0, 1):
                started = time.perf_counter()
                record(model_seed, "annealed", steps, seed, annealed_log_normaliser(
                    prior.ratio, prior.latent_dim, n_chains=500, n_steps=steps, seed=seed), started)
    RESULTS.mkdir(exist_ok=True)
    earlier = [json.loads(line) for line in RAW.read_text().splitlines()] if RAW.is_file() else []
    rows = sorted([r for r in earlier if r["model_seed"] not in args.seeds] + rows,
                  key=lambda r: (r["model_seed"], r["method"] != "importance", r["steps"] or 0, r["seed"]))
    RAW.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = summary(rows) + "\n\n" + table_4_2_note(rows)
    (RESULTS / "log_normaliser_trained.md").write_text(
        "log Z of trained Frey-faces implicit priors (quick Table 4.2 budget), importance sampling vs AIS; "
        "`python benchmarks/log_normaliser_trained.py`\n\n" + text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
