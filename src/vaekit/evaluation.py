"""Evaluation: importance-sampled log-likelihood (Burda et al., 2016) and ELBO over a data set."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.distributions import Independent, Normal
from tqdm.auto import tqdm

from .errors import ConfigError
from .model import VAE

log = logging.getLogger(__name__)
#: decoder evaluations (rows x importance samples) above which the expected cost is logged before starting
ANNOUNCE_EVALUATIONS = 1_000_000


@contextmanager
def evaluating(model: VAE) -> Iterator[VAE]:
    """Eval mode and no autograd for the block; restores the previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def _batches(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


#: Bytes of the widest decoder activation block processed at once during importance sampling. Blocks this small
#: stay in this CPU's caches between the elementwise passes (bias, tanh, log-density) that follow each product:
#: about 1.4x faster than 20,000-row blocks (``benchmarks/importance_sampling.py``); the products stay wide enough.
DECODE_BLOCK_BYTES = 4 * 2**20


def decode_rows(model: VAE) -> int:
    """Decoder rows per block in :func:`log_likelihood`: :data:`DECODE_BLOCK_BYTES` over the widest layer."""
    widths = [model.config.x_dim, *model.config.hidden]
    return max(256, DECODE_BLOCK_BYTES // (4 * max(widths)))


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's parameters (CPU for a model without any)."""
    return next(model.parameters(), torch.empty(0)).device


def log_likelihood(
    model: VAE,
    x: torch.Tensor,
    s: torch.Tensor | None = None,
    n_samples: int = 100,
    batch_size: int = 100,
    max_rows: int = 20_000,
    noise: torch.Tensor | None = None,
    block_rows: int | None = None,
    progress: bool | None = False,
) -> torch.Tensor:
    """Per-point importance-sampled estimate of log p(x[|s]) with ``n_samples`` samples from q(z|x[, s])
    (Burda et al., 2016; the thesis's Eqs. 5.36, 5.37 with task conditioning).

    log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K,  z_k ~ q(z|x).

    Points are processed ``batch_size`` at a time and samples are drawn in chunks of at most ``max_rows`` decoder
    rows, each decoded in blocks of ``block_rows`` rows (default :func:`decode_rows`: sized to the cache and the
    model's width), with a running logsumexp, so memory does not grow with K. The block size does not change which
    samples are drawn, only the order of the float additions. The bound increases in expectation with K and tends to
    log p(x). For implicit priors the result uses the unnormalised density p(z) exp T(z); subtract
    ``model.prior.log_normaliser()`` for the normalised value.

    ``noise`` (``[K, D]`` standard-normal draws, overriding ``n_samples``) replaces the random draws for a Gaussian
    encoder: z_k = mu(x) + sigma(x) * noise_k for every row (common random numbers). Each row's estimate is then a
    deterministic function of that row alone, whatever the batch, the row order or the global random state.

    ``progress`` shows a progress bar over the rows (``None``: only on a terminal); large evaluations log their
    cost (rows x K decoder evaluations) before they start and a time estimate after the first batch.
    """
    if noise is not None:
        if noise.ndim != 2 or noise.shape[1] != model.config.latent_dim:
            raise ValueError(f"noise must have shape [K, {model.config.latent_dim}], got {tuple(noise.shape)}")
        n_samples = noise.shape[0]
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if not model.encoder_has_density:
        raise ConfigError(
            "this model's encoder is implicit (AVB): without a density q(z|x) there is no importance-sampled "
            "log-likelihood; use vaekit.evaluation.elbo for the (discriminator-estimated) ELBO"
        )
    out = torch.empty(x.shape[0], dtype=x.dtype)
    device = model_device(model)
    noise = None if noise is None else noise.to(device)
    block_rows = block_rows or decode_rows(model)
    unsplit = model.task_latent is not None or device.type != "cpu"
    announce = x.shape[0] * n_samples >= ANNOUNCE_EVALUATIONS
    if announce:
        log.info("importance sampling: %s rows x K=%d = %s decoder evaluations", f"{x.shape[0]:,}", n_samples,
                 f"{x.shape[0] * n_samples:,}")
    bar = tqdm(total=x.shape[0], unit="row", desc=f"log p(x), K={n_samples}", leave=False,
               disable=None if progress is None else not progress)
    start = time.perf_counter()
    with evaluating(model), bar:
        for rows in _batches(x.shape[0], batch_size):
            xb = x[rows].to(device)
            sb = None if s is None else s[rows].to(device)
            q = model.encode(xb, sb)
            if noise is not None and not (isinstance(q, Independent) and isinstance(q.base_dist, Normal)):
                raise ValueError("fixed importance-sampling noise needs a Gaussian encoder q(z|x)")
            chunk = max(1, max_rows // xb.shape[0])
            # the beta-CVAE draws zeta inside log_importance_weights: one call per chunk keeps its random stream;
            # on accelerators one wide call per chunk is faster than cache-sized blocks
            block = max(1, block_rows // xb.shape[0]) if not unsplit else chunk
            total = torch.full((xb.shape[0],), -math.inf, dtype=x.dtype, device=device)
            for k in _batches(n_samples, chunk):
                z = q.sample((k.stop - k.start,)) if noise is None else q.mean + q.stddev * noise[k].unsqueeze(1)
                for zb in z.split(block):
                    log_w = model.log_importance_weights(xb, sb, q, zb)
                    total = torch.logaddexp(total, torch.logsumexp(log_w, 0))
            out[rows] = (total - math.log(n_samples)).cpu()
            bar.update(rows.stop - rows.start)
            if announce and rows.start == 0 and rows.stop < x.shape[0]:
                expected = (time.perf_counter() - start) * x.shape[0] / rows.stop
                log.info("importance sampling: about %.0f s expected (from the first %d rows)", expected, rows.stop)
    return out


def elbo(model: VAE, x: torch.Tensor, s: torch.Tensor | None = None, batch_size: int = 1000) -> torch.Tensor:
    """Per-point single-sample ELBO in evaluation mode (dropout off)."""
    device = model_device(model)
    with evaluating(model):
        return torch.cat([model.loss(x[r].to(device), None if s is None else s[r].to(device)).elbo
                          for r in _batches(len(x), batch_size)]).to(x.device)


def reestimate_log_normaliser(model: VAE, x: torch.Tensor | None = None, s: torch.Tensor | None = None,
                              method: str = "annealed", seed: int = 0, n_samples: int | None = None,
                              n_steps: int = 500, batch_size: int = 1000) -> dict[str, float | bool | str] | None:
    """Estimate log Z of the model's unnormalised prior again by ``method`` (``"annealed"``: AIS from N(0, I); or
    ``"importance"``) and use it from now on (normalised log-likelihoods, checkpoints). Given training rows ``x``
    (``s``: their tasks), the defensive mixture of their posteriors q(z|x) is the importance proposal or the AIS
    start; else the prior's own posteriors from training (importance) or N(0, I). Returns the estimate
    (``log_normaliser``, ``..._stderr``, ``..._ess``, ``..._reliable``, ``..._method``, ``..._proposal``); None
    for a normalised prior."""
    prior = model.prior
    if not hasattr(prior, "set_log_normaliser"):
        return None
    posteriors = None
    if x is not None:
        device = model_device(model)
        with evaluating(model):
            parts = [model.encode(x[b].to(device), None if s is None else s[b].to(device))
                     for b in _batches(len(x), batch_size)]
        if not all(isinstance(q, Independent) and isinstance(q.base_dist, Normal) for q in parts):
            raise ConfigError("re-estimating log Z from training rows needs a diagonal-Gaussian encoder")
        posteriors = (torch.cat([q.base_dist.loc for q in parts]), torch.cat([q.base_dist.scale for q in parts]))
    estimate = prior.estimate_log_normaliser(n_samples, seed=seed, method=method, posteriors=posteriors,
                                             n_steps=n_steps)
    prior.set_log_normaliser(estimate)
    return {**estimate.metrics(), "log_normaliser_method": method, "log_normaliser_proposal": estimate.proposal}
