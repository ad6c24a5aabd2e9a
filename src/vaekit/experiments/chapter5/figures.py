"""Thesis chapter 5's Figure 5.2: t-SNE of posterior means on a transfer pair, by task group and by class."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import report_helpers as rep
from ..targets import register_target
from .grid import Chapter5Target
from .runs import LABELS
from .tables import budget_line, select_vfae


@register_target
class Figure52(Chapter5Target):
    name = "figure-5.2"
    description = "t-SNE of posterior means on a transfer pair, coloured by task group and by class"
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "quick": {"datasets": ["digits->mnist", "usps->mnist"], "seeds": 1},
        "full": {"datasets": ["usps->mnist"], "seeds": 1},
    }

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        done = [r for r in select_vfae(rep.finished(results)) if "tsne" in r["metrics"]]
        methods = [m for m in self.methods if any(r["config"]["method"] == m for r in done)]
        plt = rep.pyplot()
        files = []
        for dataset in dict.fromkeys(r["config"]["dataset"] for r in done):
            fig, axes = plt.subplots(2, len(methods), figsize=(2.4 * len(methods), 4.8), squeeze=False)
            for j, method in enumerate(methods):
                run = next(r for r in done if r["config"]["dataset"] == dataset and r["config"]["method"] == method)
                t = run["metrics"]["tsne"]
                xy, group, label = np.asarray(t["xy"]), np.asarray(t["group"]), np.asarray(t["label"])
                for name in dict.fromkeys(group):
                    pick = group == name
                    axes[0][j].scatter(*xy[pick].T, s=2, alpha=0.6, label=name)
                axes[1][j].scatter(*xy.T, c=label, cmap="tab10", s=2, alpha=0.6)
                axes[0][j].set_title(LABELS[method], fontsize=9)
                for ax in (axes[0][j], axes[1][j]):
                    ax.set_xticks([])
                    ax.set_yticks([])
            axes[0][0].legend(fontsize=6, markerscale=3)
            axes[0][0].set_ylabel("by task", fontsize=8)
            axes[1][0].set_ylabel("by class", fontsize=8)
            path = out / f"figure-5.2-{dataset.replace('->', '-to-').replace('+', '-')}.png"
            files.append(str(rep.save_figure(fig, path, dpi=70)))
        text = (f"Figure 5.2 (t-SNE of E[z|x,s], seed 0), {budget_line(done)}.\n\n"
                + "\n".join(f"![]({Path(f).name})" for f in files))
        return rep.write_markdown(out, self.name, text, files, with_json=True)
