"""Property-based fuzzing of the user-file readers: every generated ``.csv``/``.npz`` is either read exactly as a
reference reader (numpy) reads it, or refused with :class:`~vaekit.errors.DataError` — never misread, never a
traceback of another type."""

import csv
import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaekit.data import load_file
from vaekit.errors import DataError

NAME_CHARS = "abcxyz_éü"
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def csv_files(draw):
    n_rows, n_cols = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    number = st.one_of(st.integers(-10**6, 10**6).map(float),
                       st.floats(-1e30, 1e30, allow_nan=False, allow_infinity=False))
    values = np.array(draw(st.lists(st.lists(number, min_size=n_cols, max_size=n_cols), min_size=n_rows,
                                    max_size=n_rows)), dtype=np.float64)
    header = draw(st.none() | st.lists(st.text(NAME_CHARS, min_size=1, max_size=4), min_size=n_cols,
                                       max_size=n_cols))
    delimiter = draw(st.sampled_from([",", ",", ";", "\t"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    render = draw(st.sampled_from([lambda v: repr(float(v)), "{:.17g}".format, "{:.6e}".format]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    if header is not None:
        writer.writerow(header)
    writer.writerows([[render(v) for v in row] for row in values])
    if draw(st.booleans()):
        buffer.write(newline)  # a trailing blank line
    return buffer.getvalue().encode(encoding), header, delimiter, encoding, n_cols


def _reference_csv(payload: bytes, has_header: bool) -> np.ndarray:
    text = payload.decode("utf-8-sig")
    return np.loadtxt(io.StringIO(text), delimiter=",", skiprows=int(has_header), ndmin=2, dtype=np.float64)


@SETTINGS
@given(case=csv_files())
def test_csv_is_read_exactly_or_refused(case, tmp_path_factory):
    payload, header, delimiter, encoding, n_cols = case
    path = tmp_path_factory.mktemp("csv") / "data.csv"
    path.write_bytes(payload)
    try:
        data = load_file(path)
    except DataError:
        refused = True
    else:
        refused = False
    try:
        payload.decode("utf-8")
        utf8 = True
    except UnicodeDecodeError:
        utf8 = False
    duplicate = header is not None and len({h.strip() for h in header}) < len(header)
    readable = utf8 and (delimiter == "," or n_cols == 1) and not duplicate
    assert refused != readable, (payload[:200], refused)
    if readable:
        expected = _reference_csv(payload, header is not None)
        np.testing.assert_array_equal(data.x, expected.astype(np.float32))


DTYPES = ["float16", "float32", "float64", "int8", "int64", "uint8", "bool", "complex64", "<U3", "object"]


@st.composite
def npz_files(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
    x = np.asarray(np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) % 3)
    x = x.astype(dtype) if dtype != "object" else x.astype(object)
    arrays = {"x": x}
    n = shape[0] if shape else 1
    if draw(st.booleans()):
        arrays["y"] = np.arange(draw(st.sampled_from([n, n + 1]))) % 2
    s_kind = draw(st.sampled_from([None, "int", "whole-float", "fraction", "negative", "text"]))
    if s_kind is not None:
        base = np.arange(n) % 2
        arrays["s"] = {"int": base, "whole-float": base.astype(float), "fraction": base + 0.5,
                       "negative": base - 1, "text": base.astype(str)}[s_kind]
    return arrays, s_kind


@SETTINGS
@given(case=npz_files())
def test_npz_is_read_exactly_or_refused(case, tmp_path_factory):
    arrays, s_kind = case
    path = tmp_path_factory.mktemp("npz") / "data.npz"
    np.savez(path, **arrays)
    x = arrays["x"]
    n = x.shape[0] if x.ndim else 1
    valid = (x.dtype.kind in "fiub" and x.ndim >= 2 and x.size > 0
             and ("y" not in arrays or len(arrays["y"]) == n)
             and s_kind in (None, "int", "whole-float"))
    try:
        data = load_file(path)
    except DataError:
        assert not valid, {k: (v.dtype, v.shape) for k, v in arrays.items()}
        return
    assert valid, {k: (v.dtype, v.shape) for k, v in arrays.items()}
    np.testing.assert_array_equal(data.x, x.reshape(n, -1).astype(np.float32))
    if "y" in arrays:
        np.testing.assert_array_equal(data.y, arrays["y"])
    if s_kind is not None:
        np.testing.assert_array_equal(data.s, arrays["s"].astype(np.int64))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".npz"]))
def test_random_bytes_are_refused_with_a_data_error(payload, suffix, tmp_path_factory):
    path = tmp_path_factory.mktemp("bytes") / f"data{suffix}"
    path.write_bytes(payload)
    try:
        data = load_file(path)
    except DataError:
        return
    assert suffix == ".csv" and np.isfinite(data.x).all()  # a few byte strings are valid numeric CSV
