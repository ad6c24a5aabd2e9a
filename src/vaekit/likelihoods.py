"""Decoder likelihood heads p(x|z): each maps decoder features to a ``torch.distributions`` object.

Every head returns an ``Independent`` distribution over the data dimensions, so evaluation, scoring and sampling
never branch on the likelihood's name. Heads that carry a prior on their own parameters (the MAP Gaussian) add it
through :meth:`Likelihood.log_parameter_prior`.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import nn
from torch.distributions import Bernoulli as _Bernoulli
from torch.distributions import Distribution, Independent, Normal
from torch.distributions import StudentT as _StudentT
from torch.nn import functional as F

from .errors import ConfigError, DataError
from .nets import glorot_init


#: Decoded log-variances and log-precisions are kept in [-LOG_SCALE_BOUND, LOG_SCALE_BOUND] by a smooth tanh
#: envelope (within 1% of the identity on [-5, 5]). Below e^-30 a variance is under float32 resolution of standardised data;
#: the bound keeps every log-density finite for finite inputs instead of overflowing to NaN.
LOG_SCALE_BOUND = 30.0
#: Upper limit of the Student-t degrees of freedom. torch's normaliser adds 0.5 log nu + lgamma(nu/2) and subtracts
#: lgamma((nu+1)/2), terms of size nu log nu that cancel to about 0.5 log 2: in float32 that is accurate to 2e-4 nats
#: per dimension at nu = 1e3 but 0.08 off at nu = 1e6 (tests/test_likelihoods.py). At 1e3 a Student-t is within 0.02
#: nats of the Gaussian for |x| <= 3 scale units, so the cap costs no modelling power.
NU_MAX = 1e3


def bounded_log_scale(raw: torch.Tensor) -> torch.Tensor:
    """Smoothly squash a raw network output into [-LOG_SCALE_BOUND, LOG_SCALE_BOUND]."""
    return LOG_SCALE_BOUND * torch.tanh(raw / LOG_SCALE_BOUND)


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class LogitBernoulli(_Bernoulli):
    """``torch.distributions.Bernoulli`` whose ``log_prob`` is ``x * logits - softplus(logits)``: the same
    density, but one fused pass instead of broadcasting ``x`` and ``binary_cross_entropy_with_logits``, which
    makes the importance-sampled log-likelihood about 2x faster on CPU (``benchmarks/importance_sampling.py``)."""

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return value * self.logits - nn.functional.softplus(self.logits)


class BernoulliRows(Independent):
    """``Independent(LogitBernoulli(logits), 1)`` whose ``log_prob`` of data broadcast over leading sample
    dimensions (importance sampling: logits ``[K, B, D]``, data ``[B, D]``, K > 1) computes sum_d x_d * logit_d as one
    batched matrix product instead of an elementwise product and a sum, and sums softplus(logits) separately: the
    same density (to float rounding), 24 % less time for the log-density of a decoded block on CPU and 5-6 % less
    for the whole importance-sampled bound (``benchmarks/bernoulli_log_density.py``, ``importance_sampling.py``). Data of the logits' own shape (training) take the elementwise path,
    so training's numbers are unchanged."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__(LogitBernoulli(logits=logits, validate_args=False), 1, validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        logits = self.base_dist.logits
        lead = logits.dim() - value.dim()
        if lead < 1 or logits.shape[lead:] != value.shape or logits.shape[:lead].numel() == 1:
            return super().log_prob(value)
        rows = value.reshape(-1, value.shape[-1])  # [N, D]
        dot = torch.einsum("snd,nd->sn", logits.reshape(-1, *rows.shape), rows)  # [S, N]
        return dot.reshape(logits.shape[:-1]) - F.softplus(logits).sum(-1)


class Likelihood(nn.Module):
    """Base class: a linear head on decoder features producing p(x|z)."""

    name: ClassVar[str]
    #: Whether data must be standardised before training (continuous likelihoods) or left as is.
    standardise: ClassVar[bool] = True
    #: Whether the data this head models lie in [0, 1] (the role of ``support`` in ``torch.distributions``); a
    #: head with a sigmoid-bounded mean sets it per instance. Priors built on the data (VampPrior) read it.
    data_in_unit_interval: bool = False
    #: Whether the head models 0/1 data only (``check_data`` refuses anything else).
    binary_data: ClassVar[bool] = False

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features

    def forward(self, h: torch.Tensor) -> Distribution:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_parameter_prior(self, p: Distribution) -> torch.Tensor | None:
        """Log-prior of the decoded parameters per sample (summed over dimensions), or None."""
        return None

    def diagnostics(self, p: Distribution) -> dict[str, torch.Tensor]:
        """Scalar diagnostics of a decoded batch for the training history."""
        return {}

    def check_data(self, x: torch.Tensor) -> None:
        """Raise :class:`DataError` when ``x`` is outside this likelihood's support."""

    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments beyond the feature sizes (for checkpoints)."""
        return {}


class Bernoulli(Likelihood):
    """Bernoulli decoder for binary data (section 2.1)."""

    name = "bernoulli"
    standardise = False
    data_in_unit_interval = True
    binary_data = True

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        self.logits = nn.Linear(in_features, out_features)
        glorot_init(self)

    def forward(self, h: torch.Tensor) -> Distribution:
        return BernoulliRows(self.logits(h))

    def check_data(self, x: torch.Tensor) -> None:
        if not bool(((x == 0) | (x == 1)).all()):
            bad = x[(x != 0) & (x != 1)]
            raise DataError(
                f"the Bernoulli likelihood needs binary data (0/1), but found values such as {bad[:3].tolist()}; "
                "binarise the data first (for a trained model: as its training data were), or train with a "
                "continuous likelihood (gaussian, map, student-t)"
            )


class Gaussian(Likelihood):
    """Gaussian decoder with learned per-dimension variance, Eq. (3.7).

    ``variance_floor`` adds a constant to the decoded variance (0 reproduces the thesis's unstable baseline);
    ``bounded_mean`` squashes the mean into [0, 1] with a sigmoid (image data, section 4.5.2).
    """

    name = "gaussian"

    def __init__(
        self, in_features: int, out_features: int, variance_floor: float = 0.0, bounded_mean: bool = False
    ) -> None:
        super().__init__(in_features, out_features)
        if variance_floor < 0:
            raise ConfigError(f"variance_floor must be >= 0, got {variance_floor}")
        self.variance_floor = float(variance_floor)
        self.bounded_mean = self.data_in_unit_interval = bool(bounded_mean)
        self.mean = nn.Linear(in_features, out_features)
        self.log_variance = nn.Linear(in_features, out_features)
        glorot_init(self)

    def _variance(self, h: torch.Tensor) -> torch.Tensor:
        var = bounded_log_scale(self.log_variance(h)).exp()
        return var + self.variance_floor if self.variance_floor else var

    def forward(self, h: torch.Tensor) -> Distribution:
        mean = self.mean(h)
        if self.bounded_mean:
            mean = torch.sigmoid(mean)
        return Independent(Normal(mean, self._variance(h).sqrt(), validate_args=False), 1)

    def diagnostics(self, p: Distribution) -> dict[str, torch.Tensor]:
        return {"min_log_variance": (2 * p.base_dist.scale.detach().log()).min()}

    def config(self) -> dict[str, Any]:
        return {"variance_floor": self.variance_floor, "bounded_mean": self.bounded_mean}


class MAPGaussian(Gaussian):
    """Gaussian decoder whose precision tau = 1/sigma^2 has a Gamma(1, b) prior (MAP VAE, Eqs. 3.9-3.10).

    The training objective adds ``-b * tau`` per dimension; the reported likelihood is the plain Gaussian's.
    """

    name = "map"

    def __init__(self, in_features: int, out_features: int, b: float = 1.0, **kwargs: Any) -> None:
        super().__init__(in_features, out_features, **kwargs)
        if not b > 0:
            raise ConfigError(f"the Gamma(1, b) rate b must be > 0, got {b}")
        self.b = float(b)

    def log_parameter_prior(self, p: Distribution) -> torch.Tensor:
        precision = p.base_dist.scale.pow(-2)
        return -(self.b * precision).sum(-1)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "b": self.b}


class StudentT(Likelihood):
    """Student-t decoder St(x | mu, lambda, nu) with all three parameters decoded from z, Eq. (3.11).

    ``lambda = exp(.)`` (see :data:`LOG_SCALE_BOUND`) and ``nu = nu_min + softplus(.)``; the nu head's bias starts at ``nu_init`` so that training
    begins near a Gaussian rather than with Cauchy-like tails (see the README's parameterisation study).
    """

    name = "student-t"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        nu_init: float = 10.0,
        nu_min: float = 0.5,
        bounded_mean: bool = False,
    ) -> None:
        super().__init__(in_features, out_features)
        if not nu_min > 0 or not nu_init > nu_min:
            raise ConfigError(f"need 0 < nu_min < nu_init, got nu_min={nu_min}, nu_init={nu_init}")
        self.nu_init = float(nu_init)
        self.nu_min = float(nu_min)
        self.bounded_mean = self.data_in_unit_interval = bool(bounded_mean)
        self.mean = nn.Linear(in_features, out_features)
        self.log_precision = nn.Linear(in_features, out_features)
        self.raw_nu = nn.Linear(in_features, out_features)
        glorot_init(self)
        nn.init.constant_(self.raw_nu.bias, _inverse_softplus(self.nu_init - self.nu_min))

    def forward(self, h: torch.Tensor) -> Distribution:
        mean = self.mean(h)
        if self.bounded_mean:
            mean = torch.sigmoid(mean)
        scale = torch.exp(-0.5 * bounded_log_scale(self.log_precision(h)))
        nu = (self.nu_min + F.softplus(self.raw_nu(h))).clamp(max=NU_MAX)
        return Independent(_StudentT(nu, mean, scale, validate_args=False), 1)

    def diagnostics(self, p: Distribution) -> dict[str, torch.Tensor]:
        return {"mean_nu": p.base_dist.df.detach().mean()}

    def config(self) -> dict[str, Any]:
        return {"nu_init": self.nu_init, "nu_min": self.nu_min, "bounded_mean": self.bounded_mean}


LIKELIHOODS: dict[str, type[Likelihood]] = {
    cls.name: cls for cls in (Bernoulli, Gaussian, MAPGaussian, StudentT)
}


def make_likelihood(name: str, in_features: int, out_features: int, **kwargs: Any) -> Likelihood:
    """Build a likelihood head by its registered name (``bernoulli``, ``gaussian``, ``map``, ``student-t``)."""
    try:
        cls = LIKELIHOODS[name]
    except KeyError:
        raise ConfigError(f"unknown likelihood {name!r}; choose one of {sorted(LIKELIHOODS)}") from None
    with keyword_errors(cls, f"the {name} likelihood", skip=("in_features", "out_features")):
        return cls(in_features, out_features, **kwargs)


@contextlib.contextmanager
def keyword_errors(cls: type, what: str, skip: tuple[str, ...] = ()) -> Iterator[None]:
    """Turn the constructor's "unexpected keyword argument" TypeError into a :class:`ConfigError` that names the
    options ``cls`` takes (those of its ``__init__`` and of the parents it passes ``**kwargs`` to)."""
    try:
        yield
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        raise ConfigError(f"{what}: {err}; its options: {', '.join(keyword_options(cls, skip)) or 'none'}") from None


def keyword_options(cls: type, skip: tuple[str, ...] = ()) -> list[str]:
    """The keyword options of ``cls``'s constructor, following ``**kwargs`` up its parents."""
    accepted: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        accepted += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                     and p.name not in ("self", *skip) and p.name not in accepted]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return accepted
