"""The README's examples run verbatim (issue 18): every ```python and ```bash block not marked
``<!-- doctest: skip (reason) -->`` runs as written, in a fresh folder with the files it names, at a tiny budget:
``VAEKIT_MAX_EPOCHS=2`` caps every run's epochs (the commands themselves are unchanged). ``<!-- file: NAME -->``
blocks are written to NAME first."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"(?:<!--\s*(doctest: skip[^>]*|file: [^>]*?)\s*-->\n)?```(\w+)\n(.*?)```", re.S)


def blocks():
    return [(marker or "", lang, body) for marker, lang, body in FENCE.findall(README.read_text())]


def user_csv(path, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)) * [1, 10, 0.1, 3] + [5, 0, 1, -2]
    label = (rng.random(n) < 0.05).astype(int)
    with open(path, "w") as f:
        f.write("id,when,a,b,c,d,label\n")
        for i in range(n):
            f.write(f"row{i},2024-03-{1 + i % 28:02d}T12:00," + ",".join(f"{v:.5f}" for v in x[i]) + f",{label[i]}\n")


def test_every_skipped_block_says_why():
    found = blocks()
    assert len(found) >= 8
    for marker, lang, body in found:
        if marker.startswith("doctest: skip"):
            assert re.search(r"skip \(.+\)", marker), marker


def test_readme_examples_run_verbatim(tmp_path):
    user_csv(tmp_path / "my_rows.csv", 400, 0)
    user_csv(tmp_path / "new_rows.csv", 50, 1)
    env = {**os.environ, "VAEKIT_MAX_EPOCHS": "2",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    ran = []
    for marker, _, body in blocks():
        if marker.startswith("file: "):
            (tmp_path / marker.removeprefix("file: ").strip()).write_text(body)
    for marker, lang, body in blocks():
        if marker.startswith(("doctest: skip", "file: ")) or lang not in ("python", "bash"):
            continue
        command = [sys.executable, "-c", body] if lang == "python" else ["bash", "-euo", "pipefail", "-c", body]
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
        assert result.returncode == 0, f"README {lang} block failed:\n{body}\n{result.stderr[-3000:]}"
        ran.append(lang)
    assert ran.count("python") >= 1 and ran.count("bash") >= 1
    for made in ("runs/cancer/model.pt", "runs/mine/run.toml", "scores.csv", "flags.csv", "runs/detector/detector.pt",
                 "runs/mine/plots/index.html", "runs/mine-seed1/model.pt", "runs/sweep/report.html"):
        assert (tmp_path / made).is_file(), made
    assert (tmp_path / "scores.csv").read_text().splitlines()[1].startswith("row0,")
