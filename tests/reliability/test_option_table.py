"""Every CLI option's invalid values, generated from the argument parser itself.

For each sub-command and each option that takes a value, the invalid values come from the option's own
definition: ``choices`` give an unknown choice, and the :mod:`vaekit.validation` types list their invalid values
(``invalid_examples``). Each case must exit 2 with one line on stderr, no traceback, no file written and no training
started. A new option is covered as soon as it is added; one with a bare ``int``/``float``/``Path`` type, or a new
sub-command without a base command line here, fails :func:`test_every_option_is_covered`.
"""

import argparse
import sqlite3

import numpy as np
import pytest

from vaekit import TrainConfig, fit
from vaekit.cli import build_parser, main
from vaekit.data import Dataset
from vaekit.training import Trainer
from vaekit.validation import BAD_DATABASE, EXISTING_DIR, EXISTING_FILE, _Type

#: a valid command line per sub-command (placeholders: {csv}, {model}, {grid}, {tmp}); the invalid option is appended
BASE = {
    "datasets": ["datasets"],
    "download": ["download", "smtp"],
    "fit": ["fit", "--data", "{csv}", "--latent-dim", "2", "--hidden", "4", "--epochs", "1", "--batch-size", "10",
            "--importance-samples", "2", "--out", "{tmp}/out"],
    "evaluate": ["evaluate", "{model}", "--importance-samples", "2"],
    "score": ["score", "{model}", "--data", "{csv}", "--output", "{tmp}/scores.csv"],
    "detect": ["detect", "--data", "{csv}", "--latent-dim", "1", "--hidden", "4", "--epochs", "1",
               "--importance-samples", "2", "--output", "{tmp}/scores.csv"],
    "reproduce": ["reproduce", "toy", "--db", "{tmp}/db.sqlite", "--out", "{tmp}/report"],
    "report": ["report", "toy", "--db", "{tmp}/db.sqlite", "--out", "{tmp}/report"],
    "plot": ["plot", "{model}", "--out", "{tmp}/plots"],
    "sweep": ["sweep", "{grid}", "--db", "{tmp}/db.sqlite", "--out", "{tmp}/report"],
}
#: options whose value is free text or an input checked when it is read (a data set name, a column, a model)
FREE_TEXT = {"--data", "--label-column", "--task-column", "--positive-label", "--model", "--ray-address",
             "--datasets", "--ignore-columns", "--id-column", "--config", "--mlflow", "--mlflow-experiment"}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _value_options(sub: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in sub._actions if a.option_strings and a.nargs != 0 and not isinstance(a, argparse._HelpAction)
            and not isinstance(a, (argparse._StoreConstAction, argparse._VersionAction))]


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for name, sub in sorted(_subparsers().items()):
        for action in _value_options(sub):
            option = max(action.option_strings, key=len)
            values: list[str] = []
            if action.choices is not None:
                values.append("nosuch-choice")
            if isinstance(action.type, _Type):
                values += action.type.invalid_examples()
            cases += [(name, option, value) for value in values]
    return cases


def test_every_option_is_covered():
    """Every option that takes a value is validated while parsing (or is explicitly free text), and every
    sub-command has a base command line above."""
    problems = []
    for name, sub in sorted(_subparsers().items()):
        if name not in BASE:
            problems.append(f"sub-command {name!r} has no base command line in BASE")
        for action in _value_options(sub):
            option = max(action.option_strings, key=len)
            if action.choices is None and not isinstance(action.type, _Type) and option not in FREE_TEXT:
                problems.append(f"{name} {option}: type {action.type!r} does not validate; use vaekit.validation")
    assert not problems, problems


def test_base_command_lines_parse():
    parser = build_parser()
    for argv in BASE.values():
        parser.parse_args([a.format(csv="d.csv", model="m", grid="g.toml", tmp=".") for a in argv])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    csv = root / "d.csv"
    np.savetxt(csv, rng.normal(size=(40, 3)), delimiter=",", header="a,b,c", comments="")
    model = root / "model"
    fit(Dataset("d", rng.normal(size=(40, 3))), latent_dim=2, hidden=(4,), out=model,
        train=TrainConfig(epochs=1, batch_size=10), importance_samples=2)
    (root / "file.txt").write_text("a plain file")
    (root / "folder").mkdir()
    (root / "folder" / "notes.txt").write_text("someone's files, not a vaekit run")
    bad_db = root / "bad.sqlite"
    with sqlite3.connect(bad_db) as con:
        con.execute("CREATE TABLE t (a)")
        con.executemany("INSERT INTO t VALUES (?)", [(b"x" * 1000,)] * 100)
    bad_db.write_bytes(bad_db.read_bytes()[:5000])
    grid = root / "grid.toml"
    grid.write_text(f'name = "mini"\nseeds = 1\n[options]\ndata = "{csv}"\nepochs = 1\nhidden = [4]\n'
                    'latent-dim = 2\nimportance_samples = 2\nbatch_size = 10\n[grid]\nlikelihood = ["gaussian"]\n')
    return {"csv": str(csv), "model": str(model), "grid": str(grid), EXISTING_FILE: str(root / "file.txt"),
            EXISTING_DIR: str(root / "folder"), BAD_DATABASE: str(bad_db)}


@pytest.mark.parametrize("command, option, value", _cases())
def test_invalid_option_value(command, option, value, files, tmp_path, monkeypatch, capsys):
    def no_work(*args, **kwargs):
        raise AssertionError(f"work started although {option}={value!r} is invalid")

    monkeypatch.setattr(Trainer, "fit", no_work)
    monkeypatch.setattr("vaekit.experiments.engine.run_grid", no_work)
    monkeypatch.setattr("urllib.request.urlopen", no_work)
    monkeypatch.chdir(tmp_path)
    for placeholder in (EXISTING_FILE, EXISTING_DIR, BAD_DATABASE):
        value = value.replace(placeholder, files[placeholder])
    argv = [a.format(csv=files["csv"], model=files["model"], grid=files["grid"], tmp=tmp_path)
            for a in BASE[command]]
    code = main(argv + [f"{option}={value}"])
    err = capsys.readouterr().err
    assert code == 2, (option, value, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert option in err or "error:" in err
    assert list(tmp_path.iterdir()) == [], "a refused command wrote files"
