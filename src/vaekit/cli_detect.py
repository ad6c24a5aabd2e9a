"""``vaekit detect``: train a VAE anomaly detector and score every row (or score with a saved detector)."""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from .checkpoint import atomic_write_bytes
from .cli import FRACTION, NON_NEGATIVE_INT, POSITIVE_FLOAT, POSITIVE_INT, SEED, _int_list, _say, command, common_options
from .data import load_dataset
from .detect import VAEDetector
from .labels import anomaly_labels
from .likelihoods import LIKELIHOODS
from .priors import PRIORS
from .trained import finite_or_none
from .validation import FloatRange, OutputDir, OutputFile, output_lock

CONTAMINATION = FloatRange(0.0, 0.5, low_open=True)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="anomaly scores -log p(x) of every row; ROC-AUC and AP given labels")
    p.add_argument("--data", required=True, help="a known data set name or a .npz/.csv file")
    p.add_argument("--label-column", help="CSV column of anomaly labels, kept out of x: 0/1 (1 = anomaly), or two "
                   "names such as normal/anomaly, no/yes, n/o (see --positive-label)")
    p.add_argument("--positive-label", help="the label value that marks an anomaly (needed for labels other than "
                   "0/1 and the usual names, e.g. --positive-label fraud)")
    p.add_argument("--model", type=Path, help="score with a detector saved by --save instead of training")
    p.add_argument("--save", type=OutputDir(), help="directory to save the trained detector in")
    p.add_argument("--output", type=OutputFile(), help="CSV file for the per-row scores (default: stdout unless --json)")
    p.add_argument("--contamination", type=CONTAMINATION, default=0.1,
                   help="expected fraction of anomalies; sets the flagging threshold (training only)")
    p.add_argument("--likelihood", choices=sorted(LIKELIHOODS), default="student-t")
    p.add_argument("--prior", choices=sorted(PRIORS), default="standard")
    p.add_argument("--latent-dim", type=POSITIVE_INT, default=2)
    p.add_argument("--hidden", type=_int_list, default=(128, 128), help="hidden sizes, e.g. 128,128")
    p.add_argument("--epochs", type=POSITIVE_INT, default=100)
    p.add_argument("--batch-size", type=POSITIVE_INT, default=100)
    p.add_argument("--lr", type=POSITIVE_FLOAT, default=1e-3)
    p.add_argument("--patience", type=NON_NEGATIVE_INT, default=10, help="early-stopping patience in epochs (0: none)")
    p.add_argument("--validation-fraction", type=FRACTION, default=0.1, help="rows held out for early stopping")
    p.add_argument("--importance-samples", type=POSITIVE_INT, default=100)
    p.add_argument("--constant-columns", choices=("error", "drop"), default="error")
    p.add_argument("--seed", type=SEED, default=0)
    common_options(p)


def _metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    """ROC-AUC and average precision; infinite scores keep their rank, undefined metrics are None."""
    if len(np.unique(y)) < 2:
        return {"roc_auc": None, "average_precision": None}
    ranked = np.nan_to_num(scores, nan=-np.inf, posinf=np.finfo(float).max, neginf=np.finfo(float).min)
    return {"roc_auc": finite_or_none(roc_auc_score(y, ranked)),
            "average_precision": finite_or_none(average_precision_score(y, ranked))}


def _train(args: argparse.Namespace, x: np.ndarray) -> VAEDetector:
    return VAEDetector(
        likelihood=args.likelihood, prior=args.prior, latent_dim=args.latent_dim, hidden=args.hidden,
        contamination=args.contamination, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        patience=args.patience or None, validation_fraction=args.validation_fraction,
        importance_samples=args.importance_samples, constant_columns=args.constant_columns,
        random_state=args.seed,
    ).fit(x)


@command
def cmd_detect(args: argparse.Namespace) -> dict[str, Any]:
    dataset = load_dataset(args.data, label_column=args.label_column)
    y = anomaly_labels(dataset.y, dataset.meta.get("label_names"), args.positive_label)
    lock = output_lock(args.save, "--save") if args.save is not None else contextlib.nullcontext()
    with lock:
        if args.model is not None:
            detector = VAEDetector.load(args.model)
            scores = detector.decision_function(dataset.x)
        else:
            detector = _train(args, dataset.x)
            scores = detector.decision_scores_
        if args.save is not None:
            detector.save(args.save)
    flagged = (scores > detector.threshold_).astype(int)
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
    }
    if y is not None:
        summary.update(_metrics(y, scores), n_labelled_anomalies=int(y.sum()))
    quality = "" if y is None else f"; ROC-AUC {summary['roc_auc']}, AP {summary['average_precision']}"
    source = (f"saved detector {args.model}" if args.model
              else f"{detector.likelihood} VAE, {result.epochs_run} epochs")
    _say(args, f"{args.data}: {source}; {summary['n_flagged']}/{summary['n_rows']} rows flagged{quality}"
               + (f"; scores in {args.output}" if args.output else ""))
    return summary
