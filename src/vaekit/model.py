"""The VAE: an encoder, a likelihood (decoder head) and a prior, with optional task conditioning.

The three axes are independent: any likelihood in :data:`vaekit.likelihoods.LIKELIHOODS` works with any prior in
:data:`vaekit.priors.PRIORS`, with or without task conditioning (``n_tasks > 0`` appends a one-hot task index to
the encoder's and the decoder's inputs, q(z|x, s) and p(x|z, s) of section 2.2).

The models of section 5.5.3 are options of the same class: the CVAE is ``n_tasks > 0`` (Eq. 5.2); the VFAE adds
``mmd_alpha`` times the MMD between the task posteriors to the loss (Eqs. 5.6, 5.7); the beta-CVAE adds a
task-specific latent of ``task_latent_dim`` dimensions (Eqs. 5.33-5.35, :mod:`vaekit.task_latent`); the proposed
model of chapter 5 is ``n_tasks > 0`` with ``prior="implicit"`` (Eqs. 5.31, 5.32).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.distributions import Distribution
from torch.nn import functional as F

from .checkpoint import plain_fields
from .conditioning import ConditionDraw, DecoderCondition, TaskMMD, TaskOneHot
from .encoders import make_encoder
from .errors import ConfigError, DataError
from .likelihoods import Likelihood, make_likelihood
from .nets import MLP
from .priors import Prior, make_prior, prior_class
from .task_latent import TaskLatent


@dataclass
class ModelConfig:
    """Everything needed to rebuild a :class:`VAE`; round-trips through JSON and checkpoints exactly."""

    x_dim: int
    latent_dim: int = 20
    likelihood: str = "gaussian"
    prior: str = "standard"
    hidden: tuple[int, ...] = (500, 500)
    activation: str = "tanh"
    dropout: float = 0.0
    gated: bool = False
    n_tasks: int = 0
    likelihood_kwargs: dict[str, Any] = field(default_factory=dict)
    prior_kwargs: dict[str, Any] = field(default_factory=dict)
    #: "gaussian" (q(z|x) = N(mu, sigma^2)) or "implicit" (AVB, section 4.4); None picks the encoder the prior
    #: declares (:attr:`vaekit.priors.Prior.encoder`: "implicit" for avb, "gaussian" otherwise)
    encoder: str | None = None
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    #: VFAE: weight alpha of the MMD between task posteriors subtracted from the objective (Eqs. 5.6, 5.7)
    mmd_alpha: float = 0.0
    #: beta-CVAE: dimension of the task-specific latent zeta, decoder p(x|z, zeta) (Eqs. 5.33-5.35); 0 = none
    task_latent_dim: int = 0

    def __post_init__(self) -> None:
        plain_fields(self)  # NumPy scalars (np.int64(2)) as Python numbers: JSON and weights-only checkpoints
        if self.encoder is None:
            self.encoder = prior_class(self.prior).encoder
        for name in ("x_dim", "latent_dim", "n_tasks", "task_latent_dim"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
        if not all(isinstance(h, numbers.Integral) and not isinstance(h, bool) for h in self.hidden):
            raise ConfigError(f"hidden sizes must be positive integers, got {self.hidden!r}")
        self.hidden = tuple(int(h) for h in self.hidden)
        if self.x_dim <= 0:
            raise ConfigError(f"x_dim must be positive, got {self.x_dim}")
        if self.latent_dim <= 0:
            raise ConfigError(f"latent dimension must be a positive integer, got {self.latent_dim}")
        if not self.hidden or min(self.hidden) <= 0:
            raise ConfigError(f"hidden sizes must be positive integers, got {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.n_tasks < 0:
            raise ConfigError(f"n_tasks must be >= 0, got {self.n_tasks}")
        if not self.mmd_alpha >= 0:
            raise ConfigError(f"mmd_alpha must be >= 0, got {self.mmd_alpha}")
        if self.mmd_alpha > 0 and self.n_tasks < 2:
            raise ConfigError("the MMD penalty (mmd_alpha > 0) compares task posteriors: it needs n_tasks >= 2")
        if self.task_latent_dim < 0:
            raise ConfigError(f"task_latent_dim must be >= 0, got {self.task_latent_dim}")
        if self.task_latent_dim > 0 and self.n_tasks < 1:
            raise ConfigError("a task-specific latent (task_latent_dim > 0) needs task conditioning (n_tasks >= 1)")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown model configuration keys {sorted(unknown)}")
        return cls(**d)


def model_options_of(spec: ModelConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The options of a :class:`ModelConfig` (or of its dict) without ``x_dim``, for building a model on other
    data; unknown keys are an error."""
    options = spec.to_dict() if isinstance(spec, ModelConfig) else dict(spec)
    unknown = set(options) - set(ModelConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"unknown model options {sorted(unknown)}; see vaekit.ModelConfig")
    options.pop("x_dim", None)
    return options


@dataclass
class LossTerms:
    """Named terms of one training step; per-point tensors have shape ``[B]``. ``extras`` holds the terms that
    only some models have, by name: ``"mmd"`` (VFAE penalty before its weight alpha, Eqs. 5.6, 5.7), ``"task_kl"``
    (beta-CVAE: per-point KL(q(zeta|x,s) || p(zeta|s)), Eq. 5.34) and ``"task_log_q_s"`` (beta-CVAE: per-point
    log q(s|zeta) of the auxiliary classifier)."""

    loss: torch.Tensor  #: scalar minimised by the optimiser (warm-up weight and parameter priors included)
    elbo: torch.Tensor  #: per-point ELBO estimate (KL weight 1, no parameter prior)
    reconstruction: torch.Tensor  #: per-point E_q[log p(x|z)]
    kl: torch.Tensor  #: per-point KL(q(z|x) || p(z)) estimate
    parameter_prior: torch.Tensor | None  #: per-point log-prior of the decoded parameters (MAP VAE)
    z: torch.Tensor  #: the samples used, ``[L, B, D]``
    diagnostics: dict[str, torch.Tensor] = field(default_factory=dict)
    posterior: Distribution | None = None  #: q(z|x[, s]) of the batch (the trainer passes it to Prior.observe)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def mmd(self) -> torch.Tensor | None:
        return self.extras.get("mmd")

    @property
    def task_kl(self) -> torch.Tensor | None:
        return self.extras.get("task_kl")

    @property
    def task_log_q_s(self) -> torch.Tensor | None:
        return self.extras.get("task_log_q_s")


class VAE(nn.Module):
    """Variational autoencoder = encoder + likelihood + prior (+ task conditioning).

    Built from a :class:`ModelConfig`, or from its fields as keywords (which build the config). Example::

        model = VAE(x_dim=3, latent_dim=2, likelihood="student-t")   # or VAE(ModelConfig(x_dim=3, ...))
        terms = model.loss(x)          # LossTerms with named parts
        terms.loss.backward()
    """

    def __init__(
        self,
        x_dim: int | ModelConfig,
        latent_dim: int = 20,
        likelihood: str = "gaussian",
        prior: str = "standard",
        hidden: Sequence[int] = (500, 500),
        activation: str = "tanh",
        dropout: float = 0.0,
        gated: bool = False,
        n_tasks: int = 0,
        likelihood_kwargs: dict[str, Any] | None = None,
        prior_kwargs: dict[str, Any] | None = None,
        encoder: str | None = None,
        encoder_kwargs: dict[str, Any] | None = None,
        mmd_alpha: float = 0.0,
        task_latent_dim: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(x_dim, ModelConfig):
            cfg = x_dim
        else:
            cfg = ModelConfig(
                x_dim, latent_dim, likelihood, prior, tuple(hidden), activation, dropout, gated, n_tasks,
                dict(likelihood_kwargs or {}), dict(prior_kwargs or {}), encoder, dict(encoder_kwargs or {}),
                float(mmd_alpha), int(task_latent_dim),
            )
        self.config = cfg
        self.encoder = make_encoder(
            cfg.encoder, cfg.x_dim + cfg.n_tasks, cfg.latent_dim, hidden=cfg.hidden, activation=cfg.activation,
            dropout=cfg.dropout, gated=cfg.gated, **cfg.encoder_kwargs,
        )
        # the beta-CVAE's decoder is p(x|z, zeta) (Eq. 5.33); the CVAE's is p(x|z, s)
        decoder_in = cfg.latent_dim + (cfg.task_latent_dim or cfg.n_tasks)
        self.decoder_body = MLP(decoder_in, tuple(reversed(cfg.hidden)), cfg.activation, cfg.dropout, cfg.gated)
        self.task_latent = (TaskLatent(cfg.x_dim, cfg.n_tasks, cfg.task_latent_dim, cfg.hidden, cfg.activation,
                                       cfg.dropout) if cfg.task_latent_dim else None)
        self._task_one_hot_condition = TaskOneHot(cfg.n_tasks) if cfg.n_tasks and not cfg.task_latent_dim else None
        #: penalties on the latent samples added to the loss (the VFAE's MMD)
        self.penalties = [TaskMMD(cfg.mmd_alpha, cfg.n_tasks)] if cfg.mmd_alpha > 0 else []
        self.likelihood: Likelihood = make_likelihood(
            cfg.likelihood, self.decoder_body.out_features, cfg.x_dim, **cfg.likelihood_kwargs
        )
        self._check_encoder_for_prior(cfg)
        facts = {"x_dim": cfg.x_dim, "n_tasks": cfg.n_tasks,
                 "data_in_unit_interval": self.likelihood.data_in_unit_interval}
        self.prior: Prior = make_prior(cfg.prior, cfg.latent_dim, facts, **cfg.prior_kwargs)
        self.prior.bind(self)

    def _check_encoder_for_prior(self, cfg: ModelConfig) -> None:
        """The encoder must be the one the prior requires, and have a density when the prior needs one."""
        wanted = prior_class(cfg.prior)
        if wanted.encoder_required and cfg.encoder != wanted.encoder:
            raise ConfigError(f"the {cfg.prior} prior works with the {wanted.encoder!r} encoder only, not "
                              f"{cfg.encoder!r}: use encoder={wanted.encoder!r}")
        if wanted.needs_encoder_density and not self.encoder_has_density:
            raise ConfigError(
                f"the {cfg.prior!r} prior needs the encoder's density q(z|x), which the {cfg.encoder!r} encoder "
                "lacks; use encoder='gaussian' or prior='avb'"
            )

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """The encoder's parameters (what a prior may key a cache on, :class:`vaekit.priors.PriorHost`)."""
        return self.encoder.parameters()

    @property
    def encoder_has_density(self) -> bool:
        """False for implicit encoders (AVB): no importance-sampled log-likelihood, ELBO estimates only."""
        return bool(getattr(self.encoder, "has_density", True))

    @classmethod
    def from_config(cls, config: ModelConfig | dict[str, Any]) -> VAE:
        return cls(config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config))

    # ----------------------------------------------------------------------------------------- conditioning
    def _task_one_hot(self, s: torch.Tensor | None, n: int, like: torch.Tensor) -> torch.Tensor | None:
        if self.config.n_tasks == 0:
            return None
        if s is None:
            raise DataError(
                f"this model is conditioned on {self.config.n_tasks} tasks: pass the task index s of every row"
            )
        s = torch.as_tensor(s, device=like.device).long().reshape(-1)
        if s.numel() != n:
            raise DataError(f"got {s.numel()} task indices for {n} rows")
        if s.numel() and (int(s.min()) < 0 or int(s.max()) >= self.config.n_tasks):
            raise DataError(
                f"task index {int(s.max()) if int(s.max()) >= self.config.n_tasks else int(s.min())} was not seen "
                f"in training: this model knows tasks 0..{self.config.n_tasks - 1}"
            )
        return F.one_hot(s, self.config.n_tasks).to(like.dtype)

    def encode(self, x: torch.Tensor, s: torch.Tensor | None = None) -> Distribution:
        """q(z|x[, s]): an ``Independent(Normal)`` over the latent dimensions (an ``ImplicitPosterior`` for AVB)."""
        onehot = self._task_one_hot(s, x.shape[0], x)
        return self.encoder(x if onehot is None else torch.cat([x, onehot], -1))

    @property
    def condition(self) -> DecoderCondition | None:
        """What the decoder sees beside z: the task one-hot (CVAE), zeta (beta-CVAE) or nothing (VAE)."""
        return self.task_latent if self.task_latent is not None else self._task_one_hot_condition

    def _decode_with(self, z: torch.Tensor, inputs: torch.Tensor | None) -> Distribution:
        """p(x|z, c) for a condition's ``inputs`` (broadcast over z's leading sample dimensions)."""
        if inputs is not None:
            z = torch.cat([z, inputs.expand(*z.shape[:-1], inputs.shape[-1])], -1)
        return self.likelihood(self.decoder_body(z))

    def _condition_draw(self, x: torch.Tensor, s: torch.Tensor | None, draw: str, k: int) -> ConditionDraw | None:
        """The condition's draw for rows ``x`` (``draw``: "for_training" or "for_importance", ``k`` samples)."""
        condition = self.condition
        if condition is None:
            return None
        onehot = self._task_one_hot(s, x.shape[0], x)
        assert onehot is not None and s is not None
        if draw == "for_training":
            return condition.for_training(x, onehot, torch.as_tensor(s).long().reshape(-1), k)
        return condition.for_importance(x, onehot, k)

    def decode(self, z: torch.Tensor, s: torch.Tensor | None = None, zeta: torch.Tensor | None = None) -> Distribution:
        """p(x|z[, s]) for ``z`` of shape ``[..., B, D]`` (the task one-hot broadcasts over leading dims);
        p(x|z, zeta) for the beta-CVAE, with ``zeta`` shaped like ``z``."""
        if self.task_latent is not None:
            if zeta is None:
                raise ConfigError("the beta-CVAE decoder p(x|z, zeta) needs the task-specific latent zeta")
            return self._decode_with(z, zeta)
        return self._decode_with(z, self._task_one_hot(s, z.shape[-2], z))

    # ------------------------------------------------------------------------------------------ objective
    def loss(
        self, x: torch.Tensor, s: torch.Tensor | None = None, kl_weight: float = 1.0, n_samples: int = 1
    ) -> LossTerms:
        """Negative ELBO (Eq. 3.4 with L = ``n_samples``), prior terms from :meth:`Prior.kl`.

        ``kl_weight`` < 1 implements linear KL warm-up; the MAP likelihood's parameter prior (Eq. 3.10) enters
        the loss but not the reported ELBO. Each penalty's ``weight * value`` (the VFAE's MMD, Eqs. 5.6, 5.7) and
        the beta-CVAE's auxiliary classifier term -log q(s|zeta) (section 5.4.3, after Eq. 5.35) enter the loss; the ELBO of the
        beta-CVAE subtracts both KL terms (beta1 = beta2 = 1).
        """
        q = self.encode(x, s)
        z = q.rsample((n_samples,))
        draw = self._condition_draw(x, s, "for_training", n_samples)
        p = self._decode_with(z, None if draw is None else draw.inputs)
        reconstruction = p.log_prob(x).mean(0)  # log p(x|z) is [L, B]
        kl = self.prior.kl(q, z, s)
        parameter_prior = self.likelihood.log_parameter_prior(p)
        if parameter_prior is not None:
            parameter_prior = parameter_prior.mean(0)
        total_kl = kl if draw is None or draw.kl is None else kl + draw.kl
        objective = reconstruction - kl_weight * total_kl
        if parameter_prior is not None:
            objective = objective + parameter_prior
        if draw is not None and draw.log_q_s is not None:
            objective = objective + draw.log_q_s
        loss = -objective.mean()
        diagnostics = self.likelihood.diagnostics(p)
        extras: dict[str, torch.Tensor] = {}
        for penalty in self.penalties:
            value = extras[penalty.name] = penalty(z, s)
            loss = loss + penalty.weight * value
            diagnostics[penalty.name] = value.detach()
        if draw is not None and draw.kl is not None:
            extras["task_kl"] = draw.kl
            diagnostics["task_kl"] = draw.kl.detach().mean()
        if draw is not None and draw.log_q_s is not None:
            extras["task_log_q_s"] = draw.log_q_s
            diagnostics["task_log_q_s"] = draw.log_q_s.detach().mean()
        return LossTerms(loss=loss, elbo=reconstruction - total_kl, reconstruction=reconstruction, kl=kl,
                         parameter_prior=parameter_prior, z=z, diagnostics=diagnostics, posterior=q, extras=extras)

    def log_importance_weights(self, x: torch.Tensor, s: torch.Tensor | None, q: Distribution,
                               z: torch.Tensor) -> torch.Tensor:
        """log p(x|z, s) + log p(z) - log q(z|x, s) for samples ``z`` ``[K, B, D]`` of ``q`` (Eq. 5.37; the implicit
        prior's log p(z) includes T(z)). The beta-CVAE draws zeta ~ q(zeta|x, s) beside each z and adds
        log p(zeta|s) - log q(zeta|x, s)."""
        draw = self._condition_draw(x, s, "for_importance", z.shape[0])
        p = self._decode_with(z, None if draw is None else draw.inputs)
        extra = 0.0 if draw is None else draw.log_weight
        return p.log_prob(x) + self.prior.log_prob(z) - q.log_prob(z) + extra

    def forward(self, x: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """Per-point ELBO (single sample)."""
        return self.loss(x, s).elbo

    @torch.no_grad()
    def sample(self, n: int, s: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``n`` points from p(x|z) p(z) (explicit priors; implicit priors sample ancestrally), with the
        condition drawn from its own prior (the task one-hot of ``s``; zeta ~ p(zeta|s) for the beta-CVAE)."""
        return self.generative(n, s).sample()

    def generative(self, n: int, s: torch.Tensor | None = None) -> Distribution:
        """p(x|z, c) for ``n`` draws z ~ p(z) and the condition c from its own prior (see :meth:`sample`)."""
        z = self.prior.sample(n).to(next(self.parameters()).device)
        condition = self.condition
        inputs = None
        if condition is not None:
            onehot = self._task_one_hot(s, n, z)
            assert onehot is not None
            inputs = condition.for_sampling(onehot)
        return self._decode_with(z, inputs)

    def reconstruction(self, x: torch.Tensor, z: torch.Tensor, s: torch.Tensor | None = None) -> Distribution:
        """p(x|z, c) for codes ``z`` of rows ``x``, the condition c at its posterior mean for those rows (the task
        one-hot; E[zeta|x, s] for the beta-CVAE)."""
        condition = self.condition
        inputs = None
        if condition is not None:
            onehot = self._task_one_hot(s, x.shape[0], x)
            assert onehot is not None
            inputs = condition.for_reconstruction(x, onehot)
        return self._decode_with(z, inputs)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`DataError` unless ``x`` is a finite ``[N, x_dim]`` matrix in the likelihood's support."""
        if x.ndim != 2 or x.shape[1] != self.config.x_dim:
            raise DataError(
                f"expected data with {self.config.x_dim} columns (the width the model was trained on), "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            raise DataError("the data have no rows")
        if not bool(torch.isfinite(x).all()):
            bad = (~torch.isfinite(x)).any(1).nonzero().flatten()[:5].tolist()
            raise DataError(f"the data contain NaN or infinite values (rows {bad} ...); drop or impute them first")
        self.likelihood.check_data(x)
