"""``vaekit sweep``: option values and data checked before anything is written, exit status 1 when runs failed;
``vaekit report --raw``: raw results of another target (outside its run family) refused."""

import json
from pathlib import Path

import numpy as np
import pytest
from cli_run import last_json, run

from vaekit.cli import build_parser
from vaekit.runconfig import subparser
from vaekit.sweep import OPTIONS

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
GRID = 'name = "mini"\nseeds = 1\n[options]\nhidden = [8]\nimportance_samples = 4\nbatch_size = 50\n'


@pytest.fixture(autouse=True)
def _sweep_modules(monkeypatch):
    """`vaekit sweep` adds its target module to VAEKIT_TARGET_MODULES; keep that inside each test."""
    monkeypatch.setenv("VAEKIT_TARGET_MODULES", "")


def _rows(path: Path, nan: bool = False, constant: bool = False) -> None:
    x = np.random.default_rng(0).normal(size=(120, 3))
    if nan:
        x[5, 1] = np.nan
    if constant:
        x[:, 2] = 1.0
    np.savetxt(path, x, delimiter=",", header="a,b,c", comments="")


def test_every_sweep_option_is_a_fit_option():
    """Every grid option is a `vaekit fit` flag or a keyword of vaekit.fit (the component tables and n_tasks, which
    the command line spells as its component flags and --conditional)."""
    import inspect

    from vaekit.fitting import fit as fit_function
    from vaekit.model import ModelConfig

    fit = {a.dest for a in subparser(build_parser(), "fit")._actions}
    python_only = set(OPTIONS) - fit
    assert python_only == {"likelihood_kwargs", "prior_kwargs", "n_tasks"}
    assert python_only <= set(inspect.signature(fit_function).parameters) | set(ModelConfig.__dataclass_fields__)


@pytest.mark.parametrize("entries, message", [
    ('[options]\ndata = "nope.csv"\nepochs = 1\n', "no such data file"),
    ('[options]\ndata = "rows.csv"\nepochs = -3\n', "--epochs: expected an integer >= 1"),
    ('[options]\ndata = "rows.csv"\nlatent_dim = 0\n', "--latent-dim: expected an integer >= 1"),
    ('[options]\ndata = "rows.csv"\n[grid]\nlr = [0.001, -1.0]\n', "--lr: expected a finite number > 0"),
    ('[options]\ndata = "rows.csv"\n[grid]\nhidden = [[8], [0]]\n', "--hidden: expected comma-separated integers"),
    ('[options]\ndata = "rows.csv"\ngated = "yes"\n', "--gated is a flag"),
    ('[options]\ndata = "rows.csv"\nconstant_columns = "keep"\n', "--constant-columns must be one of"),
    ('[options]\ndata = "nan.csv"\n', "contain NaN"),
    ('[options]\nlabel_column = "label"\n[grid]\ndata = ["rows.csv"]\n', "no column named 'label'"),
    ('[grid]\ndata = ["rows.csv", "cancr"]\n', "did you mean cancer"),
    ('[options]\ndata = "rows.csv"\n[grid]\nlikelihood = ["gaussian", "bernoulli"]\n', "needs binary data"),
    ('[options]\ndata = "const.csv"\n', "columns [2] are constant"),
], ids=["missing-file", "epochs", "latent-dim", "grid-lr", "grid-hidden", "gated", "constant-columns", "nan-rows",
        "label-column", "unknown-name", "bernoulli-on-continuous", "constant-column"])
def test_sweep_refuses_bad_option_values_and_data_before_writing_anything(tmp_path, capsys, entries, message):
    _rows(tmp_path / "rows.csv")
    _rows(tmp_path / "nan.csv", nan=True)
    _rows(tmp_path / "const.csv", constant=True)
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID + entries.removeprefix("[options]\n"))
    db, out = tmp_path / "runs" / "x.sqlite", tmp_path / "runs" / "x"
    code, stdout, err = run(capsys, "sweep", grid, "--db", db, "--out", out, "--json", "--no-progress")
    assert code == 2 and message in err and str(grid) in err, err
    assert err.count("got ") <= 1, err  # the value once (it was "got '0' (got 0)")
    assert not (tmp_path / "runs").exists() and not stdout.strip()


@pytest.mark.parametrize("name", ["../../evil", "/tmp/vaekit-sweep-abs", "a/b", "..", "a\\b"])
def test_a_sweep_name_that_is_not_a_plain_name_is_refused_before_writing_anything(tmp_path, capsys, name):
    """Reviewer-found: the grid's name was used as a path, so its report files could land anywhere."""
    _rows(tmp_path / "rows.csv")
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID.replace('"mini"', json.dumps(name)) + 'data = "rows.csv"\nepochs = 1\n')
    out = tmp_path / "a" / "b" / "runs"
    code, stdout, err = run(capsys, "sweep", grid, "--db", out / "x.sqlite", "--out", out, "--json", "--no-progress")
    assert code == 2 and "name must be a plain name" in err, err
    assert not (tmp_path / "a").exists() and not list(tmp_path.glob("evil*"))
    assert not Path("/tmp/vaekit-sweep-abs.md").exists()


def test_sweep_with_failed_runs_writes_the_report_and_exits_1(tmp_path, capsys):
    _rows(tmp_path / "rows.csv")
    few = tmp_path / "few.csv"  # 30 rows: a training split of 24 < the batch size of 50, refused by the run itself
    few.write_text("\n".join((tmp_path / "rows.csv").read_text().splitlines()[:31]) + "\n")
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID + 'epochs = 1\n[grid]\ndata = ["rows.csv", "few.csv"]\n')
    out = tmp_path / "rep"
    argv = ("sweep", grid, "--db", tmp_path / "db.sqlite", "--out", out, "--json", "--no-progress")
    code, stdout, err = run(capsys, *argv)
    assert code == 1, err
    result = last_json(stdout)
    assert result["counts"]["done"] == 1 and result["counts"]["failed"] == 1
    assert "1 of 2 runs of sweep mini failed" in err and str(out) in err.splitlines()[-1]
    assert "failed:" in (out / "report.md").read_text() and (out / "mini.md").is_file()
    code, stdout, _ = run(capsys, *argv)  # a rerun retries the failed run: it fails again
    assert code == 1 and last_json(stdout)["counts"]["failed"] == 1


def test_report_raw_refuses_the_results_of_another_target(tmp_path, capsys):
    raw = RESULTS / "chapter4" / "table-4.2-numerics-3" / "runs.jsonl"
    code, _, err = run(capsys, "report", "table-3.2", "--raw", raw, "--out", tmp_path / "rep")
    assert code == 2 and "these raw results are for table-4.2, not table-3.2" in err, err
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("target, raw", [
    ("table-5.2", "chapter5/table-5.3-numerics-3/runs.jsonl"),  # one run family: Tables 5.2-5.4 share the runs
    ("figure-4.1", "chapter4/figure-4.2-full/runs.jsonl"),
    ("table-4.2", "chapter4/table-4.2-full/runs.jsonl"),
])
def test_report_raw_accepts_its_own_and_its_run_familys_results(tmp_path, capsys, target, raw):
    code, stdout, err = run(capsys, "report", target, "--raw", RESULTS / raw, "--out", tmp_path / "rep", "--json")
    assert code == 0, err
    assert last_json(stdout)["target"] == target


def test_report_raw_accepts_old_results_without_a_target(tmp_path, capsys):
    records = json.loads((RESULTS / "chapter3" / "figure-3.2" / "results.json").read_text())
    for record in records:
        del record["config"]["target"]
    raw = tmp_path / "results.json"
    raw.write_text(json.dumps(records))
    code, _, err = run(capsys, "report", "figure-3.2", "--raw", raw, "--out", tmp_path / "rep")
    assert code == 0, err


def test_a_grids_hidden_sizes_take_the_forms_fit_accepts():
    """Reviewer-found: `hidden = 8` passed the option check (fit reads it as one layer) but the run failed on
    tuple(8)."""
    from vaekit.sweep import hidden_sizes

    assert hidden_sizes(8) == (8,) and hidden_sizes([128, 64]) == (128, 64) and hidden_sizes("32,16") == (32, 16)
