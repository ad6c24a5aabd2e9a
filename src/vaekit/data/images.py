"""Image data sets of chapter 4 (Table 4.1): OneHot, MNIST, OMNIGLOT, FreyFaces, Histopathology.

Each has a parser for its public source (MNIST idx files, OMNIGLOT ``chardata.mat`` from yburda/iwae, Frey's
``frey_rawface.mat``, the Histopathology pickle of jmtomczak/vae_householder_flow) that ``vaekit download NAME``
runs, and a builder that turns the stored arrays into a :class:`~vaekit.data.Dataset` with the thesis's split:

- binary sets (MNIST, OMNIGLOT) keep grey levels in [0, 1] for the training rows and binarise them afresh for
  every mini-batch (dynamic binarisation, ``meta["batch_transform"]``); validation and test rows are binarised
  once with a fixed seed, so every model is scored on the same binary images;
- grey sets (FreyFaces, Histopathology) are scaled to [0, 1] and not standardised (``meta["standardise"]``), for
  a Gaussian decoder with ``bounded_mean=True`` (section 4.5.2);
- published splits are stored in train, validation, test row order with absolute sizes as ``split``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import DataError
from . import sources
from .dataset import Dataset
from .registry import DatasetSpec, register

if TYPE_CHECKING:  # pragma: no cover - torch loads where a tensor is made
    import torch

BINARISATION_SEED = 0
ONEHOT_SPLIT = (1000, 100, 1000)

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/{}"
#: sha256 of the decompressed idx files (the canonical LeCun files)
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MNIST_TEST_FILE = "mnist_test10k.npz"
MNIST_TEST_SHA256 = "5d376d71857bccd38446e480e7823ae4e7038b1117ca8f38167ed9c9e9b59e3e"
OMNIGLOT_URL = "https://github.com/yburda/iwae/raw/master/datasets/OMNIGLOT/chardata.mat"
FREY_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"
HISTOPATHOLOGY_URL = (
    "https://github.com/jmtomczak/vae_householder_flow/raw/master/datasets/histopathologyGray/"
    "histopathology.pkl.tar.gz"
)


# ------------------------------------------------------------------------------------------------- transforms
def dynamic_binarise(xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Trainer batch transform: each pixel ~ Bernoulli(grey level), drawn afresh for every mini-batch."""
    import torch

    return torch.bernoulli(xb, generator=generator)


def fixed_binarise(x: np.ndarray, seed: int = BINARISATION_SEED) -> np.ndarray:
    """One seeded binarisation of grey levels in [0, 1] (validation and test rows)."""
    return (np.random.default_rng(seed).random(x.shape, dtype=np.float32) < x).astype(np.float32)


def head_split(dataset: Dataset, sizes: tuple[int, int, int]) -> Dataset:
    """The first ``sizes[i]`` rows of each block of a data set with an absolute split (quick budgets)."""
    blocks = dataset.split_indices()
    if any(s > len(b) for s, b in zip(sizes, blocks)):
        raise DataError(f"{dataset.name}: cannot take {sizes} rows from blocks of {[len(b) for b in blocks]}")
    index = np.concatenate([b[:s] for s, b in zip(sizes, blocks)])
    part = dataset.subset(index)
    part.split = tuple(int(s) for s in sizes)  # type: ignore[assignment]
    return part


def _image_dataset(name: str, parts: list[np.ndarray], binary: bool, labels: list[np.ndarray] | None = None,
                   **meta: Any) -> Dataset:
    """Concatenate train/val/test blocks (flattened, float32) into a Dataset with the absolute split."""
    flat = [p.reshape(len(p), -1).astype(np.float32) for p in parts]
    meta = {"standardise": False, **meta}
    if binary:
        flat = [flat[0], fixed_binarise(flat[1], BINARISATION_SEED), fixed_binarise(flat[2], BINARISATION_SEED + 1)]
        meta["batch_transform"] = dynamic_binarise
    y = None if labels is None else np.concatenate(labels)
    return Dataset(name, np.concatenate(flat), y, split=tuple(len(p) for p in flat), binary=binary, meta=meta)


# ------------------------------------------------------------------------------------------------------ OneHot
def onehot_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """OneHot (Mescheder et al., 2017): the four 4-d one-hot vectors, equally often, shuffled."""
    n = sum(ONEHOT_SPLIT)
    k = np.random.default_rng(seed).permutation(np.arange(n) % 4)
    return {"x": np.eye(4, dtype=np.float32)[k], "y": k.astype(np.int8)}


def _build_onehot(spec: DatasetSpec, arrays: dict[str, np.ndarray]) -> Dataset:
    return Dataset("onehot", arrays["x"], arrays["y"], split=ONEHOT_SPLIT, binary=True, meta={"standardise": False})


# ------------------------------------------------------------------------------------------------------- MNIST
def parse_idx(payload: bytes) -> np.ndarray:
    """An idx file (optionally gzipped) as an array: magic 0x0000 <type> <ndim>, big-endian dims, data."""
    if payload[:2] == b"\x1f\x8b":
        payload = gzip.decompress(payload)
    zero, dtype_code, ndim = struct.unpack(">HBB", payload[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError("not an unsigned-byte idx file")
    dims = struct.unpack(f">{ndim}I", payload[4:4 + 4 * ndim])
    data = np.frombuffer(payload, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"idx file is truncated: {data.size} values for dimensions {dims}")
    return data.reshape(dims)


def _mnist_part(images: str, labels: str) -> dict[str, np.ndarray]:
    arrays = []
    for name in (images, labels):
        raw = gzip.decompress(sources.fetch(MNIST_URL.format(name)))
        if hashlib.sha256(raw).hexdigest() != MNIST_FILES[name]:
            raise DataError(f"{name} does not match the canonical MNIST file; try again or fetch it by hand")
        arrays.append(parse_idx(raw))
    return {"x": arrays[0], "y": arrays[1].astype(np.int8)}


def download_mnist() -> dict[str, np.ndarray]:
    """The 60,000 training images and labels; the 10,000 test images go to the cache as ``mnist_test10k.npz``."""
    sources.save_npz_atomic(sources.cache_dir() / MNIST_TEST_FILE,
                            **_mnist_part("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))
    return _mnist_part("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")


def _companion(name: str, filename: str, sha256: str | None) -> dict[str, np.ndarray]:
    """A second file a data set needs (MNIST's test set), from the data directory or the cache."""
    path = sources.find_file(filename)
    if path is None:
        raise sources.missing_file_error(name, filename, downloadable=True)
    if sha256 and path.parent == sources.data_dir() and sources.sha256_of(path) != sha256:
        raise DataError(f"{path} does not match the published checksum of {filename}; replace the file")
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def _build_mnist(spec: DatasetSpec, arrays: dict[str, np.ndarray]) -> Dataset:
    """50,000 / 10,000 (the last training images) / 10,000 (the test set), as in Table 4.1."""
    test = _companion("mnist", MNIST_TEST_FILE, MNIST_TEST_SHA256)
    grey = arrays["x"].astype(np.float32) / 255.0
    parts = [grey[:50_000], grey[50_000:], test["x"].astype(np.float32) / 255.0]
    labels = [arrays["y"][:50_000], arrays["y"][50_000:], test["y"]]
    return _image_dataset("mnist", parts, binary=True, labels=labels, image_shape=(28, 28))


# ---------------------------------------------------------------------------------------------------- OMNIGLOT
def parse_omniglot(payload: bytes) -> dict[str, np.ndarray]:
    """Burda et al.'s ``chardata.mat``: ``data`` (784 x 24,345) and ``testdata`` (784 x 8,070), each image stored
    column-major; returned as row-major 28 x 28 images in [0, 1]."""
    from scipy.io import loadmat

    raw = loadmat(io.BytesIO(payload))

    def images(key: str) -> np.ndarray:
        return raw[key].T.reshape(-1, 28, 28).transpose(0, 2, 1).astype(np.float32)

    return {"x_train": images("data"), "x_test": images("testdata")}


def download_omniglot() -> dict[str, np.ndarray]:
    return parse_omniglot(sources.fetch(OMNIGLOT_URL))


def _build_omniglot(spec: DatasetSpec, arrays: dict[str, np.ndarray]) -> Dataset:
    """23,000 / 1,345 / 8,070: a fixed (seed 0) shuffle of the 24,345 training images, the last 1,345 of which
    validate (the VampPrior authors' split sizes)."""
    train = arrays["x_train"][np.random.default_rng(0).permutation(len(arrays["x_train"]))]
    return _image_dataset("omniglot", [train[:-1345], train[-1345:], arrays["x_test"]], binary=True,
                          image_shape=(28, 28))


# --------------------------------------------------------------------------------------------------- FreyFaces
def parse_frey(payload: bytes) -> dict[str, np.ndarray]:
    """Roweis's ``frey_rawface.mat``: ``ff`` (560 x 1,965, uint8), each column a 28 x 20 image."""
    from scipy.io import loadmat

    return {"x": loadmat(io.BytesIO(payload))["ff"].T.reshape(-1, 28, 20).astype(np.uint8)}


def download_frey() -> dict[str, np.ndarray]:
    return parse_frey(sources.fetch(FREY_URL))


def _build_frey(spec: DatasetSpec, arrays: dict[str, np.ndarray]) -> Dataset:
    """Grey levels / 255, split 1,565 / 200 / 200 at random per seed (fractions of the 1,965 images)."""
    x = arrays["x"].reshape(len(arrays["x"]), -1).astype(np.float32) / 255.0
    return Dataset("freyfaces", x, split=spec.split, meta={"standardise": False, "image_shape": (28, 20)})


# ---------------------------------------------------------------------------------------------- Histopathology
class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers of NumPy arrays and nothing else (no code runs from a downloaded pickle)."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise DataError(f"refusing to unpickle {module}.{name}: only NumPy arrays are expected")
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = module.replace("numpy.core", "numpy._core", 1)
        return super().find_class(module, name)


def load_array_pickle(payload: bytes) -> Any:
    """A (Python 2 or 3) pickle holding only NumPy arrays in dicts/lists/tuples."""
    return _ArrayUnpickler(io.BytesIO(payload), encoding="latin1").load()


def parse_histopathology(payload: bytes) -> dict[str, np.ndarray]:
    """``histopathology.pkl.tar.gz``: a pickled dict with ``training`` (6,800), ``validation`` (2,000) and
    ``test`` (2,000) grey 28 x 28 patches in [0, 1]."""
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as archive:
        member = next((m for m in archive.getmembers() if m.name.endswith(".pkl")), None)
        if member is None:
            raise DataError("the Histopathology archive holds no .pkl file")
        extracted = archive.extractfile(member)
        assert extracted is not None
        data = load_array_pickle(extracted.read())
    return {f"x_{key}": np.asarray(data[part], dtype=np.float32).reshape(-1, 28, 28)
            for key, part in (("train", "training"), ("val", "validation"), ("test", "test"))}


def download_histopathology() -> dict[str, np.ndarray]:
    return parse_histopathology(sources.fetch(HISTOPATHOLOGY_URL))


def _build_histopathology(spec: DatasetSpec, arrays: dict[str, np.ndarray]) -> Dataset:
    return _image_dataset("histopathology", [arrays["x_train"], arrays["x_val"], arrays["x_test"]], binary=False,
                          image_shape=(28, 28))


# ---------------------------------------------------------------------------------------------------- registry
register(DatasetSpec(
    "onehot", "onehot.npz", "OneHot: 4-d one-hot vectors, 1,000/100/1,000 (generated; Mescheder et al., 2017)",
    split=ONEHOT_SPLIT, fallback=onehot_arrays, binary=True, source="generated", build=_build_onehot,
    shape=(2100, 4),
))
register(DatasetSpec(
    "mnist", "mnist_train60k.npz", "MNIST 28x28 digits, 50,000/10,000/10,000, dynamically binarised",
    split=(50_000, 10_000, 10_000), sha256="bc2d6abb39bc6080933a6662cc9960a02b78b78e5d462407ffebc004a13a605c",
    download=download_mnist, binary=True, source=MNIST_URL.format("{train,t10k}-{images,labels}-idx*-ubyte.gz"),
    build=_build_mnist, shape=(70_000, 784), companions=(MNIST_TEST_FILE,),
))
register(DatasetSpec(
    "omniglot", "omniglot.npz", "OMNIGLOT 28x28 characters, 23,000/1,345/8,070, dynamically binarised",
    split=(23_000, 1_345, 8_070), download=download_omniglot, binary=True, source=OMNIGLOT_URL,
    build=_build_omniglot, shape=(32_415, 784),
))
register(DatasetSpec(
    "freyfaces", "freyfaces.npz", "Frey faces 28x20 grey, 1,565/200/200 (Gaussian decoder, mean in [0, 1])",
    split=(1565 / 1965, 200 / 1965, 200 / 1965),
    sha256="b31ddb973f41a99244168000379cc79c3f1e4402c3604814fe3699002931659b",
    download=download_frey, source=FREY_URL, build=_build_frey, shape=(1965, 560),
))
register(DatasetSpec(
    "histopathology", "histopathology.npz", "Histopathology 28x28 grey patches, 6,800/2,000/2,000",
    split=(6_800, 2_000, 2_000), download=download_histopathology, source=HISTOPATHOLOGY_URL,
    build=_build_histopathology, shape=(10_800, 784),
))
