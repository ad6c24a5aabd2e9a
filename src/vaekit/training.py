"""Training schedule: Adam on the negative ELBO, KL warm-up, early stopping, the prior's own phase, divergence.

The phase schedule lives here, not in the model: the trainer passes each step's posteriors to the prior's
:meth:`~vaekit.priors.Prior.observe` and, after each VAE epoch, calls its :meth:`~vaekit.priors.Prior.fit_auxiliary`
(the density-ratio classifier of the implicit prior, Algorithm 4.1).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .checkpoint import plain_fields
from .errors import ConfigError, DataError
from .evaluation import elbo
from .model import VAE
from .nets import adam

DIVERGENCE_POLICIES = ("stop", "rollback")
#: default training device when a TrainConfig names none (``vaekit reproduce --device`` sets it for its workers)
DEVICE_ENV = "VAEKIT_DEVICE"
#: caps every run's epochs when set (see :func:`max_epochs`)
MAX_EPOCHS_ENV = "VAEKIT_MAX_EPOCHS"
log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Optimisation settings (defaults: section 3.5.2)."""

    epochs: int = 500
    batch_size: int = 100
    lr: float = 1e-3
    #: epochs without improvement of the validation loss (normalised for unnormalised priors) before stopping;
    #: None disables
    patience: int | None = 50
    warmup_epochs: int = 0  #: linear KL warm-up from 0 to 1 over this many epochs (Bowman et al., 2016)
    n_samples: int = 1  #: L, reparameterisation samples per point
    seed: int = 0
    on_divergence: str = "stop"  #: "stop": keep the best weights and end; "rollback": restore the last good epoch
    max_rollbacks: int = 3  #: rollbacks allowed before "rollback" behaves like "stop"
    rollback_lr_factor: float = 0.5  #: learning-rate multiplier applied at each rollback
    progress: bool = False
    #: where to train: "cpu", "cuda", "cuda:1", "mps", "auto" (CUDA when available), or None for the model's device
    device: str | None = None

    def __post_init__(self) -> None:
        plain_fields(self)  # NumPy scalars as Python numbers (saved with the run as JSON)
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"learning rate must be a finite number > 0, got {self.lr}")
        if not 0 <= self.seed <= 2**32 - 1:
            raise ConfigError(f"seed must be in 0 .. 2**32 - 1 (numpy and scikit-learn take no others), got {self.seed}")
        if self.warmup_epochs < 0:
            raise ConfigError(f"warm-up epochs must be >= 0 (0: no warm-up), got {self.warmup_epochs}")
        if self.on_divergence not in DIVERGENCE_POLICIES:
            raise ConfigError(f"on_divergence must be one of {DIVERGENCE_POLICIES}, got {self.on_divergence!r}")
        if self.n_samples < 1 or self.max_rollbacks < 0:
            raise ConfigError(f"n_samples must be >= 1 and max_rollbacks >= 0, got {self.n_samples}, {self.max_rollbacks}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1 or None, got {self.patience}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """What a run did: per-epoch history, the epoch whose weights were kept, and how it ended."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    epochs_run: int = 0
    diverged: bool = False
    diverged_epoch: int | None = None
    rollbacks: int = 0
    interrupted: bool = False
    stopped_early: bool = False
    train_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["best_val_loss"] = finite_or_none(self.best_val_loss)
        return d


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else CPU; any other name as ``torch.device`` reads it, checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError) as err:
        raise ConfigError(f"unknown device {name!r}: use cpu, cuda, cuda:N, mps or auto") from err
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {name!r} cannot train a model: use cpu, cuda, cuda:N, mps or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count() > 0:
        raise ConfigError(f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} CUDA "
                          "GPU(s); use cuda:0 .. cuda:N-1")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but this torch build sees no CUDA GPU; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} asked for, but MPS is not available here; use --device cpu")
    return device


def max_epochs(epochs: int) -> int:
    """``epochs``, capped by the environment variable ``VAEKIT_MAX_EPOCHS`` when it is set (smoke runs and the
    README doc-test run every example verbatim at a tiny budget this way)."""
    cap = os.environ.get(MAX_EPOCHS_ENV, "").strip()
    if not cap:
        return epochs
    if not cap.isdigit() or int(cap) < 1:
        raise ConfigError(f"{MAX_EPOCHS_ENV} must be a positive integer, got {cap!r}")
    return min(epochs, int(cap))


@contextlib.contextmanager
def torch_seeded(seed: int | None) -> Iterator[None]:
    """Seed torch's CPU generator for the block and restore the global random state afterwards (no-op for None)."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def finite_or_none(value: float) -> float | None:
    """Metrics are reported as numbers or null, never NaN/inf."""
    return float(value) if math.isfinite(value) else None


class Trainer:
    """Fits a :class:`~vaekit.model.VAE` with the schedule in a :class:`TrainConfig`.

    ``batch_transform`` is applied to each training mini-batch (e.g. dynamic binarisation); ``callbacks`` are
    called as ``callback(epoch, model, record)`` after each epoch's record is complete.
    """

    def __init__(
        self,
        config: TrainConfig | None = None,
        batch_transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
        callbacks: list[Callable[[int, VAE, dict[str, float]], None]] | None = None,
    ) -> None:
        self.config = config or TrainConfig()
        self.batch_transform = batch_transform
        self.callbacks = list(callbacks or [])

    def fit(
        self,
        model: VAE,
        train_x: torch.Tensor,
        val_x: torch.Tensor | None = None,
        train_s: torch.Tensor | None = None,
        val_s: torch.Tensor | None = None,
    ) -> TrainResult:
        cfg = self.config
        train_x, val_x = _checked_rows(train_x, model, "train_x"), _checked_rows(val_x, model, "val_x")
        if train_x.shape[0] < 1:
            raise ConfigError("the training split is empty")
        device_name = cfg.device or os.environ.get(DEVICE_ENV) or None  # vaekit reproduce --device sets it
        if device_name is not None:
            model.to(resolve_device(device_name))
        device = next(model.parameters()).device
        train_x, val_x, train_s, val_s = (None if t is None else t.to(device) for t in (train_x, val_x, train_s, val_s))
        # on the data's device, so that shuffling and batch transforms (dynamic binarisation) stay there
        generator = torch.Generator(device=device).manual_seed(cfg.seed)
        auxiliary = {id(p) for p in model.prior.auxiliary_parameters()}
        params = [p for p in model.parameters() if id(p) not in auxiliary]
        optimiser = adam(params, cfg.lr)
        result = TrainResult()
        best_state = copy.deepcopy(model.state_dict())
        rollback = cfg.on_divergence == "rollback"  # only then is the last good epoch's state needed
        good_state = None
        if rollback:
            good_state = (copy.deepcopy(model.state_dict()), copy.deepcopy(optimiser.state_dict()))
        epochs_since_best = 0
        n = train_x.shape[0]
        log.info("training on %d rows for up to %d epochs; Ctrl-C stops and keeps the best model so far",
                 n, max_epochs(cfg.epochs))
        start = time.perf_counter()
        epochs = max_epochs(cfg.epochs)
        bar = tqdm(range(1, epochs + 1), disable=not cfg.progress, unit="epoch", leave=False)
        try:
            for epoch in bar:
                kl_weight = min(1.0, epoch / cfg.warmup_epochs) if cfg.warmup_epochs else 1.0
                record = self._train_epoch(model, optimiser, params, train_x, train_s, kl_weight, generator)
                if record is None:
                    if not self._handle_divergence(model, optimiser, result, epoch, best_state, good_state):
                        break
                    continue
                model.eval()
                record.update(model.prior.fit_auxiliary(train_x, train_s))
                raw_loss = float(-elbo(model, val_x, val_s).mean()) if val_x is not None else record["train_loss"]
                # Select on the *normalised* bound: an unnormalised prior (N(z) exp T(z)) would otherwise favour
                # epochs with a large exp T mass. -ELBO_normalised = -ELBO_raw + log Z (0 for explicit priors).
                log_z = model.prior.log_normaliser()
                val_loss = raw_loss + log_z
                if val_x is not None:
                    record["val_loss"] = val_loss
                if log_z != 0.0:
                    record.update(val_loss_raw=raw_loss, log_normaliser=log_z)
                record.update(epoch=epoch, kl_weight=kl_weight, seconds=time.perf_counter() - start)
                record = {k: (v if math.isfinite(v) else None) for k, v in record.items()}  # never NaN in history
                result.history.append(record)
                result.epochs_run = epoch
                for callback in self.callbacks:
                    callback(epoch, model, record)
                if not math.isfinite(val_loss):
                    if not self._handle_divergence(model, optimiser, result, epoch, best_state, good_state):
                        break
                    continue
                if rollback:
                    good_state = (copy.deepcopy(model.state_dict()), copy.deepcopy(optimiser.state_dict()))
                if val_loss < result.best_val_loss:
                    result.best_val_loss, result.best_epoch = val_loss, epoch
                    best_state = copy.deepcopy(model.state_dict())
                    epochs_since_best = 0
                elif epoch > cfg.warmup_epochs:
                    epochs_since_best += 1
                bar.set_postfix(train=f"{record['train_loss']:.3f}", val=f"{val_loss:.3f}")
                if cfg.patience is not None and epochs_since_best >= cfg.patience:
                    result.stopped_early = True
                    break
        except KeyboardInterrupt:
            result.interrupted = True
        finally:
            bar.close()
        events = [r for r in result.history if r.get("event")]
        if events and result.best_epoch == 0 and not result.diverged:  # every epoch diverged, rollbacks used up
            result.diverged = True
            result.diverged_epoch = int(events[0]["epoch"])
            result.epochs_run = int(result.history[-1]["epoch"])
        model.load_state_dict(best_state)
        model.eval()
        model.prior.after_restore(train_x, train_s)
        result.train_seconds = time.perf_counter() - start
        return result

    def _train_epoch(
        self,
        model: VAE,
        optimiser: torch.optim.Optimizer,
        params: list[torch.nn.Parameter],
        x: torch.Tensor,
        s: torch.Tensor | None,
        kl_weight: float,
        generator: torch.Generator,
    ) -> dict[str, float] | None:
        """One pass over the shuffled data; returns the epoch record, or None on a non-finite loss/gradient."""
        model.train()
        order = torch.randperm(x.shape[0], generator=generator, device=x.device)
        total = torch.zeros((), device=x.device)
        elbo_terms = torch.zeros(2, device=x.device)  # reconstruction, KL (the ELBO's terms, for plots)
        extremes: dict[str, torch.Tensor] = {}
        for start in range(0, x.shape[0], self.config.batch_size):
            idx = order[start : start + self.config.batch_size]
            xb = x[idx]
            if self.batch_transform is not None:
                xb = self.batch_transform(xb, generator)
            sb = None if s is None else s[idx]
            terms = model.loss(xb, sb, kl_weight, self.config.n_samples)
            model.prior.observe(terms.posterior, sb)  # the aggregated posterior's components (implicit prior)
            optimiser.zero_grad(set_to_none=True)
            terms.loss.backward()
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
            if not bool(torch.isfinite(terms.loss) & torch.isfinite(grad_norm)):
                return None
            optimiser.step()
            total += terms.loss.detach() * idx.numel()
            elbo_terms += torch.stack([terms.reconstruction.detach().mean(), terms.kl.detach().mean()]) * idx.numel()
            for key, value in terms.diagnostics.items():
                reduce = torch.minimum if key.startswith("min_") else torch.maximum if key.startswith("max_") else None
                if reduce is None:
                    extremes[key] = extremes.get(key, 0) + value * idx.numel()
                else:
                    extremes[key] = reduce(extremes[key], value) if key in extremes else value
        record = {"train_loss": float(total) / x.shape[0], "reconstruction": float(elbo_terms[0]) / x.shape[0],
                  "kl": float(elbo_terms[1]) / x.shape[0]}
        for key, value in extremes.items():
            scale = 1 if key.startswith(("min_", "max_")) else x.shape[0]
            record[key] = float(value) / scale
        return record

    def _handle_divergence(
        self,
        model: VAE,
        optimiser: torch.optim.Optimizer,
        result: TrainResult,
        epoch: int,
        best_state: dict[str, Any],
        good_state: tuple[dict[str, Any], dict[str, Any]] | None,
    ) -> bool:
        """Apply the divergence policy; returns True when training continues."""
        cfg = self.config
        result.history.append({"epoch": epoch, "event": "diverged"})
        if good_state is not None and result.rollbacks < cfg.max_rollbacks:
            result.rollbacks += 1
            model.load_state_dict(good_state[0])
            optimiser.load_state_dict(good_state[1])
            for group in optimiser.param_groups:
                group["lr"] *= cfg.rollback_lr_factor
            result.history[-1]["event"] = "rollback"
            return True
        result.diverged = True
        result.diverged_epoch = epoch
        result.epochs_run = epoch
        return False


def _checked_rows(x: Any, model: VAE, what: str) -> Any:
    """Rows for :meth:`Trainer.fit`: an array or tensor as float32 of the model's width without NaN/inf (a
    :class:`~vaekit.errors.DataError` that says so, not a "divergence"); other row sources (memory-mapped rows)
    as they are."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if not isinstance(x, torch.Tensor):
        return x
    if x.is_floating_point() and x.dtype != torch.float32:
        x = x.float()
    if x.ndim != 2 or x.shape[1] != model.config.x_dim:
        raise DataError(f"{what}: expected rows of {model.config.x_dim} columns (the model's width), got shape "
                        f"{tuple(x.shape)}")
    bad = ~torch.isfinite(x).all(1)
    if bool(bad.any()):
        raise DataError(f"{what}: {int(bad.sum())} rows contain NaN or infinite values (first rows "
                        f"{torch.nonzero(bad)[:5, 0].tolist()}); drop or impute them")
    return x
