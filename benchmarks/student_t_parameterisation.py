"""How the Student-t decoder's nu is parameterised and initialised (Eq. 3.11): a short-budget study.

nu = nu_min + softplus(raw), with raw's bias set so that nu starts at nu_init (vaekit.likelihoods.StudentT).
Variants: nu_init in {1.5, 3, 10, 30} with nu_min 0.5, and nu_init in {3, 10, 30} with nu_min 2, plus the
Gaussian VAE for reference, on SMTP, cancer and Frey faces (flattened, standardised), several seeds each, at a
fixed number of epochs without early stopping. Reported: importance-sampled test log-likelihood of the
best-validation weights, the epoch of the best validation loss, and the mean decoded nu at that epoch.

    VAEKIT_DATA=/work/shared/data PYTHONPATH=src python benchmarks/student_t_parameterisation.py \
        --datasets smtp,cancer,freyfaces --seeds 3
    python benchmarks/student_t_parameterisation.py --summarise     # table from every JSON in results/

Each data set's runs go to ``benchmarks/results/student_t_parameterisation-DATASET.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from vaekit.data import data_dir
from vaekit.experiments.report_helpers import paired_test, summary_cell
from vaekit.experiments.chapter3.runs import make_config, train_and_evaluate
from vaekit.experiments.stats import mean_std

RESULTS = Path(__file__).resolve().parent / "results"
PREFIX = "student_t_parameterisation"

#: label -> (likelihood, options); "St(10, 0.5)" is the default before this study
VARIANTS: dict[str, tuple[str, dict[str, float]]] = {
    "Gaussian": ("gaussian", {}),
    **{f"St({i:g}, {m:g})": ("student-t", {"nu_init": i, "nu_min": m})
       for m, inits in ((0.5, (1.5, 3.0, 10.0, 30.0)), (2.0, (3.0, 10.0, 30.0))) for i in inits},
}
BASELINE = "St(10, 0.5)"

#: per data set: epochs (fixed, no early stopping) and IS test rows; SMTP has 95 steps per epoch, cancer 2,
#: Frey faces 10
BUDGET: dict[str, dict[str, Any]] = {
    "smtp": {"epochs": 20, "test_subsample": 2000},
    "cancer": {"epochs": 200, "test_subsample": None},
    "freyfaces": {"epochs": 60, "test_subsample": None},
}


def dataset_ref(name: str) -> str:
    """Registered name, or the .npz path for Frey faces (not a chapter-3 registered set)."""
    return str(data_dir() / "freyfaces.npz") if name == "freyfaces" else name


def run_dataset(name: str, seeds: int) -> list[dict[str, Any]]:
    budget = {**BUDGET[name], "patience": None, "importance_samples": 100}
    rows = []
    for seed in range(seeds):
        for label, (likelihood, kwargs) in VARIANTS.items():
            config = make_config("nu-study", dataset_ref(name), label, seed, budget, likelihood=likelihood,
                                 likelihood_kwargs=dict(kwargs))
            config["dataset_name"] = name
            if name == "smtp":
                config["latent_dim"] = 2
            metrics = train_and_evaluate(config)
            best = next((h for h in metrics["history"] if h.get("epoch") == metrics["best_epoch"]), {})
            metrics["nu_at_best"] = best.get("mean_nu")
            metrics["final_val_loss"] = next((h.get("val_loss") for h in reversed(metrics["history"])
                                              if "val_loss" in h), None)
            print(f"{name} seed {seed} {label}: LL {metrics['test_log_likelihood']}, best epoch "
                  f"{metrics['best_epoch']}, diverged {metrics['diverged']} ({metrics['seconds']:.0f} s)",
                  file=sys.stderr, flush=True)
            rows.append({"config": config, "metrics": metrics})
    return rows


def epochs_to_reach(history: list[dict[str, Any]], level: float | None) -> int | None:
    """First epoch whose validation loss is at or below ``level`` (None if never, or no level)."""
    if level is None:
        return None
    return next((h["epoch"] for h in history if h.get("val_loss") is not None and h["val_loss"] <= level), None)


def summarise(paths: list[Path]) -> str:
    """Markdown table per data set: LL mean ± std, paired p vs the old default, best epoch, nu, the first epoch
    whose validation loss matches the Gaussian VAE's best (same seed; a speed-of-fit measure), divergence."""
    out = []
    for path in paths:
        rows = json.loads(path.read_text())["runs"]
        name = rows[0]["config"]["dataset_name"]
        info = json.loads(path.read_text())
        ll = {v: {r["config"]["seed"]: r["metrics"]["test_log_likelihood"] for r in rows
                  if r["config"]["method"] == v} for v in VARIANTS}
        seeds = sorted({s for col in ll.values() for s in col})
        out += [(f"#### {name} ({BUDGET[name]['epochs']} epochs, {len(seeds)} seeds, "
                 f"{info['seconds']:.0f} s wall clock)"), "",
                (f"| variant (nu_init, nu_min) | test LL | Δ vs {BASELINE} | p (paired) | best epoch | "
                 "mean nu at best | epochs to Gaussian's best val loss | diverged |"),
                "|---|---|---|---|---|---|---|---|"]
        gaussian_best = {r["config"]["seed"]: min((h["val_loss"] for h in r["metrics"]["history"]
                                                   if h.get("val_loss") is not None), default=None)
                         for r in rows if r["config"]["method"] == "Gaussian"}
        for v in VARIANTS:
            if not ll[v]:
                continue
            a = [ll[v].get(s) for s in seeds]
            b = [ll[BASELINE].get(s) for s in seeds]
            diffs = [x - y for x, y in zip(a, b) if x is not None and y is not None]
            p = paired_test(a, b)[0] if v != BASELINE else math.nan
            sel = [r["metrics"] for r in rows if r["config"]["method"] == v]
            be = mean_std([m["best_epoch"] for m in sel])
            reach = [epochs_to_reach(r["metrics"]["history"], gaussian_best.get(r["config"]["seed"]))
                     for r in rows if r["config"]["method"] == v]
            reached = [e for e in reach if e is not None]
            reach_text = (f"{sum(reached) / len(reached):.1f}" if reached else "–") + \
                (f" ({len(reach) - len(reached)} never)" if len(reached) < len(reach) else "")
            nu = mean_std([m["nu_at_best"] for m in sel])
            div = sum(bool(m["diverged"]) for m in sel)
            out.append(f"| {v} | {summary_cell(a)} | {sum(diffs) / len(diffs):+.3f} | "
                       f"{'' if math.isnan(p) else f'{p:.2g}'} | {be[0]:.0f} ± {be[1]:.0f} | "
                       f"{'–' if math.isnan(nu[0]) else f'{nu[0]:.2f}'} | {reach_text} | {div}/{len(sel)} |")
        out.append("")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="smtp,cancer,freyfaces")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--summarise", action="store_true", help="only write the markdown summary")
    args = parser.parse_args()
    torch.set_num_threads(1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.summarise:
        for name in args.datasets.split(","):
            start = time.perf_counter()
            runs = run_dataset(name, args.seeds)
            payload = {"dataset": name, "seeds": args.seeds, "budget": BUDGET[name], "variants": VARIANTS,
                       "seconds": time.perf_counter() - start, "torch_threads": torch.get_num_threads(),
                       "command": "python benchmarks/student_t_parameterisation.py " + " ".join(sys.argv[1:]),
                       "runs": runs}
            (RESULTS / f"{PREFIX}-{name}.json").write_text(json.dumps(payload, allow_nan=False))
    paths = sorted(RESULTS.glob(f"{PREFIX}-*.json"))
    markdown = summarise(paths)
    (RESULTS / f"{PREFIX}.md").write_text(markdown + "\n")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
