"""Thesis chapter 5 (task-invariant representations) as reproduction targets: Tables 5.2-5.4, Figure 5.2, and
``invariance-5``, the paired test of the chapter's headline (proposed vs CVAE 3-NN target accuracy, and I(S;Z)).

Importing this module registers the targets. Run one in-process with
``python -m vaekit.experiments.chapter5 TARGET [--quick|--full] [--seeds N] [--datasets a,b] [--out DIR]``;
``--results FILE`` rebuilds a report from a saved ``results.json``. Finished runs are cached as JSON files keyed by
their configuration (``--cache DIR``, default ``results/chapter5-runs``), so the targets share runs: the tables
and the figure read the same trained models.

Setup (section 5.5.3): latent 40, encoder / decoder / beta-CVAE networks of two tanh layers of 500 with 10% dropout
after the last hidden layer, density-ratio estimator of two tanh layers of 500 with 50% dropout after its last
hidden layer, trained 10 epochs (M = N) per VAE epoch at lr 1e-3; Adam, mini-batches of 100, lr 1e-4, L = 1;
Bernoulli decoders for binarised digits, Gaussian (mean in [0, 1]) for grey images; beta-CVAE with a 40-d zeta and
beta1 = beta2 = 1; VFAE alpha picked per seed from a grid by the validation ELBO; 3-NN on the 100 labelled target
rows; importance sampling with 10 samples. The thesis trains up to 1,000 (digits) / 2,000 (faces) epochs with early
stopping; the ``quick`` budgets shrink epochs, seeds and evaluation rows (stated in every report).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from scipy import stats

from .._version import CODE_VERSION
from ..data import Dataset
from ..data.transfer import multitask_dataset, transfer_dataset
from ..tasks import encode_rows, labelled_rows, model_inputs, pick_alpha, representation_metrics
from ..trained import train_vae
from ..training import TrainConfig
from .stats import markdown_table, mean_std
from .targets import (
    TARGETS,
    RecordingTarget,
    Target,
    chapter_parser,
    load_results,
    register_target,
    run_serial,
)

METHODS: dict[str, dict[str, Any]] = {
    "vae": {"conditional": False},
    "cvae": {},
    "beta-cvae": {"task_latent_dim": 40},
    "vfae": {},  # mmd_alpha comes from the run's configuration
    "proposed": {"prior": "implicit"},
}
LABELS = {"vae": "VAE", "cvae": "CVAE", "beta-cvae": "β-CVAE", "vfae": "VFAE", "proposed": "Proposed"}
TABLE_METHODS = ("vae", "cvae", "beta-cvae", "vfae", "proposed")
FACES = "freyfaces+olivetti+umist"
#: the two-face-task protocol whose files are in the shared data folder (UMIST is not); the quick budget's faces
TWO_FACES = "freyfaces+olivetti"

#: the thesis's settings (section 5.5.3); budgets override some of them
FULL: dict[str, Any] = {"epochs": 1000, "patience": 50, "lr": 1e-4, "dropout": 0.1, "ratio_epochs": 10,
                        "task_weights": "data", "importance_samples": 10, "max_source": None, "max_val": None,
                        "max_test": None, "max_rows": None, "alphas": [1e-4, 1e-3, 1e-2, 0.1, 1, 10, 100, 1000],
                        "checkpoints": [], "threads": None}
FULL_FACES = {**FULL, "epochs": 2000}
#: quick budgets (one CPU thread): digits pairs 200 epochs, USPS pairs 60, faces 100; no early stopping (the best
#: validation epoch is still kept), evaluation on 2,000 target test rows, kNN / I(S;Z) recorded every 50 epochs
QUICK: dict[str, Any] = {**FULL, "epochs": 200, "patience": None, "max_val": 1000, "max_test": 2000,
                         "alphas": [0.01, 1, 100], "checkpoints": [50, 100, 150, 200], "threads": 1}
QUICK_PER_DATASET: dict[str, dict[str, Any]] = {
    "usps->mnist": {"epochs": 60, "checkpoints": [20, 40, 60]},
    "mnist->usps": {"epochs": 20, "max_source": 10_000, "checkpoints": [10, 20]},
    FACES: {"epochs": 100, "checkpoints": []},
    TWO_FACES: {"epochs": 100, "checkpoints": []},
}


# ---------------------------------------------------------------------------------------------------- one run
def protocol_data(config: dict[str, Any]) -> Dataset:
    """The run's multi-task data set: a ``SOURCE->TARGET`` pair (target rows chosen by the seed) or faces."""
    name = config["dataset"]
    if "->" in name:
        source, _, target = name.partition("->")
        return transfer_dataset(source, target, seed=int(config["seed"]), max_source=config.get("max_source"),
                                max_val=config.get("max_val"), max_test=config.get("max_test"))
    return multitask_dataset(name.split("+"), max_rows=config.get("max_rows"))


def model_options(config: dict[str, Any], data: Dataset) -> dict[str, Any]:
    """Keyword arguments of :func:`vaekit.trained.train_vae` for the run's method (section 5.5.3)."""
    method = METHODS[config["method"]]
    n_tasks = int(data.s.max()) + 1 if method.get("conditional", True) else 0
    options: dict[str, Any] = {
        "likelihood": "bernoulli" if data.binary else "gaussian",
        "likelihood_kwargs": {} if data.binary else {"bounded_mean": True},
        "latent_dim": 40, "hidden": (500, 500), "activation": "tanh", "dropout": config["dropout"],
        "n_tasks": n_tasks, "prior": method.get("prior", "standard"),
        "task_latent_dim": method.get("task_latent_dim", 0),
        "mmd_alpha": float(config.get("mmd_alpha") or 0.0) if config["method"] == "vfae" else 0.0,
    }
    if options["prior"] == "implicit":
        options["prior_kwargs"] = {"ratio_epochs": config["ratio_epochs"], "ratio_lr": 1e-3, "keep_prob": 0.5,
                                   "dropout_last_only": True, "task_weights": config["task_weights"]}
    return options


class _Checkpoints:
    """Trainer callback: 3-NN target accuracy, I(S;Z) and active units of the current weights at chosen epochs
    (the weights as trained so far, not the best-validation ones)."""

    def __init__(self, epochs: Sequence[int], lab: tuple[torch.Tensor, torch.Tensor | None, np.ndarray],
                 test: tuple[torch.Tensor, torch.Tensor | None, np.ndarray | None, np.ndarray], target: int | None):
        self.epochs, self.lab, self.test, self.target = set(epochs), lab, test, target
        self.records: list[dict[str, Any]] = []

    def __call__(self, epoch: int, model: Any, record: dict[str, float]) -> None:
        if epoch not in self.epochs:
            return
        from ..metrics import active_units, knn_accuracy, task_mutual_information_bounds

        x, s, y, s_np = self.test
        means, samples = encode_rows(model, x, s)
        rows = np.arange(len(x)) if self.target is None else np.flatnonzero(s_np == self.target)
        entry: dict[str, Any] = {"epoch": epoch, "val_loss": record.get("val_loss"),
                                 "active_units": active_units(means[rows])}
        if y is not None:
            lab_means, _ = encode_rows(model, self.lab[0], self.lab[1])
            entry["knn_accuracy"] = knn_accuracy(lab_means, self.lab[2], means[rows], y[rows])
        entry.update(task_mutual_information_bounds(samples, s_np))
        self.records.append(entry)


def train_one(config: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one (protocol, method, seed[, alpha]) configuration; JSON-ready metrics."""
    if config.get("threads"):
        torch.set_num_threads(int(config["threads"]))
    started = time.perf_counter()
    data = protocol_data(config)
    train_set, val_set, test_set = data.splits()
    target = data.meta.get("target_task")
    options = model_options(config, data)
    train = TrainConfig(epochs=config["epochs"], batch_size=100, lr=config["lr"], patience=config.get("patience"),
                        seed=int(config["seed"]), on_divergence="rollback")
    labelled = labelled_rows(train_set, target)
    callbacks = []
    if config.get("checkpoints") and test_set.s is not None:
        checkpoints = _checkpoint_callback(config, options, data, test_set, labelled, target)
        callbacks.append(checkpoints)
    trained, result = train_vae(train_set, val_set, train=train, callbacks=callbacks, **options)
    metrics: dict[str, Any] = {k: v for k, v in result.to_dict().items() if k != "history"}
    n_samples = int(config["importance_samples"])
    if target is not None or test_set.s is None:
        metrics.update(representation_metrics(trained, test_set, labelled, target, n_samples=n_samples))
    else:  # faces: every task is evaluated; the thesis reports the mean over tasks
        metrics.update(representation_metrics(trained, test_set, labelled, None, n_samples=n_samples))
        per_task = [representation_metrics(trained, test_set, None, k, n_samples=n_samples)
                    for k in range(int(test_set.s.max()) + 1)]
        metrics["per_task"] = [{k: m[k] for k in ("test_log_likelihood", "active_units")} for m in per_task]
        metrics["test_log_likelihood"] = float(np.mean([m["test_log_likelihood"] for m in per_task]))
        metrics["active_units"] = float(np.mean([m["active_units"] for m in per_task]))
    if metrics.get("log_normaliser") is not None:  # the implicit prior: normalised = raw - log Z (raw is "≈")
        metrics["test_log_likelihood_normalised"] = metrics["test_log_likelihood"] - metrics["log_normaliser"]
    if callbacks:
        metrics["checkpoints"] = callbacks[0].records
    if config.get("tsne"):
        metrics["tsne"] = tsne_points(trained, train_set, test_set, target, int(config["seed"]))
    metrics["history"] = [{k: r.get(k) for k in ("epoch", "train_loss", "val_loss", "ratio_accuracy", "mmd",
                                                  "task_kl") if k in r} for r in result.history if "epoch" in r]
    metrics["n_train"], metrics["n_val"], metrics["n_test"] = len(train_set), len(val_set), metrics.get("n_test")
    metrics["wall_seconds"] = time.perf_counter() - started
    return metrics


def _checkpoint_callback(config: dict[str, Any], options: dict[str, Any], data: Dataset, test_set: Dataset,
                         labelled: Dataset | None, target: int | None) -> _Checkpoints:
    """Fixed binarised inputs (seed 0) of the labelled and test rows for :class:`_Checkpoints`."""
    transform = data.meta.get("batch_transform")

    def tensors(part: Dataset) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = torch.from_numpy(part.x)
        if transform is not None:
            x = transform(x, torch.Generator().manual_seed(0))
        s = torch.from_numpy(part.s) if options["n_tasks"] else None
        return x, s

    lab = (*tensors(labelled), labelled.y) if labelled is not None else (torch.zeros(0), None, np.zeros(0))
    x_test, s_test = tensors(test_set)
    return _Checkpoints(config["checkpoints"], lab, (x_test, s_test, test_set.y, test_set.s), target)  # type: ignore[arg-type]


def tsne_points(trained: Any, train_set: Dataset, test_set: Dataset, target: int | None, seed: int,
                per_group: int = 600) -> dict[str, list]:
    """2-d t-SNE (scikit-learn) of posterior means of source training, target training and target test rows
    (Figure 5.2), at most ``per_group`` rows of each group, with their group and class."""
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    groups: list[tuple[str, Dataset]] = []
    if target is not None:
        groups = [("source train", train_set.subset(np.flatnonzero(train_set.s != target))),
                  ("target train", train_set.subset(np.flatnonzero(train_set.s == target))),
                  ("target test", test_set.subset(np.flatnonzero(test_set.s == target)))]
    else:
        groups = [(f"task {k}", test_set.subset(np.flatnonzero(test_set.s == k))) for k in np.unique(test_set.s)]
    parts = [(name, part.subset(np.sort(rng.permutation(len(part))[:per_group]))) for name, part in groups]
    means = [encode_rows(trained.model, *model_inputs(trained, part, seed))[0] for _, part in parts]
    xy = TSNE(2, init="pca", perplexity=30, random_state=seed).fit_transform(np.concatenate(means))
    return {"xy": np.round(xy, 2).tolist(),
            "group": [name for name, part in parts for _ in range(len(part))],
            "label": np.concatenate([part.y if part.y is not None else np.full(len(part), -1)
                                     for _, part in parts]).astype(int).tolist()}


# -------------------------------------------------------------------------------------------------- the cache
class RunCache:
    """Finished runs as ``DIR/<sha of the configuration and the numerics version>.json`` (the ``target`` key
    excluded), so that tables share runs, and a change of the numerics never reuses a stale one."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    @staticmethod
    def key(config: dict[str, Any]) -> str:
        shared = {k: v for k, v in sorted(config.items()) if k not in ("target", "budget")}
        shared["code_version"] = CODE_VERSION
        return hashlib.sha256(json.dumps(shared, sort_keys=True, default=str).encode()).hexdigest()[:20]

    def get(self, config: dict[str, Any]) -> dict[str, Any] | None:
        if self.directory is None:
            return None
        path = self.directory / f"{self.key(config)}.json"
        return json.loads(path.read_text())["metrics"] if path.is_file() else None

    def put(self, config: dict[str, Any], metrics: dict[str, Any]) -> None:
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{self.key(config)}.json"
            path.write_text(json.dumps({"config": config, "metrics": metrics}, allow_nan=False, default=float))


# ---------------------------------------------------------------------------------------------------- targets
class _Chapter5Target(Target):
    """Grid: protocols x seeds x methods (VFAE: x alphas); ``budgets[b]`` holds datasets, seeds and settings."""

    methods: ClassVar[tuple[str, ...]] = TABLE_METHODS
    cache = RunCache(Path("results") / "chapter5-runs")

    def variants(self, budget: str) -> list[dict[str, Any]]:
        """Extra configurations per (protocol, seed): one per method by default."""
        return [{"method": m} for m in self.budgets[budget].get("methods", self.methods)]

    def runs(self, budget: str = "quick", seeds: int | None = None,
             datasets: Sequence[str] | None = None) -> list[dict[str, Any]]:
        b = self.budgets[budget]
        out = []
        for name in list(datasets) if datasets else b["datasets"]:
            if budget == "quick":
                settings = {**QUICK, **QUICK_PER_DATASET.get(name, {})}
            else:
                settings = dict(FULL_FACES if "+" in name else FULL)
            alphas = settings.pop("alphas")
            n_seeds = b["seeds"].get(name, 3) if isinstance(b["seeds"], dict) else b["seeds"]
            for seed in range(seeds or n_seeds):
                for variant in self.variants(budget):
                    extra = [{"mmd_alpha": a} for a in alphas] if variant["method"] == "vfae" else [{}]
                    for more in extra:
                        out.append({"target": self.name, "budget": budget, "dataset": name, "seed": seed,
                                    **settings, "tsne": seed == 0, **variant, **more})
        return out

    def execute(self, config: dict[str, Any]) -> dict[str, Any]:
        cached = self.cache.get(config)
        if cached is not None:
            return cached
        metrics = train_one(config)
        self.cache.put(config, metrics)
        return metrics


def _done(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if r.get("status") == "done"]


def _levers(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The levers of a run that differ from the thesis's setting (section 5.5.3): (words for its column, suffix
    of its ``--methods`` name)."""
    levers = []
    if config.get("ll_kind"):  # a report-only label: raw or normalised log-likelihood of the implicit prior
        levers.append((config["ll_kind"], ""))
    if config["method"] == "proposed" and config.get("task_weights") == "equal":
        levers.append(("equal task weights", "-equal"))
    if config.get("dropout", FULL["dropout"]) != FULL["dropout"]:
        levers.append((f"dropout {config['dropout']:g}", f"-dropout{config['dropout']:g}"))
    return levers


def method_key(config: dict[str, Any]) -> str:
    """Table column of a run: the method, marked when a lever differs from the thesis's setting."""
    words = [w for w, _ in _levers(config)]
    return LABELS[config["method"]] + (f" ({', '.join(words)})" if words else "")


def variant_name(config: dict[str, Any]) -> str:
    """The method's name for the ``--methods`` filter: ``-equal`` marks the proposed model with equal task
    weights, ``-dropoutP`` a dropout rate other than the thesis's (e.g. ``proposed-equal``, ``cvae-dropout0.5``)."""
    return config["method"] + "".join(suffix for _, suffix in _levers(config))


def select_vfae(done: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep, per (protocol, seed), the VFAE run whose alpha has the best validation loss; others pass through."""
    kept = [r for r in done if r["config"]["method"] != "vfae"]
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in done:
        if r["config"]["method"] == "vfae":
            groups.setdefault((r["config"]["dataset"], r["config"]["seed"]), []).append(r)
    for runs in groups.values():
        best = pick_alpha({r["config"]["mmd_alpha"]: r["metrics"].get("best_val_loss") for r in runs})
        kept.append(next(r for r in runs if r["config"]["mmd_alpha"] == best))
    return kept


def metric_rows(done: list[dict[str, Any]], metric: str) -> tuple[dict[str, dict[str, list[float]]], list[str]]:
    """``rows[dataset][method] = [value per seed]`` aligned by seed, and the method columns present."""
    rows: dict[str, dict[str, list[float]]] = {}
    columns: list[str] = []
    for dataset in dict.fromkeys(r["config"]["dataset"] for r in done):
        runs = [r for r in done if r["config"]["dataset"] == dataset]
        seeds = sorted({r["config"]["seed"] for r in runs})
        for column in dict.fromkeys(method_key(r["config"]) for r in runs):
            by_seed = {r["config"]["seed"]: r["metrics"].get(metric) for r in runs if method_key(r["config"]) == column}
            rows.setdefault(dataset, {})[column] = [math.nan if by_seed.get(s) is None else by_seed[s] for s in seeds]
            if column not in columns:
                columns.append(column)
    return rows, columns


def _values(runs: list[dict[str, Any]], key: str) -> str:
    """The distinct values of a setting among runs, e.g. ``0 / 0.1 / 0.5`` for a lever."""
    return " / ".join(f"{v:g}" for v in sorted({r["config"][key] for r in runs}))


def budget_line(done: list[dict[str, Any]]) -> str:
    """The training budget of the finished runs, per protocol."""
    parts = []
    for dataset in dict.fromkeys(r["config"]["dataset"] for r in done):
        runs = [r for r in done if r["config"]["dataset"] == dataset]
        c = runs[0]["config"]
        seeds = sorted({r["config"]["seed"] for r in runs})
        wall = sum(r["metrics"].get("wall_seconds", 0) for r in runs) / 60
        parts.append(f"{dataset}: budget `{c.get('budget')}`, {_values(runs, 'epochs')} epochs (patience "
                     f"{c.get('patience')}), lr {c['lr']}, dropout {_values(runs, 'dropout')}, ratio epochs "
                     f"{c['ratio_epochs']}, seeds {seeds}, "
                     f"source rows ≤ {c.get('max_source') or 'all'}, target validation ≤ {c.get('max_val') or 'all'}, "
                     f"test ≤ {c.get('max_test') or 'all'} per task, {len(runs)} runs, {wall:.0f} min summed run wall time")
    return "; ".join(parts) if parts else "no finished runs"


def _write(out: Path, name: str, markdown: str, files: Sequence[str] = ()) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(markdown + "\n")
    (out / f"{name}.json").write_text(json.dumps({"markdown": markdown}))
    return {"markdown": markdown, "files": [str(out / f"{name}.md"), *files]}


TABLE_BUDGETS: dict[str, dict[str, Any]] = {
    "quick": {"datasets": ["digits->mnist", "usps->mnist", "mnist->usps", TWO_FACES], "seeds": 3},
    "full": {"datasets": ["usps->mnist", "mnist->usps", "synthdigits->svhn", "svhn->synthdigits", FACES],
             "seeds": 8},
}


class _Table(_Chapter5Target):
    metric: ClassVar[str]
    caption: ClassVar[str]
    digits: ClassVar[int] = 2
    budgets = TABLE_BUDGETS

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        done = select_vfae(_done(results))
        rows, columns = metric_rows(done, self.metric)
        order = [c for m in self.methods for c in columns if c.startswith(LABELS[m])]
        table = markdown_table(rows, order, row_header="Protocol", digits=self.digits)
        alphas = sorted({r["config"]["mmd_alpha"] for r in done if r["config"]["method"] == "vfae"})
        text = (f"{self.caption}, {budget_line(done)}.\n\n{table}\n\nMean ± std over seeds; bold: best mean and "
                "every method not different from it by a paired t-test over seeds (p ≥ 0.05). VFAE alpha chosen "
                f"per seed by the validation ELBO (chosen values: {alphas or '–'}).")
        return _write(out, self.name, text)


@register_target
class Table52(_Table):
    """The proposed model's prior N(z) exp T(z) is unnormalised: its column is given twice, raw (the thesis's
    "≈") and normalised by the importance-sampled log Z."""

    name = "table-5.2"
    description = "Target-task test log-likelihood (IS, 10 samples) of VAE, CVAE, beta-CVAE, VFAE and proposed"
    metric, caption = "test_log_likelihood", "Table 5.2 (test log-likelihood, target task; faces: mean over tasks)"

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        return super().report(with_normalised_column(results), out)


def with_normalised_column(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results with the implicit-prior runs labelled "raw ≈" and a copy of each carrying its normalised
    log-likelihood as ``test_log_likelihood`` under a "normalised" label (both columns in Table 5.2)."""
    out = []
    for r in results:
        if r.get("config", {}).get("method") != "proposed":
            out.append(r)
            continue
        out.append({**r, "config": {**r["config"], "ll_kind": "raw ≈"}})
        normalised = r.get("metrics", {}).get("test_log_likelihood_normalised")
        out.append({**r, "config": {**r["config"], "ll_kind": "normalised"},
                    "metrics": {**r.get("metrics", {}), "test_log_likelihood": normalised}})
    return out


@register_target
class Table53(_Table):
    name = "table-5.3"
    description = "3-NN target test accuracy with the 100 labelled target training points"
    metric, caption, digits = "knn_accuracy", "Table 5.3 (3-NN target accuracy)", 3


@register_target
class Table54(_Table):
    name = "table-5.4"
    description = "Active units (delta = 0.01) on the target task's test rows"
    metric, caption = "active_units", "Table 5.4 (active units)"


@register_target
class Figure52(_Chapter5Target):
    name = "figure-5.2"
    description = "t-SNE of posterior means on a transfer pair, coloured by task group and by class"
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"datasets": ["digits->mnist", "usps->mnist"], "seeds": 1},
        "full": {"datasets": ["usps->mnist"], "seeds": 1},
    }

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        done = [r for r in select_vfae(_done(results)) if "tsne" in r["metrics"]]
        methods = [m for m in self.methods if any(r["config"]["method"] == m for r in done)]
        plt = _pyplot()
        files = []
        for dataset in dict.fromkeys(r["config"]["dataset"] for r in done):
            fig, axes = plt.subplots(2, len(methods), figsize=(2.4 * len(methods), 4.8), squeeze=False)
            for j, method in enumerate(methods):
                run = next(r for r in done if r["config"]["dataset"] == dataset and r["config"]["method"] == method)
                t = run["metrics"]["tsne"]
                xy, group, label = np.asarray(t["xy"]), np.asarray(t["group"]), np.asarray(t["label"])
                for name in dict.fromkeys(group):
                    pick = group == name
                    axes[0][j].scatter(*xy[pick].T, s=2, alpha=0.6, label=name)
                axes[1][j].scatter(*xy.T, c=label, cmap="tab10", s=2, alpha=0.6)
                axes[0][j].set_title(LABELS[method], fontsize=9)
                for ax in (axes[0][j], axes[1][j]):
                    ax.set_xticks([])
                    ax.set_yticks([])
            axes[0][0].legend(fontsize=6, markerscale=3)
            axes[0][0].set_ylabel("by task", fontsize=8)
            axes[1][0].set_ylabel("by class", fontsize=8)
            fig.tight_layout()
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"figure-5.2-{dataset.replace('->', '-to-').replace('+', '-')}.png"
            fig.savefig(path, dpi=70)
            plt.close(fig)
            files.append(str(path))
        text = (f"Figure 5.2 (t-SNE of E[z|x,s], seed 0), {budget_line(done)}.\n\n"
                + "\n".join(f"![]({Path(f).name})" for f in files))
        return _write(out, self.name, text, files)


def against_cvae(**lever: Any) -> list[dict[str, Any]]:
    """The CVAE and the proposed model under the same lever (settings that override the budget's)."""
    return [{"method": "cvae", **lever}, {"method": "proposed", **lever}]


@register_target
class Invariance5(_Chapter5Target):
    """The chapter's headline as a hypothesis: does the proposed model beat the CVAE in 3-NN target accuracy, and
    is its I(S;Z) lower? Paired over seeds (same target rows, same initialisation seed). ``budgets[b]["variants"]``
    lists the runs per (protocol, seed); each column is compared with the CVAE under the same lever."""

    name = "invariance-5"
    description = "Proposed vs CVAE: 3-NN target accuracy and I(S;Z), paired t-test over seeds; task-weight lever"
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"datasets": ["digits->mnist", "usps->mnist"], "seeds": {"digits->mnist": 5, "usps->mnist": 3}},
        "full": {"datasets": ["usps->mnist", "mnist->usps"], "seeds": 8},
    }

    def variants(self, budget: str) -> list[dict[str, Any]]:
        default = [*against_cvae(), {"method": "proposed", "task_weights": "equal"}]
        return self.budgets[budget].get("variants", default)

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        done = _done(results)
        datasets = list(dict.fromkeys(r["config"]["dataset"] for r in done))
        # columns: the thesis's setting first, then each lever, the CVAE before the proposed model under each
        done.sort(key=lambda r: (datasets.index(r["config"]["dataset"]), len(_levers(r["config"])),
                                 _levers(r["config"]), r["config"]["method"] != "cvae"))
        sections = [f"Proposed vs CVAE, {budget_line(done)}.", ""]
        for metric, title in (("knn_accuracy", "3-NN target accuracy (best-validation weights)"),
                              ("task_mutual_information", "I(S;Z) ≥, nats: the larger of two out-of-fold probe lower bounds (linear, MLP), held-out rows of both tasks"),
                              ("test_log_likelihood", "target test log-likelihood")):
            rows, columns = metric_rows(done, metric)
            sections += [f"**{title}**", "", markdown_table(rows, columns, row_header="Protocol",
                                                             higher_is_better=metric != "task_mutual_information",
                                                             digits=3), ""]
            sections += paired_lines(rows, metric, cvae_references(done))
        sections += checkpoint_table(done)
        return _write(out, self.name, "\n".join(sections))


@register_target
class InvarianceDropout(Invariance5):
    """The headline test with the encoder/decoder dropout as the lever (the thesis: 10 % after the last hidden
    layer): CVAE and proposed at each rate, each paired with the CVAE at the same rate."""

    name = "invariance-5-dropout"
    description = "Proposed vs CVAE at encoder/decoder dropout 0, 0.1 (the thesis's) and 0.5, paired over seeds"
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"datasets": ["digits->mnist"], "seeds": 5,
                  "variants": [v for d in (0.0, 0.1, 0.5) for v in against_cvae(dropout=d)]},
        "full": {"datasets": ["usps->mnist"], "seeds": 8,
                 "variants": [v for d in (0.0, 0.1, 0.3, 0.5) for v in against_cvae(dropout=d)]},
    }


@register_target
class InvarianceBudget(Invariance5):
    """The headline test with a longer training budget (the quick budget's digits runs stop at 200 epochs while
    both accuracy curves still rise): the weights at fixed epochs show whether the ordering turns with training."""

    name = "invariance-5-budget"
    description = "Proposed vs CVAE trained 3x longer than invariance-5's quick budget, weights checked every 100 epochs"
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"datasets": ["digits->mnist"], "seeds": 3,
                  "variants": against_cvae(epochs=600, checkpoints=list(range(100, 601, 100)))},
        "full": {"datasets": ["usps->mnist"], "seeds": 8,
                 "variants": against_cvae(epochs=2000, patience=None, checkpoints=list(range(250, 2001, 250)))},
    }


def cvae_references(done: list[dict[str, Any]]) -> dict[str, str]:
    """Each non-CVAE column and the CVAE column it is paired with: the CVAE under the same levers (a lever that
    applies to the proposed model alone, such as equal task weights, falls away)."""
    return {method_key(r["config"]): method_key({**r["config"], "method": "cvae"})
            for r in done if r["config"]["method"] != "cvae"}


def paired_lines(rows: dict[str, dict[str, list[float]]], metric: str, references: dict[str, str]) -> list[str]:
    """Paired t-tests of every column against its CVAE column (``references``, from :func:`cvae_references`):
    mean difference, its 95% CI and the p-value."""
    lines = []
    for dataset, cells in rows.items():
        for column, values in cells.items():
            reference = references.get(column)
            if reference not in cells:
                continue
            base = cells[reference]
            a, b = np.asarray(values, float), np.asarray(base, float)
            ok = np.isfinite(a) & np.isfinite(b)
            if ok.sum() < 2:
                continue
            d = a[ok] - b[ok]
            test = stats.ttest_rel(a[ok], b[ok])
            ci = test.confidence_interval(0.95)
            wins = int((d > 0).sum())
            lines.append(f"- {dataset}, {metric}: {column} − {reference} = {d.mean():+.4f} (95% CI {ci.low:+.4f} "
                         f"to {ci.high:+.4f}), paired t-test p = {test.pvalue:.3g}, {column} higher in "
                         f"{wins}/{len(d)} seeds")
    return [*lines, ""] if lines else []


def checkpoint_table(done: list[dict[str, Any]]) -> list[str]:
    """kNN accuracy and I(S;Z) of the weights at fixed epochs (mean ± std over seeds), per protocol and column."""
    lines = []
    for dataset in dict.fromkeys(r["config"]["dataset"] for r in done):
        runs = [r for r in done if r["config"]["dataset"] == dataset and r["metrics"].get("checkpoints")]
        epochs = sorted({c["epoch"] for r in runs for c in r["metrics"]["checkpoints"]})
        if not epochs:
            continue
        lines += [f"**{dataset}: weights at fixed epochs (no selection), 3-NN accuracy / I(S;Z)**", "",
                  "| Method | " + " | ".join(f"epoch {e}" for e in epochs) + " |", "|---" * (len(epochs) + 1) + "|"]
        for column in dict.fromkeys(method_key(r["config"]) for r in runs):
            cells = []
            for e in epochs:
                pts = [c for r in runs if method_key(r["config"]) == column
                       for c in r["metrics"]["checkpoints"] if c["epoch"] == e]
                knn, mi = mean_std([p.get("knn_accuracy") for p in pts]), mean_std([p["task_mutual_information"] for p in pts])
                cells.append(f"{knn[0]:.3f} ± {knn[1]:.3f} / {mi[0]:.3f}")
            lines.append(f"| {column} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


TARGET_NAMES = ("table-5.2", "table-5.3", "table-5.4", "figure-5.2", "invariance-5", "invariance-5-dropout",
                "invariance-5-budget")


# ---------------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    parser = chapter_parser("python -m vaekit.experiments.chapter5", __doc__.splitlines()[0], TARGET_NAMES,
                            "comma-separated protocols, e.g. digits->mnist")
    parser.add_argument("--methods", default=None,
                        help="comma-separated methods to run, e.g. cvae,proposed,proposed-equal (default: all)")
    parser.add_argument("--cache", type=Path, default=None, help="run cache (default results/chapter5-runs)")
    parser.add_argument("--from-cache", action="store_true",
                        help="report the grid's runs that are in the cache, run nothing")
    args = parser.parse_args(argv)
    target = TARGETS[args.target]
    assert isinstance(target, _Chapter5Target)
    if args.cache is not None:
        target.cache = RunCache(args.cache)
    out = args.out or Path("results") / target.name
    methods = args.methods.split(",") if args.methods else None
    recorder = RecordingTarget(
        target, out, shown=("knn_accuracy", "task_mutual_information", "test_log_likelihood", "active_units"),
        keep=None if methods is None else (lambda c: variant_name(c) in methods),
        label=lambda c: f"{c['dataset']} {method_key(c)} alpha={c.get('mmd_alpha', '-')}")
    if args.results is not None:
        report = target.report(load_results(args.results), out)
    elif args.from_cache:
        grid = recorder.runs(args.budget or "quick", args.seeds, args.datasets.split(",") if args.datasets else None)
        cached = [(c, target.cache.get(c)) for c in grid]
        report = recorder.report([{"config": c, "status": "done", "metrics": m} for c, m in cached if m], out)
    else:
        report = run_serial(recorder, args.budget or "quick", args.seeds,
                            args.datasets.split(",") if args.datasets else None, out)
    print(report["markdown"])
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
