"""The prior interface, its registry, and what a prior may ask of the model that owns it.

A prior is *explicit* when it has a normalised log-density and a sampler (standard Gaussian, VampPrior) and
*implicit* when it is defined through a learned correction that is trained in a phase of its own (the implicit
optimal prior of chapter 4). The model calls :meth:`Prior.kl` during training and :meth:`Prior.log_prob` during
importance sampling; the trainer passes each training step's posteriors to :meth:`Prior.observe`, calls
:meth:`Prior.fit_auxiliary` after each VAE epoch, and leaves :meth:`Prior.auxiliary_parameters` out of the VAE
optimiser.

Adding a prior: subclass :class:`Prior` in a module of this package, decorate it with :func:`register_prior`, and
import that module in ``priors/__init__.py``. Facts about the model that the prior needs to build its parameters
(``x_dim``, ``n_tasks``, ``data_in_unit_interval``) are passed to its constructor when it names them as keyword
parameters (see :data:`HOST_FACTS`); at run time it reaches the model only through :class:`PriorHost`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any, ClassVar, Protocol

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from ..errors import ConfigError
from ..likelihoods import keyword_errors

#: Facts about the owning model that :func:`make_prior` passes to a prior's constructor when it asks for them.
HOST_FACTS = ("x_dim", "n_tasks", "data_in_unit_interval")


class PriorHost(Protocol):
    """What a prior may use of the model that owns it, at run time."""

    def encode(self, x: torch.Tensor, s: torch.Tensor | None = None) -> Distribution:
        """q(z|x[, s])."""

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """The encoder's parameters (e.g. to key a cache of encoded pseudo-inputs)."""


def standard_normal(latent_dim: int, like: torch.Tensor | None = None) -> Independent:
    """N(0, I) over ``latent_dim`` dimensions on ``like``'s device and dtype."""
    zeros = torch.zeros(latent_dim) if like is None else like.new_zeros(latent_dim)
    return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1)


class Prior(nn.Module):
    """Base class of priors over the latent space."""

    name: ClassVar[str]
    #: whether :meth:`kl` / evaluation need log q(z|x) (False only for priors that work with implicit encoders)
    needs_encoder_density: ClassVar[bool] = True
    #: the encoder this prior works with: ``"gaussian"`` (q(z|x) = N(mu, sigma^2)) or ``"implicit"`` (AVB); the
    #: model builds it unless the user names another, which is an error when ``encoder_required``
    encoder: ClassVar[str] = "gaussian"
    encoder_required: ClassVar[bool] = False

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim

    def bind(self, host: PriorHost) -> None:
        """Called once by the model that owns this prior. The reference is kept unregistered (no cycle in
        ``state_dict``) for priors that reuse the encoder (VampPrior, AVB) or re-encode the training data."""
        object.__setattr__(self, "_host", host)

    @property
    def host(self) -> PriorHost:
        """The model this prior belongs to (see :meth:`bind`)."""
        try:
            return self.__dict__["_host"]
        except KeyError:
            raise ConfigError(f"the {self.name!r} prior is not part of a model yet: build it through VAE") from None

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over latent dimensions (unnormalised for implicit priors; see :meth:`log_normaliser`)."""
        raise NotImplementedError

    def kl(self, q: Distribution, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """Per-point estimate of KL(q(z|x) || p(z)) from samples ``z`` of shape ``[L, B, D]``; ``s`` holds the rows'
        task indices (None without tasks) for priors that weight tasks. A pure function of its arguments.

        The default is the Monte Carlo estimate mean_l [log q(z_l|x) - log p(z_l)].
        """
        return (q.log_prob(z) - self.log_prob(z)).mean(0)

    def sample(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    def observe(self, q: Distribution, s: torch.Tensor | None = None) -> None:
        """The posteriors q(z|x[, s]) of one training mini-batch, passed by the trainer after each loss; priors built
        from the aggregated posterior keep them for their own phase. No-op by default."""

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        """Parameters trained in the prior's own phase, not by the VAE optimiser."""
        return []

    def fit_auxiliary(self, train_x: torch.Tensor, train_s: torch.Tensor | None) -> dict[str, float]:
        """The prior's own training phase, run by the trainer after every VAE epoch; returns metrics."""
        return {}

    def after_restore(self, train_x: torch.Tensor, train_s: torch.Tensor | None) -> None:
        """Called by the trainer after it restores the best epoch's parameters: a prior that keeps state derived
        from the training rows outside its state dict rebuilds it. No-op by default."""

    def log_normaliser(self) -> float:
        """log of the normalising constant of :meth:`log_prob` (0 for explicit priors)."""
        return 0.0

    def normaliser_metrics(self) -> dict[str, Any]:
        """``log_normaliser`` with its standard error, effective sample size and reliability flag, for priors
        whose :meth:`log_prob` is unnormalised; empty for explicit priors."""
        return {}

    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments beyond ``latent_dim`` and the host facts (for checkpoints)."""
        return {}


PRIORS: dict[str, type[Prior]] = {}


def register_prior(cls: type[Prior]) -> type[Prior]:
    """Class decorator adding a prior to :data:`PRIORS` under its ``name``."""
    PRIORS[cls.name] = cls
    return cls


def prior_class(name: str) -> type[Prior]:
    """The registered prior class called ``name``."""
    try:
        return PRIORS[name]
    except KeyError:
        raise ConfigError(f"unknown prior {name!r}; choose one of {sorted(PRIORS)}") from None


def make_prior(name: str, latent_dim: int, host_facts: dict[str, Any] | None = None, **kwargs: Any) -> Prior:
    """Build a prior by its registered name; ``host_facts`` (see :data:`HOST_FACTS`) reach the constructor when it
    names them as parameters."""
    cls = prior_class(name)
    accepted = inspect.signature(cls.__init__).parameters
    facts = {k: v for k, v in (host_facts or {}).items() if k in HOST_FACTS and k in accepted}
    with keyword_errors(cls, f"the {name} prior", skip=("latent_dim", *HOST_FACTS)):
        return cls(latent_dim, **facts, **kwargs)
