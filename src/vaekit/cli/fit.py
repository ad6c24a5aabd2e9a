"""``vaekit fit``: train a VAE, early-stop on validation data, evaluate on the test split."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..names import ACTIVATION_NAMES, DIVERGENCE_POLICIES, LIKELIHOOD_NAMES, PRIOR_NAMES
from ..runconfig import save_run_config
from ..tracking import tracking_callbacks
from ..validation import DeviceName, RunFolder, SplitFractions, check_output_dir, check_run_folder, output_lock
from .model_options import add_component_options, component_kwargs
from .options import (FRACTION, INT_LIST, NON_NEGATIVE_FLOAT, NON_NEGATIVE_INT, POSITIVE_FLOAT, POSITIVE_INT, SEED,
                      common_options, data_column_options, file_options, tracking_options)
from .output import counted, say, test_metrics_text

if TYPE_CHECKING:  # pragma: no cover - torch loads inside run()
    from ..data import Dataset
    from ..training import TrainConfig

NAME = "fit"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help="train a VAE, early-stop on validation data, evaluate on the test split")
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
    add_component_options(p, "--task-weights")
    p.add_argument("--target-task", type=NON_NEGATIVE_INT,
                   help="task index whose test rows are scored (protocols: 1)")
    p.add_argument("--likelihood", choices=sorted(LIKELIHOOD_NAMES), default=None,
                   help="decoder p(x|z) (default: bernoulli for binary data sets, student-t otherwise)")
    p.add_argument("--prior", choices=sorted(PRIOR_NAMES), default="standard",
                   help="p(z): standard normal, vamp (VampPrior, Eq. 4.8), implicit (optimal prior, Eqs. 4.9-4.19) "
                        "or avb")
    add_component_options(p, "--vamp-components", "--ratio-epochs", "--log-normaliser")
    p.add_argument("--encoder", choices=("gaussian", "implicit"),
                   help="q(z|x): gaussian, or AVB's implicit encoder (default: implicit for --prior avb)")
    add_component_options(p, "--map-b", "--nu-init", "--nu-min", "--variance-floor", "--bounded-mean")
    p.add_argument("--latent-dim", type=POSITIVE_INT, default=20, help="dimension of the latent code z")
    p.add_argument("--hidden", type=INT_LIST, default=(500, 500), help="hidden sizes, e.g. 500,500")
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
                   help="a run.toml of options (names as here, with _ or -; a relative data path is read from the "
                        "file's folder); options given here override it")
    tracking_options(p)
    common_options(p)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ..data import load_dataset
    from ..fitting import fit
    from ..trained import default_likelihood

    if args.data is None:
        raise ConfigError("give --data (on the command line or as data = ... in the --config file)")
    if memory_mapped(args):
        return _fit_memory_mapped(args, train_config(args))
    dataset = load_dataset(args.data, **file_options(args))
    if args.likelihood is None:
        args.likelihood = default_likelihood(dataset.binary)
    if args.out is None:
        args.out = check_run_folder(check_output_dir(_default_out(args, args.likelihood)))
    task_options = _task_options(args, dataset)
    train = train_config(args)
    with output_lock(args.out):
        _, summary = fit(dataset, out=args.out, train=train, test_subsample=args.test_subsample,
                         callbacks=tracking_callbacks(args), **_model_arguments(args), **task_options)
    summary.pop("history")
    summary["out"] = str(args.out)
    summary["config_file"] = str(save_run_config(args, Path(args.out)))
    status = f"diverged at epoch {summary['diverged_epoch']}" if summary["diverged"] else "ok"
    if summary["diverged"] and not summary.get("best_epoch"):
        status += ("; nothing was trained: the saved model holds its initial weights (lower --lr, or check the "
                   "data's scale)")
    if summary.get("evaluation_skipped"):
        status += "; test evaluation skipped"
    split = "/".join(f"{100 * f:g}" for f in summary["split"])
    say(args, f"{summary['dataset']}: {args.likelihood} VAE, {counted(summary['epochs_run'], 'epoch')} "
              f"({summary['train_seconds']:.1f} s, {status}); split {split} train/val/test "
              f"({summary['split_source']}; {summary['n_train']} training rows); "
              f"{test_metrics_text(summary, args.importance_samples)}; saved to {args.out}")
    return summary


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The training options of ``vaekit fit`` as a :class:`vaekit.training.TrainConfig`."""
    from ..training import TrainConfig

    return TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience or None,
        warmup_epochs=args.warmup, seed=args.seed, on_divergence=args.on_divergence,
        progress=args.progress and sys.stderr.isatty(), device=args.device,
    )


def _model_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments that :func:`vaekit.fitting.fit` and ``fit_memory_mapped`` share."""
    return dict(
        likelihood=args.likelihood, prior=args.prior, latent_dim=args.latent_dim, hidden=args.hidden,
        split=args.split, importance_samples=args.importance_samples, constant_columns=args.constant_columns,
        activation=args.activation, dropout=args.dropout, gated=args.gated,
        likelihood_kwargs=component_kwargs(args, "likelihood"), prior_kwargs=component_kwargs(args, "prior"),
        encoder=args.encoder,
    )


def _default_out(args: argparse.Namespace, likelihood: str) -> Path:
    return Path("runs") / f"{Path(str(args.data)).stem}-{likelihood}-{args.prior}-seed{args.seed}"


def _task_options(args: argparse.Namespace, dataset: Dataset) -> dict[str, Any]:
    """Task conditioning (CVAE), the VFAE's MMD weight and the beta-CVAE's task latent (chapter 5); the last two
    imply conditioning. ``--target-task`` marks the task whose test rows are scored."""
    from ..tasks import check_task_count

    if args.target_task is not None:
        if dataset.s is None or args.target_task not in set(dataset.s.tolist()):
            raise ConfigError(f"--target-task {args.target_task} is not a task index of {dataset.name}")
        dataset.meta["target_task"] = args.target_task
    if not (args.conditional or args.mmd_alpha or args.task_latent_dim):
        return {}
    options: dict[str, Any] = {"mmd_alpha": args.mmd_alpha, "task_latent_dim": args.task_latent_dim}
    if args.conditional:  # the VFAE's and beta-CVAE's conditioning is implied (vaekit.fitting.check_task_options)
        options["n_tasks"] = check_task_count(dataset)
    return options


def memory_mapped(args: argparse.Namespace) -> bool:
    """``.npy`` files always train through a memory map; ``.npz`` archives with ``--memory-map``."""
    suffix = Path(str(args.data)).suffix.lower()
    if getattr(args, "memory_map", False) and suffix not in (".npy", ".npz"):
        raise ConfigError(f"--memory-map reads .npy files and uncompressed .npz archives, not {args.data!r}")
    return suffix == ".npy" or (suffix == ".npz" and getattr(args, "memory_map", False))


def _fit_memory_mapped(args: argparse.Namespace, train: TrainConfig) -> dict[str, Any]:
    from ..trained_mapped import fit_memory_mapped

    if args.conditional or args.mmd_alpha or args.task_latent_dim or args.target_task is not None:
        raise ConfigError("task options need the in-memory path: a memory-mapped file has no task column")
    with contextlib.ExitStack() as stack:
        def default_folder(likelihood: str) -> Path:  # named by the likelihood the training rows chose
            args.out = check_run_folder(check_output_dir(_default_out(args, likelihood)))
            stack.enter_context(output_lock(args.out))
            return args.out

        if args.out is not None:
            stack.enter_context(output_lock(args.out))
        _, summary = fit_memory_mapped(args.data, out=args.out or default_folder, train=train,
                                       test_subsample=args.test_subsample, callbacks=tracking_callbacks(args),
                                       **_model_arguments(args))
    args.likelihood = summary["model"]["likelihood"]  # run.toml repeats the run as saved
    summary.pop("history")
    summary["out"] = str(args.out)
    summary["config_file"] = str(save_run_config(args, Path(args.out)))  # as the in-memory path
    split = "/".join(f"{100 * f:g}" for f in summary["split"])
    say(args, f"{summary['dataset']} (memory-mapped): {summary['model']['likelihood']} VAE, "
              f"{counted(summary['epochs_run'], 'epoch')} ({summary['train_seconds']:.1f} s); split {split} "
              f"train/val/test ({summary['split_source']}; {summary['n_train']} training rows); "
              f"{test_metrics_text(summary, args.importance_samples)}; saved to {args.out}")
    return summary
