"""``vaekit detect``: train a VAE anomaly detector and score every row (or score with a saved detector)."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..names import LIKELIHOOD_NAMES, PRIOR_NAMES
from ..tracking import tracking_callbacks
from ..validation import AutoOr, DeviceName, FloatRange, OutputDir, OutputFile, output_lock
from .options import (INT_LIST, NON_NEGATIVE_FLOAT, NON_NEGATIVE_INT, POSITIVE_FLOAT, POSITIVE_INT, SEED,
                      common_options, file_options, tracking_options, user_file_options)
from .output import counted, fmt, rows_csv, say, write_csv

if TYPE_CHECKING:  # pragma: no cover - numpy, scikit-learn and torch load inside run()
    import numpy as np

    from ..detect import VAEDetector

NAME = "detect"
CONTAMINATION = FloatRange(0.0, 0.5, low_open=True)
#: at most half the rows held out: a validation split larger than the training split is not one
VALIDATION_FRACTION = FloatRange(0.0, 0.5)
TRIM_FRACTION = FloatRange(0.0, 0.5, high_open=True)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help="anomaly scores -log p(x) of every row; ROC-AUC and AP given labels")
    p.add_argument("--data", required=True, help="a known data set name or a .npz/.csv file")
    p.add_argument("--label-column", help="CSV column of anomaly labels, kept out of x: 0/1 (1 = anomaly), or two "
                   "names such as normal/anomaly, no/yes, n/o (see --positive-label)")
    p.add_argument("--positive-label", help="the label value that marks an anomaly (needed for labels other than "
                   "0/1 and the usual names, e.g. --positive-label fraud)")
    user_file_options(p)
    p.add_argument("--model", type=Path,
                   help="score with a saved model instead of training: a detector (--save) or a vaekit fit --out "
                        "directory (then the threshold is the --contamination quantile of these rows' scores)")
    p.add_argument("--save", type=OutputDir(), help="directory to save the trained detector in")
    p.add_argument("--output", type=OutputFile(), help="CSV file for the per-row scores (default: stdout unless --json)")
    p.add_argument("--contamination", type=CONTAMINATION, default=None,
                   help="expected fraction of anomalies; sets the flagging threshold (default 0.1; with --model: "
                        "the saved detector's, and a new value re-thresholds it)")
    p.add_argument("--likelihood", choices=sorted(LIKELIHOOD_NAMES), default="student-t", help="decoder p(x|z)")
    p.add_argument("--prior", choices=sorted(PRIOR_NAMES), default="standard", help="prior p(z)")
    auto = " (default auto: chosen from the data's shape, see docs/anomaly.md)"
    p.add_argument("--latent-dim", type=AutoOr(POSITIVE_INT), default="auto", help="latent size" + auto)
    p.add_argument("--hidden", type=AutoOr(INT_LIST), default="auto", help="hidden sizes, e.g. 128,128" + auto)
    p.add_argument("--epochs", type=AutoOr(POSITIVE_INT), default="auto", help="maximum epochs" + auto)
    p.add_argument("--batch-size", type=AutoOr(POSITIVE_INT), default="auto", help="mini-batch size" + auto)
    p.add_argument("--lr", type=POSITIVE_FLOAT, default=1e-3, help="Adam learning rate")
    p.add_argument("--patience", type=AutoOr(NON_NEGATIVE_INT), default="auto",
                   help="early-stopping patience in epochs (0: none)" + auto)
    p.add_argument("--validation-fraction", type=VALIDATION_FRACTION, default=0.1,
                   help="rows held out for early stopping (at most 0.5)")
    p.add_argument("--importance-samples", type=POSITIVE_INT, default=100,
                   help="K, importance samples per row for log p(x)")
    p.add_argument("--constant-columns", choices=("error", "drop"), default="drop",
                   help="drop columns constant in the training rows (default), or stop with an error")
    p.add_argument("--training-noise", type=AutoOr(NON_NEGATIVE_FLOAT), default="auto",
                   help="std of the dequantisation noise on standardised training batches" + auto)
    p.add_argument("--max-train-rows", type=AutoOr(POSITIVE_INT), default="auto",
                   help="train on a seeded subsample of at most this many rows" + auto)
    p.add_argument("--trim-fraction", type=TRIM_FRACTION, default=0.1,
                   help="contamination-robust refit: drop this fraction of highest-scoring training rows and "
                        "continue training for half the epochs (0: off)")
    p.add_argument("--seed", type=SEED, default=0, help="seeds the validation split, training and the scores")
    p.add_argument("--device", type=DeviceName(), default=None,
                   help="cpu (default), cuda, cuda:N, mps, or auto (CUDA when available)")
    tracking_options(p)
    common_options(p)


def _metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    """ROC-AUC and average precision; infinite scores keep their rank, undefined metrics are None."""
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    from ..trained import finite_or_none

    if len(np.unique(y)) < 2:
        return {"roc_auc": None, "average_precision": None}
    ranked = np.nan_to_num(scores, nan=-np.inf, posinf=np.finfo(float).max, neginf=np.finfo(float).min)
    return {"roc_auc": finite_or_none(roc_auc_score(y, ranked)),
            "average_precision": finite_or_none(average_precision_score(y, ranked))}


def _check_save_folder(save: Path, detector: VAEDetector | None) -> None:
    """Refuse ``--save`` into a folder whose ``detector.pt`` vaekit did not write, or into a ``vaekit fit`` run
    folder whose ``model.pt`` is not ``detector``'s network (None: one still to train): the folder would hold two
    models, and commands would pick different ones."""
    import torch

    from ..checkpoint import is_vaekit_checkpoint
    from ..errors import ConfigError
    from ..trained import CHECKPOINT_NAME, DETECTOR_CHECKPOINT_NAME, TrainedModel

    saved = save / DETECTOR_CHECKPOINT_NAME
    if saved.is_file() and not is_vaekit_checkpoint(saved):
        raise ConfigError(f"--save {save} holds a {saved.name} that vaekit did not write (another program's, or "
                          "damaged), which the detector would replace; choose a new or empty folder")
    if not (save / CHECKPOINT_NAME).is_file():
        return
    if detector is not None:
        run_model, own = TrainedModel.load(save).model, detector.trained_.model
        ours, theirs = own.state_dict(), run_model.state_dict()
        if own.config == run_model.config and ours.keys() == theirs.keys() and all(
                torch.equal(ours[k].cpu(), theirs[k].cpu()) for k in ours):
            return  # detect --model RUN --save RUN: the run's own model, calibrated
    raise ConfigError(f"--save {save} holds a vaekit fit run ({CHECKPOINT_NAME}) of another model; saving the "
                      "detector there would leave two models in one folder: choose another --save folder")


#: the options that shape a detector's training: a saved one (--model) is used as it was trained
TRAINING_OPTIONS = ("likelihood", "prior", "latent_dim", "hidden", "epochs", "batch_size", "lr", "patience",
                    "validation_fraction", "constant_columns", "training_noise", "max_train_rows", "trim_fraction")


def _changed(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    """The options among ``names`` given away from their defaults, as flags."""
    commands = argparse.ArgumentParser().add_subparsers()
    add_parser(commands)
    parser = commands.choices[NAME]
    return [f"--{k.replace('_', '-')}" for k in names if getattr(args, k) != parser.get_default(k)]


def _warn_training_options(args: argparse.Namespace) -> None:
    """Warn about training options given with --model (they were ignored without a word)."""
    given = _changed(args, TRAINING_OPTIONS)
    if given:
        warnings.warn(f"{', '.join(given)}: a saved detector (--model) is used as it was trained; these training "
                      "options are ignored", stacklevel=2)


def _saved_detector(args: argparse.Namespace) -> VAEDetector:
    """The detector of ``--model``: a saved detector scores with its own importance noise (its K and seed); a
    ``vaekit fit`` folder with ``--importance-samples`` and ``--seed``, as ``vaekit score`` does."""
    from ..detect import VAEDetector
    from ..errors import ConfigError
    from ..trained import DETECTOR_CHECKPOINT_NAME, TrainedModel

    path = Path(args.model)
    if path.is_dir() and not (path / DETECTOR_CHECKPOINT_NAME).is_file():
        trained = TrainedModel.load(path)
        if trained.model.config.n_tasks:
            raise ConfigError(f"{path} holds a model conditioned on {trained.model.config.n_tasks} tasks; detect "
                              "scores rows without task indices: score it with vaekit score (with the task column) "
                              "instead")
        ignored = _changed(args, ("device",))
        detector = VAEDetector.from_trained(trained, importance_samples=args.importance_samples,
                                            random_state=args.seed)
    else:
        ignored = _changed(args, ("importance_samples", "seed", "device"))
        detector = VAEDetector.load(path)
    if ignored:
        warnings.warn(f"{', '.join(ignored)}: ignored with --model (it scores on the CPU; a saved detector with the "
                      "importance samples it was saved with)", stacklevel=2)
    return detector


def _named_rows(detector: VAEDetector, x: np.ndarray) -> Any:
    """``x`` as a DataFrame with the detector's column names when it has them (rows already aligned by name),
    so scikit-learn's feature-name check sees what the detector was fitted on."""
    names = getattr(detector, "feature_names_in_", None)
    if names is None:
        return x
    import pandas as pd

    return pd.DataFrame(x, columns=list(names))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from ..columns import align_columns
    from ..data import columns_info, load_dataset
    from ..detect import VAEDetector
    from ..labels import anomaly_labels
    from ..trained import finite_or_none

    dataset = load_dataset(args.data, **file_options(args))
    y = anomaly_labels(dataset.y, dataset.meta.get("label_names"), args.positive_label, args.label_column)
    threshold_from = "training rows"
    lock = output_lock(args.save, "--save") if args.save is not None else contextlib.nullcontext()
    with lock:
        if args.model is not None:
            _warn_training_options(args)
            detector = _saved_detector(args)
            if args.save is not None:
                _check_save_folder(args.save, detector)
            dataset = align_columns(detector.trained_, dataset)
            rows = _named_rows(detector, dataset.x)
            if not hasattr(detector, "decision_scores_"):  # a model saved by vaekit fit: threshold from these rows
                detector.set_params(contamination=0.1 if args.contamination is None else args.contamination)
                detector.calibrate(rows)
                threshold_from = "scored rows"
            elif args.contamination is not None:
                detector.set_contamination(args.contamination)
            scores = detector.decision_function(rows)
        else:
            if args.save is not None:
                _check_save_folder(args.save, None)  # before training
            detector = VAEDetector(
                likelihood=args.likelihood, prior=args.prior, latent_dim=args.latent_dim, hidden=args.hidden,
                contamination=0.1 if args.contamination is None else args.contamination, epochs=args.epochs,
                batch_size=args.batch_size, lr=args.lr,
                patience=args.patience if args.patience == "auto" else (args.patience or None),
                validation_fraction=args.validation_fraction, importance_samples=args.importance_samples,
                constant_columns=args.constant_columns, training_noise=args.training_noise,
                max_train_rows=args.max_train_rows, trim_fraction=args.trim_fraction, random_state=args.seed,
                device=args.device,
                callbacks=tracking_callbacks(args) or None,
            ).fit(dataset.x)
            detector.trained_.info.update(columns_info(dataset))
            scores = detector.decision_scores_
        if args.save is not None:
            detector.save(args.save)
    flagged = (scores > detector.threshold_).astype(int)
    ids = dataset.meta.get("ids")
    text = rows_csv([dataset.meta.get("id_column") or "row", "anomaly_score", "flagged"]
                    + (["label"] if y is not None else []),
                    ([ids[i] if ids is not None else i, f"{scores[i]:.6f}", int(flagged[i])]
                     + ([int(y[i])] if y is not None else []) for i in range(len(scores))))
    if args.output:
        write_csv(args.output, text)
    elif not args.json:
        sys.stdout.write(text)
    result = detector.train_result_
    summary: dict[str, Any] = {
        "data": str(args.data), "n_rows": int(len(scores)), "n_flagged": int(flagged.sum()),
        "threshold": finite_or_none(detector.threshold_), "contamination": detector.contamination,
        "threshold_from": threshold_from,
        "likelihood": detector.likelihood, "prior": detector.prior,
        "trim_fraction": None if threshold_from == "scored rows" else detector.trim_fraction,
        "model": None if args.model is None else str(args.model),
        "saved": None if args.save is None else str(args.save),
        "output": args.output, "non_finite_scores": int((~np.isfinite(scores)).sum()),
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "diverged": result.diverged,
        "train_seconds": result.train_seconds,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in getattr(detector, "config_", {}).items()},
    }
    if y is not None:
        summary.update(_metrics(y, scores), n_labelled_anomalies=int(y.sum()))
    if not args.output:  # the per-row results go into the JSON object (with --output they are in that file)
        summary.update(scores=[finite_or_none(v) for v in scores], flagged=flagged.tolist())
        if ids is not None:
            summary["ids"] = ids
    quality = "" if y is None else f"; ROC-AUC {fmt(summary['roc_auc'], 3)}, AP {fmt(summary['average_precision'], 3)}"
    source = (f"{'saved model' if threshold_from == 'scored rows' else 'saved detector'} {args.model}" if args.model
              else f"{detector.likelihood} VAE, {counted(result.epochs_run, 'epoch')}"
              + (f" (with the refit without the {detector.trim_fraction:.0%} highest-scoring rows)"
                 if detector.trim_fraction > 0 else ""))
    line = (f"{args.data}: {source}; {summary['n_flagged']}/{summary['n_rows']} rows flagged{quality}"
            + (f"; scores in {args.output}" if args.output else ""))
    if args.output or args.json:
        say(args, line)
    else:  # stdout holds the CSV: it must stay one table (vaekit detect ... > flags.csv)
        print(line, file=sys.stderr)
    return summary
