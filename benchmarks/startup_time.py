"""Start-up time of the ``vaekit`` command line: wall seconds of ``--version``, ``--help``, ``fit --help`` and
``datasets`` per repeat, for one source tree (``--src``, default this checkout's ``src``).

    python benchmarks/startup_time.py --label after --repeats 5
    python benchmarks/startup_time.py --label before --src /path/to/older/checkout/src --repeats 5

Appends one JSON line per command and repeat (with the load average at the time, since a shared machine's load
dominates such timings) to ``benchmarks/results/startup_time.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (["--version"], ["--help"], ["fit", "--help"], ["datasets"])
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the source tree to time")
    parser.add_argument("--label", required=True, help="names the rows, e.g. before / after")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "startup_time.jsonl")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.src.resolve())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as f:
        for repeat in range(args.repeats):
            for command in COMMANDS:
                load = os.getloadavg()[0]
                start = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "vaekit", *command], env=env, capture_output=True)
                seconds = time.perf_counter() - start
                row = {"label": args.label, "command": " ".join(command), "repeat": repeat, "seconds": seconds,
                       "returncode": done.returncode, "load_average_1min": load, "cpus": os.cpu_count()}
                f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
