"""VampPrior: a mixture of the encoder's posteriors at K learned pseudo-inputs (Tomczak and Welling, 2018).

p(z) = (1/K) sum_k q_phi(z | u_k[, s_k])    (Eq. 4.8)

With K = N and u_k = x^(k) this is the empirical aggregated posterior of Eq. (4.7). The KL is the default Monte
Carlo estimate mean_l [log q(z_l|x) - log p(z_l)]. For image data the pseudo-inputs pass through a clipped ReLU
min(max(u, 0), 1) before the encoder (section 4.5.2).

**Task conditioning.** With ``n_tasks > 0`` the encoder needs a task index for every pseudo-input. Pseudo-input k
is assigned the fixed task ``k mod n_tasks`` (balanced round-robin), so the mixture approximates the aggregated
posterior over all tasks, q(z) = E_{x,s}[q(z|x, s)], with equal task weights; the pseudo-inputs themselves are
learned as usual.

**Caching.** Under ``torch.no_grad()`` (validation ELBO, importance sampling, sampling) the K component parameters
are encoded once and reused for every batch; the cache is keyed on the versions of the encoder's parameters and of
the pseudo-inputs (which ``load_state_dict`` and in-place updates bump) and on train/eval mode, and it is dropped
by every gradient-recording use (each training step), because fused optimisers (``torch.optim.Adam(fused=True)``,
which the Trainer uses) update parameters in place without bumping their version counters.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.distributions import Categorical, Independent, MixtureSameFamily

from ..errors import ConfigError
from .base import Prior, register_prior
from .mixture import DiagonalGaussianMixture


@register_prior
class VampPrior(Prior):
    """Variational mixture of posteriors prior (Eq. 4.8).

    Parameters
    ----------
    n_components:
        K, the number of pseudo-inputs (thesis: 50 for OneHot, 500 for MNIST/FreyFaces/Histopathology,
        1,000 for OMNIGLOT).
    clip:
        Clip pseudo-inputs to [0, 1] (clipped ReLU, section 4.5.2). ``None`` clips when the data live in [0, 1]
        (``data_in_unit_interval``, from the owning model's likelihood: a Bernoulli decoder, or a decoder with
        ``bounded_mean=True``).
    init_mean, init_std:
        Pseudo-inputs start as N(init_mean, init_std^2) entries; defaults 0.05 / 0.01 when clipped (as in the
        VampPrior authors' code for binary images) and 0 / 1 for standardised data.
    chunk_elements:
        Upper bound on rows x K component log-densities evaluated at once in :meth:`log_prob` (memory, not
        results).
    x_dim, n_tasks, data_in_unit_interval:
        Facts about the owning model (the pseudo-inputs' width, the task count, the data's range).
    """

    name = "vamp"

    def __init__(
        self,
        latent_dim: int,
        n_components: int = 500,
        clip: bool | None = None,
        init_mean: float | None = None,
        init_std: float | None = None,
        chunk_elements: int = 1 << 23,
        *,
        x_dim: int,
        n_tasks: int = 0,
        data_in_unit_interval: bool = False,
    ) -> None:
        super().__init__(latent_dim)
        if n_components < 1:
            raise ConfigError(f"the VampPrior needs at least one pseudo-input, got n_components={n_components}")
        self.n_components = int(n_components)
        self.clip_option = clip
        self.init_mean, self.init_std = init_mean, init_std
        self.chunk_elements = int(chunk_elements)
        self._cache: tuple[tuple[Any, ...], Independent] | None = None
        self.n_tasks = int(n_tasks)
        self.clip = bool(data_in_unit_interval) if clip is None else bool(clip)
        mean = init_mean if init_mean is not None else (0.05 if self.clip else 0.0)
        std = init_std if init_std is not None else (0.01 if self.clip else 1.0)
        self.pseudo_inputs = nn.Parameter(mean + std * torch.randn(self.n_components, x_dim))
        tasks = torch.arange(self.n_components) % n_tasks if n_tasks else torch.zeros(0, dtype=torch.long)
        self.register_buffer("pseudo_tasks", tasks, persistent=False)

    # ---------------------------------------------------------------------------------------------- components
    def inputs(self) -> torch.Tensor:
        """The pseudo-inputs as the encoder sees them (clipped to [0, 1] when ``clip``)."""
        return torch.clamp(self.pseudo_inputs, 0.0, 1.0) if self.clip else self.pseudo_inputs

    @torch.no_grad()
    def set_pseudo_inputs(self, x: torch.Tensor) -> None:
        """Place the pseudo-inputs at given points (e.g. training data); needs ``len(x) == n_components``."""
        if x.shape != self.pseudo_inputs.shape:
            raise ConfigError(f"expected pseudo-inputs of shape {tuple(self.pseudo_inputs.shape)}, got {tuple(x.shape)}")
        self.pseudo_inputs.copy_(x)

    def components(self) -> Independent:
        """The K posteriors q(z|u_k[, s_k]); cached when no gradient is being recorded, until a weight or the
        pseudo-inputs change (a step, ``load_state_dict``, ``.to``/``.double()``; writes through ``.data`` are not
        seen)."""
        host = self.host
        tasks = self.pseudo_tasks if self.n_tasks else None
        if torch.is_grad_enabled():  # a training step: the weights are about to change, drop the cache
            self._cache = None
            return host.encode(self.inputs(), tasks)
        key = (self.training, *((id(p), p._version, p.data_ptr(), p.dtype, p.device)
                                for p in (self.pseudo_inputs, *host.encoder_parameters())))
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, host.encode(self.inputs(), tasks))
        return self._cache[1]

    def mixture(self) -> MixtureSameFamily:
        """p(z) as a ``torch.distributions`` mixture with uniform weights."""
        comps = self.components()
        logits = comps.base_dist.loc.new_zeros(self.n_components)
        return DiagonalGaussianMixture(Categorical(logits=logits, validate_args=False), comps, validate_args=False)

    # ------------------------------------------------------------------------------------------------ interface
    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        mix = self.mixture()
        flat = z.reshape(-1, z.shape[-1])
        rows = max(1, self.chunk_elements // self.n_components)
        out = torch.cat([mix.log_prob(flat[i:i + rows]) for i in range(0, flat.shape[0], rows)])
        return out.reshape(z.shape[:-1])

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.mixture().sample((n,))

    def config(self) -> dict[str, Any]:
        return {"n_components": self.n_components, "clip": self.clip_option, "init_mean": self.init_mean,
                "init_std": self.init_std}

    def extra_repr(self) -> str:
        return f"n_components={self.n_components}, clip={self.clip}"

