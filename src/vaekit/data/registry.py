"""Named data sets: where each one's file lives, how to fetch and parse its public source, and its splits."""

from __future__ import annotations

import difflib
import hashlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import DataError, DatasetNotFoundError
from . import sources
from .dataset import Dataset
from .files import COLUMN_OPTIONS, check_column_options, load_file


@dataclass(frozen=True)
class DatasetSpec:
    """A named data set: its file, its public source, and its default split (section 3.5.1 / Table 4.1 / 5.1)."""

    name: str
    filename: str
    description: str
    split: tuple[float, float, float] = (0.5, 0.1, 0.4)
    sha256: str | None = None  #: checksum of the ``.npz`` as distributed in the data directory
    #: checksum of the parsed arrays (``x`` as float32 bytes then ``y`` as int8 bytes), verified after a download
    content_sha256: str | None = None
    download: Callable[[], dict[str, np.ndarray]] | None = None  #: fetch + parse the public source
    fallback: Callable[[], dict[str, np.ndarray]] | None = None  #: build from data installed with a package
    binary: bool = False
    source: str = ""
    #: turns the loaded arrays into a Dataset (image sets flatten / binarise / resize here)
    build: Callable[[DatasetSpec, dict[str, np.ndarray]], Dataset] | None = None
    #: x's (rows, features) once built, listed by ``vaekit datasets`` without building; needed where ``build``
    #: changes the shape of a 2-d ``x`` (without it: the file's stored 2-d ``x``/``X``, else a build)
    shape: tuple[int, int] | None = None
    #: further files ``build`` reads (MNIST's test set), found like ``filename``
    companions: tuple[str, ...] = ()
    #: the public source file that ``download`` converts (e.g. a CSV), when a user may place it by hand instead
    raw_file: str | None = None


DATASETS: dict[str, DatasetSpec] = {}
#: loaders of data sets composed of registered ones (e.g. the ``usps->mnist`` protocol of chapter 5): each returns
#: a Dataset for a name it knows and None otherwise; :func:`load_dataset` tries them after :data:`DATASETS`
COMPOSITE_LOADERS: list[Callable[[str], Dataset | None]] = []


def register(spec: DatasetSpec) -> DatasetSpec:
    DATASETS[spec.name] = spec
    return spec


def _cancer_from_sklearn() -> dict[str, np.ndarray]:
    """Goldstein & Uchida's breast-cancer set from scikit-learn's bundled copy of the same UCI rows.

    All 357 benign rows plus the 10 malignant rows that benchmark kept (scikit-learn row numbers below), malignant
    first, as in the distributed file.
    """
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    malignant = [28, 117, 230, 95, 370, 323, 516, 498, 33, 564]
    benign = np.flatnonzero(data.target == 1)
    rows = np.concatenate([malignant, benign])
    y = np.r_[np.ones(len(malignant)), np.zeros(len(benign))].astype(np.int8)
    return {"x": data.data[rows].astype(np.float32), "y": y}


register(DatasetSpec(
    "smtp", "smtp.npz", "KDD Cup 1999 SMTP subset, 95,156 x 3, 30 attacks (ODDS/ADBench preprocessing)",
    split=(0.1, 0.1, 0.8),
    sha256="b1d69015d24f56538a0daa493ff94d23edf7747237abf8ebb605816847b07af7",
    content_sha256="8185c183064af3692fabec228652c3e58dfd56dab66e781a6d09c5979ea73eb5",
    download=partial(sources.adbench_npz, "34_smtp.npz"), source=sources.ADBENCH_URL.format("34_smtp.npz"),
))
register(DatasetSpec(
    "cancer", "cancer.npz", "Wisconsin breast cancer, 357 benign + 10 malignant, 367 x 30 (Goldstein & Uchida)",
    sha256="3619827320dc1205366d2579b30e0628c42ef14f8a3906200f51d26f440a6b6e",
    content_sha256="f1ac105c522d4172d43cb2a0f63e8c049f5045002b75d15db4c960d7c4046d48",
    download=partial(sources.goldstein_uchida_csv, "breast-cancer-unsupervised-ad.csv"),
    fallback=_cancer_from_sklearn, source=f"{sources.GOLDSTEIN_UCHIDA_DOI} breast-cancer-unsupervised-ad.csv",
    raw_file="breast-cancer-unsupervised-ad.csv",
))
for _name, _file, _desc in (
    ("aloi", "aloi-unsupervised-ad.csv", "Amsterdam Library of Object Images, 50,000 x 27 (Goldstein & Uchida)"),
    ("thyroid", "annthyroid-unsupervised-ad.csv", "UCI thyroid (annthyroid), 6,916 x 21 (Goldstein & Uchida)"),
    ("satellite", "satellite-unsupervised-ad.csv", "UCI Landsat satellite, 5,100 x 36 (Goldstein & Uchida)"),
):
    register(DatasetSpec(
        _name, f"{_name}.npz", _desc, download=partial(sources.goldstein_uchida_csv, _file),
        source=f"{sources.GOLDSTEIN_UCHIDA_DOI} {_file}", raw_file=_file,
    ))


def content_checksum(arrays: dict[str, np.ndarray]) -> str:
    """sha256 of ``x`` (float32) followed by ``y`` (int8) bytes: independent of how the archive was compressed."""
    x = np.ascontiguousarray(arrays["x"], dtype=np.float32).tobytes()
    y = np.ascontiguousarray(arrays["y"], dtype=np.int8).tobytes() if "y" in arrays else b""
    return hashlib.sha256(x + y).hexdigest()


def locate(spec: DatasetSpec) -> Path | None:
    return sources.find_file(spec.filename)


def load_arrays(spec: DatasetSpec, download: bool = False, verify: bool = True) -> dict[str, np.ndarray]:
    """The arrays of a named data set, from the data directory, the cache, a bundled fallback, or a download."""
    path = locate(spec)
    if path is None and spec.fallback is not None:
        return spec.fallback()
    if path is None and download and spec.download is not None:
        try:
            arrays = spec.download()
        except OSError as err:  # urllib.error.URLError, timeouts, refused connections, DNS failures
            reason = " ".join(str(getattr(err, "reason", None) or err).split())[:200]
            by_hand = (f"fetch its source file(s) {spec.raw_file} by hand, put them in $VAEKIT_DATA or "
                       f"{sources.cache_dir()} and run `vaekit download {spec.name}` again (it converts them "
                       "without the network)") if spec.raw_file else (
                f"fetch {spec.filename} by hand and place it at {sources.cache_dir() / spec.filename} (or in a "
                "folder named by VAEKIT_DATA)")
            raise DatasetNotFoundError(
                f"could not reach {spec.source or 'the source of ' + spec.name} ({reason}); {by_hand}"
            ) from None
        if spec.content_sha256 and content_checksum(arrays) != spec.content_sha256:
            raise DataError(f"the download of {spec.name} from {spec.source} does not match its published content "
                            "checksum; the source may have changed — fetch it by hand and check it")
        path = sources.save_npz_atomic(sources.cache_dir() / spec.filename, **arrays)
    if path is None:
        raise sources.missing_file_error(spec.name, spec.filename, spec.download is not None, spec.source,
                                         spec.raw_file)
    if verify:
        check_checksum(spec, path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"{path} is not a readable .npz archive ({err}); delete it and fetch it again") from err
    if (verify and spec.content_sha256 and path.parent == sources.cache_dir() and "x" in arrays
            and content_checksum(arrays) != spec.content_sha256):
        raise DataError(f"the cached {path} does not match the published content of {spec.name}; delete it and run "
                        f"`vaekit download {spec.name}` again")
    return arrays


def check_checksum(spec: DatasetSpec, path: Path) -> None:
    """Refuse a file in the data directory that does not match the published checksum of ``spec``."""
    if spec.sha256 and path.parent == sources.data_dir() and sources.sha256_of(path) != spec.sha256:
        raise DataError(
            f"{path} does not match the published checksum of {spec.filename}; replace the file (if you changed it "
            "on purpose, give its path instead of the name, --data PATH, and it loads as a user file)"
        )


def load_dataset(name_or_path: str | Path, download: bool = False, **file_options: object) -> Dataset:
    """A registered data set by name, or any user ``.npz``/``.csv`` file by path.

    ``file_options`` go to :func:`vaekit.data.files.load_file` (e.g. ``label_column``, ``task_column``).
    """
    key = str(name_or_path)
    if key in DATASETS:
        check_column_options(key, **{k: v for k, v in file_options.items() if k in COLUMN_OPTIONS})  # type: ignore[arg-type]
        spec = DATASETS[key]
        arrays = load_arrays(spec, download=download)
        if spec.build is not None:
            return spec.build(spec, arrays)
        return Dataset(spec.name, arrays["x"], arrays.get("y"), arrays.get("s"), split=spec.split,
                       binary=spec.binary)
    path = Path(key).expanduser()
    if path.suffix.lower() in (".npz", ".npy", ".csv"):  # a file, even when its name contains '->' or '+'
        return load_file(path, **file_options)  # type: ignore[arg-type]
    check_column_options(key, **{k: v for k, v in file_options.items() if k in COLUMN_OPTIONS})  # type: ignore[arg-type]
    for composite in COMPOSITE_LOADERS:
        dataset = composite(key)
        if dataset is not None:
            return dataset
    close = difflib.get_close_matches(key, sorted(DATASETS), n=3)
    raise DatasetNotFoundError(
        f"{key[:80]!r} is neither a registered data set nor a .npz/.npy/.csv file"
        + (f"; did you mean {' or '.join(close)}?" if close else "")
        + " (`vaekit datasets` lists the registered ones)"
    )


def dataset_status() -> list[dict[str, object]]:
    """One row per registered data set: whether it can be loaded here without a download, and its shape.

    Cheap: files are found and checksummed, shapes come from :func:`listed_shape` (nothing is built where the
    registry or the file's headers tell the shape); a missing companion file or an unreadable file is an ``error``.
    """
    rows = []
    for spec in DATASETS.values():
        path = locate(spec)
        row: dict[str, object] = {"name": spec.name, "description": spec.description, "file": spec.filename,
                                  "present": path is not None, "path": str(path) if path else None,
                                  "bundled_fallback": spec.fallback is not None}
        if path is not None or spec.fallback is not None:
            try:
                row["shape"] = listed_shape(spec, path)
            except (DataError, DatasetNotFoundError) as err:
                row["error"] = str(err)
        rows.append(row)
    return rows


def listed_shape(spec: DatasetSpec, path: Path | None) -> list[int]:
    """x's shape without loading it: ``spec.shape``, else the stored 2-d ``x``/``X`` (from the ``.npz`` headers),
    else that of the built data set. Raises the errors loading would raise for a bad file or a missing companion."""
    if path is not None:
        check_checksum(spec, path)
    for companion in spec.companions:
        if sources.find_file(companion) is None:
            raise sources.missing_file_error(spec.name, companion, spec.download is not None, spec.source)
    if spec.shape is not None:
        return list(spec.shape)
    if path is not None:
        try:
            stored = sources.npz_shapes(path)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise DataError(f"{path} is not a readable .npz archive ({err}); delete it and fetch it again") from err
        for key in ("x", "X"):
            if len(stored.get(key, ())) == 2:
                return list(stored[key])
    return list(load_dataset(spec.name).x.shape)
