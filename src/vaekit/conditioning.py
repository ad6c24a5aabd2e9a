"""What the decoder sees beside z, and penalties on the latent samples: the variants of section 5.5.3.

A model's decoder is p(x|z) (VAE), p(x|z, s) with the task one-hot (CVAE, Eq. 5.2), or p(x|z, zeta) with a
task-specific latent zeta (beta-CVAE, Eqs. 5.33-5.35, :class:`vaekit.task_latent.TaskLatent`). Each condition
supplies the decoder's extra input for training, importance sampling and sampling, with the terms its own latent
adds (:class:`ConditionDraw`). A penalty adds ``weight * value`` to the loss; the VFAE's MMD between the task
posteriors (Eqs. 5.6, 5.7) is :class:`TaskMMD`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from .metrics import task_mmd


@dataclass
class ConditionDraw:
    """The decoder's extra input (``[B, w]``, broadcast over samples, or ``[L, B, w]``) with the per-point terms of
    the condition's own latent: its KL and log q(s|zeta) in training, its log-weight correction
    log p(zeta|s) - log q(zeta|x, s) in importance sampling (0 when the condition has no latent)."""

    inputs: torch.Tensor
    kl: torch.Tensor | None = None
    log_q_s: torch.Tensor | None = None
    log_weight: torch.Tensor | float = 0.0


class DecoderCondition(Protocol):
    """A decoder input beyond z, given the rows ``x`` and their task one-hot."""

    width: int

    def for_training(self, x: torch.Tensor, onehot: torch.Tensor, s: torch.Tensor, n_samples: int) -> ConditionDraw:
        """Reparameterised draws for the ELBO."""

    def for_importance(self, x: torch.Tensor, onehot: torch.Tensor, k: int) -> ConditionDraw:
        """``k`` draws per row for importance sampling, with their log-weight correction."""

    def for_sampling(self, onehot: torch.Tensor) -> torch.Tensor:
        """Draws from the condition's prior for generating data."""

    def for_reconstruction(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """The condition of rows ``x`` at its posterior mean, for reconstructing them."""


class TaskOneHot:
    """The CVAE's condition: the task one-hot itself (no latent of its own)."""

    def __init__(self, n_tasks: int) -> None:
        self.width = n_tasks

    def for_training(self, x: torch.Tensor, onehot: torch.Tensor, s: torch.Tensor, n_samples: int) -> ConditionDraw:
        return ConditionDraw(onehot)

    def for_importance(self, x: torch.Tensor, onehot: torch.Tensor, k: int) -> ConditionDraw:
        return ConditionDraw(onehot)

    def for_sampling(self, onehot: torch.Tensor) -> torch.Tensor:
        return onehot

    def for_reconstruction(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        return onehot


class TaskMMD:
    """The VFAE penalty: ``weight`` (alpha) times the MMD between the task posteriors of the batch's samples
    (Eqs. 5.6, 5.7; :func:`vaekit.metrics.task_mmd`)."""

    name = "mmd"

    def __init__(self, weight: float, n_tasks: int) -> None:
        self.weight, self.n_tasks = weight, n_tasks

    def __call__(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The MMD of samples ``z`` ``[L, B, D]`` whose rows have tasks ``s`` ``[B]`` (before the weight)."""
        s_long = torch.as_tensor(s).long().reshape(-1)
        return task_mmd(z.reshape(-1, z.shape[-1]), s_long.repeat(z.shape[0]), self.n_tasks)
