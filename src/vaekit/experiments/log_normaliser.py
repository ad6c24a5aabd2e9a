"""The second log Z estimate that chapter-4 and chapter-5 runs record for an implicit-prior model: annealed
importance sampling (:mod:`vaekit.priors.annealed`), beside the importance-sampled one that training used."""

from __future__ import annotations

from typing import Any

#: AIS temperatures (500 chains; about 100 s of one core for a 40-d latent; on trained Frey-faces priors 1,000 steps
#: gave 362-400 of 500 effective chains, importance sampling 1-4 of 10,000: ``benchmarks/log_normaliser_trained.py``)
ANNEALING_STEPS = 1000


def annealed_normaliser(prior: Any) -> dict[str, Any]:
    """log Z of an implicit prior by AIS from N(0, I): ``log_normaliser_annealed`` with its ``_stderr``, ``_ess`` and
    ``_reliable`` (:meth:`vaekit.priors.normaliser.LogNormaliser.metrics`)."""
    return prior.estimate_log_normaliser(method="annealed", n_steps=ANNEALING_STEPS).metrics("log_normaliser_annealed")


def log_normaliser_note(done: list[dict[str, Any]], estimator: str = "importance", method: str = "implicit",
                        where: str = "rows", raw_shown: bool = True) -> str:
    """How far the 'normalised' ``where`` (rows of Table 4.2, a column of Table 5.2) can be trusted: per data set,
    the effective sample size of the log Z estimates of the ``method`` runs' implicit prior (``estimator``:
    ``importance`` or ``annealed``, AIS) and how many of them the library flagged unreliable (ESS below
    ``MIN_ESS``). ``raw_shown``: the report shows the raw (≈) bound too."""
    from ..normaliser import MIN_ESS

    key = "log_normaliser" if estimator == "importance" else "log_normaliser_annealed"
    parts, any_flagged = [], False
    for dataset in dict.fromkeys(r["config"]["dataset"] for r in done):
        runs = [r["metrics"] for r in done if r["config"]["dataset"] == dataset and r["config"]["method"] == method
                and r["metrics"].get(key) is not None]
        ess = [m[f"{key}_ess"] for m in runs if m.get(f"{key}_ess") is not None]
        if not ess:
            continue
        flagged = sum(m.get(f"{key}_reliable") is False for m in runs)
        any_flagged = any_flagged or flagged > 0
        spread = f"{min(ess):.1f}" if min(ess) == max(ess) else f"{min(ess):.1f}–{max(ess):.1f}"
        parts.append(f"{dataset}: effective sample size {spread}, {flagged} of {len(runs)} runs "
                     f"flagged unreliable (ESS < {MIN_ESS:g})")
    if not parts:
        return ""
    rest, do = ("rest", "do") if where.endswith("s") else ("rests", "does")
    if estimator == "annealed":
        return (f"\n\nlog Z by AIS (the 'normalised by AIS' {where}; 500 chains): " + "; ".join(parts) + ".")
    return (f"\n\nlog Z of the implicit prior (the 'normalised' {where} {rest} on it): " + "; ".join(parts) + "."
            + (" With so few effective samples neither the estimate nor its standard error can be trusted, so a "
               "flagged run's normalised value is not a reliable log-likelihood"
               + (f"; the raw (≈) {where} {do} not depend on log Z." if raw_shown else ".") if any_flagged else ""))
