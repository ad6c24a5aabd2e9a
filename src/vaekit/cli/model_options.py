"""The options of the model's components (likelihood, prior) as one table: flag, default, help, and the keyword it
becomes for which component.

``vaekit fit`` adds these options from :data:`COMPONENT_OPTIONS` and builds ``likelihood_kwargs`` /
``prior_kwargs`` from the same rows (:func:`component_kwargs`), so an option's default and the components it
applies to are written once. The defaults equal those of the classes they feed (checked by the tests).
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .options import NON_NEGATIVE_FLOAT, POSITIVE_FLOAT, POSITIVE_INT


@dataclass(frozen=True)
class ComponentOption:
    """One command-line option that becomes a keyword argument of a likelihood or a prior."""

    flag: str  #: the option, e.g. ``--map-b``
    component: str  #: ``likelihood`` or ``prior``
    applies_to: tuple[str, ...]  #: the likelihood/prior names that take it
    kwarg: str  #: the keyword argument of those components
    help: str
    type: Any = None
    default: Any = None
    choices: tuple[str, ...] | None = None
    switch: bool = False  #: a store-true flag
    always: bool = False  #: passed even at its default (recorded in the model's configuration)

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def add_to(self, p: argparse.ArgumentParser) -> None:
        if self.switch:
            p.add_argument(self.flag, action="store_true", help=self.help)
        else:
            p.add_argument(self.flag, type=self.type, default=self.default, choices=self.choices, help=self.help)


COMPONENT_OPTIONS: tuple[ComponentOption, ...] = (
    ComponentOption("--vamp-components", "prior", ("vamp",), "n_components",
                    "K pseudo-inputs of the VampPrior (default 500)", type=POSITIVE_INT),
    ComponentOption("--ratio-epochs", "prior", ("implicit", "avb"), "ratio_epochs",
                    "J2: density-ratio classifier epochs per VAE epoch (implicit, avb; default 10)", type=POSITIVE_INT),
    ComponentOption("--task-weights", "prior", ("implicit",), "task_weights",
                    "implicit prior on tasks: ancestral sampling weights tasks by p_D(s) (data, Eq. 5.8; default) "
                    "or equally", choices=("data", "equal")),
    ComponentOption("--log-normaliser", "prior", ("implicit",), "normaliser",
                    "implicit prior: estimate log Z (every epoch, for early stopping) by importance sampling "
                    "(default) or annealed importance sampling (AIS: far more effective samples in many latent "
                    "dimensions, about a minute per epoch for 40; or re-estimate once: vaekit evaluate "
                    "--log-normaliser annealed)",
                    choices=("importance", "annealed")),
    ComponentOption("--map-b", "likelihood", ("map",), "b", "rate b of the Gamma(1, b) precision prior (map)",
                    type=POSITIVE_FLOAT, default=1.0, always=True),
    ComponentOption("--nu-init", "likelihood", ("student-t",), "nu_init", "initial degrees of freedom (student-t)",
                    type=POSITIVE_FLOAT, default=10.0, always=True),
    ComponentOption("--nu-min", "likelihood", ("student-t",), "nu_min", "floor on the degrees of freedom (student-t)",
                    type=POSITIVE_FLOAT, default=0.5, always=True),
    ComponentOption("--variance-floor", "likelihood", ("gaussian", "map"), "variance_floor",
                    "added to decoded variances (gaussian, map)", type=NON_NEGATIVE_FLOAT, default=0.0),
    ComponentOption("--bounded-mean", "likelihood", ("gaussian", "map", "student-t"), "bounded_mean",
                    "decoded mean in [0, 1] through a sigmoid (grey images: freyfaces, histopathology)", switch=True),
)
OPTIONS_BY_FLAG = {option.flag: option for option in COMPONENT_OPTIONS}


def add_component_options(p: argparse.ArgumentParser, *flags: str) -> None:
    """Add the named rows of :data:`COMPONENT_OPTIONS` to ``p``, in the order given."""
    for flag in flags:
        OPTIONS_BY_FLAG[flag].add_to(p)


def component_kwargs(args: argparse.Namespace, component: str) -> dict[str, Any]:
    """Keyword arguments of the chosen ``component`` (``args.likelihood`` or ``args.prior``): the options that
    apply to it and are set (non-empty, or ``always`` ones at any value); one set away from its default for
    another component is warned about (it has no effect)."""
    name = getattr(args, component)
    kwargs: dict[str, Any] = {}
    for option in COMPONENT_OPTIONS:
        value = getattr(args, option.dest)
        if option.component == component and name in option.applies_to and (option.always or value):
            kwargs[option.kwarg] = value
        elif option.component == component and name is None and value and value != option.default:
            raise ConfigError(f"{option.flag} needs --{component} here: without it the {component} is chosen from the "
                              f"data after they are read (add e.g. --{component} {option.applies_to[0]})")
        elif option.component == component and name is not None and value and value != option.default:
            warnings.warn(f"{option.flag} applies to the {' / '.join(option.applies_to)} {component}, not {name}: "
                          "it is ignored", stacklevel=2)
    return kwargs
