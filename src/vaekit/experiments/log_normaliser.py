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
