"""The density-ratio classifier T_psi shared by the implicit optimal prior and AVB, and its training phase.

T_psi is a logistic classifier between samples of two distributions (label 1: the numerator, label 0: N(0, I));
at its optimum its logit is the log density ratio (Eq. 4.13). It is trained by maximising Eq. (4.19) in a phase of
its own after every VAE epoch (Algorithm 4.1 / 5.1); in the VAE step its parameters psi are frozen while the
pathwise gradient through z still reaches the encoder (Eq. 4.20).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from ..nets import Dropout, adam, glorot_init

#: A source of (positives, negatives) for one classifier epoch or for the held-out metrics.
SampleDraw = Callable[[], tuple[torch.Tensor, torch.Tensor]]


class DensityRatioNet(nn.Sequential):
    """T_psi: ``in_features -> hidden... -> 1`` with tanh and dropout (keep probability ``keep_prob``) after every
    hidden layer (section 4.5.2), or after the last one only with ``last_only`` (section 5.5.3); returns the logit
    with the trailing unit axis removed."""

    def __init__(self, in_features: int, hidden: Sequence[int] = (500, 500), keep_prob: float = 0.5,
                 last_only: bool = False) -> None:
        if not 0.0 < keep_prob <= 1.0:
            raise ConfigError(f"keep_prob must be in (0, 1], got {keep_prob}")
        layers: list[nn.Module] = []
        width = in_features
        for i, size in enumerate(hidden):
            layers += [nn.Linear(width, int(size)), nn.Tanh()]
            if keep_prob < 1.0 and (not last_only or i == len(hidden) - 1):
                layers.append(Dropout(1.0 - keep_prob))
            width = int(size)
        layers.append(nn.Linear(width, 1))
        super().__init__(*layers)
        glorot_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(z).squeeze(-1)


def classifier_epoch(
    net: nn.Module, optimiser: torch.optim.Optimizer, positives: torch.Tensor, negatives: torch.Tensor,
    batch_size: int,
) -> float:
    """One epoch of minimising -[log sigma(T(pos)) + log(1 - sigma(T(neg)))] (the negative of Eq. 4.19) over
    shuffled, equally sized mini-batches of both classes; returns the mean loss."""
    order_p, order_n = torch.randperm(len(positives)), torch.randperm(len(negatives))
    total, steps = torch.zeros(()), 0
    for start in range(0, len(positives), batch_size):
        pos = positives[order_p[start:start + batch_size]]
        neg = negatives[order_n[start:start + batch_size]]
        logits = net(torch.cat([pos, neg]))  # one pass over both classes: one larger matrix product per layer
        loss = F.softplus(-logits[:len(pos)]).mean() + F.softplus(logits[len(pos):]).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        total, steps = total + loss.detach(), steps + 1
    return float(total) / max(steps, 1)


@torch.no_grad()
def classifier_metrics(net: nn.Module, positives: torch.Tensor, negatives: torch.Tensor) -> dict[str, float]:
    """Held-out logistic loss, accuracy and mean logit on the positives with dropout off; for the implicit prior the
    mean logit estimates KL(q(z) || p(z)) (Eq. 5.27), for AVB E_x KL(q(z|x) || N(0, I))."""
    t_pos, t_neg = net(positives), net(negatives)
    loss = F.softplus(-t_pos).mean() + F.softplus(t_neg).mean()
    accuracy = 0.5 * ((t_pos > 0).float().mean() + (t_neg <= 0).float().mean())
    return {"ratio_loss": float(loss), "ratio_accuracy": float(accuracy), "ratio_mean_logit": float(t_pos.mean())}


class RatioClassifierPhase:
    """Mixin for priors with a classifier ``ratio`` trained in its own phase: psi has ``requires_grad=False`` and
    dropout off in the VAE step (no wasted backward work), and :meth:`train_ratio` runs the phase."""

    ratio: nn.Module

    def set_schedule(self, ratio_epochs: int, ratio_lr: float, ratio_hidden: Sequence[int], ratio_batch_size: int,
                     keep_prob: float) -> None:
        """Check and keep the classifier's schedule: J2 epochs per VAE epoch, Adam learning rate, hidden sizes,
        mini-batch size and dropout keep probability."""
        if ratio_epochs < 0 or ratio_batch_size < 1 or not ratio_lr > 0:
            raise ConfigError("need ratio_epochs >= 0, ratio_batch_size >= 1 and ratio_lr > 0")
        self.ratio_epochs, self.ratio_lr, self.ratio_batch_size = int(ratio_epochs), float(ratio_lr), int(ratio_batch_size)
        self.ratio_hidden, self.keep_prob = tuple(int(h) for h in ratio_hidden), float(keep_prob)
        self._optimiser: torch.optim.Optimizer | None = None

    def schedule_config(self) -> dict[str, object]:
        """The schedule as constructor keyword arguments."""
        return {"ratio_epochs": self.ratio_epochs, "ratio_lr": self.ratio_lr, "ratio_hidden": list(self.ratio_hidden),
                "ratio_batch_size": self.ratio_batch_size, "keep_prob": self.keep_prob}

    def freeze_ratio(self) -> None:
        self.ratio.eval()
        for p in self.ratio.parameters():
            p.requires_grad_(False)

    def _unfreeze_ratio(self) -> None:
        self.ratio.train()
        for p in self.ratio.parameters():
            p.requires_grad_(True)

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        return list(self.ratio.parameters())

    def train_ratio(self, draw: SampleDraw, held_out: SampleDraw, started: tuple[float, float]) -> dict[str, float]:
        """J2 classifier epochs on fresh samples from ``draw`` each (theta, phi frozen), then the held-out
        :func:`classifier_metrics` on ``held_out``, the last training loss and the phase's wall and CPU seconds
        since ``started`` (``time.perf_counter()``, ``time.process_time()``)."""
        if self._optimiser is None:
            self._optimiser = adam(self.ratio.parameters(), self.ratio_lr)
        losses = []
        for _ in range(self.ratio_epochs):
            positives, negatives = draw()
            self._unfreeze_ratio()
            try:
                losses.append(classifier_epoch(self.ratio, self._optimiser, positives, negatives,
                                               self.ratio_batch_size))
            finally:
                self.freeze_ratio()
        metrics = classifier_metrics(self.ratio, *held_out())
        if losses:
            metrics["ratio_train_loss"] = losses[-1]
        metrics["ratio_seconds"] = time.perf_counter() - started[0]
        metrics["ratio_cpu_seconds"] = time.process_time() - started[1]
        return metrics

    def train(self, mode: bool = True):  # type: ignore[no-untyped-def]
        super().train(mode)  # type: ignore[misc]
        if getattr(self, "ratio", None) is not None:
            self.ratio.eval()  # dropout belongs to the classifier's own phase only
        return self
