"""The numbers of a fixed set of seeded runs (every likelihood x prior, CVAE, beta-CVAE, VFAE, the proposed
model, the detector, a reproduce target) are pinned under the current numerics version: a refactor must leave them
as they are (to float rounding, rtol 1e-5), and a change that moves them must bump ``NUMERICS_VERSION`` (which
re-keys every stored result) and re-pin with ``python tests/pinned_runs.py``."""

from __future__ import annotations

import json
import math

import pytest

from pinned_runs import PINNED, runs
from vaekit._version import NUMERICS_VERSION


def _compare(path: str, got: object, want: object, problems: list[str]) -> None:
    if isinstance(want, dict):
        for key in want:
            _compare(f"{path}.{key}", got.get(key) if isinstance(got, dict) else None, want[key], problems)
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            problems.append(f"{path}: {got!r} != {want!r}")
            return
        for i, (g, w) in enumerate(zip(got, want)):
            _compare(f"{path}[{i}]", g, w, problems)
    elif isinstance(want, float):
        if not isinstance(got, (int, float)) or not math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6):
            problems.append(f"{path}: {got!r} != {want!r}")
    elif got != want:
        problems.append(f"{path}: {got!r} != {want!r}")


@pytest.mark.slow
def test_pinned_runs_are_unchanged() -> None:
    pinned = json.loads(PINNED.read_text())
    assert pinned["numerics_version"] == NUMERICS_VERSION, (
        f"NUMERICS_VERSION is {NUMERICS_VERSION} but the pinned numbers are of version "
        f"{pinned['numerics_version']}: re-pin with `python tests/pinned_runs.py`")
    problems: list[str] = []
    _compare("runs", runs(), pinned["runs"], problems)
    assert not problems, (
        "numbers moved under an unchanged NUMERICS_VERSION; if the change is intended, bump "
        "vaekit._version.NUMERICS_VERSION and re-pin with `python tests/pinned_runs.py`:\n" + "\n".join(problems[:20]))
