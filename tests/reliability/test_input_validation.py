"""The input-validation matrix, through the Python API and the CLI: a clear error, exit 2, nothing written."""

import re

import numpy as np
import pytest

from vaekit import TrainConfig, TrainedModel, fit
from vaekit.cli import main
from vaekit.data import Dataset, load_dataset
from vaekit.errors import ConfigError, DataError, DatasetNotFoundError, VaekitError

TINY = dict(latent_dim=2, hidden=(4,), importance_samples=2)


def quick(**kw):
    return TrainConfig(epochs=1, batch_size=kw.pop("batch_size", 10), **kw)


@pytest.fixture(scope="module")
def task_model(tmp_path_factory):
    rng = np.random.default_rng(0)
    ds = Dataset("tasks", rng.normal(size=(60, 3)), s=np.arange(60) % 2)
    out = tmp_path_factory.mktemp("tasks")
    model, _ = fit(ds, n_tasks=2, out=out, train=quick(), **TINY)
    return model, out


@pytest.mark.parametrize("make, error, match", [
    (lambda: Dataset("nan", np.array([[1.0, np.nan]] * 20)), DataError, "NaN"),
    (lambda: Dataset("inf", np.array([[1.0, np.inf]] * 20)), DataError, "infinite"),
    (lambda: Dataset("empty", np.zeros((0, 2))), DataError, "empty"),
])
def test_bad_arrays_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("x, kwargs, error, match", [
    (np.ones((1, 3)), {}, ConfigError, "empty part"),  # one row
    (np.c_[np.random.default_rng(0).normal(size=(50, 2)), np.ones(50)], {}, DataError, "constant"),
    (np.random.default_rng(0).random((50, 3)), dict(likelihood="bernoulli"), DataError, "binary"),
    (np.random.default_rng(0).normal(size=(50, 3)), dict(split=(0.8, 0.3, 0.1)), ConfigError, "fractions"),
    (np.random.default_rng(0).normal(size=(50, 3)), dict(latent_dim=0), ConfigError, "latent dimension"),
    (np.random.default_rng(0).normal(size=(50, 3)), dict(batch_size=500), ConfigError, "batch size"),
    (np.random.default_rng(0).normal(size=(50, 3)), dict(likelihood="poisson"), ConfigError, "unknown likelihood"),
])
def test_fit_refuses_bad_input(x, kwargs, error, match, tmp_path):
    options = {**TINY, **kwargs}
    train = quick(batch_size=options.pop("batch_size", 10))
    with pytest.raises(error, match=match):
        fit(Dataset("bad", x), out=tmp_path / "out", train=train, **options)
    assert not (tmp_path / "out").exists()


def test_wrong_width_and_nan_at_score_time(task_model):
    model, _ = task_model
    with pytest.raises(DataError, match="3 columns"):
        model.score_samples(np.zeros((4, 5)), s=np.zeros(4))
    bad = np.zeros((4, 3))
    bad[1, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        model.score_samples(bad, s=np.zeros(4))


def test_unknown_task_index_and_missing_tasks(task_model):
    model, _ = task_model
    with pytest.raises(DataError, match="task index 5 was not seen"):
        model.score_samples(np.zeros((2, 3)), s=np.array([0, 5]))
    with pytest.raises(DataError, match="task-conditioned"):
        model.score_samples(np.zeros((2, 3)))


def test_csv_problems(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,kind\n1,2,x\n3,4,y\n")
    with pytest.raises(DataError, match="'kind' is not numeric"):
        load_dataset(tmp_path / "d.csv")
    with pytest.raises(DataError, match="no column named 'label'"):
        load_dataset(tmp_path / "d.csv", label_column="label")
    (tmp_path / "ragged.csv").write_text("1,2\n3\n")
    with pytest.raises(DataError, match="fields"):
        load_dataset(tmp_path / "ragged.csv")


@pytest.mark.parametrize("cell, shown", [("", "an empty cell"), ("NA", "'NA'"), (" ? ", "'?'"), ("null", "'null'")])
def test_csv_missing_values_are_named_as_missing(tmp_path, cell, shown):
    (tmp_path / "m.csv").write_text(f"a,b\n1,2\n3,4\n5,{cell}\n7,8\n9,{cell}\n")
    with pytest.raises(DataError, match=rf"column 'b' has 2 missing value\(s\) \({re.escape(shown)} at line 4; "
                                        r"first lines \[4, 6\]\).*drop or fill"):
        load_dataset(tmp_path / "m.csv")
    (tmp_path / "headless.csv").write_text(f"1,2\n3,{cell}\n")
    with pytest.raises(DataError, match=r"line 2;"):
        load_dataset(tmp_path / "headless.csv")


def test_csv_ignore_columns_space_or_comma_separated(tmp_path):
    from vaekit.cli.main import build_parser
    from vaekit.cli.options import file_options

    parser = build_parser()
    args = parser.parse_args(["fit", "--data", "d.csv", "--ignore-columns", "when,", "kind", "--ignore-columns", "x"])
    assert file_options(args)["ignore_columns"] == ["when", "kind", "x"]
    args = parser.parse_args(["fit", "--data", "d.csv"])
    assert "ignore_columns" not in file_options(args) and args.ignore_columns == []


def test_missing_dataset_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="thyroid.npz"):
        load_dataset("thyroid")
    with pytest.raises(DatasetNotFoundError, match="no such data file"):
        load_dataset(tmp_path / "nope.csv")


def test_every_error_is_a_vaekit_error():
    for cls in (ConfigError, DataError, DatasetNotFoundError):
        assert issubclass(cls, VaekitError)


@pytest.mark.parametrize("argv, match", [
    (["fit", "--data", "{csv}", "--label-column", "nope"], "no column named 'nope'"),
    (["fit", "--data", "{onerow}"], "empty part"),
    (["fit", "--data", "{constant}"], "constant"),
    (["fit", "--data", "{csv}"], "'kind' is not numeric"),
    (["score", "{model}", "--data", "{csv_tasks}", "--task-column", "t"], "was not seen"),
    (["fit", "--data", "{num}", "--split", "0.5,0.6"], "three positive finite numbers"),
    (["fit", "--data", "{num}", "--latent-dim", "-1"], "argument --latent-dim: expected an integer >= 1"),
    (["fit", "--data", "{num}", "--batch-size", "1000"], "batch size"),
])
def test_cli_errors_exit_2_with_one_line_and_no_output(argv, match, tmp_path, capsys, task_model):
    _, model_dir = task_model
    (tmp_path / "d.csv").write_text("a,b,kind\n" + "".join(f"{i},{i * i % 7},z\n" for i in range(30)))
    (tmp_path / "one.csv").write_text("a,b\n1,2\n")
    (tmp_path / "num.csv").write_text("a,b\n" + "".join(f"{i},{i * i % 7}\n" for i in range(30)))
    (tmp_path / "const.csv").write_text("a,b\n" + "".join(f"{i},5\n" for i in range(30)))
    (tmp_path / "t.csv").write_text("a,b,c,t\n1,2,3,0\n4,5,6,7\n")
    names = dict(csv=tmp_path / "d.csv", num=tmp_path / "num.csv", onerow=tmp_path / "one.csv", constant=tmp_path / "const.csv",
                 model=model_dir, csv_tasks=tmp_path / "t.csv")
    argv = [a.format(**names) for a in argv]
    if argv[0] == "fit":
        argv += ["--out", str(tmp_path / "out"), "--epochs", "1"] + ["--batch-size", "5"] * ("--batch-size" not in argv)
    else:
        argv += ["--output", str(tmp_path / "out.csv")]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert match in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.csv").exists()


def test_debug_flag_shows_traceback(tmp_path, capsys):
    (tmp_path / "one.csv").write_text("a,b\n1,2\n")
    assert main(["fit", "--data", str(tmp_path / "one.csv"), "--out", str(tmp_path / "o"), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_loaded_model_keeps_validation(task_model):
    _, out = task_model
    loaded = TrainedModel.load(out)
    with pytest.raises(DataError):
        loaded.score_samples(np.zeros((2, 4)), s=np.zeros(2))
