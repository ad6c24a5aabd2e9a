"""``vaekit plot``: figures (PNG) and a self-contained HTML page of a saved run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..validation import OutputDir
from .options import POSITIVE_INT, common_options, file_options, user_file_options
from .output import say

NAME = "plot"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help="figures (PNG) and a self-contained HTML page of a saved run")
    p.add_argument("run_dir", type=Path, help="a directory saved by vaekit fit --out or vaekit detect --save")
    p.add_argument("--data", help="data set or file for the latent-space plot (default: the run's test split)")
    p.add_argument("--label-column", help="CSV column of labels (colours the latent space), kept out of x")
    p.add_argument("--task-column", help="CSV column holding the task index s, kept out of x")
    user_file_options(p)
    p.add_argument("--embedding", choices=("auto", "pca", "tsne"), default="auto",
                   help="2-d view of latent codes wider than 2: PCA (auto) or t-SNE")
    p.add_argument("--max-points", type=POSITIVE_INT, default=2000, help="rows shown in the latent-space plot")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the t-SNE progress bar")
    p.add_argument("--out", type=OutputDir(), help="folder for the figures and index.html (default RUN_DIR/plots)")
    common_options(p)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ..plotting import plot_run

    result = plot_run(args.run_dir, args.out, data=args.data, embedding=args.embedding, max_points=args.max_points,
                      data_options=file_options(args), progress=None if args.progress else False)
    say(args, f"{len(result['files'])} figures and {result['html']} (open it in a browser)")
    return result
