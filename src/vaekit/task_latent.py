"""The beta-CVAE's task-specific latent variable zeta (section 5.4.3; Ilse et al., 2020).

p(x|s) = int p_theta(x|z, zeta) p(z) p_lambda(zeta|s) dz dzeta                                        (Eq. 5.33)
objective = E_q[ln p(x|z, zeta)] - beta1 KL(q(z|x,s) || p(z)) - beta2 KL(q(zeta|x,s) || p(zeta|s))  (Eq. 5.34)
            + ln q_varphi(s|zeta)        (the auxiliary task classifier, after Eq. 5.35 in section 5.4.3)
q(z, zeta|x, s) = q(z|x, s) q(zeta|x, s)                                                               (Eq. 5.35)

beta1 = beta2 = 1 (the ELBO, section 5.5.3). The model owns z, the prior p(z) and the decoder; this module adds
q(zeta|x,s), the learned task prior p_lambda(zeta|s) and the auxiliary task classifier q_varphi(s|zeta), all
two-layer networks like the encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.distributions import Independent, kl_divergence
from torch.nn import functional as F

from .conditioning import ConditionDraw
from .encoders import GaussianEncoder
from .nets import MLP, glorot_init


@dataclass
class TaskLatentTerms:
    """zeta samples ``[L, B, D_zeta]``, per-point KL(q(zeta|x,s) || p(zeta|s)) and log q(s|zeta) (mean over L)."""

    zeta: torch.Tensor
    kl: torch.Tensor
    log_q_s: torch.Tensor
    q: Independent
    p: Independent


class TaskLatent(nn.Module):
    """q(zeta|x, s), p_lambda(zeta|s) and q_varphi(s|zeta) of the beta-CVAE: the decoder's condition zeta
    (:class:`vaekit.conditioning.DecoderCondition`)."""

    def __init__(self, x_dim: int, n_tasks: int, dim: int, hidden: Sequence[int], activation: str = "tanh",
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.n_tasks, self.dim = n_tasks, dim
        self.width = dim
        self.encoder = GaussianEncoder(x_dim + n_tasks, dim, hidden, activation, dropout)
        self.prior = GaussianEncoder(n_tasks, dim, hidden, activation, dropout)
        body = MLP(dim, hidden, activation, dropout)
        head = nn.Linear(body.out_features, n_tasks)
        glorot_init(head)
        self.classifier = nn.Sequential(body, head)

    def task_prior(self, onehot: torch.Tensor) -> Independent:
        """p_lambda(zeta|s), a diagonal Gaussian whose parameters a network computes from the task one-hot."""
        return self.prior(onehot)

    def forward(self, x: torch.Tensor, onehot: torch.Tensor, s: torch.Tensor, n_samples: int = 1) -> TaskLatentTerms:
        q = self.encoder(torch.cat([x, onehot], -1))
        p = self.task_prior(onehot)
        zeta = q.rsample((n_samples,))
        logits = self.classifier(zeta)  # [L, B, K]
        log_q_s = -F.cross_entropy(logits.reshape(-1, self.n_tasks), s.repeat(n_samples), reduction="none")
        return TaskLatentTerms(zeta, kl_divergence(q, p), log_q_s.reshape(n_samples, -1).mean(0), q, p)

    # ------------------------------------------------------------------------------------ as a decoder condition
    def for_training(self, x: torch.Tensor, onehot: torch.Tensor, s: torch.Tensor, n_samples: int) -> ConditionDraw:
        """zeta ~ q(zeta|x, s) (reparameterised) with KL(q(zeta|x,s) || p(zeta|s)) (Eq. 5.34) and log q(s|zeta) (the auxiliary classifier, section 5.4.3)."""
        terms = self(x, onehot, s, n_samples)
        return ConditionDraw(terms.zeta, kl=terms.kl, log_q_s=terms.log_q_s)

    def for_importance(self, x: torch.Tensor, onehot: torch.Tensor, k: int) -> ConditionDraw:
        """k draws zeta ~ q(zeta|x, s) per row with log p(zeta|s) - log q(zeta|x, s)."""
        q_zeta = self.encoder(torch.cat([x, onehot], -1))
        zeta = q_zeta.sample((k,))
        return ConditionDraw(zeta, log_weight=self.task_prior(onehot).log_prob(zeta) - q_zeta.log_prob(zeta))

    def for_sampling(self, onehot: torch.Tensor) -> torch.Tensor:
        """zeta ~ p(zeta|s)."""
        return self.task_prior(onehot).sample()

    def for_reconstruction(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """E[zeta | x, s] under q(zeta|x, s)."""
        return self.encoder(torch.cat([x, onehot], -1)).mean
