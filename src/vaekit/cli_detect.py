"""``vaekit detect``: train a VAE anomaly detector and score every row (or score with a saved detector)."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from .checkpoint import atomic_write_bytes
from .cli import _int_list, _say, command, common_options
from .data import load_dataset
from .detect import VAEDetector
from .errors import ConfigError
from .likelihoods import LIKELIHOODS
from .priors import PRIORS
from .trained import finite_or_none


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="anomaly scores -log p(x) of every row; ROC-AUC and AP given labels")
    p.add_argument("--data", required=True, help="a known data set name or a .npz/.csv file")
    p.add_argument("--label-column", help="CSV column of anomaly labels (1 = anomaly), kept out of x")
    p.add_argument("--model", type=Path, help="score with a detector saved by --save instead of training")
    p.add_argument("--save", type=Path, help="directory to save the trained detector in")
    p.add_argument("--output", help="CSV file for the per-row scores (default: stdout unless --json)")
    p.add_argument("--contamination", type=float, default=0.1,
                   help="expected fraction of anomalies; sets the flagging threshold (training only)")
    p.add_argument("--likelihood", choices=sorted(LIKELIHOODS), default="student-t")
    p.add_argument("--prior", choices=sorted(PRIORS), default="standard")
    auto = " (default auto: chosen from the data's shape, see docs/anomaly.md)"
    p.add_argument("--latent-dim", type=_auto_or(int), default="auto", help="latent size" + auto)
    p.add_argument("--hidden", type=_auto_or(_int_list), default="auto", help="hidden sizes, e.g. 128,128" + auto)
    p.add_argument("--epochs", type=_auto_or(int), default="auto", help="maximum epochs" + auto)
    p.add_argument("--batch-size", type=_auto_or(int), default="auto", help="mini-batch size" + auto)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--patience", type=_auto_or(int), default="auto",
                   help="early-stopping patience in epochs (0: none)" + auto)
    p.add_argument("--validation-fraction", type=float, default=0.1, help="rows held out for early stopping")
    p.add_argument("--importance-samples", type=int, default=100)
    p.add_argument("--constant-columns", choices=("error", "drop"), default="drop",
                   help="drop columns constant in the training rows (default), or stop with an error")
    p.add_argument("--training-noise", type=_auto_or(float), default="auto",
                   help="std of the dequantisation noise on standardised training batches" + auto)
    p.add_argument("--max-train-rows", type=_auto_or(int), default="auto",
                   help="train on a seeded subsample of at most this many rows" + auto)
    p.add_argument("--trim-fraction", type=float, default=0.0,
                   help="contamination-robust refit: drop this fraction of highest-scoring training rows and "
                        "continue training (default 0: off)")
    p.add_argument("--seed", type=int, default=0)
    common_options(p)


def _auto_or(parse: Any) -> Any:
    """An argparse type accepting ``auto`` or whatever ``parse`` accepts."""
    def convert(text: str) -> Any:
        return "auto" if text == "auto" else parse(text)
    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def _binary_labels(y: np.ndarray | None) -> np.ndarray | None:
    if y is None:
        return None
    values = np.unique(y)
    if not np.isin(values, (0, 1)).all():
        raise ConfigError(
            f"anomaly labels must be 0 (normal) or 1 (anomaly), found values {values[:5].tolist()}; "
            "pick the right --label-column or recode the labels"
        )
    return y.astype(int)


def _metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    """ROC-AUC and average precision; infinite scores keep their rank, undefined metrics are None."""
    if len(np.unique(y)) < 2:
        return {"roc_auc": None, "average_precision": None}
    ranked = np.nan_to_num(scores, nan=-np.inf, posinf=np.finfo(float).max, neginf=np.finfo(float).min)
    return {"roc_auc": finite_or_none(roc_auc_score(y, ranked)),
            "average_precision": finite_or_none(average_precision_score(y, ranked))}


@command
def cmd_detect(args: argparse.Namespace) -> dict[str, Any]:
    dataset = load_dataset(args.data, label_column=args.label_column)
    y = _binary_labels(dataset.y)
    if args.model is not None:
        detector = VAEDetector.load(args.model)
        scores = detector.decision_function(dataset.x)
    else:
        detector = VAEDetector(
            likelihood=args.likelihood, prior=args.prior, latent_dim=args.latent_dim, hidden=args.hidden,
            contamination=args.contamination, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            patience=args.patience or None, validation_fraction=args.validation_fraction,
            importance_samples=args.importance_samples, constant_columns=args.constant_columns,
            training_noise=args.training_noise, max_train_rows=args.max_train_rows,
            trim_fraction=args.trim_fraction, random_state=args.seed,
        ).fit(dataset.x)
        scores = detector.decision_scores_
    flagged = (scores > detector.threshold_).astype(int)
    if args.save is not None:
        detector.save(args.save)
    columns, names, formats = [np.arange(len(scores)), scores, flagged], ["row", "anomaly_score", "flagged"], \
        ["%d", "%.6f", "%d"]
    if y is not None:
        columns, names, formats = columns + [y], names + ["label"], formats + ["%d"]
    buffer = io.StringIO()
    np.savetxt(buffer, np.column_stack(columns), delimiter=",", fmt=formats, header=",".join(names), comments="")
    if args.output:
        atomic_write_bytes(Path(args.output), lambda f: f.write(buffer.getvalue().encode()))
    elif not args.json:
        sys.stdout.write(buffer.getvalue())
    result = detector.train_result_
    summary: dict[str, Any] = {
        "data": str(args.data), "n_rows": int(len(scores)), "n_flagged": int(flagged.sum()),
        "threshold": finite_or_none(detector.threshold_), "contamination": detector.contamination,
        "likelihood": detector.likelihood, "prior": detector.prior,
        "model": None if args.model is None else str(args.model),
        "saved": None if args.save is None else str(args.save),
        "output": args.output, "non_finite_scores": int((~np.isfinite(scores)).sum()),
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "diverged": result.diverged,
        "train_seconds": result.train_seconds,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in getattr(detector, "config_", {}).items()},
    }
    if y is not None:
        summary.update(_metrics(y, scores), n_labelled_anomalies=int(y.sum()))
    quality = "" if y is None else f"; ROC-AUC {summary['roc_auc']}, AP {summary['average_precision']}"
    source = (f"saved detector {args.model}" if args.model
              else f"{detector.likelihood} VAE, {result.epochs_run} epochs")
    _say(args, f"{args.data}: {source}; {summary['n_flagged']}/{summary['n_rows']} rows flagged{quality}"
               + (f"; scores in {args.output}" if args.output else ""))
    return summary
