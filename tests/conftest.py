import os
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory, monkeypatch):
    """Deterministic torch, no network cache outside tmp, and VAEKIT_DATA defaulting to ../shared/data."""
    torch.manual_seed(0)
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    if "VAEKIT_DATA" not in os.environ and SHARED_DATA.is_dir():
        monkeypatch.setenv("VAEKIT_DATA", str(SHARED_DATA))


@pytest.fixture
def data_dir() -> Path:
    path = Path(os.environ.get("VAEKIT_DATA", SHARED_DATA))
    if not (path / "smtp.npz").is_file():
        pytest.skip("the shared data directory (VAEKIT_DATA) is not available")
    return path


@pytest.fixture
def blobs() -> np.ndarray:
    """Small continuous data: two Gaussian clusters in 4-d."""
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(0, 1, (150, 4)), rng.normal(4, 0.5, (150, 4))]).astype(np.float32)
