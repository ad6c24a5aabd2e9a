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
    p.add_argument("--data", required=True, help="a data set name or a .npz/.npy/.csv file to score")
    data_column_options(p)
    p.add_argument("--output", type=OutputFile(),
                   help="CSV file for the scores (default: stdout, or the JSON object with --json)")
    p.add_argument("--importance-samples", type=POSITIVE_INT, default=100,
                   help="K, importance samples per row for log p(x)")
    p.add_argument("--seed", type=SEED, default=0,
                   help="seeds the importance samples: the same rows give the same scores")
    p.add_argument("--memory-map", action="store_true",
                   help="score a .npy file (or the uncompressed x of a .npz) block by block through a read-only "
                        "memory map, writing --output as it goes: resident memory stays bounded whatever the "
                        "file's size; the scores equal the in-memory ones")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    common_options(p)


#: rows scored per block by ``score --memory-map`` (the importance-sampling buffers are chunked below this)
MAPPED_BLOCK_ROWS = 4096


def _score_memory_mapped(args: argparse.Namespace) -> dict[str, Any]:
    """``score --memory-map``: block by block from the map straight into the output file (written atomically)."""
    import copy
    import math

    import numpy as np
    from tqdm import tqdm

    from ..checkpoint import atomic_write_bytes
    from ..data.mapped import MappedRows, check_finite_block, open_memory_map
    from ..errors import ConfigError
    from ..trained import TrainedModel

    if not args.output:
        raise ConfigError("--memory-map writes the scores as it goes: give --output FILE")
    if file_options(args):
        raise ConfigError("--memory-map reads an array (.npy, .npz): the CSV column options do not apply")
    trained = TrainedModel.load(args.model_dir)
    if trained.model.config.n_tasks:
        raise ConfigError("a task-conditioned model needs each row's task: score the data in memory with --task-column")
    if not trained.scores_rows_independently:  # scored block by block, its scores would depend on the blocks
        raise ConfigError("this model's encoder draws its samples per batch (AVB): score the data in memory")
    rows = MappedRows(open_memory_map(Path(args.data)))
    count, total, finite = 0, 0.0, 0
    # the double-precision copy that scores rows, made once (not once per block)
    scoring = TrainedModel(copy.deepcopy(trained.model).double(), trained.preprocessor, trained.info)

    def write(f: Any) -> None:
        nonlocal count, total, finite
        f.write(b"row,log_likelihood\n")
        blocks = rows.blocks(MAPPED_BLOCK_ROWS)
        bar = tqdm(blocks, total=math.ceil(len(rows) / MAPPED_BLOCK_ROWS), unit="block", file=sys.stderr,
                   disable=not args.progress or args.quiet or None)
        for block in bar:
            check_finite_block(block, Path(args.data).name, np.arange(count, count + len(block)))
            scores = scoring.score_samples(block, n_samples=args.importance_samples, seed=args.seed)
            f.write("".join(f"{count + i},{v:.6f}\n" for i, v in enumerate(scores)).encode())
            ok = np.isfinite(scores)
            count, total, finite = count + len(scores), total + float(scores[ok].sum()), finite + int(ok.sum())

    atomic_write_bytes(Path(args.output), write)
    say(args, f"wrote {count} scores to {args.output} (memory-mapped, {MAPPED_BLOCK_ROWS} rows per block)")
    return {"n_rows": count, "output": args.output, "seed": args.seed, "importance_samples": args.importance_samples,
            "mean_log_likelihood": total / finite if finite else None, "non_finite_scores": count - finite,
            "memory_mapped": True}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    if args.memory_map:
        return _score_memory_mapped(args)

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
