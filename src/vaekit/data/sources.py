"""Where data files live: the data directory (``VAEKIT_DATA``), the download cache, and verified downloads.

Nothing is fetched unless a caller asks for it (``download=True`` or ``vaekit download NAME``); tests never do.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError, DatasetNotFoundError

USER_AGENT = "vaekit (https://pypi.org/project/vaekit)"


def data_dir() -> Path | None:
    """The directory named by ``VAEKIT_DATA``, if set."""
    value = os.environ.get("VAEKIT_DATA")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Download cache: ``VAEKIT_CACHE`` or ``~/.cache/vaekit``."""
    return Path(os.environ.get("VAEKIT_CACHE", Path.home() / ".cache" / "vaekit")).expanduser()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


#: readers of the .npy header versions whose layout NumPy documents publicly
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def npz_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The shape of each array in an ``.npz`` archive, read from the array headers alone (no data is loaded).

    Arrays whose header version has no public reader are left out. Raises ``zipfile.BadZipFile``/``ValueError``
    for a file that is not an ``.npz`` archive.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                with archive.open(member) as f:
                    reader = _HEADER_READERS.get(np.lib.format.read_magic(f))
                    if reader is not None:
                        shapes[member[:-4]] = tuple(reader(f)[0])
    return shapes


def find_file(filename: str) -> Path | None:
    """The first existing ``filename`` in the data directory, then the cache."""
    for folder in (data_dir(), cache_dir()):
        if folder is not None and (folder / filename).is_file():
            return folder / filename
    return None


def missing_file_error(name: str, filename: str, downloadable: bool, source: str = "",
                       raw_file: str | None = None) -> DatasetNotFoundError:
    where = f"$VAEKIT_DATA ({data_dir()})" if data_dir() else "$VAEKIT_DATA (not set)"
    how = f"run `vaekit download {name}`, or " if downloadable else ""
    origin = f" (public source: {source})" if source else ""
    raw = (f"; without network, put its source file(s) {raw_file} there and run `vaekit download {name}` to "
           "convert them") if raw_file else ""
    return DatasetNotFoundError(
        f"dataset {name!r} needs the file {filename!r}, which is in neither {where} nor the cache "
        f"({cache_dir()}): {how}put {filename} in a folder and set VAEKIT_DATA to it{origin}{raw}"
    )


def fetch(url: str, md5: str | None = None, sha256: str | None = None) -> bytes:
    """Download ``url`` into memory and verify its checksum when one is known."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - fixed https sources
        payload = response.read()
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected and hashlib.new(algorithm, payload).hexdigest() != expected:
            raise DataError(f"download of {url} failed its {algorithm} check; try again or fetch it by hand")
    return payload


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> Path:
    """Write a compressed ``.npz`` through a temporary file and a rename, so no half-written file remains."""
    from ..checkpoint import atomic_write_bytes

    atomic_write_bytes(path, lambda f: np.savez_compressed(f, **arrays))
    return path


# --------------------------------------------------------------------------------------------- public sources
ADBENCH_URL = "https://github.com/Minqi824/ADBench/raw/main/adbench/datasets/Classical/{}"
GOLDSTEIN_UCHIDA_DOI = "doi:10.7910/DVN/OPQMVF"
DATAVERSE = "https://dataverse.harvard.edu"


def adbench_npz(filename: str) -> dict[str, np.ndarray]:
    """An ADBench ``Classical`` archive (arrays ``X``, ``y``) as ``x`` float32 / ``y`` int8."""
    with np.load(io.BytesIO(fetch(ADBENCH_URL.format(filename)))) as d:
        return {"x": d["X"].astype(np.float32), "y": d["y"].astype(np.int8)}


def goldstein_uchida_csv(filename: str) -> dict[str, np.ndarray]:
    """A file of Goldstein & Uchida's unsupervised anomaly-detection benchmark (Harvard Dataverse).

    The data set's file list gives each file's id and md5; the CSV has no header, numeric columns and a last
    column ``o`` (outlier) / ``n`` (normal). A copy of the CSV in ``$VAEKIT_DATA`` or the cache is used instead of
    the network (``vaekit download NAME`` then only converts it).
    """
    placed = find_file(filename)  # the source CSV put in $VAEKIT_DATA or the cache by hand: converted, no network
    if placed is not None:
        return parse_goldstein_uchida(placed.read_text())
    listing_url = f"{DATAVERSE}/api/datasets/:persistentId/?persistentId={GOLDSTEIN_UCHIDA_DOI}"
    listing = json.loads(fetch(listing_url))
    for entry in listing["data"]["latestVersion"]["files"]:
        datafile = entry["dataFile"]
        if datafile.get("originalFileName", datafile["filename"]) == filename or datafile["filename"] == filename:
            checksum = datafile.get("md5") or datafile.get("checksum", {}).get("value")
            payload = fetch(f"{DATAVERSE}/api/access/datafile/{datafile['id']}?format=original", md5=checksum)
            return parse_goldstein_uchida(payload.decode())
    raise DataError(f"{filename} is not listed in the Goldstein & Uchida data set {GOLDSTEIN_UCHIDA_DOI}")


def parse_goldstein_uchida(text: str) -> dict[str, np.ndarray]:
    rows = [line.rsplit(",", 1) for line in text.strip().splitlines()]
    x = np.array([[float(v) for v in features.split(",")] for features, _ in rows], dtype=np.float32)
    y = np.array([label.strip().strip('"') == "o" for _, label in rows], dtype=np.int8)
    return {"x": x, "y": y}
