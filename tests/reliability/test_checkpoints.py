"""Checkpoints: round trip, atomic writes, and refusal of truncated, random, foreign and code-carrying files."""

import os
import pickle
import random

import numpy as np
import pytest
import torch

from vaekit import TrainConfig, TrainedModel, fit
from vaekit.errors import CheckpointError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    rng = np.random.default_rng(0)
    from vaekit.data import Dataset

    ds = Dataset("toy", rng.normal(size=(120, 3)))
    out = tmp_path_factory.mktemp("run")
    model, summary = fit(ds, likelihood="student-t", latent_dim=2, hidden=(8,), out=out,
                         train=TrainConfig(epochs=2, batch_size=20), importance_samples=5)
    return model, out, ds


def test_round_trip_gives_identical_scores(trained):
    model, out, ds = trained
    loaded = TrainedModel.load(out)
    assert loaded.model.config == model.model.config
    for a, b in zip(model.model.state_dict().values(), loaded.model.state_dict().values()):
        torch.testing.assert_close(a, b)
    torch.manual_seed(0)
    s1 = model.score_samples(ds.x[:10], n_samples=8)
    torch.manual_seed(0)
    s2 = loaded.score_samples(ds.x[:10], n_samples=8)
    np.testing.assert_array_equal(s1, s2)


def test_checkpoint_stores_versions(trained):
    _, out, _ = trained
    record = torch.load(out / "model.pt", weights_only=True)
    assert record["format"] == "vaekit-checkpoint" and record["format_version"] == 1
    assert record["vaekit_version"]
    assert not list(out.glob("*.part"))


def test_truncated_checkpoint(trained, tmp_path):
    _, out, _ = trained
    data = (out / "model.pt").read_bytes()
    (tmp_path / "model.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint .*a truncated copy"):
        TrainedModel.load(tmp_path)


@pytest.mark.parametrize("seed", range(25))
def test_random_bytes(tmp_path, seed):
    (tmp_path / "model.pt").write_bytes(random.Random(seed).randbytes(4096))
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint|not a loadable") as info:
        TrainedModel.load(tmp_path)
    assert "could run code" not in str(info.value)  # random bytes are no pickle carrying code


def test_a_text_file_is_named_as_not_a_checkpoint(tmp_path):
    (tmp_path / "model.pt").write_text('{"weights": [1, 2, 3]}')
    with pytest.raises(CheckpointError, match="is not a PyTorch checkpoint .text, random bytes"):
        TrainedModel.load(tmp_path)


def test_random_bytes_inside_a_valid_zip_container(tmp_path, trained):
    """Corrupt the payload of a real checkpoint (the container stays a zip archive)."""
    _, out, _ = trained
    data = bytearray((out / "model.pt").read_bytes())
    rng = random.Random(0)
    for i in rng.sample(range(200, len(data) - 200), 300):
        data[i] = rng.randrange(256)
    (tmp_path / "model.pt").write_bytes(bytes(data))
    try:
        loaded = TrainedModel.load(tmp_path)
    except CheckpointError:
        return
    # the corruption hit only tensor bytes: the file still loads as a well-formed checkpoint
    assert loaded.model.config == trained[0].model.config


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pickle_carrying_code_is_not_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"format": "vaekit-checkpoint", "payload": _Exploit()}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="could run code"):
        TrainedModel.load(tmp_path)
    assert not (tmp_path / "pwned").exists()
    with open(tmp_path / "plain.pt", "wb") as f:
        pickle.dump(_Exploit(), f)
    with pytest.raises(CheckpointError):
        TrainedModel.load(tmp_path / "plain.pt")
    assert not (tmp_path / "pwned").exists()


def test_foreign_torch_file_and_other_model_kind(tmp_path, trained):
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="not a vaekit checkpoint"):
        TrainedModel.load(tmp_path)
    _, out, _ = trained
    record = torch.load(out / "model.pt", weights_only=True)
    record["kind"] = "detector"
    torch.save(record, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="'detector' model"):
        TrainedModel.load(tmp_path)


def test_newer_format_refused(tmp_path, trained):
    _, out, _ = trained
    record = torch.load(out / "model.pt", weights_only=True)
    record["format_version"] = 99
    torch.save(record, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="upgrade"):
        TrainedModel.load(tmp_path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        TrainedModel.load(tmp_path)


def test_failed_write_leaves_no_file(tmp_path, trained, monkeypatch):
    model, _, _ = trained

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        model.save(tmp_path / "new")
    assert list((tmp_path / "new").iterdir()) == []
