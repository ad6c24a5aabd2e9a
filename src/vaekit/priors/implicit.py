"""The implicit optimal prior: the aggregated posterior q(z) = E_x[q(z|x)] through a density-ratio classifier.

KL(q(z|x) || q(z)) = KL(q(z|x) || N(0, I)) - E_q(z|x)[log q(z)/N(z)]                          (Eq. 4.9)
                  ~= KL(q(z|x) || N(0, I)) - T_psi(z),  z = mu_phi(x) + sigma_phi(x) * eps      (Eqs. 4.14, 4.18)

T_psi is a logistic classifier between aggregated-posterior samples (ancestral sampling, label 1) and N(0, I)
samples (label 0), trained by maximising Eq. (4.19); at its optimum T*(z) = log q(z)/N(z) (Eq. 4.13). Training
alternates (Algorithm 4.1 / 5.1): the trainer's VAE epoch updates theta and phi with psi frozen, then
:meth:`ImplicitOptimalPrior.fit_auxiliary` updates psi for ``ratio_epochs`` epochs (J2) with theta and phi frozen.

In the VAE step the pathwise gradient of T_psi(z) through the reparameterised z reaches the encoder; only psi is
frozen and T's own dependence on q_phi is ignored (its expected gradient vanishes at the optimum, Eq. 4.20).

The prior density is p(z) = N(z) exp T_psi(z) up to the constant Z = E_N[exp T_psi(z)], estimated by importance
sampling with the aggregated posterior (a defensive mixture with N(0, I)) as proposal, with a standard error and an
effective sample size (:mod:`vaekit.priors.normaliser`, :meth:`ImplicitOptimalPrior.log_normaliser`), so the normalised
log-likelihood can be reported beside the raw one. The trainer selects epochs on the normalised validation bound.
Sampling from the prior means ancestral sampling from the training data.

With a task-conditioned model the same prior is the proposed model of chapter 5: q(z) = E_{p_D(x,s)}[q(z|x,s)]
(Eq. 5.8), sampled ancestrally by drawing a training pair (x_n, s_n) and then z ~ q(z|x_n, s_n) (Eq. 5.32 and its
footnote). Drawing training rows uniformly weights task k by p_D(s=k) = N_k / N, as Eq. 5.8 defines;
``task_weights="equal"`` instead gives every task weight 1/K (an option to measure, not the thesis's definition).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import torch
from torch.distributions import Distribution, kl_divergence

from ..errors import ConfigError
from .annealed import annealed_log_normaliser, annealed_samples
from .base import Prior, register_prior, standard_normal
from .normaliser import LogNormaliser, estimate_log_normaliser
from .ratio import DensityRatioNet, RatioClassifierPhase

ANCESTRAL_MODES = ("reuse", "encode")
TASK_WEIGHTS = ("data", "equal")
NORMALISERS = ("importance", "annealed")


@register_prior
class ImplicitOptimalPrior(RatioClassifierPhase, Prior):
    """Implicit optimal prior p(z) proportional to N(z) exp T_psi(z) (Eqs. 4.9-4.19).

    Parameters
    ----------
    ratio_epochs:
        J2, classifier epochs per VAE epoch (thesis: 10).
    ratio_lr, ratio_hidden, ratio_batch_size, keep_prob:
        The classifier's Adam learning rate, hidden sizes (tanh), mini-batch size and dropout keep probability
        (thesis: two layers of 500, keep 0.5).
    ratio_samples:
        M, samples of each class per classifier epoch; ``None`` means M = N, the training-set size (thesis).
    ancestral:
        ``"reuse"`` (default) draws aggregated-posterior samples from the Gaussian posteriors q(z|x_n) that the
        VAE epoch just computed for every training point (no extra encoder pass; the parameters are those of the
        epoch's mini-batch steps, dynamic binarisation included). ``"encode"`` re-encodes the training data after
        the epoch (one extra forward pass; exact for the current phi). ``"reuse"`` falls back to ``"encode"``
        when the epoch's posteriors are incomplete (e.g. after a divergence rollback).
    normaliser_samples:
        Importance samples for the estimate of log Z (proposal: the last classifier phase's posteriors, i.e. the
        aggregated posterior, in a defensive mixture with N(0, I); see :mod:`vaekit.priors.normaliser`).
    normaliser:
        How log Z is estimated: ``"importance"`` (default; ``normaliser_samples`` importance samples) or
        ``"annealed"`` (AIS from N(0, I) to N(z) exp T(z), :mod:`vaekit.priors.annealed`: slower, far more
        effective samples in many latent dimensions).
    task_weights:
        How ancestral sampling weights the tasks of a task-conditioned model: ``"data"`` (default) draws training
        rows uniformly, i.e. task k with its share p_D(s=k) (Eq. 5.8); ``"equal"`` draws each task with
        probability 1/K (rows uniformly within a task). Both draw from the posteriors of the VAE epoch itself,
        which keep the task index of their row.
    dropout_last_only:
        Dropout after the classifier's last hidden layer only (section 5.5.3) instead of after each (4.5.2).
    """

    name = "implicit"

    def __init__(
        self,
        latent_dim: int,
        ratio_epochs: int = 10,
        ratio_lr: float = 1e-3,
        ratio_hidden: Sequence[int] = (500, 500),
        ratio_batch_size: int = 100,
        keep_prob: float = 0.5,
        ratio_samples: int | None = None,
        ancestral: str = "reuse",
        normaliser_samples: int = 10_000,
        normaliser: str = "importance",
        task_weights: str = "data",
        dropout_last_only: bool = False,
    ) -> None:
        super().__init__(latent_dim)
        self.set_schedule(ratio_epochs, ratio_lr, ratio_hidden, ratio_batch_size, keep_prob)
        if ancestral not in ANCESTRAL_MODES:
            raise ConfigError(f"ancestral must be one of {ANCESTRAL_MODES}, got {ancestral!r}")
        if task_weights not in TASK_WEIGHTS:
            raise ConfigError(f"task_weights must be one of {TASK_WEIGHTS}, got {task_weights!r}")
        if normaliser_samples < 2:
            raise ConfigError(f"normaliser_samples must be >= 2, got {normaliser_samples}")
        if normaliser not in NORMALISERS:
            raise ConfigError(f"normaliser must be one of {NORMALISERS}, got {normaliser!r}")
        self.normaliser = normaliser
        self.ratio_samples, self.ancestral, self.normaliser_samples = ratio_samples, ancestral, int(normaliser_samples)
        self.task_weights, self.dropout_last_only = task_weights, bool(dropout_last_only)
        self.ratio = DensityRatioNet(latent_dim, self.ratio_hidden, self.keep_prob, self.dropout_last_only)
        self.freeze_ratio()
        #: log Z, its standard error and the estimate's effective sample size; NaN until estimated for the current
        #: psi (kept in checkpoints, so a restored epoch keeps its own estimate)
        self.register_buffer("log_z", torch.tensor(math.nan, dtype=torch.float64))
        self.register_buffer("log_z_stderr", torch.tensor(math.nan, dtype=torch.float64))
        self.register_buffer("log_z_ess", torch.tensor(math.nan, dtype=torch.float64))
        self._posteriors: deque[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = deque()
        self._posterior_rows, self._capacity = 0, 250_000
        #: (mu, sigma, row weights or None) of the last classifier phase (re-encoded by :meth:`after_restore`)
        self._snapshot: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None

    # ------------------------------------------------------------------------------------------------ density
    def log_ratio(self, z: torch.Tensor) -> torch.Tensor:
        """T_psi(z), the estimate of log q(z)/N(z) (Eq. 4.13)."""
        return self.ratio(z)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """Unnormalised log p(z) = log N(z) + T_psi(z); subtract :meth:`log_normaliser` to normalise."""
        return standard_normal(self.latent_dim, z).log_prob(z) + self.ratio(z)

    def kl(self, q: Distribution, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) in closed form minus mean_l T_psi(z_l) (Eqs. 4.14, 4.18), differentiable in z."""
        return kl_divergence(q, standard_normal(self.latent_dim, z)) - self.ratio(z).mean(0)

    def observe(self, q: Distribution, s: torch.Tensor | None = None) -> None:
        """Keep the training step's Gaussian posteriors (detached, with their rows' tasks) as the aggregated
        posterior's components for the next classifier phase (``ancestral="reuse"``)."""
        if self.ancestral != "reuse":
            return
        base = q.base_dist  # type: ignore[attr-defined]
        loc, scale = base.loc.detach(), base.scale.detach()
        tasks = None if s is None else torch.as_tensor(s).long().reshape(-1)
        self._posteriors.append((loc, scale, tasks))
        self._posterior_rows += len(loc)
        while self._posterior_rows - len(self._posteriors[0][0]) >= self._capacity:
            self._posterior_rows -= len(self._posteriors.popleft()[0])

    # ------------------------------------------------------------------------------------------ ancestral q(z)
    @torch.no_grad()
    def _posteriors_with_tasks(self, train_x: torch.Tensor, train_s: torch.Tensor | None
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(mu, sigma, s) of q(z|x_n[, s_n]) for the N training points: the VAE epoch's (in its shuffled order, each
        with its row's task), or freshly encoded in row order."""
        n = len(train_x)
        if self.ancestral == "reuse" and self._posterior_rows >= n:
            loc = torch.cat([p[0] for p in self._posteriors])[-n:]
            scale = torch.cat([p[1] for p in self._posteriors])[-n:]
            tasks = None
            if all(p[2] is not None for p in self._posteriors):
                tasks = torch.cat([p[2] for p in self._posteriors])[-n:]  # type: ignore[misc]
            if bool(torch.isfinite(loc).all() & torch.isfinite(scale).all()):
                return loc, scale, tasks
        return (*self._encode_rows(train_x, train_s), train_s)

    @torch.no_grad()
    def _encode_rows(self, train_x: torch.Tensor, train_s: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, sigma) of q(z|x_n[, s_n]) for every training row, encoded now, in row order."""
        locs, scales = [], []
        for start in range(0, len(train_x), 1000):
            q = self.host.encode(train_x[start:start + 1000], None if train_s is None else train_s[start:start + 1000])
            locs.append(q.base_dist.loc)  # type: ignore[attr-defined]
            scales.append(q.base_dist.scale)  # type: ignore[attr-defined]
        return torch.cat(locs), torch.cat(scales)

    def after_restore(self, train_x: torch.Tensor, train_s: torch.Tensor | None) -> None:
        """Rebuild the aggregated posterior's components with the restored encoder: those kept from the last epoch
        belong to an encoder that early stopping has just replaced, and :meth:`sample` draws from them."""
        if self._snapshot is None:  # no classifier phase ran: nothing to rebuild
            return
        tasks = None if train_s is None else torch.as_tensor(train_s).long().reshape(-1)
        loc, scale = self._encode_rows(train_x, train_s)
        self._snapshot = (loc, scale, self.row_weights(tasks))
        if self.ancestral == "reuse":
            self._posteriors, self._posterior_rows = deque([(loc, scale, tasks)]), len(loc)

    def row_weights(self, train_s: torch.Tensor | None) -> torch.Tensor | None:
        """Sampling weights of the training rows: None (uniform rows, p_D(s) task weights, Eq. 5.8) or, for
        ``task_weights="equal"``, 1 / (K N_{s_n}) so that every task present has total weight 1/K."""
        if self.task_weights == "data" or train_s is None:
            return None
        s = torch.as_tensor(train_s).long().reshape(-1)
        counts = torch.bincount(s).double()
        present = int((counts > 0).sum())
        return 1.0 / (present * counts[s])

    @staticmethod
    def _ancestral(loc: torch.Tensor, scale: torch.Tensor, m: int, weights: torch.Tensor | None = None) -> torch.Tensor:
        """m samples of q(z) = sum_n w_n q(z|x_n, s_n): a training point drawn with weight w_n (uniform by default,
        1/N), then z ~ q(z|x_n, s_n)."""
        idx = torch.randint(len(loc), (m,)) if weights is None else torch.multinomial(weights, m, replacement=True)
        return loc[idx] + scale[idx] * torch.randn(m, loc.shape[1], dtype=loc.dtype, device=loc.device)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Ancestral samples of the aggregated posterior from the training posteriors of the encoder the model holds
        (the last classifier phase's, re-encoded when early stopping restores another epoch); without them (a
        model loaded from a checkpoint) samples of N(z) exp T(z) by annealed importance sampling (seeded from the
        global random state)."""
        if self._snapshot is not None:
            return self._ancestral(*self._snapshot[:2], n, self._snapshot[2])
        if not self._posteriors:
            was_training = self.ratio.training
            self.ratio.eval()
            try:
                with torch.enable_grad():  # the HMC steps follow the gradient of T
                    return annealed_samples(self.ratio, self.latent_dim, n, seed=int(torch.randint(2**31, ())),
                                            device=self.log_z.device)
            finally:
                self.ratio.train(was_training)
        loc = torch.cat([p[0] for p in self._posteriors])
        scale = torch.cat([p[1] for p in self._posteriors])
        return self._ancestral(loc, scale, n)

    # ------------------------------------------------------------------------------------------ the psi phase
    def fit_auxiliary(self, train_x: torch.Tensor, train_s: torch.Tensor | None) -> dict[str, float]:
        """J2 epochs of Eq. (4.19) on M fresh samples of each class per epoch (theta, phi frozen)."""
        started = time.perf_counter(), time.process_time()
        loc, scale, tasks = self._posteriors_with_tasks(train_x, train_s)
        if self.task_weights == "equal" and train_s is not None and tasks is None:
            raise ConfigError("equal task weights need the task index of every reused posterior; pass s to loss()")
        weights = self.row_weights(tasks)
        self._snapshot = (loc, scale, weights)
        self._capacity = len(train_x)
        if self.ancestral == "reuse":  # keep the epoch's posteriors for sample(); the next epoch refills
            self._posteriors, self._posterior_rows = deque([(loc, scale, tasks)]), len(loc)
        m = self.ratio_samples or len(loc)
        for buffer in (self.log_z, self.log_z_stderr, self.log_z_ess):
            buffer.fill_(math.nan)

        def draw(count: int) -> tuple[torch.Tensor, torch.Tensor]:
            return (self._ancestral(loc, scale, count, weights),
                    torch.randn(count, self.latent_dim, device=loc.device))

        return self.train_ratio(lambda: draw(m), lambda: draw(min(m, 10_000)), started)

    # -------------------------------------------------------------------------------------------- normaliser
    def estimate_log_normaliser(self, n_samples: int | None = None, seed: int = 0, method: str | None = None,
                                posteriors: tuple[torch.Tensor, torch.Tensor] | None = None,
                                n_steps: int = 500) -> LogNormaliser:
        """log Z for the current psi by ``method`` (default: the prior's ``normaliser``).

        ``"importance"`` (:mod:`vaekit.priors.normaliser`): the proposal is the defensive mixture of ``posteriors``
        (loc, scale of q(z|x) per training row), by default the last classifier phase's (with their task weights);
        without either (e.g. a model loaded from a checkpoint) N(0, I) alone, which the returned ``proposal`` and a
        small ``ess`` make visible. ``"annealed"`` (:mod:`vaekit.priors.annealed`): AIS over ``n_steps``
        temperatures from N(0, I), or from the mixture of ``posteriors`` when given (on Frey faces the start at
        N(0, I) gave more effective samples, at a tenth of the cost). ``n_samples``: importance samples, or AIS
        chains (default 500)."""
        method = method or self.normaliser
        if method not in NORMALISERS:
            raise ConfigError(f"method must be one of {NORMALISERS}, got {method!r}")
        loc, scale, weights = self._snapshot if self._snapshot is not None else (None, None, None)
        if posteriors is not None:
            (loc, scale), weights = posteriors, None
        was_training = self.ratio.training
        self.ratio.eval()
        try:
            if method == "annealed":
                start = (None, None, None) if posteriors is None else (loc, scale, weights)
                return annealed_log_normaliser(self.ratio, self.latent_dim, *start, n_chains=int(n_samples or 500),
                                               n_steps=n_steps, seed=seed, device=self.log_z.device)
            return estimate_log_normaliser(self.ratio, self.latent_dim, loc, scale, weights,
                                           n_samples=int(n_samples or self.normaliser_samples), seed=seed,
                                           device=self.log_z.device)
        finally:
            self.ratio.train(was_training)

    def set_log_normaliser(self, estimate: LogNormaliser) -> None:
        """Use ``estimate`` (e.g. a re-estimate by AIS) as log Z from now on; checkpoints keep it."""
        self.log_z.fill_(estimate.log_z)
        self.log_z_stderr.fill_(estimate.stderr)
        self.log_z_ess.fill_(estimate.ess)

    def log_normaliser(self) -> float:
        """log Z for the current psi; estimated on first use after each classifier phase, then cached in the
        ``log_z`` buffers (so checkpoints, and the epoch that early stopping restores, keep their own)."""
        if math.isnan(float(self.log_z)):
            self.set_log_normaliser(self.estimate_log_normaliser())
        return float(self.log_z)

    def normaliser_metrics(self) -> dict[str, Any]:
        log_z = self.log_normaliser()
        estimate = LogNormaliser(log_z, float(self.log_z_stderr), float(self.log_z_ess), self.normaliser_samples,
                                 "cached")
        return estimate.metrics()

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any,
                              **kwargs: Any) -> None:  # type: ignore[override]
        # checkpoints written before the ESS was stored (vaekit <= 0.1.0 numerics 1) load with it unknown
        state_dict.setdefault(prefix + "log_z_ess", torch.tensor(math.nan, dtype=torch.float64))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def config(self) -> dict[str, Any]:
        return {**self.schedule_config(), "ratio_samples": self.ratio_samples, "ancestral": self.ancestral,
                "normaliser_samples": self.normaliser_samples, "normaliser": self.normaliser, "task_weights": self.task_weights,
                "dropout_last_only": self.dropout_last_only}
