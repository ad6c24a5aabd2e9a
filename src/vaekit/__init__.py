"""vaekit: variational autoencoders for real data.

A model is an encoder + a likelihood (decoder head) + a prior (+ optional task conditioning); see
:class:`vaekit.model.VAE`. :func:`vaekit.fit` trains one on a data set and :class:`vaekit.TrainedModel` scores,
evaluates, saves and loads it.
"""

from ._version import NUMERICS_VERSION, __version__
from .model import VAE, LossTerms, ModelConfig
from .training import Trainer, TrainConfig, TrainResult
from .evaluation import log_likelihood, elbo
from .trained import TrainedModel, fit
from .data import Dataset, load_dataset
from .detect import VAEDetector

__all__ = [
    "NUMERICS_VERSION",
    "__version__",
    "VAE",
    "Dataset",
    "LossTerms",
    "ModelConfig",
    "TrainConfig",
    "TrainResult",
    "TrainedModel",
    "VAEDetector",
    "Trainer",
    "elbo",
    "fit",
    "load_dataset",
    "log_likelihood",
]
