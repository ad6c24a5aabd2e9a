"""Issue 18: ``vaekit plot`` (PNG + self-contained HTML checked in a real headless browser), reproduce/sweep
reports as HTML, ``vaekit sweep grid.toml``, budget tables, and messages people read."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import vaekit
from cli_run import last_json, run
from vaekit import TrainConfig, VAEDetector
from vaekit.experiments.store import Store
from vaekit.htmlreport import markdown_to_html, write_report_html
from vaekit.plotting import plot_run, tsne_2d



def browser():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless browser installed (apt-get install chromium); the HTML is checked only with one")


def rendered_dom(path):
    """The page's DOM after a real browser loaded it and ran its scripts."""
    result = subprocess.run([browser(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                             "--dump-dom", path.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def assert_renders(path, n_images, n_tables):
    dom = rendered_dom(path)
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert f'data-images="{n_images}"' in body and f'data-images-loaded="{n_images}"' in body, body
    assert dom.count("<table") >= n_tables
    assert "http" not in re.sub(r'src="data:[^"]*"', "", open(path).read()).replace("charset", "")  # no server


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """A tiny VAE on 4x4 'images' with labels, saved like vaekit fit --out."""
    rng = np.random.default_rng(0)
    x = rng.random((120, 16)).astype(np.float32)
    y = (x[:, :8].mean(1) > 0.5).astype(int)
    data = vaekit.Dataset("img", x, y, meta={"image_shape": (4, 4)})
    out = tmp_path_factory.mktemp("run")
    vaekit.fit(data, likelihood="gaussian", latent_dim=3, hidden=(8,), importance_samples=5,
               train=TrainConfig(epochs=3, batch_size=20, patience=None), out=out)
    return out, data


def test_plot_run_writes_every_figure_and_a_page_that_renders(image_run, tmp_path):
    out, data = image_run
    result = plot_run(out, tmp_path / "plots", data=data)
    names = sorted(p.rsplit("/", 1)[1] for p in result["files"])
    assert names == ["curves.png", "images.png", "latent.png"]
    for f in result["files"]:
        assert open(f, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert_renders(tmp_path / "plots" / "index.html", n_images=3, n_tables=2)


def test_identical_codes_and_a_damaged_result_file_still_plot(image_run, tmp_path, capsys):
    """Reviewer-found: t-SNE of identical latent codes crashed the process (segfault, a half-written folder), PCA
    of them drew NaN; a damaged result.json was a traceback."""
    from vaekit.cli import main
    from vaekit.plotting import embed_2d

    run_dir, data = image_run
    same = np.repeat(data.x[:1], 30, axis=0)
    np.savez(tmp_path / "same.npz", x=same)
    for embedding in ("tsne", "pca"):
        out = tmp_path / embedding
        assert main(["plot", str(run_dir), "--data", str(tmp_path / "same.npz"), "--embedding", embedding,
                     "--out", str(out), "--json"]) == 0
        assert (out / "latent.png").is_file() and (out / "index.html").is_file()
    z = np.repeat(np.array([[1.0, 2.0, 3.0]]), 5, axis=0)
    xy, how = embed_2d(z, "pca")
    assert np.isfinite(xy).all() and "too few distinct codes" in how
    assert embed_2d(np.random.default_rng(0).normal(size=(5, 3)), "pca")[1] == "PCA"
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    for damaged in ("{broken", "null", "[]", '{"history": "x"}'):
        (copy / "result.json").write_text(damaged)
        assert main(["plot", str(copy), "--out", str(tmp_path / "damaged"), "--json"]) == 0
        out = capsys.readouterr()
        assert "result.json" in out.err and "curves.png" not in out.out.strip().splitlines()[-1]
    (copy / "result.json").write_bytes(bytes(range(256)))
    assert main(["plot", str(copy), "--out", str(tmp_path / "binary")]) == 0
    again = tmp_path / "again"  # a folder plotted before: the figure the new page lacks goes with it
    assert main(["plot", str(run_dir), "--out", str(again)]) == 0 and (again / "curves.png").is_file()
    assert main(["plot", str(copy), "--out", str(again)]) == 0 and not (again / "curves.png").exists()


def test_plot_cli_for_a_detector_has_the_score_histogram(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3))
    VAEDetector(epochs=2, hidden=(8,), random_state=0).fit(x).save(tmp_path / "det")
    np.savetxt(tmp_path / "x.csv", x, delimiter=",", header="a,b,c", comments="")
    code, out, err = run(capsys, "plot", tmp_path / "det", "--data", tmp_path / "x.csv", "--json")
    assert code == 0, err
    files = {f.rsplit("/", 1)[1] for f in last_json(out)["files"]}
    assert files == {"curves.png", "scores.png", "latent.png"}
    assert (tmp_path / "det" / "plots" / "index.html").is_file()


def test_tsne_logs_its_size_and_cost_shows_a_bar_and_keeps_stdout_clean(capsys, caplog):
    from sklearn.manifold import TSNE

    z = np.random.default_rng(0).normal(size=(60, 5))
    with caplog.at_level("DEBUG", logger="vaekit.plotting"):
        xy = tsne_2d(z, seed=0, perplexity=10.0, progress=True)
    out, err = capsys.readouterr()
    assert out == ""  # scikit-learn's verbose report went to the debug log, not into --json's stdout
    assert "t-SNE" in err  # the bar over the iterations
    assert "t-SNE of 60 points (5-d): up to 1000 iterations" in caplog.text
    assert re.search(r"at most about \d+ s expected \(from the first 50 iterations\)", caplog.text)
    assert "[t-SNE] Iteration 50:" in caplog.text  # the report itself, at debug level
    np.testing.assert_array_equal(xy, TSNE(2, init="pca", perplexity=10.0, random_state=0).fit_transform(z))


def test_plot_cli_passes_no_progress_on(tmp_path, capsys, monkeypatch):
    import vaekit.plotting

    seen = []
    monkeypatch.setattr(vaekit.plotting, "plot_run", lambda *a, **kw: seen.append(kw["progress"]) or
                        {"files": [], "html": "index.html"})
    for extra in ([], ["--no-progress"]):
        assert run(capsys, "plot", tmp_path, "--embedding", "tsne", *extra)[0] == 0
    assert seen == [None, False]  # None: a bar on a terminal only


def test_tsne_report_lines_advance_the_bar_even_when_split_across_writes():
    from vaekit.plotting import _TsneReport

    class Bar:
        n, total = 0, 1000

        def update(self, k):
            self.n += k

    report = _TsneReport(Bar())
    report.write("[t-SNE] Computed neighbors for 60 samples\n[t-SNE] Iter")
    assert report.bar.n == 0
    report.write("ation 50: error = 1.0, gradient norm = 0.1 (50 iterations in 0.1s)\n")
    assert report.bar.n == 50
    print("[t-SNE] Iteration 300: error = 0.5, gradient norm = 0.01 (50 iterations in 0.1s)", file=report)
    assert report.bar.n == 300


def test_report_html_turns_markdown_tables_into_html_tables(image_run, tmp_path):
    markdown = "## t: a target\n\n| Data | A | B |\n|---|---|---|\n| x | **1.0 ± 0.1** | 2.0 ± 0.2 |\n\nRuns: 2 done."
    html = markdown_to_html(markdown)
    assert "<th>Data</th>" in html and "<td><b>1.0 ± 0.1</b></td>" in html and "|---" not in html
    curves = image_run[0] / "plots-for-report.png"
    plot_run(image_run[0], tmp_path / "p")
    shutil.copy(tmp_path / "p" / "curves.png", curves)
    page = write_report_html(tmp_path, "t", markdown, [str(curves), "missing.png", "table.csv"])
    assert_renders(page, n_images=1, n_tables=1)


def test_sweep_runs_a_grid_from_a_file_reports_and_resumes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savetxt(tmp_path / "rows.csv", rng.normal(size=(120, 3)), delimiter=",", header="a,b,c", comments="")
    (tmp_path / "grid.toml").write_text(
        'name = "mini"\nseeds = 2\n[options]\ndata = "rows.csv"\nepochs = 1\nhidden = [8]\nlatent-dim = 2\n'
        'importance_samples = 4\nbatch_size = 50\n[grid]\nlikelihood = ["gaussian", "student-t"]\n')
    argv = ("sweep", tmp_path / "grid.toml", "--db", tmp_path / "db.sqlite", "--out", tmp_path / "rep", "--json",
            "--no-progress")
    code, out, err = run(capsys, *argv)
    result = last_json(out)
    assert code == 0, err
    assert result["counts"]["done"] == 4 and result["executed"] == 4
    table = (tmp_path / "rep" / "mini.md").read_text()
    assert "| rows.csv |" in table and "likelihood=gaussian" in table and "likelihood=student-t" in table
    assert len(re.findall(r"-?\d+\.\d{3} ± \d+\.\d{3}", table)) == 2  # mean ± std over the 2 seeds
    assert (tmp_path / "rep" / "report.html").is_file()
    code, out, _ = run(capsys, *argv)
    assert code == 0 and last_json(out)["executed"] == 0 and last_json(out)["already_finished"] == 4
    (tmp_path / "bad.toml").write_text('[grid]\nlatent = [1]\n')
    code, _, err = run(capsys, "sweep", tmp_path / "bad.toml", "--db", tmp_path / "db.sqlite")
    assert code == 2 and "unknown option 'latent'" in err
    for text, message in (('seeds = 2.5\n[options]\ndata = "rows.csv"\n', "seeds must be"),
                          ('options = 3\n', "[options] must be a table"),
                          ('metric = "knn_accuracy"\n[options]\ndata = "rows.csv"\n', "unknown entries ['metric']")):
        (tmp_path / "bad.toml").write_text(text)  # reviewer-found: tracebacks, and a metric silently ignored
        code, _, err = run(capsys, "sweep", tmp_path / "bad.toml", "--db", tmp_path / "db.sqlite")
        assert code == 2 and message in err and "Traceback" not in err, err



def test_sweep_rows_of_data_files_with_one_name_stay_apart(tmp_path, capsys):
    """Reviewer-found: rows were labelled by file name alone, so a/rows.csv and b/rows.csv shared one row and the
    runs of one file vanished from the table."""
    from vaekit.experiments.report import collect

    rng = np.random.default_rng(0)
    for folder, shift in (("a", -10.0), ("b", 5.0)):
        (tmp_path / folder).mkdir()
        np.savetxt(tmp_path / folder / "rows.csv", rng.normal(shift, 1.0, size=(120, 3)), delimiter=",",
                   header="x,y,z", comments="")
    (tmp_path / "grid.toml").write_text(
        'name = "two"\nseeds = 1\n[options]\nepochs = 1\nhidden = [8]\nlatent_dim = 2\nimportance_samples = 4\n'
        'batch_size = 50\nlikelihood = "gaussian"\n[grid]\ndata = ["a/rows.csv", "b/rows.csv"]\n')
    code, out, err = run(capsys, "sweep", tmp_path / "grid.toml", "--db", tmp_path / "db.sqlite", "--out",
                         tmp_path / "rep", "--json", "--no-progress")
    assert code == 0 and last_json(out)["counts"]["done"] == 2, err
    table = (tmp_path / "rep" / "two.md").read_text()
    assert "| a/rows.csv |" in table and "| b/rows.csv |" in table
    run_a = {"config": {"d": "x", "m": "g", "seed": 0}, "status": "done", "metrics": {"v": 1.0}}
    with pytest.raises(ValueError, match="two runs fill row 'x', column 'g', seed 0"):
        collect([run_a, {**run_a, "metrics": {"v": 2.0}}], "v", "d", "m")


def test_sweep_reads_grid_relative_files_and_passes_component_options(tmp_path, capsys, monkeypatch):
    """Reviewer-found: a relative .npy path was read from the current directory (another file of that name there was
    silently used), and the grid refused fit's likelihood/prior options and task conditioning."""
    from vaekit.sweep import load_grid

    rng = np.random.default_rng(0)
    (tmp_path / "grids").mkdir()
    np.save(tmp_path / "grids" / "rows.npy", rng.normal(size=(120, 3)).astype(np.float32))
    np.save(tmp_path / "rows.npy", np.full((5, 7), 1e39))  # a different file of the same name in the cwd
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grids" / "g.toml").write_text(
        'name = "mapb"\nseeds = 1\n[options]\ndata = "rows.npy"\nepochs = 1\nhidden = [8]\nlatent_dim = 2\n'
        'importance_samples = 4\nbatch_size = 50\nlikelihood = "map"\n[grid]\n'
        'likelihood_kwargs = [{b = 1.0}, {b = 0.001}]\n')
    _, configs, _ = load_grid(tmp_path / "grids" / "g.toml")
    assert {c["data"] for c in configs} == {str((tmp_path / "grids" / "rows.npy").resolve())}
    assert [c["variant"] for c in configs] == ["likelihood_kwargs={b=1.0}", "likelihood_kwargs={b=0.001}"]
    code, out, err = run(capsys, "sweep", tmp_path / "grids" / "g.toml", "--db", tmp_path / "db.sqlite", "--out",
                         tmp_path / "rep", "--json", "--no-progress")
    assert code == 0 and last_json(out)["counts"]["done"] == 2, err
    (tmp_path / "grids" / "missing.toml").write_text('[options]\ndata = "absent.npy"\n')
    (tmp_path / "absent.npy").write_bytes((tmp_path / "grids" / "rows.npy").read_bytes())  # only in the cwd
    code, _, err = run(capsys, "sweep", tmp_path / "grids" / "missing.toml", "--db", tmp_path / "db.sqlite")
    assert code == 2 and str(tmp_path / "grids" / "absent.npy") in err
    (tmp_path / "grids" / "typo.toml").write_text('[options]\ndata = "rows.npy"\nlikelihood = "map"\n'
                                                  'likelihood_kwargs = {bee = 1.0}\n')
    code, _, err = run(capsys, "sweep", tmp_path / "grids" / "typo.toml", "--db", tmp_path / "db.sqlite")
    assert code == 2 and "bee" in err and "typo.toml" in err, err


def test_reproduce_list_is_a_table_with_runs(capsys, tmp_path):
    code, out, err = run(capsys, "reproduce", "--list", "--db", tmp_path / "none.sqlite", "--json")
    assert code == 0
    assert re.search(r"target\s+budget\s+runs\s+est\. CPU time\s+settings", err)
    assert "{'" not in err and "':" not in err  # no Python dicts
    toy = {r["budget"]: r for r in last_json(out)["budgets"] if r["target"] == "toy"}
    assert toy["quick"]["runs"] == 8 and toy["full"]["runs"] == 20


def test_report_without_runs_says_what_to_run(capsys, tmp_path):
    for db in (tmp_path / "absent.sqlite", tmp_path / "empty.sqlite"):
        if db.name == "empty.sqlite":
            Store(db).close()
        code, _, err = run(capsys, "report", "toy", "--db", db)
        assert code == 2 and "nothing run yet" in err and "vaekit reproduce toy`" in err, err
        code, _, err = run(capsys, "report", "toy", "--db", db, "--budget", "full")
        assert code == 2 and "vaekit reproduce toy --full`" in err, err


def test_datasets_columns_stay_aligned(capsys):
    code, out, _ = run(capsys, "datasets")
    lines = [l for l in out.splitlines() if l.strip()]
    assert code == 0 and len(lines) > 5
    starts = {re.search(r"\s(present|bundled|missing|state)\s", l).start() for l in lines}
    assert len(starts) == 1, lines
    shapes = {len(re.match(r"^(\S+\s+){2}", l).group(0)) for l in lines}
    assert len(shapes) == 1
