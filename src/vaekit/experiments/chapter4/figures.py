"""Thesis chapter 4, the figures: OneHot posterior samples (Figure 4.1), OneHot validation ELBO against -ln 4
(Figure 4.2), and the test log-likelihood against the VampPrior's K (Figure 4.3), as compact PNGs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import report_helpers as rep
from .runs import METHOD_LABELS

LN4 = math.log(4.0)


def plot_posterior_samples(runs: list[dict[str, Any]], methods: Sequence[str], path: Path) -> Path:
    """Figure 4.1: one panel per run (in ``methods`` order), samples of q(z|x) for each one-hot vector."""
    plt = rep.pyplot()
    fig, axes = plt.subplots(1, len(runs) or 1, figsize=(2.6 * max(len(runs), 1), 2.6), squeeze=False)
    for ax, r in zip(axes[0], sorted(runs, key=lambda r: methods.index(r["config"]["method"]))):
        for k, pts in enumerate(r["metrics"]["posterior_samples"]):
            a = np.asarray(pts)
            ax.scatter(a[:, 0], a[:, 1], s=2, alpha=0.5, label=f"x = e{k + 1}")
        ax.set_title(METHOD_LABELS[r["config"]["method"]], fontsize=9)
        ax.tick_params(labelsize=7)
    return rep.save_figure(fig, path, dpi=80)


def plot_elbo_curves(done: list[dict[str, Any]], methods: Sequence[str], path: Path) -> Path:
    """Figure 4.2: per method, every run's validation ELBO after warm-up (moving average over 10 epochs)."""
    plt = rep.pyplot()
    fig, axes = plt.subplots(1, len(methods) or 1, figsize=(2.6 * max(len(methods), 1), 2.4), squeeze=False,
                             sharey=True)
    for ax, method in zip(axes[0], methods):
        runs = [r for r in done if r["config"]["method"] == method]
        warmup = runs[0]["config"]["warmup"]
        for r in runs:  # a moving average over 10 epochs of the noisy single-sample validation ELBO
            h = [e for e in r["metrics"]["history"] if e["epoch"] >= warmup]
            smooth = np.convolve([-e["val_loss"] for e in h], np.ones(10) / 10, mode="valid")
            ax.plot([e["epoch"] for e in h][9:], smooth, lw=0.7)
        ax.axhline(-LN4, ls="--", color="k", lw=0.8)
        ax.set_title(METHOD_LABELS[method], fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("validation ELBO", fontsize=8)
    axes[0][0].set_ylim(-2.2, -1.2)
    return rep.save_figure(fig, path, dpi=80)


def plot_components(ks: Sequence[int], stats: Sequence[tuple[float, float]],
                    implicit: tuple[float, float] | None, path: Path) -> Path:
    """Figure 4.3: VampPrior mean ± std per K (log axis), the implicit prior's mean ± std as a dashed band."""
    plt = rep.pyplot()
    fig, ax = plt.subplots(figsize=(3.6, 2.6))
    if ks:
        ax.errorbar(ks, [s[0] for s in stats], yerr=[s[1] for s in stats], marker="o", ms=3, label="VampPrior")
    if implicit is not None:
        m, s = implicit
        ax.axhline(m, ls="--", color="k", lw=1, label="implicit prior")
        ax.axhspan(m - s, m + s, color="k", alpha=0.1)
    ax.set_xscale("log")
    ax.set_xlabel("number of pseudo-inputs K", fontsize=8)
    ax.set_ylabel("test log-likelihood", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    return rep.save_figure(fig, path, dpi=80)
