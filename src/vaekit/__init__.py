"""vaekit: variational autoencoders for real data.

A model is an encoder + a likelihood (decoder head) + a prior (+ optional task conditioning); see
:class:`vaekit.model.VAE`. :func:`vaekit.fit` trains one on a data set and :class:`vaekit.TrainedModel` scores,
evaluates, saves and loads it.

The public names load on first use (PEP 562), so ``vaekit --help`` and ``--version`` do not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import NUMERICS_VERSION, __version__

#: public name -> the module that defines it
_EXPORTS = {
    "VAE": "model", "LossTerms": "model", "ModelConfig": "model",
    "Trainer": "training", "TrainConfig": "training", "TrainResult": "training",
    "log_likelihood": "evaluation", "elbo": "evaluation",
    "TrainedModel": "trained", "fit": "fitting",
    "Dataset": "data", "load_dataset": "data",
    "VAEDetector": "detect",
}

__all__ = ["NUMERICS_VERSION", "__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vaekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
