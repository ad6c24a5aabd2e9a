"""The ``vaekit`` command line. Every command has ``--help``; with ``--json`` the last stdout line is one JSON object.

Errors that vaekit raises on purpose print one line on stderr and exit with status 2 (a traceback only with
``--debug``); an interrupted command exits with 130.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import logging
import io
import json
import sqlite3
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._version import __version__
from .cli_helpers import file_options, fmt, show_defaults, torch_seeded, user_file_options
from .errors import ConfigError, VaekitError
from .interrupts import StopSignals
from .names import ACTIVATION_NAMES, DIVERGENCE_POLICIES, LIKELIHOOD_NAMES as LIKELIHOODS, PRIOR_NAMES as PRIORS
from .runconfig import apply_config, save_run_config
from .tracking import tracking_callbacks, tracking_options
from .validation import (MAX_SEED, Database, DeviceName, FloatRange, IntList, IntRange, OutputDir, OutputFile,
                         RunFolder, SplitFractions, check_output_dir, check_run_folder, output_lock)

# torch, scikit-learn and the models load inside the commands (lazily), so --help and --version stay fast

COMMANDS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {}
#: Modules that add sub-commands: each defines ``add_commands(subparsers)`` and registers its handlers with
#: :func:`command`. Keeps each feature's CLI beside the feature.
COMMAND_MODULES: tuple[str, ...] = ("vaekit.cli_detect", "vaekit.cli_reproduce", "vaekit.cli_extra")


def command(func: Callable[[argparse.Namespace], dict[str, Any]]) -> Callable[[argparse.Namespace], dict[str, Any]]:
    COMMANDS[func.__name__.removeprefix("cmd_").replace("_", "-")] = func
    return func


#: argparse types of the options (vaekit.validation): a bad value is refused while parsing, before any work
_int_list = IntList()
POSITIVE_INT = IntRange(1)
NON_NEGATIVE_INT = IntRange(0)
SEED = IntRange(0, MAX_SEED)
POSITIVE_FLOAT = FloatRange(0.0, low_open=True)
NON_NEGATIVE_FLOAT = FloatRange(0.0)
FRACTION = FloatRange(0.0, 1.0, high_open=True)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``vaekit CMD: error: <problem> (see vaekit CMD --help)``, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _say(args: argparse.Namespace, text: str) -> None:
    """Human-readable output; with --json it goes to stderr so stdout ends with the JSON object."""
    print(text, file=sys.stderr if args.json else sys.stdout)


# ------------------------------------------------------------------------------------------------- commands
@command
def cmd_datasets(args: argparse.Namespace) -> dict[str, Any]:
    from .data import dataset_status

    rows = dataset_status()
    table = [("name", "state", "shape", "description")]
    for row in rows:
        state = "present" if row["present"] else ("bundled" if row["bundled_fallback"] else "missing")
        table.append((row["name"], state, "x".join(map(str, row.get("shape", []))) or "-", row["description"]))
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for r in table:
        _say(args, "  ".join(f"{cell:<{w}}" for cell, w in zip(r, widths)) + "  " + r[3])
    return {"datasets": rows}


@command
def cmd_download(args: argparse.Namespace) -> dict[str, Any]:
    from .data import DATASETS
    from .data.registry import load_arrays

    if args.name not in DATASETS:
        raise ConfigError(f"unknown dataset {args.name!r}; known: {', '.join(sorted(DATASETS))}")
    arrays = load_arrays(DATASETS[args.name], download=True)
    _say(args, f"{args.name}: x {arrays['x'].shape}")
    return {"name": args.name, "shape": list(arrays["x"].shape)}


def _likelihood_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if args.likelihood == "map":
        kwargs["b"] = args.map_b
    if args.likelihood == "student-t":
        kwargs.update(nu_init=args.nu_init, nu_min=args.nu_min)
    if args.likelihood in ("gaussian", "map") and args.variance_floor:
        kwargs["variance_floor"] = args.variance_floor
    if args.likelihood in ("gaussian", "map", "student-t") and args.bounded_mean:
        kwargs["bounded_mean"] = True
    return kwargs


def _prior_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Options of the learned priors (chapter 4) that the command line exposes."""
    kwargs: dict[str, Any] = {}
    if args.prior == "vamp" and args.vamp_components is not None:
        kwargs["n_components"] = args.vamp_components
    if args.prior in ("implicit", "avb") and args.ratio_epochs is not None:
        kwargs["ratio_epochs"] = args.ratio_epochs
    if args.prior == "implicit" and args.task_weights is not None:
        kwargs["task_weights"] = args.task_weights
    return kwargs


def _task_options(args: argparse.Namespace, dataset: Any) -> dict[str, Any]:
    """Task conditioning (CVAE), the VFAE's MMD weight and the beta-CVAE's task latent (chapter 5); the last two
    imply conditioning. ``--target-task`` marks the task whose test rows are scored."""
    from .tasks import check_task_count, task_indices

    if args.target_task is not None:
        if dataset.s is None or args.target_task not in set(dataset.s.tolist()):
            raise ConfigError(f"--target-task {args.target_task} is not a task index of {dataset.name}")
        dataset.meta["target_task"] = args.target_task
    if not (args.conditional or args.mmd_alpha or args.task_latent_dim):
        return {}
    return {"n_tasks": check_task_count(dataset), "mmd_alpha": args.mmd_alpha,
            "task_latent_dim": args.task_latent_dim}


def _memory_mapped(args: argparse.Namespace) -> bool:
    """``.npy`` files always train through a memory map; ``.npz`` archives with ``--memory-map``."""
    suffix = Path(str(args.data)).suffix.lower()
    if getattr(args, "memory_map", False) and suffix not in (".npy", ".npz"):
        raise ConfigError(f"--memory-map reads .npy files and uncompressed .npz archives, not {args.data!r}")
    return suffix == ".npy" or (suffix == ".npz" and getattr(args, "memory_map", False))


def _fit_memory_mapped(args: argparse.Namespace, train: TrainConfig) -> dict[str, Any]:
    from .trained_mapped import fit_memory_mapped

    if args.conditional or args.mmd_alpha or args.task_latent_dim or args.target_task is not None:
        raise ConfigError("task options need the in-memory path: a memory-mapped file has no task column")
    if args.out is None:
        args.out = Path("runs") / f"{Path(str(args.data)).stem}-{args.likelihood or 'auto'}-{args.prior}-seed{args.seed}"
    _, summary = fit_memory_mapped(
        args.data, likelihood=args.likelihood, prior=args.prior, latent_dim=args.latent_dim, hidden=args.hidden,
        split=args.split, importance_samples=args.importance_samples, constant_columns=args.constant_columns,
        out=args.out, train=train, activation=args.activation, dropout=args.dropout, gated=args.gated,
        likelihood_kwargs=_likelihood_kwargs(args), prior_kwargs=_prior_kwargs(args), encoder=args.encoder,
    )
    summary.pop("history")
    summary["out"] = str(args.out)
    _say(args, f"{summary['dataset']} (memory-mapped): {summary['model']['likelihood']} VAE, "
               f"{summary['epochs_run']} epochs ({summary['train_seconds']:.1f} s); test log-likelihood "
               f"{summary.get('test_log_likelihood')} (K={args.importance_samples}); saved to {args.out}")
    return summary


def _train_config(args: argparse.Namespace) -> TrainConfig:
    from .training import TrainConfig

    return TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience or None,
        warmup_epochs=args.warmup, seed=args.seed, on_divergence=args.on_divergence,
        progress=args.progress and sys.stderr.isatty(), device=args.device,
    )


@command
def cmd_fit(args: argparse.Namespace) -> dict[str, Any]:
    from .data import load_dataset
    from .trained import fit
    from .training import TrainConfig

    if args.data is None:
        raise ConfigError("give --data (on the command line or as data = ... in the --config file)")
    if _memory_mapped(args):
        return _fit_memory_mapped(args, _train_config(args))
    dataset = load_dataset(args.data, **file_options(args))
    if args.likelihood is None:
        args.likelihood = "bernoulli" if dataset.binary else "student-t"
    if args.out is None:
        args.out = check_run_folder(check_output_dir(
            Path("runs") / f"{Path(str(args.data)).stem}-{args.likelihood}-{args.prior}-seed{args.seed}"))
    task_options = _task_options(args, dataset)
    train = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience or None,
        warmup_epochs=args.warmup, seed=args.seed, on_divergence=args.on_divergence,
        progress=args.progress and sys.stderr.isatty(), device=args.device,
    )
    with output_lock(args.out):
        _, summary = fit(
            dataset, likelihood=args.likelihood, prior=args.prior, latent_dim=args.latent_dim, hidden=args.hidden,
            split=args.split, importance_samples=args.importance_samples, constant_columns=args.constant_columns,
            out=args.out, train=train, activation=args.activation, dropout=args.dropout, gated=args.gated,
            likelihood_kwargs=_likelihood_kwargs(args), prior_kwargs=_prior_kwargs(args), encoder=args.encoder,
            test_subsample=args.test_subsample, callbacks=tracking_callbacks(args), **task_options,
        )
    summary.pop("history")
    summary["out"] = str(args.out)
    summary["config_file"] = str(save_run_config(args, Path(args.out)))
    status = f"diverged at epoch {summary['diverged_epoch']}" if summary["diverged"] else "ok"
    if summary.get("evaluation_skipped"):
        status += "; test evaluation skipped"
    split = "/".join(f"{100 * f:g}" for f in summary["split"])
    _say(args, f"{summary['dataset']}: {args.likelihood} VAE, {summary['epochs_run']} epochs "
               f"({summary['train_seconds']:.1f} s, {status}); split {split} train/val/test "
               f"({summary['split_source']}; {summary['n_train']} training rows); test log-likelihood "
               f"{fmt(summary['test_log_likelihood'])} (K={args.importance_samples}, {summary['n_test']} rows); "
               f"saved to {args.out}")
    return summary


def _evaluation_rows(trained: Any, data: str | None, args: argparse.Namespace) -> tuple[Any, Any, str, Any]:
    """The rows to evaluate, the labelled rows for the kNN accuracy, a description and the target task: the
    training data set's test split (labelled rows: its training split's, of the target task) by default, else
    every row of ``data`` (no kNN)."""
    from .columns import align_columns, training_data
    from .data import load_dataset
    from .tasks import labelled_rows
    from .trained import training_data_rows

    name = trained.info.get("dataset")
    target = getattr(args, "target_task", None)
    if target is None:
        target = trained.info.get("target_task")
    user_file = training_data_rows(trained, data)  # a model trained on a user file: that file's test split
    if user_file is not None:
        train, test, what = user_file
        return test, labelled_rows(train, target), what, target
    if data is None or data == name:
        if name is None:
            raise ConfigError("this model does not record its data set; pass --data")
        dataset = training_data(trained.info)
        train, _, test = dataset.splits(trained.info.get("split"), seed=int(trained.info.get("seed", 0)))
        target = dataset.meta.get("target_task") if target is None else target
        return test, labelled_rows(train, target), f"{name} (test split)", target
    dataset = align_columns(trained, load_dataset(data, **file_options(args)))
    return dataset, None, str(data), dataset.meta.get("target_task") if target is None else target


@command
def cmd_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from .tasks import representation_metrics
    from .trained import TrainedModel, subsample_rows

    trained = TrainedModel.load(args.model_dir)
    test, labelled, what, target = _evaluation_rows(trained, args.data, args)
    test = subsample_rows(test, args.test_subsample, args.seed)
    with torch_seeded(args.seed):
        metrics = representation_metrics(trained, test, labelled, target, n_samples=args.importance_samples,
                                         k=args.knn_neighbours, seed=args.seed)
    metrics["data"] = what
    metrics["seed"] = args.seed
    if args.test_subsample is not None:
        metrics["test_subsample"] = args.test_subsample
    if target is not None:
        metrics["target_task"] = int(target)
    shown = ", ".join(f"{k} {metrics[k]:.4g}" for k in ("active_units", "knn_accuracy", "task_mutual_information")
                      if metrics.get(k) is not None)
    _say(args, f"{what}: test log-likelihood {fmt(metrics['test_log_likelihood'])} (K={args.importance_samples}, "
               f"{metrics.get('n_test')} rows)"
               + (f"; {shown}" if shown else ""))
    return metrics


@command
def cmd_score(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from .checkpoint import atomic_write_bytes
    from .columns import align_columns
    from .data import load_dataset
    from .trained import TrainedModel, finite_or_none

    trained = TrainedModel.load(args.model_dir)
    dataset = align_columns(trained, load_dataset(args.data, **file_options(args)))
    scores = trained.score_samples(dataset.x, dataset.s, n_samples=args.importance_samples, seed=args.seed,
                                   progress=None if args.progress else False)
    ids = dataset.meta.get("ids")
    id_name = dataset.meta.get("id_column") or "row"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([id_name, "log_likelihood"])
    for i, score in enumerate(scores):
        writer.writerow([ids[i] if ids is not None else i, f"{score:.6f}"])
    if args.output:
        atomic_write_bytes(Path(args.output), lambda f: f.write(buffer.getvalue().encode()))
        _say(args, f"wrote {len(scores)} scores to {args.output}")
    elif not args.json:
        sys.stdout.write(buffer.getvalue())
    finite = np.isfinite(scores)
    result: dict[str, Any] = {
        "n_rows": int(len(scores)), "output": args.output, "seed": args.seed,
        "importance_samples": args.importance_samples,
        "mean_log_likelihood": float(scores[finite].mean()) if finite.any() else None,
        "non_finite_scores": int((~finite).sum()),
    }
    if not args.output:  # the scores go into the JSON object (with --output they are in that file)
        result["scores"] = [finite_or_none(v) for v in scores]
        if ids is not None:
            result["ids"] = ids
    return result


# --------------------------------------------------------------------------------------------------- parser
def common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    p.add_argument("--quiet", action="store_true", help="no progress messages on stderr")


def data_column_options(p: argparse.ArgumentParser, task: bool = True) -> None:
    p.add_argument("--label-column", help="CSV column holding labels (e.g. anomaly flags), kept out of x")
    if task:
        p.add_argument("--task-column", help="CSV column holding the task index s, kept out of x")
    user_file_options(p)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="vaekit", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vaekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("datasets", help="list known data sets, whether they are present, and their shapes")
    common_options(p)

    p = sub.add_parser("download", help="fetch a data set's public source into the cache")
    p.add_argument("name", help="a registered data set (see vaekit datasets)")
    common_options(p)

    p = sub.add_parser("fit", help="train a VAE, early-stop on validation data, evaluate on the test split")
    p.add_argument("--data",
                   help="required (here or in --config): a known data set name, a .npz/.csv file, a .npy file "
                        "(read through a memory map), or a multi-task protocol: SOURCE->TARGET (e.g. usps->mnist, "
                        "digits->mnist; tasks s = 0, 1) or A+B[+C] (e.g. freyfaces+olivetti)")
    data_column_options(p)
    p.add_argument("--memory-map", action="store_true",
                   help="read a .npz's uncompressed array x through a memory map instead of loading it (data "
                        "larger than memory; .npy files always are)")
    p.add_argument("--conditional", action="store_true",
                   help="condition encoder and decoder on the task index s (CVAE, Eq. 5.2)")
    p.add_argument("--mmd-alpha", type=NON_NEGATIVE_FLOAT, default=0.0,
                   help="VFAE: weight of the MMD between task posteriors (Eqs. 5.6, 5.7); implies --conditional")
    p.add_argument("--task-latent-dim", type=NON_NEGATIVE_INT, default=0,
                   help="beta-CVAE: size of the task-specific latent zeta (Eqs. 5.33-5.35); implies --conditional")
    p.add_argument("--task-weights", choices=("data", "equal"),
                   help="implicit prior on tasks: ancestral sampling weights tasks by p_D(s) (data, Eq. 5.8; "
                        "default) or equally")
    p.add_argument("--target-task", type=NON_NEGATIVE_INT,
                   help="task index whose test rows are scored (protocols: 1)")
    p.add_argument("--likelihood", choices=sorted(LIKELIHOODS), default=None,
                   help="decoder p(x|z) (default: bernoulli for binary data sets, student-t otherwise)")
    p.add_argument("--prior", choices=sorted(PRIORS), default="standard",
                   help="p(z): standard normal, vamp (VampPrior, Eq. 4.8), implicit (optimal prior, Eqs. 4.9-4.19) "
                        "or avb")
    p.add_argument("--vamp-components", type=POSITIVE_INT, help="K pseudo-inputs of the VampPrior (default 500)")
    p.add_argument("--ratio-epochs", type=POSITIVE_INT,
                   help="J2: density-ratio classifier epochs per VAE epoch (implicit, avb; default 10)")
    p.add_argument("--encoder", choices=("gaussian", "implicit"),
                   help="q(z|x): gaussian, or AVB's implicit encoder (default: implicit for --prior avb)")
    p.add_argument("--map-b", type=POSITIVE_FLOAT, default=1.0, help="rate b of the Gamma(1, b) precision prior (map)")
    p.add_argument("--nu-init", type=POSITIVE_FLOAT, default=10.0, help="initial degrees of freedom (student-t)")
    p.add_argument("--nu-min", type=POSITIVE_FLOAT, default=0.5, help="floor on the degrees of freedom (student-t)")
    p.add_argument("--variance-floor", type=NON_NEGATIVE_FLOAT, default=0.0, help="added to decoded variances (gaussian, map)")
    p.add_argument("--bounded-mean", action="store_true",
                   help="decoded mean in [0, 1] through a sigmoid (grey images: freyfaces, histopathology)")
    p.add_argument("--latent-dim", type=POSITIVE_INT, default=20, help="dimension of the latent code z")
    p.add_argument("--hidden", type=_int_list, default=(500, 500), help="hidden sizes, e.g. 500,500")
    p.add_argument("--activation", choices=ACTIVATION_NAMES, default="tanh", help="hidden-layer activation")
    p.add_argument("--dropout", type=FRACTION, default=0.0, help="dropout rate of the hidden layers")
    p.add_argument("--gated", action="store_true", help="gated (GLU) hidden layers")
    p.add_argument("--epochs", type=POSITIVE_INT, default=500, help="maximum training epochs")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=100, help="mini-batch size")
    p.add_argument("--lr", type=POSITIVE_FLOAT, default=1e-3, help="Adam learning rate")
    p.add_argument("--patience", type=NON_NEGATIVE_INT, default=50, help="early-stopping patience in epochs (0: none)")
    p.add_argument("--warmup", type=NON_NEGATIVE_INT, default=0, help="epochs of linear KL warm-up")
    p.add_argument("--seed", type=SEED, default=0, help="seeds the split, the initialisation and training")
    p.add_argument("--device", type=DeviceName(), default=None,
                   help="cpu (default), cuda, cuda:N, mps, or auto (CUDA when available); the saved model loads on CPU")
    p.add_argument("--split", type=SplitFractions(), default=None,
                   help="TRAIN,VAL,TEST fractions (default: the data set's; 0.8,0.1,0.1 for your own files)")
    p.add_argument("--importance-samples", type=POSITIVE_INT, default=100,
                   help="K, importance samples per test row for log p(x)")
    p.add_argument("--test-subsample", type=POSITIVE_INT,
                   help="evaluate a seeded random subset of this many test rows (default: all)")
    p.add_argument("--constant-columns", choices=("error", "drop"), default="error",
                   help="columns constant in the training split: refuse them, or drop them")
    p.add_argument("--on-divergence", choices=DIVERGENCE_POLICIES, default="stop",
                   help="on a non-finite loss: stop with the best model, or roll back and halve the learning rate")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bars")
    p.add_argument("--out", type=RunFolder(),
                   help="directory for model.pt, result.json and run.toml (new, empty, or a previous run's, which is "
                        "replaced; default runs/DATA-LIKELIHOOD-PRIOR-seedN)")
    p.add_argument("--config", type=Path,
                   help="a run.toml of options (names as here, with _ or -); options given here override it")
    tracking_options(p)
    common_options(p)

    p = sub.add_parser("evaluate", help="test log-likelihood, active units, kNN accuracy and I(S;Z) of a saved model")
    p.add_argument("model_dir", type=Path, help="a directory saved by vaekit fit --out or vaekit detect --save")
    p.add_argument("--data", help="data set or file (default: the training data set's test split)")
    data_column_options(p)
    p.add_argument("--target-task", type=NON_NEGATIVE_INT,
                   help="score this task's rows only (default: the model's or the protocol's target, else all)")
    p.add_argument("--knn-neighbours", type=POSITIVE_INT, default=3, help="k of the kNN accuracy (section 5.5.1: 3)")
    p.add_argument("--importance-samples", type=POSITIVE_INT, default=100,
                   help="K, importance samples per row for log p(x)")
    p.add_argument("--test-subsample", type=POSITIVE_INT,
                   help="evaluate a seeded random subset of this many rows (default: all)")
    p.add_argument("--seed", type=SEED, default=0, help="seeds the importance samples and --test-subsample")
    common_options(p)

    p = sub.add_parser("score", help="per-row log p(x) of a file under a saved model")
    p.add_argument("model_dir", type=Path, help="a directory saved by vaekit fit --out or vaekit detect --save")
    p.add_argument("--data", required=True, help="a data set name or a .npz/.csv file to score")
    data_column_options(p)
    p.add_argument("--output", type=OutputFile(),
                   help="CSV file for the scores (default: stdout, or the JSON object with --json)")
    p.add_argument("--importance-samples", type=POSITIVE_INT, default=100,
                   help="K, importance samples per row for log p(x)")
    p.add_argument("--seed", type=SEED, default=0,
                   help="seeds the importance samples: the same rows give the same scores")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    common_options(p)

    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    show_defaults(parser)
    return parser


#: commands that stop on SIGTERM as on Ctrl-C (keep the best model); the others keep Python's default
STOPPABLE = ("fit", "detect")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse: --help/--version (0) or a bad option (2, one line on stderr)
        return stop.code if isinstance(stop.code, int) else 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s",
                        stream=sys.stderr, force=True)
    warnings.formatwarning = _one_line_warning
    signals = StopSignals(enabled=args.command in STOPPABLE)
    try:
        with signals:
            if getattr(args, "config", None) is not None:
                args = apply_config(parser, args, argv)
            result = COMMANDS[args.command](args)
    except VaekitError as err:
        if args.debug:
            traceback.print_exc()
        print(f"vaekit {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vaekit {args.command}: interrupted", file=sys.stderr)
        return signals.exit_status
    except (OSError, sqlite3.Error) as err:  # the machine, not the input: full disk, lost mount, locked database
        if args.debug:
            traceback.print_exc()
        print(f"vaekit {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, allow_nan=False, default=str))
    if result.get("interrupted"):
        print(f"vaekit {args.command}: interrupted; the best model so far was saved to {result.get('out')}",
              file=sys.stderr)
        return signals.exit_status
    return 0


def _one_line_warning(message: Warning | str, category: type[Warning], *rest: Any, **kwargs: Any) -> str:
    return f"vaekit: warning: {message}\n"


if __name__ == "__main__":  # pragma: no cover
    # Run the package's module, not this __main__ copy: command modules register into vaekit.cli.COMMANDS.
    from vaekit.cli import main as package_main

    sys.exit(package_main())
