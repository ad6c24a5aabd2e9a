"""Multi-task image data of chapter 5 (Table 5.1) and the protocols of section 5.5.2.

Single tasks (each also a registered data set, ``vaekit fit --data usps``):

- digits: ``usps`` (16 x 16 -> 28 x 28), ``mnist`` (the chapter-4 loader), ``digits`` (scikit-learn's bundled UCI
  optdigits, 8 x 8 -> 28 x 28; a stand-in small task, not in the thesis), all binarised (dynamically for training
  rows, once with a fixed seed for validation and test rows, as :mod:`vaekit.data.images` does for MNIST);
- house numbers: ``svhn`` and ``synthdigits``, grey 32 x 32 in [0, 1] from their public ``.mat`` files;
- faces: ``freyfaces`` (28 x 20), ``olivetti`` (64 x 64) and ``umist`` (112 x 92), all resized to Frey's 28 x 20,
  grey in [0, 1].

Splits are Table 5.1's sizes; where the thesis does not say which rows, a fixed (seed 0) shuffle of the pooled
rows is cut into train / validation / test blocks (USPS, faces, digits) — documented per task in :data:`TASKS`.

Protocols, loadable by name through :func:`vaekit.data.load_dataset`:

- ``SOURCE->TARGET`` (e.g. ``usps->mnist``, ``digits->mnist``): the training block holds every training and
  validation row of the source task (s = 0) and ``n_target`` = 100 training rows of the target task (s = 1); the
  validation block is the target's validation rows (early stopping); the test block is the target's test rows
  followed by the source's test rows (held out from both tasks, for I(S;Z)). ``meta["target_task"] = 1``: the
  log-likelihood, active units and kNN accuracy are measured on the target's test rows only, and the kNN classifier
  is fitted on the 100 labelled target training rows only.
- ``A+B[+C]`` (e.g. ``freyfaces+olivetti+umist``): every task's train / validation / test rows with s = task
  position; metrics are means over the tasks' test rows.
"""

from __future__ import annotations

import bz2
import importlib.util
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise

import numpy as np

from ..errors import DataError, DatasetNotFoundError
from . import sources
from .dataset import Dataset
from .images import BINARISATION_SEED, dynamic_binarise, fixed_binarise
from .registry import COMPOSITE_LOADERS, DATASETS, DatasetSpec, load_arrays, register

log = logging.getLogger(__name__)

FACE_SHAPE = (28, 20)
DIGIT_SHAPE = (28, 28)
SPLIT_SEED = 0
USPS_LIBSVM_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/{}"
USPS_TRAIN_COUNTS = (1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644)  # the standard 7,291 training rows
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/{}"
OLIVETTI_URL = "https://cs.nyu.edu/~roweis/data/olivettifaces.mat"
UMIST_URL = "https://cs.nyu.edu/~roweis/data/umist_cropped.mat"


# ------------------------------------------------------------------------------------------------- transforms
def resize(images: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``[N, H, W]`` grey images in [0, 1] (antialiased when shrinking), clipped to [0, 1]."""
    import torch
    from torch.nn import functional as F

    x = torch.as_tensor(np.asarray(images, dtype=np.float32))[:, None]
    if tuple(x.shape[-2:]) != tuple(shape):
        shrink = x.shape[-2] > shape[0] or x.shape[-1] > shape[1]
        x = F.interpolate(x, size=shape, mode="bilinear", align_corners=False, antialias=shrink)
    return x[:, 0].clamp(0, 1).numpy()


def rgb_to_grey(x: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of ``[..., 3]`` uint8 RGB as floats in [0, 1]."""
    return (np.asarray(x, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0


# ------------------------------------------------------------------------------------------- public sources
def parse_usps_libsvm(payload: bytes) -> dict[str, np.ndarray]:
    """LIBSVM's ``usps.bz2`` / ``usps.t.bz2``: lines ``label i:v ...`` with labels 1..10 (digit + 1) and 256 pixel
    values in [-1, 1]; returned as ``x`` 16 x 16 in [0, 1] and ``y`` digits."""
    if payload[:3] == b"BZh":
        payload = bz2.decompress(payload)
    rows, labels = [], []
    for line in payload.decode().splitlines():
        if not line.strip():
            continue
        label, *pairs = line.split()
        pixels = np.zeros(256, np.float32)
        for pair in pairs:
            index, value = pair.split(":")
            pixels[int(index) - 1] = float(value)
        rows.append(pixels)
        labels.append(int(float(label)) - 1)
    if not rows or min(labels) < 0 or max(labels) > 9:
        raise DataError("not LIBSVM's USPS file: expected labels 1..10 and 256 features per row")
    return {"x": ((np.stack(rows) + 1) / 2).clip(0, 1).reshape(-1, 16, 16), "y": np.array(labels, np.int8)}


def parse_usps_h5(payload: bytes) -> dict[str, np.ndarray]:
    """``usps.h5`` (groups ``train`` and ``test``, each with ``data`` [N, 256] in [0, 1] and ``target``): the 7,291
    training rows followed by the 2,007 test rows. Needs ``h5py``."""
    try:
        import h5py
    except ImportError:
        raise DataError("reading usps.h5 needs h5py (pip install h5py); or remove usps.h5, and `vaekit download "
                        "usps` reads LIBSVM's usps.bz2 instead") from None
    with h5py.File(io.BytesIO(payload), "r") as f:
        x = np.concatenate([f["train"]["data"][:], f["test"]["data"][:]]).astype(np.float32)
        y = np.concatenate([f["train"]["target"][:], f["test"]["target"][:]]).astype(np.int8)
    return {"x": x.reshape(-1, 16, 16), "y": y}


def _h5py_available() -> bool:
    return importlib.util.find_spec("h5py") is not None


def download_usps() -> dict[str, np.ndarray]:
    """USPS (train then test) from a ``usps.h5`` placed in ``$VAEKIT_DATA`` or the cache, else LIBSVM's files;
    checked against the published class counts of the training rows."""
    h5 = sources.find_file("usps.h5")
    if h5 is not None and not _h5py_available():
        log.warning("%s is there but reading it needs h5py (pip install h5py); using LIBSVM's usps.bz2 instead", h5)
        h5 = None
    if h5 is not None:
        both = parse_usps_h5(h5.read_bytes())
        train, test = {"y": both["y"][:7291]}, {"y": both["y"][7291:]}
    else:
        train = parse_usps_libsvm(_raw_or_fetch("usps", "usps.bz2", USPS_LIBSVM_URL.format("usps.bz2")))
        test = parse_usps_libsvm(_raw_or_fetch("usps", "usps.t.bz2", USPS_LIBSVM_URL.format("usps.t.bz2")))
        both = {"x": np.concatenate([train["x"], test["x"]]), "y": np.concatenate([train["y"], test["y"]])}
    if tuple(np.bincount(train["y"], minlength=10)) != USPS_TRAIN_COUNTS or len(test["y"]) != 2007:
        raise DataError("the USPS download does not have the standard 7,291 / 2,007 rows and class counts")
    return both


def parse_svhn_mat(payload: bytes) -> dict[str, np.ndarray]:
    """SVHN's (and Ganin's SynthDigits') cropped-digit ``.mat``: ``X`` [32, 32, 3, N] uint8 RGB and ``y`` [N, 1]
    with label 10 for the digit 0; returned as grey ``x`` [N, 32, 32] in [0, 255] (uint8) and ``y`` digits."""
    from scipy.io import loadmat

    raw = loadmat(io.BytesIO(payload))
    if "X" not in raw or "y" not in raw:
        raise DataError("not a cropped-digit .mat file: expected arrays X and y")
    grey = rgb_to_grey(np.transpose(raw["X"], (3, 0, 1, 2)))
    y = raw["y"].reshape(-1).astype(np.int64) % 10
    return {"x": np.round(grey * 255).astype(np.uint8), "y": y.astype(np.int8)}


def _raw_or_fetch(name: str, filename: str, url: str | None) -> bytes:
    """A public source file from ``$VAEKIT_DATA`` or the cache if placed there by hand, else downloaded."""
    path = sources.find_file(filename)
    if path is not None:
        return path.read_bytes()
    if url is None:
        raise DatasetNotFoundError(
            f"{name}: {filename} has no stable public download; get it from its authors (Ganin and Lempitsky, "
            f"2015), put it in $VAEKIT_DATA ({sources.data_dir()}) and run `vaekit download {name}` again")
    return sources.fetch(url)


def download_cropped_digits(name: str, train_file: str, test_file: str, url: str | None) -> dict[str, np.ndarray]:
    """Train and test ``.mat`` files of SVHN or SynthDigits as ``x_train``/``y_train``/``x_test``/``y_test``."""
    train = parse_svhn_mat(_raw_or_fetch(name, train_file, None if url is None else url.format(train_file)))
    test = parse_svhn_mat(_raw_or_fetch(name, test_file, None if url is None else url.format(test_file)))
    return {"x_train": train["x"], "y_train": train["y"], "x_test": test["x"], "y_test": test["y"]}


def parse_olivetti(payload: bytes) -> dict[str, np.ndarray]:
    """Roweis's ``olivettifaces.mat``: ``faces`` [4096, 400], each column a column-major 64 x 64 image in [0, 255];
    ten consecutive images per subject."""
    from scipy.io import loadmat

    faces = loadmat(io.BytesIO(payload))["faces"]
    x = faces.T.reshape(-1, 64, 64).transpose(0, 2, 1)
    return {"x": np.clip(np.round(x), 0, 255).astype(np.uint8), "y": (np.arange(len(x)) // 10).astype(np.int16)}


def parse_umist(payload: bytes) -> dict[str, np.ndarray]:
    """Roweis's ``umist_cropped.mat``: cell array ``facedat`` of 20 subjects, each [112, 92, n] uint8."""
    from scipy.io import loadmat

    cells = loadmat(io.BytesIO(payload))["facedat"].reshape(-1)
    x = np.concatenate([np.transpose(c, (2, 0, 1)) for c in cells])
    y = np.concatenate([np.full(c.shape[2], i) for i, c in enumerate(cells)])
    return {"x": x.astype(np.uint8), "y": y.astype(np.int16)}


# ---------------------------------------------------------------------------------------------- single tasks
@dataclass
class TaskData:
    """One task: flattened float32 images in [0, 1] per block (train, val, test) with optional labels."""

    name: str
    blocks: tuple[np.ndarray, np.ndarray, np.ndarray]
    labels: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    binary: bool
    image_shape: tuple[int, int]
    meta: dict[str, object] = field(default_factory=dict)


def _shuffled_blocks(x: np.ndarray, y: np.ndarray | None, sizes: tuple[int, int, int], name: str
                     ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...] | None]:
    """Cut a fixed (seed 0) shuffle of ``x`` into blocks of ``sizes`` (which must not exceed the rows)."""
    if sum(sizes) > len(x):
        raise DataError(f"{name}: {len(x)} rows cannot make blocks of {sizes}")
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    bounds = np.cumsum((0, *sizes))
    index = [order[a:b] for a, b in pairwise(bounds)]
    return tuple(x[i] for i in index), (None if y is None else tuple(y[i] for i in index))


def _flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32)


def _usps(arrays: dict[str, np.ndarray]) -> TaskData:
    """Table 5.1: 6,438 / 1,000 / 1,860 of the 9,298 pooled USPS rows (fixed shuffle), 28 x 28."""
    x = _flat(resize(arrays["x"], DIGIT_SHAPE))
    blocks, labels = _shuffled_blocks(x, arrays["y"].astype(np.int64), (6438, 1000, 1860), "usps")
    return TaskData("usps", blocks, labels, True, DIGIT_SHAPE)


def _mnist(arrays: dict[str, np.ndarray]) -> TaskData:
    """Table 5.1: 10,000 / 10,000 / 10,000 (the first 10,000 training images, the last 10,000, the test set)."""
    from .images import MNIST_TEST_FILE, MNIST_TEST_SHA256, _companion

    test = _companion("mnist", MNIST_TEST_FILE, MNIST_TEST_SHA256)
    grey, y = arrays["x"].astype(np.float32) / 255.0, arrays["y"].astype(np.int64)
    blocks = (_flat(grey[:10_000]), _flat(grey[50_000:]), _flat(test["x"].astype(np.float32) / 255.0))
    return TaskData("mnist", blocks, (y[:10_000], y[50_000:], test["y"].astype(np.int64)), True, DIGIT_SHAPE)


def _digits(arrays: dict[str, np.ndarray]) -> TaskData:
    """scikit-learn's 1,797 optdigits (grey levels 0..16), 28 x 28; 1,000 / 297 / 500 (fixed shuffle, ours)."""
    x = _flat(resize(arrays["x"].astype(np.float32) / 16.0, DIGIT_SHAPE))
    blocks, labels = _shuffled_blocks(x, arrays["y"].astype(np.int64), (1000, 297, 500), "digits")
    return TaskData("digits", blocks, labels, True, DIGIT_SHAPE)


def _cropped_digits(name: str, test_size: int) -> Callable[[dict[str, np.ndarray]], TaskData]:
    """Table 5.1: 10,000 / 10,000 training rows (fixed shuffle) and the whole test set, grey 32 x 32."""

    def build(arrays: dict[str, np.ndarray]) -> TaskData:
        grey = _flat(arrays["x_train"].astype(np.float32) / 255.0)
        (train, val, _), (y_train, y_val, _) = _shuffled_blocks(  # type: ignore[misc]
            grey, arrays["y_train"].astype(np.int64), (10_000, 10_000, 0), name)
        test = _flat(arrays["x_test"].astype(np.float32) / 255.0)
        if len(test) != test_size:
            raise DataError(f"{name}: expected {test_size} test images (Table 5.1), found {len(test)}")
        labels = (y_train, y_val, arrays["y_test"].astype(np.int64))
        return TaskData(name, (train, val, test), labels, False, (32, 32))

    return build


def _faces(name: str, sizes: tuple[int, int, int], scale: float = 255.0
           ) -> Callable[[dict[str, np.ndarray]], TaskData]:
    """A face set resized to Frey's 28 x 20 and cut into Table 5.1's blocks (fixed shuffle)."""

    def build(arrays: dict[str, np.ndarray]) -> TaskData:
        x = _flat(resize(arrays["x"].astype(np.float32) / scale, FACE_SHAPE))
        y = arrays["y"].astype(np.int64) if "y" in arrays else None
        blocks, labels = _shuffled_blocks(x, y, sizes, name)
        return TaskData(name, blocks, labels, False, FACE_SHAPE)  # type: ignore[arg-type]

    return build


def _digits_arrays() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return {"x": data.images.astype(np.float32), "y": data.target.astype(np.int8)}


#: per task: its registered data set and the builder of its Table 5.1 blocks
TASKS: dict[str, Callable[[dict[str, np.ndarray]], TaskData]] = {
    "usps": _usps,
    "mnist": _mnist,
    "digits": _digits,
    "svhn": _cropped_digits("svhn", 26_032),
    "synthdigits": _cropped_digits("synthdigits", 9_553),
    "freyfaces": _faces("freyfaces", (1565, 200, 200)),
    "olivetti": _faces("olivetti", (150, 100, 150)),
    "umist": _faces("umist", (300, 75, 200)),
}
#: shorter names accepted in protocols
ALIASES = {"frey": "freyfaces", "synth": "synthdigits"}


def load_task(name: str) -> TaskData:
    """The blocks of one task of Table 5.1 (from its registered data set's file)."""
    name = ALIASES.get(name, name)
    if name not in TASKS:
        raise DataError(f"unknown task {name!r}; choose from {', '.join(sorted(TASKS))}")
    return TASKS[name](load_arrays(DATASETS[name]))


def task_dataset(task: TaskData, s: int | None = None) -> Dataset:
    """One task as a :class:`Dataset` with the absolute split of its blocks (and task index ``s`` if given)."""
    return _assemble(task.name, [[task.blocks[0]], [task.blocks[1]], [task.blocks[2]]],
                     None if task.labels is None else [[task.labels[0]], [task.labels[1]], [task.labels[2]]],
                     None if s is None else [[np.full(len(b), s)] for b in task.blocks],
                     task.binary, task.image_shape, {})


def _assemble(name: str, x: list[list[np.ndarray]], y: list[list[np.ndarray]] | None,
              s: list[list[np.ndarray]] | None, binary: bool, image_shape: tuple[int, int],
              meta: dict[str, object]) -> Dataset:
    """Blocks (train, val, test), each a list of parts, into a Dataset with the absolute split; binary sets keep
    grey training rows (dynamic binarisation) and binarise validation / test rows once."""
    parts = [np.concatenate(block) for block in x]
    meta = {"standardise": False, "image_shape": image_shape, **meta}
    if binary:
        parts = [parts[0], fixed_binarise(parts[1], BINARISATION_SEED), fixed_binarise(parts[2], BINARISATION_SEED + 1)]
        meta["batch_transform"] = dynamic_binarise
    cat = (lambda blocks: None if blocks is None else np.concatenate([np.concatenate(b) for b in blocks]))
    return Dataset(name, np.concatenate(parts), cat(y), cat(s), split=tuple(len(p) for p in parts),  # type: ignore[arg-type]
                   binary=binary, meta=meta)


# ------------------------------------------------------------------------------------------------- protocols
def transfer_dataset(source: str, target: str, n_target: int = 100, seed: int = 0, max_source: int | None = None,
                     max_val: int | None = None, max_test: int | None = None) -> Dataset:
    """The two-task protocol of section 5.5.2 (see the module docstring); s = 0 source, s = 1 target.

    ``seed`` picks the ``n_target`` labelled target training rows; ``max_source`` (source training rows),
    ``max_val`` and ``max_test`` (rows per task) shrink a quick budget, taking the first rows of each block.
    """
    src, tgt = load_task(source), load_task(target)
    if src.binary != tgt.binary or src.image_shape != tgt.image_shape:
        raise DataError(f"{source} and {target} differ in resolution or type; pair digits with digits and house "
                        "numbers with house numbers")
    if src.labels is None or tgt.labels is None:
        raise DataError("the transfer protocol needs digit labels for the kNN accuracy")
    if not 1 <= n_target <= len(tgt.blocks[0]):
        raise DataError(f"n_target must be in 1..{len(tgt.blocks[0])}, got {n_target}")
    pick = np.sort(np.random.default_rng(seed).choice(len(tgt.blocks[0]), n_target, replace=False))
    src_x = np.concatenate(src.blocks[:2])[:max_source]
    src_y = np.concatenate(src.labels[:2])[:max_source]
    val_x, val_y = tgt.blocks[1][:max_val], tgt.labels[1][:max_val]
    tests = [(tgt.blocks[2][:max_test], tgt.labels[2][:max_test]), (src.blocks[2][:max_test], src.labels[2][:max_test])]
    x = [[src_x, tgt.blocks[0][pick]], [val_x], [tests[0][0], tests[1][0]]]
    y = [[src_y, tgt.labels[0][pick]], [val_y], [tests[0][1], tests[1][1]]]
    s = [[np.zeros(len(src_x)), np.ones(n_target)], [np.ones(len(val_x))],
         [np.ones(len(tests[0][0])), np.zeros(len(tests[1][0]))]]
    meta = {"tasks": [src.name, tgt.name], "target_task": 1, "n_target": n_target, "target_seed": seed}
    return _assemble(f"{src.name}->{tgt.name}", x, y, s, src.binary, src.image_shape, meta)


def multitask_dataset(names: list[str], max_rows: int | None = None) -> Dataset:
    """Every task's blocks with s = task position (the face protocol: ``freyfaces+olivetti+umist``); labels are
    kept only when every task has them. ``max_rows`` caps each block of each task (quick budgets)."""
    tasks = [load_task(n) for n in names]
    if len({(t.binary, t.image_shape) for t in tasks}) != 1:
        raise DataError(f"tasks {names} differ in resolution or type")
    x = [[t.blocks[b][:max_rows] for t in tasks] for b in range(3)]
    s = [[np.full(len(t.blocks[b][:max_rows]), k) for k, t in enumerate(tasks)] for b in range(3)]
    y = None
    if all(t.labels is not None for t in tasks):
        y = [[t.labels[b][:max_rows] for t in tasks] for b in range(3)]  # type: ignore[index]
    meta = {"tasks": [t.name for t in tasks]}
    return _assemble("+".join(t.name for t in tasks), x, y, s, tasks[0].binary, tasks[0].image_shape, meta)


def parse_protocol(key: str) -> Dataset | None:
    """``SOURCE->TARGET`` or ``A+B[+C]`` as a protocol data set (seed 0 target rows); None for other names."""
    if "->" in key:
        source, _, target = key.partition("->")
        return transfer_dataset(source.strip(), target.strip())
    if "+" in key and not key.endswith((".npz", ".csv")):
        return multitask_dataset([n.strip() for n in key.split("+")])
    return None


PAIRS = ("usps->mnist", "mnist->usps", "digits->mnist", "mnist->digits", "synthdigits->svhn", "svhn->synthdigits")
FACES = ("freyfaces+olivetti+umist", "freyfaces+olivetti")


# ------------------------------------------------------------------------------------------------ registration
def _build(spec: DatasetSpec, arrays: dict[str, np.ndarray]) -> Dataset:
    return task_dataset(TASKS[spec.name](arrays))


register(DatasetSpec(
    "usps", "usps.npz", "USPS digits 16x16 -> 28x28, binarised; 6,438/1,000/1,860 (Table 5.1)",
    split=(6438, 1000, 1860), sha256="f36e76eee427a1160052300543f60be77584d9faec33684ae6385b9cc5b4256e",
    download=download_usps, binary=True, source=USPS_LIBSVM_URL.format("usps{,.t}.bz2"), build=_build,
    shape=(9298, 784), raw_file="usps.bz2 and usps.t.bz2",
))
register(DatasetSpec(
    "digits", "digits.npz", "scikit-learn optdigits 8x8 -> 28x28, binarised; 1,000/297/500 (bundled)",
    split=(1000, 297, 500), fallback=_digits_arrays, binary=True, source="sklearn.datasets.load_digits",
    build=_build, shape=(1797, 784),
))
register(DatasetSpec(
    "svhn", "svhn.npz", "SVHN cropped digits, grey 32x32; 10,000/10,000/26,032 (Table 5.1)",
    split=(10_000, 10_000, 26_032),
    download=partial(download_cropped_digits, "svhn", "train_32x32.mat", "test_32x32.mat", SVHN_URL),
    source=SVHN_URL.format("{train,test}_32x32.mat"), build=_build, shape=(46_032, 1024),
    raw_file="train_32x32.mat and test_32x32.mat",
))
register(DatasetSpec(
    "synthdigits", "synthdigits.npz", "SynthDigits (Ganin & Lempitsky), grey 32x32; 10,000/10,000/9,553",
    split=(10_000, 10_000, 9_553),
    download=partial(download_cropped_digits, "synthdigits", "synth_train_32x32.mat", "synth_test_32x32.mat", None),
    source="synth_{train,test}_32x32.mat (Ganin and Lempitsky, 2015; place them in $VAEKIT_DATA)", build=_build,
    shape=(29_553, 1024), raw_file="synth_train_32x32.mat and synth_test_32x32.mat",
))
register(DatasetSpec(
    "olivetti", "olivetti.npz", "Olivetti faces 64x64 -> 28x20 grey; 150/100/150 (Table 5.1)",
    split=(150, 100, 150), sha256="f625d79c2bac6cd9ac94a2092ab1bb87a2012255dfa485158b01cc38f11e2736",
    download=lambda: parse_olivetti(_raw_or_fetch("olivetti", "olivettifaces.mat", OLIVETTI_URL)),
    source=OLIVETTI_URL, build=_build, shape=(400, 560), raw_file="olivettifaces.mat",
))
register(DatasetSpec(
    "umist", "umist.npz", "UMist faces 112x92 -> 28x20 grey; 300/75/200 (Table 5.1)",
    split=(300, 75, 200), download=lambda: parse_umist(_raw_or_fetch("umist", "umist_cropped.mat", UMIST_URL)),
    source=UMIST_URL, build=_build, shape=(575, 560), raw_file="umist_cropped.mat",
))
COMPOSITE_LOADERS.append(parse_protocol)
