"""Injected faults in every write path: a failure (full disk, crash, exception) at any file-system step leaves the
previous complete output or the new complete output, never a mix, and no temporary files.

Each write is first run without faults while counting the file-system calls it makes; then it is rerun once per
call, failing exactly that call.
"""

import os
import shutil

import numpy as np
import pytest
import torch

from vaekit import TrainConfig, fit
from vaekit import checkpoint as checkpoint_module
from vaekit.checkpoint import atomic_write_bytes
from vaekit.data import Dataset
from vaekit.data.sources import save_npz_atomic
from vaekit.detect import VAEDetector
from vaekit.fitting import save_run

#: the calls a write may fail in (a full disk shows in fsync or in the write before it; a crash anywhere)
FAULT_POINTS = [(os, "fsync"), (os, "replace"), (os, "rename"), (os, "link"), (os, "fchmod"), (os, "chmod"),
                (shutil, "copy2"), (torch, "save"), (checkpoint_module, "_exchange")]


class Faults:
    """Counts the calls of :data:`FAULT_POINTS`; with ``fail_at`` = k, the k-th call raises ENOSPC."""

    def __init__(self, monkeypatch, fail_at=None):
        self.calls, self.fail_at = 0, fail_at
        for module, name in FAULT_POINTS:
            monkeypatch.setattr(module, name, self._wrap(getattr(module, name)))

    def _wrap(self, real):
        def call(*args, **kwargs):
            self.calls += 1
            if self.calls == self.fail_at:
                raise OSError(28, "No space left on device (injected)")
            return real(*args, **kwargs)
        return call


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def models():
    rng = np.random.default_rng(0)
    data = Dataset("d", rng.normal(size=(60, 3)))
    return [fit(data, latent_dim=2, hidden=(4,), train=TrainConfig(epochs=1, batch_size=10, seed=seed),
                importance_samples=2)[0] for seed in (0, 1)]


@pytest.fixture(scope="module")
def detectors():
    x = np.random.default_rng(0).normal(size=(60, 3))
    return [VAEDetector(latent_dim=1, hidden=(4,), epochs=1, importance_samples=2, random_state=seed).fit(x)
            for seed in (0, 1)]


def _writes(models, detectors):
    """(name, write(folder, which)) for every write path; ``which`` 0 is the old output, 1 the new one."""
    return {
        "run folder (fit --out)": lambda folder, which: save_run(models[which], {"run": which}, [{"epoch": 1}],
                                                                  folder / "run"),
        "detector (detect --save)": lambda folder, which: detectors[which].save(folder / "det"),
        "scores (score/detect --output)": lambda folder, which: atomic_write_bytes(
            folder / "scores.csv", lambda f: f.write(f"row,score\n0,{which}\n".encode())),
        "download cache (.npz)": lambda folder, which: save_npz_atomic(folder / "cache" / "d.npz",
                                                                        x=np.full((3, 2), which)),
    }


@pytest.mark.parametrize("path_name", ["run folder (fit --out)", "detector (detect --save)",
                                       "scores (score/detect --output)", "download cache (.npz)"])
def test_a_fault_at_any_step_leaves_old_or_new(path_name, models, detectors, tmp_path, monkeypatch):
    write = _writes(models, detectors)[path_name]
    reference = {}
    for which in (0, 1):
        folder = tmp_path / f"reference{which}"
        folder.mkdir()
        write(folder, which)
        reference[which] = _snapshot(folder)
    assert reference[0] != reference[1]
    counting = tmp_path / "counting"
    counting.mkdir()
    write(counting, 0)
    with monkeypatch.context() as m:
        faults = Faults(m)
        write(counting, 1)
    assert _snapshot(counting) == reference[1]
    assert faults.calls >= 2, "the write made no file-system calls that could fail"
    for k in range(1, faults.calls + 1):
        folder = tmp_path / f"fault{k}"
        folder.mkdir()
        write(folder, 0)
        with monkeypatch.context() as m:
            Faults(m, fail_at=k)
            try:
                write(folder, 1)
            except OSError:
                pass
        after = _snapshot(folder)
        assert after in (reference[0], reference[1]), f"fault at call {k} left a mix: {sorted(after)}"
        leftovers = [p.name for p in folder.rglob("*") if p.name.startswith(".")]
        assert not leftovers, f"fault at call {k} left temporary files {leftovers}"
