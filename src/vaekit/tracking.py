"""Experiment tracking: a callback interface for training runs, an MLflow logger and a TensorBoard logger.

A tracker receives per-epoch records from :class:`~vaekit.training.Trainer` (it is called as
``tracker(epoch, model, record)``, the Trainer's callback signature), then the run's parameters, final metrics
and files from :func:`vaekit.fit` / :class:`~vaekit.detect.VAEDetector` through :func:`finish_trackers`::

    from vaekit.tracking import MLflowLogger
    model, summary = vaekit.fit("cancer", callbacks=[MLflowLogger("file:./mlruns", experiment="cancer")])

``pip install 'vaekit[mlflow]'`` installs MLflow; the logger writes to any tracking URI, including a local file
store (``file:./mlruns``) that needs no server. CLI: ``vaekit fit ... --mlflow file:./mlruns``.
``pip install 'vaekit[tensorboard]'`` enables :class:`TensorBoardLogger` (CLI: ``--tensorboard runs/tb``).
"""

from __future__ import annotations

import argparse
import math
import numbers
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ConfigError


class Tracker:
    """Base class: override any of the hooks; all are no-ops here."""

    def __call__(self, epoch: int, model: Any, record: dict[str, Any]) -> None:
        self.on_epoch(epoch, {k: v for k, v in record.items() if _is_metric(v)})

    def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """Per-epoch metrics (train_loss, val_loss, kl_weight, seconds, likelihood diagnostics...)."""

    def on_end(self, params: dict[str, Any], metrics: dict[str, float], artifacts: Iterable[Path] = ()) -> None:
        """The run's parameters, its final metrics and the files it wrote."""


class MemoryTracker(Tracker):
    """Keeps everything in memory (``epochs``, ``params``, ``metrics``, ``artifacts``); handy in tests."""

    def __init__(self) -> None:
        self.epochs: list[tuple[int, dict[str, float]]] = []
        self.params: dict[str, Any] = {}
        self.metrics: dict[str, float] = {}
        self.artifacts: list[Path] = []

    def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs.append((epoch, metrics))

    def on_end(self, params: dict[str, Any], metrics: dict[str, float], artifacts: Iterable[Path] = ()) -> None:
        self.params, self.metrics, self.artifacts = dict(params), dict(metrics), list(artifacts)


class MLflowLogger(Tracker):
    """Logs a run to MLflow: per-epoch metrics with ``step=epoch``, flattened parameters, final metrics, files.

    The run starts at the first epoch (or at :meth:`on_end` when no epoch came) and ends in :meth:`on_end`.
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str = "vaekit",
                 run_name: str | None = None) -> None:
        try:
            import mlflow  # noqa: F401
        except ImportError as err:
            raise ConfigError("MLflow is not installed; pip install 'vaekit[mlflow]'") from err
        self.tracking_uri, self.experiment, self.run_name = tracking_uri, experiment, run_name
        self.run_id: str | None = None
        self._client: Any = None

    def _start(self) -> None:
        if self.run_id is not None:
            return
        from mlflow.tracking import MlflowClient

        uri = self.tracking_uri or ""
        if uri.startswith("file:") or (uri and "://" not in uri):
            # MLflow 3 keeps the file store in maintenance mode behind this switch; a local file store is what
            # this logger offers without a server or a database
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self._client = MlflowClient(tracking_uri=self.tracking_uri)
        found = self._client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found else self._client.create_experiment(self.experiment)
        tags = {"mlflow.runName": self.run_name} if self.run_name else {}
        self.run_id = self._client.create_run(experiment_id, tags=tags).info.run_id

    def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self._start()
        for key, value in metrics.items():
            self._client.log_metric(self.run_id, key, value, step=epoch)

    def on_end(self, params: dict[str, Any], metrics: dict[str, float], artifacts: Iterable[Path] = ()) -> None:
        self._start()
        for key, value in flatten(params).items():
            self._client.log_param(self.run_id, key, str(value)[:500])
        for key, value in metrics.items():
            self._client.log_metric(self.run_id, f"final_{key}" if not key.startswith("test_") else key, value)
        for path in artifacts:
            if Path(path).is_file():
                self._client.log_artifact(self.run_id, str(path))
        self._client.set_terminated(self.run_id)


class TensorBoardLogger(Tracker):
    """Writes a run as TensorBoard event files in ``log_dir`` (``/run_name`` when given) through
    ``torch.utils.tensorboard.SummaryWriter``: per-epoch scalars with ``global_step=epoch``, the final metrics
    (``final_`` prefixed, as :class:`MLflowLogger`), and the parameters and file paths as text (TensorBoard keeps
    no files). The writer opens at the first epoch (or in :meth:`on_end`) and closes in :meth:`on_end`.
    """

    def __init__(self, log_dir: str | Path, run_name: str | None = None) -> None:
        try:
            import tensorboard  # noqa: F401
        except ImportError as err:
            raise ConfigError("TensorBoard is not installed; pip install 'vaekit[tensorboard]'") from err
        self.log_dir = Path(log_dir) / run_name if run_name else Path(log_dir)
        self._writer: Any = None

    def _start(self) -> None:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.log_dir))

    def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self._start()
        for key, value in metrics.items():
            self._writer.add_scalar(key, value, global_step=epoch)

    def on_end(self, params: dict[str, Any], metrics: dict[str, float], artifacts: Iterable[Path] = ()) -> None:
        self._start()
        for key, value in metrics.items():
            self._writer.add_scalar(f"final_{key}" if not key.startswith("test_") else key, value)
        rows = "\n".join(f"| {key} | {value} |" for key, value in flatten(params).items())
        self._writer.add_text("params", "| parameter | value |\n| --- | --- |\n" + rows)
        files = [str(path) for path in artifacts]
        if files:
            self._writer.add_text("artifacts", "\n".join(f"- {path}" for path in files))
        self._writer.close()
        self._writer = None


def _is_metric(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"latent_dim": 2}}`` -> ``{"model.latent_dim": 2}``."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def final_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The numeric top-level entries of a run summary (the history and nested settings left out)."""
    return {k: float(v) for k, v in summary.items() if _is_metric(v)}


def finish_trackers(callbacks: Iterable[Any] | None, params: dict[str, Any], metrics: dict[str, float],
                    artifacts: Iterable[Path] = ()) -> None:
    """Call ``on_end`` of every callback that is a :class:`Tracker` (plain callables are left alone)."""
    artifacts = list(artifacts)
    for callback in callbacks or ():
        if isinstance(callback, Tracker):
            callback.on_end(params, metrics, artifacts)


def tracking_callbacks(args: argparse.Namespace) -> list[Tracker]:
    """The trackers the CLI options ask for."""
    trackers: list[Tracker] = []
    if getattr(args, "mlflow", None):
        trackers.append(MLflowLogger(args.mlflow, experiment=args.mlflow_experiment))
    if getattr(args, "tensorboard", None):
        trackers.append(TensorBoardLogger(args.tensorboard))
    return trackers
