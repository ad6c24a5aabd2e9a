"""``python -m vaekit.experiments.chapterN`` is an alias of ``vaekit reproduce`` (issue 16: one experiment driver)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vaekit
from vaekit.experiments.alias import forward

SRC = Path(vaekit.__file__).resolve().parents[1]


@pytest.mark.parametrize("chapter", ["chapter3", "chapter4", "chapter5"])
def test_options_of_the_old_chapter_scripts_say_what_replaces_them(chapter, capsys):
    assert forward(f"vaekit.experiments.{chapter}", ["table-5.3", "--from-cache", "--threads", "2"]) == 2
    err = capsys.readouterr().err
    assert "--from-cache is gone (vaekit report" in err and "--threads is gone" in err


def test_the_old_entry_point_runs_vaekit_reproduce_through_the_results_database(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "vaekit.experiments.chapter4", "toy", "--seeds", "1", "--workers", "1", "--db",
         str(tmp_path / "db.sqlite"), "--out", str(tmp_path / "toy"), "--json", "--no-progress"],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "note: python -m vaekit.experiments.chapter4 is an alias of `vaekit reproduce`" in done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["target"] == "toy" and summary["executed"] == summary["keys"] > 0
    assert (tmp_path / "db.sqlite").is_file() and (tmp_path / "toy" / "report.md").is_file()
