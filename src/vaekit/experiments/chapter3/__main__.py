"""``python -m vaekit.experiments.chapter3 TARGET [--quick|--full] [--seeds N] [--out DIR]``.

Runs a chapter-3 target's grid in this process (:func:`~vaekit.experiments.targets.run_serial`), writes the
report and ``results.json`` (every run's configuration and metrics) into ``--out``, and prints the markdown.
``--results FILE`` rebuilds the report from a saved ``results.json`` without training.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from ..targets import TARGETS, RecordingTarget, chapter_parser, load_results, run_serial
from . import TARGET_NAMES
from .runs import CHAPTER3_DATASETS, dataset_available


def main(argv: Sequence[str] | None = None) -> int:
    parser = chapter_parser("python -m vaekit.experiments.chapter3", __doc__, TARGET_NAMES,
                            "comma-separated data sets (default: the target's)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    target = TARGETS[args.target]
    out = args.out or Path("results") / args.target
    budget = args.budget or "quick"
    started = time.perf_counter()
    if args.results is not None:
        report = target.report(load_results(args.results), out)
    else:
        datasets = args.datasets.split(",") if args.datasets else None
        absent = [d for d in (datasets or CHAPTER3_DATASETS) if not dataset_available(d)]
        if absent and args.target in ("table-3.2", "figure-3.5"):
            print(f"skipping data sets absent here: {', '.join(absent)}", file=sys.stderr)
        recorder = RecordingTarget(target, out, shown=("test_log_likelihood", "diverged", "epochs_run"))
        report = run_serial(recorder, budget, args.seeds, datasets, out)
    seconds = time.perf_counter() - started
    footer = (f"\nWall clock of this command: {seconds:.0f} s ({budget} budget, "
              f"{torch.get_num_threads()} torch thread(s), {platform.machine()} CPU with {os.cpu_count()} "
              "cores).")
    if args.results is None:
        (out / "wall_clock.txt").write_text(footer.strip() + "\n")
    elif (args.results.parent / "wall_clock.txt").is_file():  # the report of a saved run keeps its timing
        footer = "\n" + (args.results.parent / "wall_clock.txt").read_text().strip()
    md = out / f"{args.target}.md"
    if md.exists():
        md.write_text(md.read_text().rstrip("\n") + "\n\n" + footer.strip() + "\n")
    print(report["markdown"] + footer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
