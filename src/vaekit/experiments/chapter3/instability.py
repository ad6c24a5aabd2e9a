"""Figure 3.2: the Gaussian VAE's unstable training loss on SMTP and its relation to the decoded variance.

A trainer callback evaluates every training point's loss -L^(x_i) (Eq. 3.5) after each epoch with a fixed noise
draw eps_i (common random numbers, so a change of loss reflects a change of the weights, not of eps) together with
min_d ln sigma^2_d(z_i) (Eq. 3.7). Changes Loss^(t) - Loss^(t-1) are binned by the previous epoch's min ln sigma^2
into [c - 0.5, c + 0.5), c integer, as in Figure 3.2(b).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ...model import VAE
from ..targets import Target, register_target
from .. import report_helpers as rep
from .runs import make_config, seed_list, train_and_evaluate


class PerPointLoss:
    """Trainer callback: per-point loss and min decoded log-variance after every epoch, binned changes kept."""

    def __init__(self, x: torch.Tensor, seed: int = 0, chunk: int = 5000) -> None:
        self.x = x
        self.chunk = chunk
        generator = torch.Generator().manual_seed(30_000 + seed)
        self.eps: torch.Tensor | None = None
        self._generator = generator
        self.previous: tuple[np.ndarray, np.ndarray] | None = None
        self.epochs: list[dict[str, Any]] = []

    def measure(self, model: VAE) -> tuple[np.ndarray, np.ndarray]:
        """Per-point loss -L^(x_i) with the fixed eps_i, and min_d ln sigma_d^2 (NaN for non-Gaussian heads)."""
        losses, min_log_var = [], []
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for start in range(0, len(self.x), self.chunk):
                xb = self.x[start:start + self.chunk]
                q = model.encode(xb)
                if self.eps is None or self.eps.shape[1] != q.mean.shape[1]:
                    self.eps = torch.randn(len(self.x), q.mean.shape[1], generator=self._generator)
                z = (q.mean + q.stddev * self.eps[start:start + self.chunk]).unsqueeze(0)
                p = model.decode(z)
                loss = -(p.log_prob(xb) - model.prior.kl(q, z))[0]
                losses.append(loss.double().numpy())
                scale = getattr(p.base_dist, "scale", None)
                if scale is not None and model.likelihood.name in ("gaussian", "map"):
                    min_log_var.append((2 * scale.log()).amin(-1)[0].double().numpy())
                else:
                    min_log_var.append(np.full(len(xb), np.nan))
        model.train(was_training)
        return np.concatenate(losses), np.concatenate(min_log_var)

    def __call__(self, epoch: int, model: VAE, record: dict[str, float]) -> None:
        loss, min_log_var = self.measure(model)
        entry: dict[str, Any] = {"epoch": epoch, "mean_point_loss": _finite_mean(loss)}
        if self.previous is not None:
            entry["bins"] = bin_changes(loss - self.previous[0], self.previous[1])
        self.epochs.append(entry)
        self.previous = (loss, min_log_var)


def _finite_mean(a: np.ndarray) -> float | None:
    a = a[np.isfinite(a)]
    return float(a.mean()) if len(a) else None


def bin_changes(change: np.ndarray, min_log_var: np.ndarray) -> list[list[float]]:
    """``[[c, count, mean, std], ...]`` of ``change`` over points with min ln sigma^2 in [c - 0.5, c + 0.5)."""
    ok = np.isfinite(change) & np.isfinite(min_log_var)
    if not ok.any():
        return []
    centres = np.floor(min_log_var[ok] + 0.5).astype(int)
    rows = []
    for c in np.unique(centres):
        v = change[ok][centres == c]
        rows.append([int(c), len(v), float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0])
    return rows


def jump_epoch(history: Sequence[dict[str, Any]]) -> int | None:
    """The epoch whose mean training loss rose most over the previous epoch's (the thesis's 983rd epoch)."""
    losses = [(h["epoch"], h.get("train_loss")) for h in history if h.get("train_loss") is not None]
    best, epoch = -math.inf, None
    for (_, a), (e, b) in pairwise(losses):
        if b - a > best:
            best, epoch = b - a, e
    return epoch


@register_target
class Figure32(Target):
    """Figure 3.2: (a) mean training loss per epoch, (b) per-point loss change vs min decoded log-variance."""

    name = "figure-3.2"
    description = ("Gaussian VAE training-loss instability on SMTP (a) and its relation to the minimum decoded "
                   "log-variance (b), Student-t for reference (Eq. 3.7, section 3.3)")
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"epochs": 60, "patience": None, "seeds": 1, "importance_samples": 100, "test_subsample": 1000,
                  "methods": ["Gaussian", "Student-t"], "dataset": "smtp",
                  "note": "no early stopping: the whole loss curve is the result"},
        "full": {"epochs": 1000, "patience": None, "seeds": 1, "importance_samples": 100, "test_subsample": None,
                 "methods": ["Gaussian", "Student-t"], "dataset": "smtp",
                 "note": "the thesis shows one run of about 1,000 epochs"},
    }

    def runs(self, budget: str = "quick", seeds: int | None = None,
             datasets: Sequence[str] | None = None) -> list[dict[str, Any]]:
        b = self.budgets[budget]
        return [make_config(self.name, d, m, s, b, track_per_point=True)
                for d in (datasets or [b["dataset"]]) for m in b["methods"] for s in seed_list(seeds, b["seeds"])]

    def execute(self, config: dict[str, Any]) -> dict[str, Any]:
        trackers: list[PerPointLoss] = []

        def callbacks(train_x: torch.Tensor) -> list[PerPointLoss]:
            trackers.append(PerPointLoss(train_x, int(config["seed"])))
            return trackers

        metrics = train_and_evaluate(config, callbacks if config.get("track_per_point") else None)
        if trackers:
            metrics["per_point"] = trackers[0].epochs
        return metrics

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        plt = rep.pyplot()
        done = rep.finished(results)
        fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(9, 3.4))
        lines = [("| Method | seed | epochs | diverged | largest one-epoch rise of the train loss (epoch) | "
                  "epochs with a rise > 1 nat | > 5 nats | test LL |"), "|---|---|---|---|---|---|---|---|"]
        gaussian = None
        for r in sorted(done, key=lambda r: (r["config"]["method"] != "Gaussian", r["config"]["seed"])):
            c, m = r["config"], r["metrics"]
            hist = [h for h in m.get("history", []) if h.get("train_loss") is not None]
            ax_a.plot([h["epoch"] for h in hist], [h["train_loss"] for h in hist], lw=1,
                      label=f"{c['method']} (seed {c['seed']})")
            jump = jump_epoch(hist)
            rise = next((b["train_loss"] - a["train_loss"] for a, b in pairwise(hist) if b["epoch"] == jump),
                        math.nan)
            ll = m.get("test_log_likelihood")
            rises = [b["train_loss"] - a["train_loss"] for a, b in pairwise(hist)]
            lines.append(f"| {c['method']} | {c['seed']} | {m.get('epochs_run')} | {m.get('diverged')} | "
                         f"{rise:+.3f} ({jump}) | {sum(r > 1 for r in rises)} | {sum(r > 5 for r in rises)} | "
                         f"{'n/a' if ll is None else f'{ll:.3f}'} |")
            if gaussian is None and c["likelihood"] in ("gaussian", "map") and m.get("per_point"):
                gaussian = (c, m, jump)
        if len(ax_a.lines) and max(max(line.get_ydata(), default=0) for line in ax_a.lines) > 1e3:
            ax_a.set_yscale("symlog")  # a near-divergent spike would flatten the rest of the curve
        ax_a.set(xlabel="epoch", ylabel="mean training loss", title="(a) mean training loss")
        ax_a.legend(fontsize=7)
        notes = []
        if gaussian is not None:
            c, m, jump = gaussian
            per_epoch = {e["epoch"]: e.get("bins", []) for e in m["per_point"]}
            bins = per_epoch.get(jump, [])
            if bins:
                arr = np.array(bins, dtype=float)
                ax_b.errorbar(arr[:, 0], arr[:, 2], yerr=arr[:, 3], marker="o", capsize=3,
                              label=f"epoch {jump - 1} → {jump}")
                notes.append(f"Panel (b): {c['method']} seed {c['seed']}, epoch {jump - 1} → {jump} (the largest "
                             "rise of the mean training loss); points binned by min ln σ² at epoch "
                             f"{jump - 1}:")
                notes += ["", "| min ln σ² bin | points | mean Δloss | std Δloss |", "|---|---|---|---|"]
                notes += [f"| {int(b[0])} | {int(b[1])} | {b[2]:+.3f} | {b[3]:.3f} |" for b in bins]
            ax_b.axhline(0, color="grey", lw=0.5)
        ax_b.set(xlabel="min ln σ²(z) at epoch t−1", ylabel="Loss(t) − Loss(t−1)",
                 title="(b) per-point loss change vs decoded variance")
        if ax_b.has_data():
            ax_b.legend(fontsize=7)
        png = rep.save_figure(fig, out / "figure-3.2.png")
        markdown = "\n".join(["### Figure 3.2 — Gaussian VAE training instability on SMTP", "",
                              f"![Figure 3.2]({png.name})", "", *lines, "", *notes, "",
                              f"Compute: {rep.wall_clock(results)}.", *rep.failures(results)])
        (out / "figure-3.2.md").write_text(markdown + "\n")
        return {"markdown": markdown, "files": [str(png), str(out / "figure-3.2.md")]}
