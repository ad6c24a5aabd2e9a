"""``vaekit plot RUN_DIR``: the figures of one run as PNG files and one self-contained HTML page.

For a model saved by ``vaekit fit --out`` (or :func:`vaekit.fit`): training curves (losses, the ELBO's
reconstruction and KL terms, the KL weight), the latent space of the test split (2-d as is; wider codes through
PCA or t-SNE) coloured by label or task, and for image data sets test images, their reconstructions and samples.
For a detector saved by ``vaekit detect --save``: the training curves and the histogram of anomaly scores with the
threshold. The HTML page embeds every figure (base64) and the run's numbers, so it opens with no server.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .checkpoint import atomic_write_bytes
from .errors import ConfigError
from .htmlreport import html_page, image_tag, table_html

log = logging.getLogger(__name__)
EMBEDDINGS = ("auto", "pca", "tsne")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    _pyplot().close(fig)
    data = buffer.getvalue()
    atomic_write_bytes(path, lambda f: f.write(data))
    return path


def plot_history(history: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Losses, the ELBO's terms and the KL weight against the epoch."""
    plt = _pyplot()
    records = [r for r in history if "epoch" in r and "event" not in r]
    panels = [("loss (negative ELBO)", ("train_loss", "val_loss")), ("ELBO terms", ("reconstruction", "kl")),
              ("KL weight", ("kl_weight",))]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, (name, keys) in zip(axes, panels):
        for key in keys:
            points = [(r["epoch"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
            if points:
                ax.plot(*zip(*points), marker="." if len(points) < 30 else None, label=key)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        if ax.lines:
            ax.legend()
    for event in (r for r in history if "event" in r):
        for ax in axes:
            ax.axvline(event["epoch"], color="red", lw=0.8, ls=":")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def embed_2d(z: np.ndarray, method: str = "auto", seed: int = 0,
             progress: bool | None = None) -> tuple[np.ndarray, str]:
    """2-d coordinates of latent codes: as is for 2-d, PCA (``auto``/``pca``) or t-SNE (:func:`tsne_2d`) beyond;
    the first two coordinates where fewer than 3 distinct codes leave nothing to embed (PCA of identical codes
    gives NaN, scikit-learn's t-SNE of them crashes the process)."""
    if z.shape[1] == 1:
        return np.c_[z, np.zeros(len(z))], "z (1-d)"
    if z.shape[1] == 2:
        return z, "z"
    if len(np.unique(z, axis=0)) < 3:
        return z[:, :2], f"first 2 of {z.shape[1]} coordinates: too few distinct codes to embed"
    if method == "tsne":
        return tsne_2d(z, seed, perplexity=min(30.0, len(z) - 1.0), progress=progress), "t-SNE"
    from sklearn.decomposition import PCA

    return PCA(2, random_state=seed).fit_transform(z), "PCA"


def tsne_2d(z: np.ndarray, seed: int = 0, perplexity: float = 30.0, progress: bool | None = None) -> np.ndarray:
    """scikit-learn's Barnes-Hut t-SNE of ``z`` (PCA start), with its size logged before it starts.

    scikit-learn has no progress hook; its verbose report (every 50 iterations, on stdout) is read instead: it
    advances a bar over the iteration limit (``progress``; ``None``: only on a terminal; t-SNE may stop earlier),
    gives an upper estimate of the time after the first report, and goes to the debug log, never to stdout.
    Verbosity changes nothing in the result.
    """
    from sklearn.manifold import TSNE

    tsne = TSNE(2, init="pca", perplexity=perplexity, random_state=seed, verbose=2)
    limit = int(getattr(tsne, "max_iter", None) or getattr(tsne, "n_iter", 1000))  # n_iter before scikit-learn 1.5
    log.info("t-SNE of %s points (%d-d): up to %d iterations, each O(n log n) in the points", f"{len(z):,}",
             z.shape[1], limit)
    with tqdm(total=limit, unit="it", desc="t-SNE", leave=False,
              disable=None if progress is None else not progress) as bar:
        with contextlib.redirect_stdout(_TsneReport(bar)):
            return tsne.fit_transform(z)


class _TsneReport(io.TextIOBase):
    """A stdout for scikit-learn's verbose t-SNE: iteration lines advance ``bar``, every line goes to the debug
    log, and the first iteration line logs the expected time at most."""

    ITERATION = re.compile(r"\[t-SNE\] Iteration (\d+):")

    def __init__(self, bar: Any) -> None:
        super().__init__()
        self.bar, self.start, self.pending, self.announced = bar, time.perf_counter(), "", False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            log.debug("%s", line)
            found = self.ITERATION.match(line)
            if found:
                done = int(found.group(1))
                self.bar.update(max(0, done - self.bar.n))
                if not self.announced:
                    self.announced = True
                    expected = (time.perf_counter() - self.start) * self.bar.total / done
                    log.info("t-SNE: at most about %.0f s expected (from the first %d iterations)", expected, done)
        return len(text)


def plot_latent(z: np.ndarray, colour: np.ndarray | None, path: Path, method: str, what: str,
                progress: bool | None = None, rows: str = "test rows") -> Path:
    """2-d embedding of ``z`` coloured by ``colour`` (a legend for up to 10 classes, else a colour bar)."""
    plt = _pyplot()
    xy, how = embed_2d(z, method, progress=progress)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    classes = np.unique(colour) if colour is not None else []
    if colour is not None and len(classes) <= 10:
        for k, value in enumerate(classes):
            mine = colour == value
            ax.scatter(xy[mine, 0], xy[mine, 1], s=6, color=plt.get_cmap("tab10")(k), label=str(value))
        ax.legend(title=what, markerscale=2, fontsize="small")
    else:
        points = ax.scatter(xy[:, 0], xy[:, 1], c=colour, s=6, cmap="viridis" if colour is not None else None)
        if colour is not None:
            fig.colorbar(points, ax=ax, label=what)
    ax.set_title(f"latent space ({how}), {len(z)} {rows}")
    fig.tight_layout()
    return _save(fig, path)


def plot_images(rows: list[tuple[str, np.ndarray]], shape: tuple[int, int], path: Path) -> Path:
    plt = _pyplot()
    n = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 1.1, len(rows) * 1.3), squeeze=False)
    for r, (name, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(images):
                ax.imshow(np.asarray(images[c]).reshape(shape), cmap="gray")
        axes[r][0].set_title(name, fontsize=8, loc="left")
    fig.tight_layout()
    return _save(fig, path)


def plot_scores(scores: np.ndarray, threshold: float, path: Path, contamination: float) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    finite = scores[np.isfinite(scores)]
    ax.hist(finite, bins=min(60, max(10, len(finite) // 20)), color="grey")
    ax.axvline(threshold, color="red", label=f"threshold ({100 * contamination:g} % flagged)")
    ax.set_xlabel("anomaly score -log p(x)")
    ax.set_ylabel("training rows")
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def _plotted_rows(n: int, max_points: int) -> np.ndarray:
    """The rows of ``n`` the latent-space plot shows: all, or ``max_points`` of them drawn with seed 0, in order."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, max_points, replace=False))


def _mapped_test_rows(info: dict[str, Any], max_points: int) -> Any:
    """The plotted rows of a memory-mapped run's test split, read through the map (not the whole file); None,
    with a warning, when the file is gone or changed."""
    from .data import Dataset
    from .errors import DataError, DatasetNotFoundError
    from .trained_mapped import mapped_test_split

    try:
        array, test_idx, path = mapped_test_split(info)
    except (DatasetNotFoundError, DataError) as err:
        log.warning("no latent-space plot: %s", err)
        return None
    rows = test_idx[_plotted_rows(len(test_idx), max_points)]
    return Dataset(path.stem, np.asarray(array[np.sort(rows)], dtype=np.float32), split=tuple(info["split"]))


def _run_data(info: dict[str, Any], data: str | None, data_options: dict[str, Any] | None = None,
              max_points: int = 2000) -> Any:
    """The data set a run was trained on (its test split), or ``data`` (read with ``data_options``) when given;
    None, with a warning, when the run's own data cannot be found here (data given that cannot be read is an
    error). A memory-mapped run's test split is read through the map, only the ``max_points`` rows plotted."""
    from .data import Dataset, load_dataset
    from .errors import DatasetNotFoundError

    if isinstance(data, Dataset):
        return data
    if data is not None:
        return load_dataset(data, **dict(data_options or {}))
    if info.get("memory_mapped"):
        return _mapped_test_rows(info, max_points)
    from .data import training_data

    if info.get("data_path") is None and info.get("dataset") is None:
        return None
    try:
        dataset = training_data(info)
    except DatasetNotFoundError as err:
        log.warning("no latent-space plot: the run's data are not available here (%s); pass --data", err)
        return None
    if data is None and info.get("split"):
        _, _, dataset = dataset.splits(info["split"], seed=int(info.get("seed", 0)))
    return dataset


#: the figures :func:`plot_run` writes (by file name)
FIGURES = ("curves.png", "scores.png", "latent.png", "images.png")


def _run_result(path: Path) -> dict[str, Any]:
    """A run's ``result.json``, or ``{}`` with a warning when it is missing or damaged (the figures but the
    training curves need only the model); a ``history`` that is not a list of epochs is dropped, with a warning."""
    if not path.is_file():
        return {}
    try:
        result = json.loads(path.read_text())
    except ValueError as err:  # not JSON, or not text
        log.warning("%s is damaged (%s); plotting without its training curves and summary", path, err)
        return {}
    if not isinstance(result, dict):
        log.warning("%s is not a JSON object; plotting without its training curves and summary", path)
        return {}
    history = result.get("history", [])
    if not (isinstance(history, list) and all(isinstance(r, dict) for r in history)):
        log.warning("%s: its history is not a list of epochs; no training curves", path)
        result["history"] = []
    return result


def plot_run(run_dir: str | Path, out: str | Path | None = None, data: Any = None,
             embedding: str = "auto", max_points: int = 2000,
             data_options: dict[str, Any] | None = None, progress: bool | None = None) -> dict[str, Any]:
    """Write the run's figures (PNG) and ``index.html`` into ``out`` (default: ``RUN_DIR/plots``).

    ``data`` (with ``data_options`` for a CSV: label_column, ignore_columns, ...) replaces the run's own test
    split in the latent-space plot; ``progress`` shows a bar over a t-SNE (``None``: only on a terminal)."""
    from .trained import TrainedModel

    if embedding not in EMBEDDINGS:
        raise ConfigError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}")
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / "plots"
    summary: dict[str, Any] = {}
    detector = None
    if (run_dir / "detector.pt").is_file() and not (run_dir / "model.pt").is_file():
        from .detect import VAEDetector

        detector = VAEDetector.load(run_dir)
        trained = detector.trained_
        history = detector.train_result_.history
        summary = {"kind": "anomaly detector", "threshold": detector.threshold_,
                   "contamination": detector.contamination, "training rows": len(detector.decision_scores_),
                   **{k: v for k, v in detector.train_result_.to_dict().items() if k != "history"}}
    else:
        trained = TrainedModel.load(run_dir)
        result = _run_result(run_dir / "result.json")
        history = result.pop("history", [])
        summary = {"kind": "VAE", **{k: v for k, v in result.items() if not isinstance(v, (dict, list))}}
    config = trained.model.config.to_dict()
    dataset = _run_data(trained.info, data, data_options, max_points)  # read and checked before any figure
    if dataset is not None and isinstance(data, str):
        from .columns import align_columns

        dataset = align_columns(trained, dataset)
    files: list[Path] = []
    if history:
        files.append(plot_history(history, out / "curves.png", f"{run_dir.name}: training"))
    if detector is not None:
        files.append(plot_scores(detector.decision_scores_, detector.threshold_, out / "scores.png",
                                 detector.contamination))
    if dataset is not None and trained.model.encoder_has_density:
        subset = dataset.subset(_plotted_rows(len(dataset), max_points))
        z = trained.transform(subset.x, subset.s)
        colour, what = (subset.y, "label") if subset.y is not None else (subset.s, "task")
        own_test_split = data is None and trained.info.get("split") and detector is None
        files.append(plot_latent(z, colour, out / "latent.png", embedding, what, progress,
                                 "test rows" if own_test_split else "rows"))
        shape = dataset.meta.get("image_shape")
        if shape is not None:
            n = min(8, len(subset))
            files.append(plot_images([("test images", subset.x[:n]),
                                      ("reconstructions", trained.reconstruct(subset.x[:n], subset.s[:n]
                                                                              if subset.s is not None else None)),
                                      ("samples", trained.sample(n, 0 if trained.model.config.n_tasks else None,
                                                                 mean=True))],
                                     tuple(shape), out / "images.png"))
    sections = [("Run", table_html([(k, v) for k, v in summary.items()])),
                ("Model", table_html([(k, v) for k, v in config.items()]))]
    sections += [(f.stem, image_tag(f)) for f in files]
    page = html_page(f"vaekit run {run_dir.name}", sections)
    html = out / "index.html"
    atomic_write_bytes(html, lambda f: f.write(page.encode()))
    for stale in {out / name for name in FIGURES} - set(files):  # an earlier plot's figure this page lacks
        stale.unlink(missing_ok=True)
    return {"run": str(run_dir), "files": [str(f) for f in files], "html": str(html)}
