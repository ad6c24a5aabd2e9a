"""A refactor must not re-key a stored run: committed results and users' databases are found by their keys.

``tests/pinned/run_keys.json`` holds, per thesis target and budget, the first 16 hex digits of every run's key
(:func:`vaekit.experiments.store.config_key` of the configuration ``Target.runs`` returns) as computed before the
experiment packages were restructured (issue 16). A grid may be smaller here when a data set is absent, so the test
checks that every key computed now is a pinned one. A deliberate change of a configuration (or a numerics bump)
re-pins with ``python tests/test_run_keys.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


from vaekit.experiments.store import config_key
from vaekit.experiments.targets import load_targets

ROOT = Path(__file__).resolve().parents[1]
PINNED = ROOT / "tests" / "pinned" / "run_keys.json"
#: the code version the pinned keys are hashed with: fixed, so a numerics bump (which moves every stored key by
#: design) does not touch this test, which guards the configurations themselves
PINNED_VERSION = "numerics-3"
THESIS_MODULES = ("vaekit.experiments.chapter3", "vaekit.experiments.chapter4", "vaekit.experiments.chapter5",
                  "vaekit.experiments.toy")


def current_keys() -> dict[str, list[str]]:
    """``{"TARGET BUDGET": sorted short keys}`` for every thesis target of chapters 3-5 and the toy target (other
    targets registered by now, e.g. a test's or a sweep's, are not pinned)."""
    keys = {}
    for name, target in sorted(load_targets().items()):
        if not type(target).__module__.startswith(THESIS_MODULES):
            continue
        for budget in target.budgets:
            keys[f"{name} {budget}"] = sorted(config_key(c, PINNED_VERSION)[:16] for c in target.runs(budget))
    return keys


def test_every_run_keeps_its_key():
    pinned, current = json.loads(PINNED.read_text()), current_keys()
    assert set(pinned) <= set(current), f"grids gone: {sorted(set(pinned) - set(current))}"
    for grid, keys in current.items():
        assert grid in pinned, f"{grid}: a new grid; re-pin with python tests/test_run_keys.py"
        moved = sorted(set(keys) - set(pinned[grid]))
        assert not moved, f"{grid}: {len(moved)} of {len(keys)} runs changed their key (e.g. {moved[:3]})"


def test_committed_raw_results_keep_their_keys():
    """The key of each committed run recomputes from its configuration and its numerics version."""
    rows = [json.loads(line) for path in sorted((ROOT / "docs" / "results").rglob("runs.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]
    assert rows
    for r in rows:
        assert config_key(r["config"], r["code_version"]) == r["key"], r["config"]


if __name__ == "__main__":  # re-pin: add the keys computed here to the pinned ones (a grid is smaller where a data
    # set is absent, so replacing would drop the keys of its absent runs; a key no grid makes any more is harmless)
    pinned = json.loads(PINNED.read_text()) if PINNED.is_file() else {}
    for name, keys in current_keys().items():
        pinned[name] = sorted(set(keys) | set(pinned.get(name, [])))
    PINNED.write_text(json.dumps(pinned, indent=0, sort_keys=True))
    sys.exit(0)
