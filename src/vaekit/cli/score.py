"""``vaekit score``: per-row log p(x) of a file under a saved model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..validation import OutputFile
from .options import POSITIVE_INT, SEED, common_options, data_column_options, file_options
from .output import rows_csv, say, write_csv

NAME = "score"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help="per-row log p(x) of a file under a saved model")
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from ..columns import align_columns
    from ..data import load_dataset
    from ..trained import TrainedModel, finite_or_none

    trained = TrainedModel.load(args.model_dir)
    dataset = align_columns(trained, load_dataset(args.data, **file_options(args)))
    scores = trained.score_samples(dataset.x, dataset.s, n_samples=args.importance_samples, seed=args.seed,
                                   progress=None if args.progress else False)
    ids = dataset.meta.get("ids")
    id_name = dataset.meta.get("id_column") or "row"
    text = rows_csv([id_name, "log_likelihood"],
                    ([ids[i] if ids is not None else i, f"{score:.6f}"] for i, score in enumerate(scores)))
    if args.output:
        write_csv(args.output, text)
        say(args, f"wrote {len(scores)} scores to {args.output}")
    elif not args.json:
        sys.stdout.write(text)
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
