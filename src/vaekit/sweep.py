"""``vaekit sweep grid.toml``: a user-defined grid (data x model options x seeds) run by the grid engine.

The grid file names fixed options and the options to vary; every combination runs once per seed, resumably, in
the results database of ``vaekit reproduce`` (same engine, workers, Ray backend), and the report is the same: mean
± std over seeds, bold where a paired t-test cannot tell a column from the best::

    name = "my-sweep"          # names the report and the grid's rows in the database
    seeds = 3                  # or a list: [0, 1, 2]
    [options]                  # the same for every run
    epochs = 50
    hidden = [64, 64]
    [grid]                     # every combination of these lists
    data = ["cancer", "my_rows.csv"]
    likelihood = ["gaussian", "student-t"]
    latent_dim = [2, 10]
    likelihood_kwargs = [{}, {nu_min = 2.0}]   # a likelihood's or prior's options as tables

Option names are the keyword arguments of :func:`vaekit.fit` (``-`` or ``_``): the model's (:data:`MODEL_OPTIONS`;
``likelihood_kwargs`` and ``prior_kwargs`` hold what ``vaekit fit`` calls ``--map-b``, ``--nu-min``,
``--vamp-components``, ...; ``mmd_alpha``/``task_latent_dim``/``n_tasks`` condition on a ``task_column``), the
training options (:data:`TRAIN_OPTIONS`), the column options and ``data``, ``split``, ``importance_samples``,
``test_subsample``, ``constant_columns``. Relative file paths are read relative to the grid file.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import ConfigError, DataError, DatasetNotFoundError
from .experiments.targets import Target, register_target
from .runconfig import resolve_data_path

if TYPE_CHECKING:  # pragma: no cover - the data load inside the functions
    from .data import Dataset

NAME = "sweep"
#: options a grid may set: fit's model and training options, and the CSV column options
MODEL_OPTIONS = ("likelihood", "prior", "latent_dim", "hidden", "activation", "dropout", "gated", "likelihood_kwargs",
                 "prior_kwargs", "n_tasks", "mmd_alpha", "task_latent_dim")
TRAIN_OPTIONS = ("epochs", "batch_size", "lr", "patience", "warmup", "on_divergence")
DATA_OPTIONS = ("label_column", "task_column", "ignore_columns", "id_column")
OTHER_OPTIONS = ("data", "split", "importance_samples", "test_subsample", "constant_columns")
OPTIONS = (*MODEL_OPTIONS, *TRAIN_OPTIONS, *DATA_OPTIONS, *OTHER_OPTIONS)
METRIC = "test_log_likelihood"


def _key(raw: str, where: str) -> str:
    key = raw.replace("-", "_")
    if key not in OPTIONS:
        raise ConfigError(f"{where}: unknown option {raw!r}; a grid may set {', '.join(OPTIONS)}")
    return key


def data_labels(data: Sequence[str]) -> dict[str, str]:
    """A short row label per data set of a sweep: the file name, with as many parent folders as it takes to tell
    files of the same name apart (``a/rows.csv``, ``b/rows.csv``); a data set name as it is."""
    paths = {d: Path(d).parts for d in dict.fromkeys(data)}
    labels = {}
    for d, parts in paths.items():
        for depth in range(1, len(parts) + 1):
            tail = parts[-depth:]
            if not any(other != d and o[-depth:] == tail for other, o in paths.items()):
                break
        labels[d] = str(Path(*tail)) if parts else d
    return labels


def load_grid(path: str | Path) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """The grid's name, its run configurations and its settings (for the report)."""
    from .runconfig import read_toml

    path = Path(path)
    spec = read_toml(path)
    where = str(path)
    unknown = set(spec) - {"name", "seeds", "options", "grid"}
    if unknown:
        raise ConfigError(f"{where}: unknown entries {sorted(unknown)}; use name, seeds, [options], [grid] (the "
                          f"report's metric is the {METRIC})")
    name = str(spec.get("name") or path.stem)
    if name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ConfigError(f"{where}: name must be a plain name like my-sweep (it names the report's files in --out), "
                          f"got {name!r}")
    seeds = spec.get("seeds", 3)
    if not (_whole(seeds) or isinstance(seeds, list)):
        raise ConfigError(f"{where}: seeds must be a positive count or a list of seeds >= 0, got {seeds!r}")
    seeds = list(range(seeds)) if _whole(seeds) else list(seeds)
    if not seeds or not all(_whole(s) and s >= 0 for s in seeds):
        raise ConfigError(f"{where}: seeds must be a positive count or a list of seeds >= 0, got {spec.get('seeds')}")
    for table in ("options", "grid"):
        if not isinstance(spec.get(table, {}), dict):
            raise ConfigError(f"{where}: [{table}] must be a table of option = value lines, got {spec[table]!r}")
    fixed = {_key(k, where): v for k, v in dict(spec.get("options", {})).items()}
    grid = {_key(k, where): v for k, v in dict(spec.get("grid", {})).items()}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: [grid] {key} must be a non-empty list of values, got {values!r}")
    if "data" not in fixed and "data" not in grid:
        raise ConfigError(f"{where}: name the data (data = ... in [options] or a list in [grid])")
    from .likelihoods import LIKELIHOODS
    from .priors import PRIORS

    for key, known in (("likelihood", LIKELIHOODS), ("prior", PRIORS)):
        for value in grid.get(key, [fixed[key]] if key in fixed else []):
            if value not in known:
                raise ConfigError(f"{where}: {key} {value!r} is not one of {sorted(known)}")
    varied = list(grid)
    configs = []
    for combination in itertools.product(*grid.values()):
        options = {**fixed, **dict(zip(varied, combination))}
        options["data"] = resolve_data_path(options["data"], path.parent)
        label = ", ".join(f"{k}={_short(options[k])}" for k in varied if k != "data") or "run"
        for seed in seeds:
            configs.append({"target": NAME, "sweep": name, "seed": seed, "variant": label, **options})
    settings = {"seeds": len(seeds), "runs": len(configs), **{f"grid {k}": v for k, v in grid.items()},
                **fixed}
    return name, configs, settings


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={_short(v)}" for k, v in value.items()) + "}"
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _load_data(config: dict[str, Any]) -> Dataset:
    """The data of one run, loaded as the run loads it."""
    from .data import load_dataset

    return load_dataset(config["data"], **{k: config[k] for k in DATA_OPTIONS if k in config})


def check_data(configs: Sequence[dict[str, Any]], where: str) -> None:
    """Load each distinct data of the grid once, as its runs will (and as ``vaekit fit`` does before it trains), so
    a missing file, an unknown or absent data set, or unusable rows (NaN, a missing column), non-binary data for
    a Bernoulli likelihood, or constant columns under the default policy stop the sweep before anything is run
    or written."""
    import numpy as np

    from .likelihoods import LIKELIHOODS

    loaded: dict[str, Dataset] = {}
    for config in configs:
        data = {k: config[k] for k in ("data", *DATA_OPTIONS) if k in config}
        marker = json.dumps(data, sort_keys=True, default=str)
        try:
            if marker not in loaded:
                loaded[marker] = _load_data(config)
            x = loaded[marker].x
            likelihood = LIKELIHOODS.get(str(config.get("likelihood")))
            if likelihood is not None and likelihood.binary_data and not np.isin(x, (0.0, 1.0)).all():
                raise DataError(f"the {likelihood.name} likelihood needs binary data (0/1); binarise the data or "
                                "choose a continuous likelihood (gaussian, map, student-t)")
            constant = np.flatnonzero(np.ptp(x, axis=0) == 0) if len(x) else []
            standardised = likelihood is None or likelihood.standardise  # the default is Student-t unless binary
            if (len(constant) and standardised and config.get("constant_columns", "error") == "error"
                    and not (likelihood is None and loaded[marker].binary)):
                raise DataError(f"columns {list(map(int, constant))} are constant, so their density is degenerate; "
                                "remove them or set constant_columns = \"drop\"")
        except (DataError, DatasetNotFoundError) as err:
            raise type(err)(f"{where}: data {config['data']!r}: {err}") from None


def hidden_sizes(value: Any) -> tuple[int, ...]:
    """A grid's ``hidden`` as layer sizes: ``8``, ``[128, 128]`` or ``"128,128"`` (as ``vaekit fit --hidden``)."""
    if isinstance(value, int):
        return (value,)
    if isinstance(value, str):
        return tuple(int(v) for v in value.split(","))
    return tuple(int(v) for v in value)


@register_target
class SweepTarget(Target):
    """Runs one configuration of a user's grid with :func:`vaekit.fit`; reports like the thesis targets."""

    name = NAME
    description = "a user-defined grid from vaekit sweep GRID.toml"
    budgets: ClassVar[dict[str, dict[str, Any]]] = {}
    include_in_all = False

    def runs(self, budget: str = "quick", seeds: int | None = None,
             datasets: Sequence[str] | None = None) -> list[dict[str, Any]]:
        raise ConfigError("a sweep's runs come from its grid file: vaekit sweep GRID.toml")

    def execute(self, config: dict[str, Any]) -> dict[str, Any]:
        from .fitting import fit
        from .training import TrainConfig

        data = _load_data(config)
        train = TrainConfig(seed=int(config["seed"]), **{
            ("warmup_epochs" if k == "warmup" else k): config[k] for k in TRAIN_OPTIONS if k in config})
        _, summary = fit(
            data, split=config.get("split"), importance_samples=config.get("importance_samples", 100),
            test_subsample=config.get("test_subsample"), constant_columns=config.get("constant_columns", "error"),
            train=train, **{k: (hidden_sizes(config[k]) if k == "hidden" else config[k]) for k in MODEL_OPTIONS
                            if k in config},
        )
        keep = (METRIC, "test_log_likelihood_normalised", "best_val_loss", "best_epoch", "epochs_run", "diverged",
                "train_seconds", "n_train", "n_test", "history")
        return {k: summary[k] for k in keep if k in summary}

    def report(self, results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
        from .experiments.report import plot_curves, write_table

        variants = list(dict.fromkeys(r["config"]["variant"] for r in results))
        name = results[0]["config"]["sweep"] if results else "sweep"
        labels = data_labels([str(r["config"]["data"]) for r in results])
        table = write_table(results, out, name, metric=METRIC, row=lambda c: labels[str(c["data"])],
                            column="variant", columns=variants, row_header="Data")
        curves = plot_curves(results, Path(out) / f"{name}-curves.png", key="val_loss",
                             group=lambda c: f"{labels[str(c['data'])]} / {c['variant']}",
                             title=f"{name}: validation loss", ylabel="validation negative ELBO")
        markdown = "Test log-likelihood (nats, higher is better):\n\n" + table["markdown"]
        return {"markdown": markdown, "files": [*table["files"], curves]}
