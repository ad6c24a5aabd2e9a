"""Figure 3.4: Student-t densities St(x | 0, 1, nu) on a log scale against the Gaussian N(x | 0, 1).

No training: the densities of Eq. (3.11) are evaluated on a grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch.distributions import Normal, StudentT

from ..targets import Target, register_target
from .. import report_helpers as rep


def student_t_log_density(x: torch.Tensor, mu: float | torch.Tensor, lam: float | torch.Tensor,
                          nu: float | torch.Tensor) -> torch.Tensor:
    """ln St(x | mu, lambda, nu) of Eq. (3.11), lambda the precision and nu the degrees of freedom: the density the
    Student-t decoder uses (``torch.distributions.StudentT`` with scale lambda^-1/2), in float64."""
    x, mu, lam, nu = (torch.as_tensor(v, dtype=torch.float64) for v in (x, mu, lam, nu))
    return StudentT(nu, mu, lam.rsqrt()).log_prob(x)


def gaussian_log_density(x: torch.Tensor, mu: float = 0.0, lam: float = 1.0) -> torch.Tensor:
    """ln N(x | mu, lambda^-1), the nu -> infinity limit of Eq. (3.11) (``torch.distributions.Normal``)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    return Normal(torch.as_tensor(mu, dtype=torch.float64), torch.as_tensor(lam, dtype=torch.float64).rsqrt()).log_prob(x)


@register_target
class Figure34(Target):
    """Figure 3.4: tails of St(x | 0, 1, nu) for several nu against N(x | 0, 1)."""

    name = "figure-3.4"
    description = "Student-t densities St(x|0,1,nu) in log scale for several nu vs the Gaussian (Eq. 3.11)"
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        b: {"nus": [0.5, 1.0, 3.0, 10.0, 100.0], "x_max": 10.0, "points": 401, "seeds": 1,
            "note": "no training; identical for both budgets"} for b in ("quick", "full")}

    def runs(self, budget: str = "quick", seeds: int | None = None,
             datasets: Sequence[str] | None = None) -> list[dict[str, Any]]:
        b = self.budgets[budget]
        return [{"target": self.name, "seed": 0, "nus": list(b["nus"]), "x_max": b["x_max"],
                 "points": b["points"]}]

    def execute(self, config: dict[str, Any]) -> dict[str, Any]:
        x = torch.linspace(-config["x_max"], config["x_max"], int(config["points"]), dtype=torch.float64)
        return {
            "x": x.tolist(),
            "student_t": {str(nu): student_t_log_density(x, 0.0, 1.0, nu).tolist() for nu in config["nus"]},
            "gaussian": gaussian_log_density(x).tolist(),
        }

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        plt = rep.pyplot()
        done = rep.finished(results)
        fig, ax = plt.subplots(figsize=(5, 3.5))
        lines = ["| density (location 0, precision 1) | ln p(0) | ln p(5) | ln p(10) |", "|---|---|---|---|"]
        for r in done[:1]:
            m = r["metrics"]
            x = torch.tensor(m["x"])
            at = [int(torch.argmin((x - v).abs())) for v in (0.0, 5.0, 10.0)]
            for nu, logp in sorted(m["student_t"].items(), key=lambda item: float(item[0])):  # stored keys sort as text
                ax.plot(m["x"], torch.tensor(logp).exp().tolist(), lw=1.2, label=f"St, ν = {float(nu):g}")
                lines.append(f"| Student-t, ν = {float(nu):g} | " + " | ".join(f"{logp[i]:.3f}" for i in at) + " |")
            ax.plot(m["x"], torch.tensor(m["gaussian"]).exp().tolist(), "k--", lw=1.2, label="N(x|0,1)")
            lines.append("| Gaussian N(0, 1) | " + " | ".join(f"{m['gaussian'][i]:.3f}" for i in at) + " |")
        ax.set_yscale("log")
        ax.set(xlabel="x", ylabel="density (log scale)", title="St(x | 0, 1, ν) vs Gaussian")
        ax.set_ylim(1e-12, 1)
        ax.legend(fontsize=7)
        png = rep.save_figure(fig, out / "figure-3.4.png")
        markdown = "\n".join(["### Figure 3.4 — Student-t densities", "", f"![Figure 3.4]({png.name})", "",
                              *lines])
        (out / "figure-3.4.md").write_text(markdown + "\n")
        return {"markdown": markdown, "files": [str(png), str(out / "figure-3.4.md")]}
