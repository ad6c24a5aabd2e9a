"""log Z of an unnormalised prior N(z) exp T(z) by annealed importance sampling (Neal, 2001).

Importance sampling from a fixed proposal (:mod:`vaekit.priors.normaliser`) needs a proposal within a few nats of
N(z) exp T(z) everywhere; in 40 latent dimensions the classifier's T is not that close to the log ratio of any
proposal we can write down, and the estimate's effective sample size falls to a handful of 10,000. AIS instead
moves each sample along the geometric path

    f_b(z) = N(z; 0, I) exp(b T(z)),    0 = b_0 < b_1 < ... < b_K = 1,

from f_0 = N(0, I) (normalised, sampled exactly) to the target f_1, with a Markov transition that leaves f_b_k
invariant after each step (here Hamiltonian Monte Carlo with a Metropolis correction). A chain's log weight is
``sum_k (b_k - b_{k-1}) T(z_{k-1})`` and its weight is an unbiased estimate of Z, whatever the number of steps;
more steps only lower the variance. The temperatures follow the sigmoid schedule of Grosse et al. (2015); each
chain adapts its own leapfrog step size toward an acceptance rate of about 0.67 (as in Wu et al., 2017).

The estimate carries the same standard error and effective sample size (over chains) as the importance-sampling
one, so :attr:`~vaekit.priors.normaliser.LogNormaliser.reliable` judges both alike. It needs only T and its
gradient: no training posteriors, so it also works on a model loaded from a checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.distributions import Categorical, Independent, Normal

from .mixture import DiagonalGaussianMixture
from .normaliser import LogNormaliser, from_log_weights


def sigmoid_schedule(n_steps: int, sharpness: float = 4.0) -> torch.Tensor:
    """``n_steps + 1`` inverse temperatures from 0 to 1, dense at both ends (Grosse et al., 2015)."""
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    s = torch.sigmoid(sharpness * torch.linspace(-1.0, 1.0, n_steps + 1, dtype=torch.float64))
    return (s - s[0]) / (s[-1] - s[0])


def defensive_mixture(loc: torch.Tensor, scale: torch.Tensor, weights: torch.Tensor | None, defensive: float
                      ) -> DiagonalGaussianMixture:
    """delta N(0, I) + (1 - delta) sum_m w_m q(z | x_m): the posteriors' mixture with N(0, I) as one more component."""
    probs = torch.full((len(loc),), 1.0 / len(loc)) if weights is None else weights.float() / weights.sum()
    probs = torch.cat([probs.new_tensor([defensive]), (1.0 - defensive) * probs.to(loc.device)])
    loc = torch.cat([loc.new_zeros(1, loc.shape[1]), loc.float()])
    scale = torch.cat([scale.new_ones(1, scale.shape[1]), scale.float()])
    return DiagonalGaussianMixture(Categorical(probs=probs), Independent(Normal(loc, scale, validate_args=False), 1))


def _log_densities(log_ratio: Callable[[torch.Tensor], torch.Tensor], start: DiagonalGaussianMixture | None,
                   z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """log f_0(z), log f_1(z) = log N(z) + T(z) and their gradients in z."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        log_normal = -0.5 * z.pow(2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)
        target = log_normal + log_ratio(z)
        (grad_target,) = torch.autograd.grad(target.sum(), z)
        if start is None:
            return log_normal.detach(), target.detach(), -z.detach(), grad_target
        initial = start.log_prob(z)
        (grad_initial,) = torch.autograd.grad(initial.sum(), z)
    return initial.detach(), target.detach(), grad_initial, grad_target


@torch.no_grad()
def annealed_samples(log_ratio: Callable[[torch.Tensor], torch.Tensor], latent_dim: int, n: int, *,
                     n_chains: int = 500, n_steps: int = 500, seed: int = 0,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` approximate samples of p(z) ∝ N(z; 0, I) exp T(z) (Eq. 4.13's prior, ``log_ratio`` = T): the final
    states of AIS chains from N(0, I) (:func:`annealed_log_normaliser`), resampled by their importance weights.
    A sampler that needs no training rows (a model loaded from a checkpoint keeps none)."""
    chains = max(int(n_chains), 2)
    _, z, log_w = _anneal(log_ratio, latent_dim, n_chains=chains, n_steps=n_steps, seed=seed, device=device)
    generator = torch.Generator().manual_seed(seed + 1)
    pick = torch.multinomial(torch.softmax(log_w, 0).float(), n, replacement=True, generator=generator)
    return z[pick.to(z.device)].detach()


def annealed_log_normaliser(
    log_ratio: Callable[[torch.Tensor], torch.Tensor],
    latent_dim: int,
    loc: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    *,
    n_chains: int = 500,
    n_steps: int = 500,
    leapfrog_steps: int = 5,
    step_size: float = 0.05,
    defensive: float = 0.2,
    max_components: int = 2_000,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> LogNormaliser:
    """log Z = log E_{N(0,I)}[exp T(z)] for ``log_ratio`` = T by AIS (see the module docstring).

    The path starts at N(0, I), or, given the training posteriors ``loc``/``scale`` ([N, D]; ``weights`` their
    sampling weights), at their defensive mixture (as the importance-sampling proposal; at most ``max_components``
    of them, drawn with the seed, which keeps a step's cost at ``n_chains x max_components x D``). ``n_chains``
    independent chains, ``n_steps`` temperatures, each followed by one HMC transition of ``leapfrog_steps``
    leapfrog steps (initial size ``step_size``, adapted per chain). ``log_ratio`` is called on float32 batches of
    ``n_chains`` rows on ``device`` and must be differentiable in z. Seeded: the same inputs give the same estimate.
    """
    proposal, _, log_w = _anneal(log_ratio, latent_dim, loc, scale, weights, n_chains=n_chains, n_steps=n_steps,
                                 leapfrog_steps=leapfrog_steps, step_size=step_size, defensive=defensive,
                                 max_components=max_components, seed=seed, device=device)
    return from_log_weights(log_w, proposal)


def _anneal(log_ratio: Callable[[torch.Tensor], torch.Tensor], latent_dim: int, loc: torch.Tensor | None = None,
            scale: torch.Tensor | None = None, weights: torch.Tensor | None = None, *, n_chains: int = 500,
            n_steps: int = 500, leapfrog_steps: int = 5, step_size: float = 0.05, defensive: float = 0.2,
            max_components: int = 2_000, seed: int = 0, device: torch.device | str = "cpu",
            ) -> tuple[str, torch.Tensor, torch.Tensor]:
    """The AIS chains of :func:`annealed_log_normaliser`: (proposal name, final states, log importance weights)."""
    if n_chains < 2:
        raise ValueError(f"n_chains must be >= 2, got {n_chains}")
    if leapfrog_steps < 1 or step_size <= 0:
        raise ValueError(f"leapfrog_steps must be >= 1 and step_size > 0, got {leapfrog_steps}, {step_size}")
    if not 0.0 < defensive <= 1.0:
        raise ValueError(f"defensive must be in (0, 1], got {defensive}")
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(device)

    start, proposal = None, "annealed-standard-normal"
    z = normal(n_chains, latent_dim)
    if loc is not None and scale is not None and defensive < 1.0:
        if len(loc) > max_components:
            keep = torch.randperm(len(loc), generator=generator)[:max_components].to(loc.device)
            loc, scale = loc[keep], scale[keep]
            weights = None if weights is None else weights[keep]
        start = defensive_mixture(loc.detach().to(device), scale.detach().to(device),
                                  None if weights is None else weights.detach().to(device), defensive)
        component = torch.multinomial(start.mixture_distribution.probs.cpu(), n_chains, replacement=True,
                                      generator=generator).to(device)
        base = start.component_distribution.base_dist
        z = base.loc[component] + base.scale[component] * z
        proposal = "annealed-defensive-mixture"
    initial, target, grad_initial, grad_target = _log_densities(log_ratio, start, z)
    log_w = torch.zeros(n_chains, dtype=torch.float64)
    eps = torch.full((n_chains, 1), float(step_size), device=device)
    betas = sigmoid_schedule(n_steps)
    for previous, beta in zip(betas[:-1].tolist(), betas[1:].tolist()):
        log_w += (beta - previous) * (target - initial).double().cpu()
        # one HMC transition leaving f_beta = f_0^(1 - beta) f_1^beta invariant
        momentum = normal(n_chains, latent_dim)
        z_new, a_new, b_new, ga_new, gb_new = z, initial, target, grad_initial, grad_target
        p = momentum + 0.5 * eps * ((1.0 - beta) * ga_new + beta * gb_new)
        for step in range(leapfrog_steps):
            z_new = z_new + eps * p
            a_new, b_new, ga_new, gb_new = _log_densities(log_ratio, start, z_new)
            if step < leapfrog_steps - 1:
                p = p + eps * ((1.0 - beta) * ga_new + beta * gb_new)
        p = p + 0.5 * eps * ((1.0 - beta) * ga_new + beta * gb_new)
        log_f = (1.0 - beta) * initial + beta * target
        log_f_new = (1.0 - beta) * a_new + beta * b_new
        log_accept = (log_f_new - 0.5 * p.pow(2).sum(1) - log_f + 0.5 * momentum.pow(2).sum(1)).nan_to_num(
            nan=-math.inf)
        accept = torch.rand(n_chains, generator=generator).to(device).log() < log_accept
        z = torch.where(accept[:, None], z_new, z)
        initial, target = torch.where(accept, a_new, initial), torch.where(accept, b_new, target)
        grad_initial = torch.where(accept[:, None], ga_new, grad_initial)
        grad_target = torch.where(accept[:, None], gb_new, grad_target)
        eps = torch.where(accept[:, None], eps * 1.01, eps * 0.98)  # equilibrium acceptance ~0.67
    return proposal, z, log_w
