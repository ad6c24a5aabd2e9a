"""vaekit: variational autoencoders for real data.

A model is an encoder + a likelihood (decoder head) + a prior (+ optional task conditioning); see
:class:`vaekit.model.VAE`. :func:`vaekit.fit` trains one on a data set and :class:`vaekit.TrainedModel` scores,
evaluates, saves and loads it.
"""

__version__ = "0.1.0"

from .model import VAE, LossTerms, ModelConfig  # noqa: E402
from .training import Trainer, TrainConfig, TrainResult  # noqa: E402
from .evaluation import log_likelihood, elbo  # noqa: E402
from .trained import TrainedModel, fit  # noqa: E402
from .data import Dataset, load_dataset  # noqa: E402
from .detect import VAEDetector  # noqa: E402

__all__ = [
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
