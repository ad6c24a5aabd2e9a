"""Data larger than memory: rows of a ``.npy`` file (or an uncompressed ``.npz`` member) through a memory map.

:func:`open_memory_map` maps the array read-only without reading it. :class:`MappedRows` is the tensor-like view
the :class:`~vaekit.training.Trainer` and the evaluation functions index with shuffled index batches or slices:
each access gathers only the requested rows from the map, preprocesses them (the fitted :class:`Preprocessor`)
and returns a float32 tensor. After every ``release_bytes`` of gathered rows the map's pages are released from the
process (``madvise(MADV_DONTNEED)``; the kernel's page cache may keep them, but they leave this process's resident
set). A read fault on a file map maps the surrounding pages too (Linux's fault-around, 64 KiB), so every gathered
row is counted as its own bytes plus :data:`FAULT_AROUND_BYTES`. Resident memory is thus bounded by

    model and optimiser + ``release_bytes`` (default 64 MiB) of mapped pages + one gather's pages
    (batch × (row + 64 KiB): 7 MiB at batch 100) + 8 bytes per row for each split's index array and the epoch's
    permutation

whatever the file's row count times width (the index arrays are 8 bytes against a row's ``4 × width`` bytes:
0.25 % of the data for 784 float32 columns). ``benchmarks/larger_than_memory.py`` measures it.
"""

from __future__ import annotations

import mmap
import struct
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError, DatasetNotFoundError
from .files import data_member

#: Default amount of gathered row data after which the map's pages are released from the process.
RELEASE_BYTES = 64 * 2**20
#: Bytes a read fault may map around each gathered row (Linux's default ``fault_around_bytes``).
FAULT_AROUND_BYTES = 64 * 2**10
#: File suffixes :func:`open_memory_map` reads.
MAPPABLE_SUFFIXES = (".npy", ".npz")


def _npy_layout(f: Any) -> tuple[tuple[int, ...], np.dtype, bool]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    return shape, dtype, fortran


def _npz_member_offset(path: Path, member: str) -> int:
    """Byte offset of ``member``'s ``.npy`` bytes inside the zip archive ``path``; the member must be stored."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
            if member == "x":
                member = data_member(names) or member
            try:
                info = archive.getinfo(member + ".npy")
            except KeyError:
                raise DataError(f"{path}: a data .npz needs an array named {member!r} (found {names})") from None
    except zipfile.BadZipFile as err:
        raise DataError(f"{path} is not a readable .npz archive ({err})") from err
    if info.compress_type != zipfile.ZIP_STORED:
        raise DataError(f"{path}: array {member!r} is compressed, so it cannot be memory-mapped; save it with "
                        "numpy.savez (not savez_compressed) or as a .npy file")
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        name_length, extra_length = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_length + extra_length


def open_memory_map(path: str | Path, member: str = "x") -> np.ndarray:
    """Read-only memory map of a 2-d (or more, flattened per row) numeric array in a ``.npy`` file or stored
    uncompressed as ``member`` of a ``.npz`` archive. Nothing is read beyond the header."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetNotFoundError(f"no such data file: {path}")
    suffix = path.suffix.lower()
    if suffix not in MAPPABLE_SUFFIXES:
        raise DataError(f"{path}: only .npy files and uncompressed .npz archives can be memory-mapped")
    start = 0 if suffix == ".npy" else _npz_member_offset(path, member)
    with open(path, "rb") as f:
        f.seek(start)
        try:
            shape, dtype, fortran = _npy_layout(f)
        except ValueError as err:
            raise DataError(f"{path}: not a .npy array ({err})") from err
        offset = f.tell()
        if dtype.hasobject or not np.issubdtype(dtype, np.number):
            raise DataError(f"{path}: the array must be numeric, got dtype {dtype}")
        if len(shape) < 2 or shape[0] == 0:
            raise DataError(f"{path}: expected a non-empty [rows, columns] array, got shape {shape}")
        if fortran:
            raise DataError(f"{path}: the array is stored column-major (Fortran order); save it row-major "
                            "(numpy.ascontiguousarray) so that rows can be read one by one")
        size = int(np.prod(shape)) * dtype.itemsize
        if offset + size > path.stat().st_size:
            raise DataError(f"{path} is truncated: its header promises {size} bytes of data")
        buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    array = np.ndarray(shape, dtype=dtype, buffer=buffer, offset=offset)
    return array.reshape(shape[0], -1)


def _mmap_of(array: np.ndarray) -> mmap.mmap | None:
    base: Any = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None) if not isinstance(base, memoryview) else base.obj
    return base


class MappedRows:
    """Selected rows (``rows``; all when None) of a memory-mapped matrix as model inputs, gathered on access.

    ``transform`` maps a gathered float32 ``[B, D]`` block to model inputs (e.g. ``Preprocessor.transform``).
    Indexing with a slice, a 1-d integer tensor or array returns a float32 tensor; ``len``, ``shape``, ``dtype``,
    ``device`` and ``to("cpu")`` make it stand in for the in-memory training tensor. Memory-mapped data stay on
    the CPU (a GPU run moves each batch instead: not implemented, ``to`` refuses other devices).
    """

    dtype = torch.float32
    device = torch.device("cpu")

    def __init__(self, array: np.ndarray, rows: np.ndarray | None = None,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None,
                 width: int | None = None, release_bytes: int = RELEASE_BYTES) -> None:
        self.array = array
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.transform = transform
        self.release_bytes = release_bytes
        self._gathered = 0
        self._mmap = _mmap_of(array)
        n = len(array) if self.rows is None else len(self.rows)
        self.shape = torch.Size((n, width if width is not None else array.shape[1]))

    def __len__(self) -> int:
        return self.shape[0]

    def to(self, device: torch.device | str | None = None, *args: Any, **kwargs: Any) -> MappedRows:
        if device is not None and torch.device(device).type != "cpu":
            raise DataError("memory-mapped data train on the CPU only; load the data into memory for --device")
        return self

    def gather(self, index: slice | np.ndarray | torch.Tensor) -> np.ndarray:
        """The raw rows at ``index`` (positions among the selected rows) as float32 ``[B, D]``, untransformed."""
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        if self.rows is not None:
            index = self.rows[index]
        try:
            with np.errstate(over="raise"):
                block = np.asarray(self.array[index], dtype=np.float32)
        except FloatingPointError:
            raise DataError("the file holds values beyond the float32 range (|x| > 3.4e38) that would overflow to "
                            "infinity; rescale them") from None
        if block.ndim == 1:
            block = block[None]
        self._gathered += len(block) * (self.array.shape[1] * self.array.itemsize + FAULT_AROUND_BYTES)
        if self._gathered >= self.release_bytes:
            self.release()
        return block

    def __getitem__(self, index: slice | np.ndarray | torch.Tensor) -> torch.Tensor:
        block = self.gather(index)
        if self.transform is not None:
            block = np.asarray(self.transform(block), dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(block))

    def release(self) -> None:
        """Drop the map's pages from this process's resident set (they stay in the page cache)."""
        self._gathered = 0
        if self._mmap is not None and hasattr(self._mmap, "madvise"):
            self._mmap.madvise(mmap.MADV_DONTNEED)

    def blocks(self, rows_per_block: int | None = None) -> Iterator[np.ndarray]:
        """The selected raw rows in order, ``rows_per_block`` at a time (default: a quarter of the release window)."""
        if rows_per_block is None:
            row = self.array.shape[1] * self.array.itemsize + FAULT_AROUND_BYTES
            rows_per_block = max(1, self.release_bytes // 4 // row)
        for start in range(0, len(self), rows_per_block):
            yield self.gather(slice(start, min(start + rows_per_block, len(self))))


def check_finite_block(block: np.ndarray, what: str, file_rows: np.ndarray) -> None:
    """Refuse a block with NaN or infinite values, naming the rows' positions in the file (``file_rows``: the
    file row of each block row) rather than in the block."""
    finite = np.isfinite(block)
    if not finite.all():
        bad = file_rows[np.flatnonzero(~finite.all(1))]
        raise DataError(f"{what}: {len(bad)} rows of this block contain NaN or infinite values (first file rows, "
                        f"counted from 0: {bad[:5].tolist()}); drop or impute them first")


def scan_rows(rows: MappedRows, what: str = "data", stats: bool = True) -> dict[str, Any]:
    """One streaming pass: refuse non-finite values (naming their rows in the file); return whether all values
    are 0/1 and the per-column minimum and maximum (for the constant-column check; ``stats=False``: the finite
    check alone)."""
    binary = True
    low = high = None
    start = 0
    for block in rows.blocks():
        positions = np.arange(start, start + len(block))
        check_finite_block(block, what, positions if rows.rows is None else rows.rows[positions])
        start += len(block)
        if not stats:
            continue
        binary = binary and bool(np.isin(block, (0, 1)).all())
        low = block.min(0) if low is None else np.minimum(low, block.min(0))
        high = block.max(0) if high is None else np.maximum(high, block.max(0))
    return {"binary": binary, "min": low, "max": high}
