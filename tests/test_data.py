"""Data: registry loading, checksums, the bundled cancer fallback, user files, splits, preprocessing."""

import numpy as np
import pytest

from vaekit.data import DATASETS, Dataset, Preprocessor, load_dataset, split_indices
from vaekit.data.sources import parse_goldstein_uchida
from vaekit.errors import ConfigError, DataError, DatasetNotFoundError


def test_smtp_from_data_dir(data_dir):
    ds = load_dataset("smtp")
    assert ds.x.shape == (95156, 3) and ds.x.dtype == np.float32
    assert int(ds.y.sum()) == 30
    assert ds.split == (0.1, 0.1, 0.8)


def test_cancer_without_data_dir_matches_distributed_file(data_dir, monkeypatch):
    from_file = load_dataset("cancer")
    monkeypatch.delenv("VAEKIT_DATA")
    bundled = load_dataset("cancer")
    assert bundled.x.shape == (367, 30) and int(bundled.y.sum()) == 10
    np.testing.assert_allclose(bundled.x, from_file.x, rtol=1e-6)
    np.testing.assert_array_equal(bundled.y, from_file.y)


def test_missing_dataset_names_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="aloi.npz") as err:
        load_dataset("aloi")
    assert "vaekit download aloi" in str(err.value)


def test_checksum_mismatch_is_refused(tmp_path, monkeypatch):
    np.savez(tmp_path / "smtp.npz", x=np.zeros((3, 3)), y=np.zeros(3))
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    with pytest.raises(DataError, match="checksum"):
        load_dataset("smtp")


def test_every_chapter3_dataset_is_registered_with_a_source():
    for name in ("smtp", "aloi", "thyroid", "cancer", "satellite"):
        assert DATASETS[name].download is not None and DATASETS[name].source


def test_goldstein_uchida_parser():
    parsed = parse_goldstein_uchida("1.0,2.5,'n'\n3,4,\"o\"\n5,6,n\n".replace("'", ""))
    np.testing.assert_array_equal(parsed["x"], [[1, 2.5], [3, 4], [5, 6]])
    np.testing.assert_array_equal(parsed["y"], [0, 1, 0])


def test_split_fractions_and_seeding():
    a = split_indices(1000, (0.5, 0.1, 0.4), seed=0)
    b = split_indices(1000, (0.5, 0.1, 0.4), seed=0)
    c = split_indices(1000, (0.5, 0.1, 0.4), seed=1)
    assert [len(p) for p in a] == [500, 100, 400]
    assert len(np.unique(np.concatenate(a))) == 1000
    assert all((p == q).all() for p, q in zip(a, b))
    assert not (a[0] == c[0]).all()


@pytest.mark.parametrize("fractions", [(0.5, 0.5, 0.5), (0.5, 0.0, 0.4), (0.5, 0.5)])
def test_bad_split_fractions(fractions):
    with pytest.raises(ConfigError, match="fractions"):
        split_indices(100, fractions, seed=0)


def test_preprocessor_fits_on_train_only_and_handles_constant_columns():
    train = np.array([[1.0, 5.0, 0.0], [3.0, 5.0, 2.0]])
    with pytest.raises(DataError, match=r"columns \[1\] are constant"):
        Preprocessor().fit(train)
    with pytest.warns(UserWarning, match="constant"):
        pre = Preprocessor(constant_columns="drop").fit(train)
    assert pre.constant_columns_ == [1]
    out = pre.transform(np.array([[2.0, 7.0, 1.0]]))
    np.testing.assert_allclose(out, [[0.0, 0.0]])
    clone = Preprocessor.from_state_dict(pre.state_dict())
    np.testing.assert_allclose(clone.transform(train), pre.transform(train))
    with pytest.raises(DataError, match="3 columns"):
        pre.transform(np.zeros((2, 4)))


def test_dropping_every_column_is_a_data_error_in_python_and_the_cli(tmp_path, capsys):
    """Reviewer-found: with every column constant, dropping them left sklearn's "0 feature(s)" traceback (fit with
    --constant-columns drop, detect whose default drops, detect --max-train-rows 2 on good data)."""
    import vaekit
    from vaekit.cli import main

    with pytest.raises(DataError, match=r"every column \(3\) is constant"):
        vaekit.fit(np.full((200, 3), 2.0), constant_columns="drop", likelihood="gaussian", hidden=(8,), latent_dim=2,
                   out=None, train=vaekit.TrainConfig(epochs=1))
    np.savez(tmp_path / "constant.npz", x=np.full((200, 4), 3.0))
    np.savez(tmp_path / "good.npz", x=np.random.default_rng(0).normal(size=(200, 4)))
    small = ["--hidden", "8", "--latent-dim", "2", "--epochs", "1", "--importance-samples", "5"]
    for data, extra in (("constant.npz", []), ("good.npz", ["--max-train-rows", "2"])):
        out = tmp_path / f"scores-{data}.csv"
        assert main(["detect", "--data", str(tmp_path / data), *small, *extra, "--output", str(out)]) == 2
        assert "is constant in the training split, so nothing is left to model" in capsys.readouterr().err
        assert not out.exists()


def test_user_npz(tmp_path):
    np.savez(tmp_path / "mine.npz", x=np.arange(12.0).reshape(4, 3), y=[0, 1, 0, 0], s=[0, 0, 1, 1])
    ds = load_dataset(tmp_path / "mine.npz")
    assert ds.x.shape == (4, 3) and ds.y.tolist() == [0, 1, 0, 0] and ds.s.tolist() == [0, 0, 1, 1]
    np.savez(tmp_path / "bad.npz", data=np.zeros(3))
    with pytest.raises(DataError, match="'x'"):
        load_dataset(tmp_path / "bad.npz")


def test_an_adbench_style_archive_x_y_loads_in_memory_and_memory_mapped(tmp_path):
    """ADBench and ODDS save their sets as X (rows) and y (1 = anomaly): such a file works as it is."""
    from vaekit.data.mapped import open_memory_map

    x = np.arange(24.0).reshape(8, 3)
    np.savez(tmp_path / "bench.npz", X=x, y=[0, 0, 1, 0, 0, 0, 1, 0])
    ds = load_dataset(tmp_path / "bench.npz")
    assert np.array_equal(ds.x, x) and ds.y.tolist() == [0, 0, 1, 0, 0, 0, 1, 0]
    assert np.array_equal(open_memory_map(tmp_path / "bench.npz"), x)
    np.savez(tmp_path / "both.npz", x=x, X=-x)  # x is the documented name: it wins
    assert np.array_equal(load_dataset(tmp_path / "both.npz").x, x)
    assert np.array_equal(open_memory_map(tmp_path / "both.npz"), x)


def test_user_csv_with_label_and_task_columns(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,label,site\n1,2,0,north\n3,4,1,south\n5,6,0,north\n")
    ds = load_dataset(tmp_path / "d.csv", label_column="label", task_column="site")
    np.testing.assert_array_equal(ds.x, [[1, 2], [3, 4], [5, 6]])
    assert ds.y.tolist() == [0, 1, 0] and ds.s.tolist() == [0, 1, 0]
    with pytest.raises(DataError, match="'site' is not numeric"):
        load_dataset(tmp_path / "d.csv", label_column="label")
    with pytest.raises(DataError, match="no column named 'nope'"):
        load_dataset(tmp_path / "d.csv", label_column="nope")


def test_headerless_csv(tmp_path):
    (tmp_path / "h.csv").write_text("1,2\n3,4\n")
    assert load_dataset(tmp_path / "h.csv").x.shape == (2, 2)


@pytest.mark.parametrize("x, match", [
    (np.array([[1.0, np.nan], [1.0, 2.0]]), "NaN"),
    (np.array([[1.0, np.inf], [1.0, 2.0]]), "NaN or infinite"),
    (np.zeros((0, 3)), "empty"),
])
def test_bad_arrays(x, match):
    with pytest.raises(DataError, match=match):
        Dataset("bad", x)


def test_download_is_verified_and_cached_atomically(monkeypatch, tmp_path):
    """A download goes through the spec's parser, is checked against the content checksum, and lands in the cache."""
    import dataclasses

    from vaekit.data import registry

    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "empty"))
    good = registry.load_dataset("cancer")  # bundled fallback
    arrays = {"x": good.x, "y": good.y}
    spec = dataclasses.replace(registry.DATASETS["cancer"], name="fake", filename="fake.npz", fallback=None,
                               download=lambda: arrays, content_sha256=registry.content_checksum(arrays))
    loaded = registry.load_arrays(spec, download=True)
    np.testing.assert_array_equal(loaded["x"], good.x)
    assert (registry.sources.cache_dir() / "fake.npz").is_file()
    tampered = dataclasses.replace(spec, filename="fake2.npz", download=lambda: {"x": good.x * 2, "y": good.y})
    with pytest.raises(DataError, match="checksum"):
        registry.load_arrays(tampered, download=True)
    assert not (registry.sources.cache_dir() / "fake2.npz").exists()
    with pytest.raises(DatasetNotFoundError, match="fake2.npz"):
        registry.load_arrays(tampered, download=False)


def test_a_goldstein_uchida_csv_placed_by_hand_is_converted_without_the_network(monkeypatch, tmp_path, capsys):
    """aloi/thyroid/satellite are published as CSV files: the messages name that file, and `vaekit download`
    converts a copy put in $VAEKIT_DATA instead of fetching it."""
    from vaekit.cli import main
    from vaekit.data import load_dataset, sources

    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    monkeypatch.setenv("VAEKIT_DATA", str(data))
    monkeypatch.setenv("VAEKIT_CACHE", str(cache))
    with pytest.raises(DatasetNotFoundError, match=r"put its source file\(s\) aloi-unsupervised-ad.csv there"):
        load_dataset("aloi")
    monkeypatch.setattr(sources, "fetch", lambda *a, **k: pytest.fail("the network was used"))
    rows = "".join(f"{i},{i % 7}.5,{'o' if i % 10 == 0 else 'n'}\n" for i in range(40))
    (data / "aloi-unsupervised-ad.csv").write_text(rows)
    assert main(["download", "aloi"]) == 0
    loaded = load_dataset("aloi")
    assert loaded.x.shape == (40, 2) and int(loaded.y.sum()) == 4 and (cache / "aloi.npz").is_file()


def test_content_checksums_match_the_shared_files(data_dir):
    from vaekit.data import registry

    for name in ("smtp", "cancer"):
        arrays = registry.load_arrays(registry.DATASETS[name])
        assert registry.content_checksum(arrays) == registry.DATASETS[name].content_sha256


# ------------------------------------------------------------------------------- vaekit datasets, without building
def test_dataset_status_lists_the_built_shapes_without_building(data_dir, monkeypatch):
    from vaekit.data import registry

    built = {name: list(load_dataset(name).x.shape) for name, spec in DATASETS.items()
             if registry.locate(spec) is not None or spec.fallback is not None}
    assert {"smtp", "mnist", "usps", "digits", "onehot", "adbench:http"} <= set(built)

    def no_build(*args, **kwargs):
        raise AssertionError("dataset_status built a data set")

    monkeypatch.setattr(registry, "load_dataset", no_build)
    rows = {r["name"]: r for r in registry.dataset_status()}
    assert {name: rows[name].get("shape") for name in built} == built  # the declared/header shapes are the built ones
    assert not any("error" in r for r in rows.values())
    assert not rows["aloi"]["present"] and "shape" not in rows["aloi"]


def test_dataset_status_reports_a_missing_companion_a_bad_checksum_and_an_unreadable_file(data_dir, tmp_path,
                                                                                          monkeypatch):
    from vaekit.data import dataset_status

    (tmp_path / "mnist_train60k.npz").symlink_to(data_dir / "mnist_train60k.npz")  # its test-set file is absent
    (tmp_path / "smtp.npz").write_bytes(b"not the published file")
    (tmp_path / "adbench").mkdir()
    (tmp_path / "adbench" / "38_thyroid.npz").write_bytes(b"not an archive")
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    rows = {r["name"]: r for r in dataset_status()}
    assert rows["mnist"]["present"] and "mnist_test10k.npz" in rows["mnist"]["error"]
    assert "does not match the published checksum" in rows["smtp"]["error"]
    assert "not a readable .npz archive" in rows["adbench:thyroid"]["error"]
    assert rows["cancer"]["shape"] == [367, 30] and not rows["cancer"]["present"]  # bundled


def test_random_bytes_as_a_user_npz_are_not_called_a_pickle(tmp_path):
    """Reviewer-found: numpy reads non-zip bytes as a pickle, and the message advised unpickling them."""
    (tmp_path / "rows.npz").write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(DataError, match=r"is not a \.npz archive \(random bytes") as caught:
        load_dataset(tmp_path / "rows.npz")
    assert "pickle" not in str(caught.value)


def test_npz_shapes_reads_headers(tmp_path):
    from vaekit.data.sources import npz_shapes

    np.savez_compressed(tmp_path / "a.npz", x=np.zeros((5, 3), np.float32), y=np.zeros(5, np.int8))
    assert npz_shapes(tmp_path / "a.npz") == {"x": (5, 3), "y": (5,)}


def test_column_options_apply_to_csv_files_only_and_one_role_per_column(tmp_path):
    """Reviewer-found: `--label-column a` on an .npz or a registered data set was ignored (every column trained
    on); one column given as both label and id was accepted. Both are errors that say what to do."""
    from vaekit.data import load_dataset
    from vaekit.errors import ConfigError

    np.savez(tmp_path / "rows.npz", x=np.random.default_rng(0).normal(size=(20, 3)))
    for where in (tmp_path / "rows.npz", "cancer", "digits->mnist"):
        with pytest.raises(ConfigError, match="--label-column name columns of a .csv file"):
            load_dataset(where, label_column="a")
    (tmp_path / "t.csv").write_text("a,b,c,id\n" + "".join(f"{i},{i % 2},{i * 2},r{i}\n" for i in range(20)))
    for options, roles in (({"label_column": "a", "id_column": "a"}, "--label-column and --id-column"),
                           ({"ignore_columns": ["b"], "label_column": "b"}, "--label-column and --ignore-columns"),
                           ({"label_column": "b", "task_column": "b"}, "--label-column and --task-column")):
        with pytest.raises(ConfigError, match=f"column '.' is given to both {roles}"):
            load_dataset(tmp_path / "t.csv", **options)
    assert load_dataset(tmp_path / "t.csv", label_column="b", id_column="id").x.shape == (20, 2)


def test_a_semicolon_separated_csv_is_named_as_such(tmp_path):
    """Reviewer-found: it was reported as one non-numeric column 'a;b;c'."""
    (tmp_path / "rows.csv").write_text("a;b;c\n" + "".join(f"{i};{i + 1};{i * 2}\n" for i in range(20)))
    with pytest.raises(DataError, match="separate its values with ';'"):
        load_dataset(tmp_path / "rows.csv")
