"""Memory-mapped training data (vaekit.data.mapped, vaekit.trained_mapped): same results as the in-memory path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vaekit.cli import main
from vaekit.data.mapped import MappedRows, open_memory_map
from vaekit.errors import DataError
from vaekit.fitting import fit
from vaekit.trained_mapped import fit_memory_mapped
from vaekit.training import TrainConfig


def binary_rows(n: int = 400, d: int = 12) -> np.ndarray:
    rng = np.random.default_rng(3)
    return (rng.random((n, d)) < np.linspace(0.1, 0.9, d)).astype(np.float32)


def config() -> TrainConfig:
    return TrainConfig(epochs=3, batch_size=50, patience=None, seed=2)


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_memory_mapped_fit_equals_the_in_memory_fit(tmp_path, suffix):
    x = binary_rows()
    np.savez(tmp_path / "rows.npz", x=x)
    mapped_file = tmp_path / f"mapped{suffix}"
    np.save(mapped_file, x) if suffix == ".npy" else np.savez(mapped_file, x=x)
    options = dict(latent_dim=3, hidden=(16,), importance_samples=20)
    reference, expected = fit(tmp_path / "rows.npz", train=config(), **options)
    # a release window smaller than one batch drops the map's pages after every gather
    trained, got = fit_memory_mapped(mapped_file, train=config(), release_bytes=1024, **options)
    assert got["memory_mapped"] and got["model"]["likelihood"] == "bernoulli"
    assert (got["n_train"], got["n_val"], got["n_test"]) == (expected["n_train"], expected["n_val"], expected["n_test"])
    assert [h["train_loss"] for h in got["history"]] == [h["train_loss"] for h in expected["history"]]
    assert [h["val_loss"] for h in got["history"]] == [h["val_loss"] for h in expected["history"]]
    assert got["test_log_likelihood"] == pytest.approx(expected["test_log_likelihood"], rel=1e-6)
    for a, b in zip(reference.model.parameters(), trained.model.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("prior", ["implicit", "avb"])
def test_memory_mapped_fit_reports_the_in_memory_fits_test_metrics_for_every_prior(tmp_path, prior):
    x = binary_rows(300, 6)
    np.save(tmp_path / "rows.npy", x)
    np.savez(tmp_path / "rows.npz", x=x)
    options = dict(latent_dim=2, hidden=(8,), importance_samples=10, prior=prior)
    _, expected = fit(tmp_path / "rows.npz", train=config(), **options)
    _, got = fit_memory_mapped(tmp_path / "rows.npy", train=config(), **options)
    keys = [k for k in expected if k.startswith(("test_", "log_normaliser", "importance_samples"))]
    for key in keys:
        assert got.get(key, "absent") == (None if expected[key] is None else pytest.approx(expected[key], rel=1e-6))
    assert ("test_elbo_estimate" in keys) is (prior == "avb") and ("log_normaliser" in keys) is (prior == "implicit")


def test_mapped_rows_gather_the_selected_rows_and_release_pages(tmp_path):
    x = np.arange(60, dtype=np.float64).reshape(20, 3)
    np.save(tmp_path / "a.npy", x)
    array = open_memory_map(tmp_path / "a.npy")
    rows = MappedRows(array, rows=np.array([5, 2, 9]), transform=lambda b: b * 2, release_bytes=1)
    assert rows.shape == (3, 3) and len(rows) == 3
    torch.testing.assert_close(rows[torch.tensor([2, 0])], torch.tensor(x[[9, 5]] * 2, dtype=torch.float32))
    torch.testing.assert_close(rows[1:], torch.tensor(x[[2, 9]] * 2, dtype=torch.float32))
    assert rows._gathered == 0  # released after the gather (window of 1 byte)


def test_unmappable_files_are_refused_with_a_clear_message(tmp_path):
    x = binary_rows(20, 4)
    np.savez_compressed(tmp_path / "c.npz", x=x)
    with pytest.raises(DataError, match="compressed"):
        open_memory_map(tmp_path / "c.npz")
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    with pytest.raises(DataError, match="Fortran"):
        open_memory_map(tmp_path / "f.npy")
    np.savez(tmp_path / "y.npz", y=x)
    with pytest.raises(DataError, match="named 'x'"):
        open_memory_map(tmp_path / "y.npz")
    np.save(tmp_path / "v.npy", x[:, 0])
    with pytest.raises(DataError, match="rows, columns"):
        open_memory_map(tmp_path / "v.npy")


def test_cli_fit_reads_a_npy_file_through_a_memory_map(tmp_path, capsys):
    np.save(tmp_path / "big.npy", binary_rows(200, 6))
    code = main(["fit", "--data", str(tmp_path / "big.npy"), "--epochs", "2", "--hidden", "8", "--latent-dim", "2",
                 "--importance-samples", "5", "--out", str(tmp_path / "run"), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["memory_mapped"] and summary["epochs_run"] == 2 and summary["n_train"] == 160  # 80/10/10
    assert (tmp_path / "run" / "model.pt").exists()
    # its options are saved as run.toml too (as on the in-memory path), and repeat the memory-mapped fit
    assert summary["config_file"] == str(tmp_path / "run" / "run.toml")
    assert main(["fit", "--config", summary["config_file"], "--epochs", "1", "--out", str(tmp_path / "again"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["memory_mapped"]
    np.savez_compressed(tmp_path / "small.npz", x=binary_rows(200, 6))
    code = main(["fit", "--data", str(tmp_path / "small.npz"), "--memory-map", "--epochs", "1", "--json"])
    assert code == 2
    assert "compressed" in capsys.readouterr().err
    assert main(["fit", "--data", "cancer", "--memory-map", "--epochs", "1"]) == 2
    assert "--memory-map reads .npy" in capsys.readouterr().err


def test_the_default_run_folder_of_a_memory_mapped_fit_names_the_likelihood_the_data_chose(tmp_path, capsys,
                                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "bits.npy", binary_rows(200, 6))
    np.save(tmp_path / "reals.npy", np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32))
    tiny = ["--epochs", "1", "--hidden", "8", "--latent-dim", "2", "--importance-samples", "2", "--json"]
    for name, likelihood in (("bits", "bernoulli"), ("reals", "student-t")):
        assert main(["fit", "--data", str(tmp_path / f"{name}.npy"), *tiny]) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["out"] == str(Path("runs") / f"{name}-{likelihood}-standard-seed0")
        assert (tmp_path / summary["out"] / "model.pt").is_file() and (tmp_path / summary["out"] / "run.toml").is_file()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["bits-bernoulli-standard-seed0",
                                                                    "reals-student-t-standard-seed0"]


def test_a_npy_model_is_scored_and_evaluated_on_npy_files(tmp_path, capsys):
    x = binary_rows(200, 6)
    np.save(tmp_path / "rows.npy", x)
    assert main(["fit", "--data", str(tmp_path / "rows.npy"), "--epochs", "2", "--hidden", "8", "--latent-dim", "2",
                 "--importance-samples", "5", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run"), "--importance-samples", "5", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["n_test"] == 20 and evaluated["data"].endswith("rows.npy (test split, memory-mapped)")  # the fit's split
    assert main(["score", str(tmp_path / "run"), "--data", str(tmp_path / "rows.npy"), "--importance-samples", "5",
                 "--output", str(tmp_path / "scores.csv")]) == 0
    assert len((tmp_path / "scores.csv").read_text().splitlines()) == 1 + len(x)
    np.save(tmp_path / "text.npy", np.array([["a", "b"]]))
    assert main(["score", str(tmp_path / "run"), "--data", str(tmp_path / "text.npy")]) == 2
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    assert main(["score", str(tmp_path / "run"), "--data", str(tmp_path / "objects.npy")]) == 2
    err = capsys.readouterr().err
    assert "numeric" in err and "not a readable .npy array without pickles" in err


def test_an_unknown_name_suggests_close_ones_without_listing_every_set():
    from vaekit.data import load_dataset
    from vaekit.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match=r"'smpt' is neither .* did you mean smtp\?") as info:
        load_dataset("smpt")
    assert "adbench:aloi" not in str(info.value) and "vaekit datasets" in str(info.value)


def test_score_memory_mapped_writes_the_in_memory_scores_block_by_block(tmp_path, capsys, monkeypatch):
    from vaekit.cli import score

    x = np.random.default_rng(4).normal(size=(300, 5)).astype(np.float32)
    np.save(tmp_path / "rows.npy", x)
    assert main(["fit", "--data", str(tmp_path / "rows.npy"), "--likelihood", "student-t", "--epochs", "2",
                 "--hidden", "8", "--latent-dim", "2", "--out", str(tmp_path / "run")]) == 0
    monkeypatch.setattr(score, "MAPPED_BLOCK_ROWS", 128)  # three blocks, the last one short
    common = ["score", str(tmp_path / "run"), "--data", str(tmp_path / "rows.npy"), "--importance-samples", "7"]
    assert main([*common, "--output", str(tmp_path / "memory.csv")]) == 0
    capsys.readouterr()
    assert main([*common, "--memory-map", "--output", str(tmp_path / "mapped.csv"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["memory_mapped"] and summary["n_rows"] == 300
    assert (tmp_path / "mapped.csv").read_text() == (tmp_path / "memory.csv").read_text()
    assert main([*common, "--memory-map"]) == 2  # the scores go to a file
    assert "--output" in capsys.readouterr().err
    np.savez_compressed(tmp_path / "packed.npz", x=x)
    assert main(["score", str(tmp_path / "run"), "--data", str(tmp_path / "packed.npz"), "--memory-map",
                 "--output", str(tmp_path / "never.csv")]) == 2
    assert "compressed" in capsys.readouterr().err and not (tmp_path / "never.csv").exists()


def test_score_memory_mapped_refuses_an_encoder_that_samples_per_batch(tmp_path, capsys):
    x = np.random.default_rng(5).normal(size=(300, 4)).astype(np.float32)
    np.save(tmp_path / "rows.npy", x)
    for prior, independent in (("standard", True), ("avb", False)):
        run = tmp_path / prior
        assert main(["fit", "--data", str(tmp_path / "rows.npy"), "--prior", prior, "--epochs", "1", "--hidden", "8",
                     "--latent-dim", "2", "--batch-size", "50", "--out", str(run)]) == 0
        from vaekit import TrainedModel

        trained = TrainedModel.load(run)
        assert trained.scores_rows_independently is independent
        if independent:  # the property's promise: halves scored apart equal the whole scored at once
            whole = trained.score_samples(x, n_samples=5)
            halves = np.concatenate([trained.score_samples(x[:130], n_samples=5),
                                     trained.score_samples(x[130:], n_samples=5)])
            np.testing.assert_allclose(halves, whole, rtol=0, atol=1e-10)
        capsys.readouterr()
        status = main(["score", str(run), "--data", str(tmp_path / "rows.npy"), "--memory-map",
                       "--output", str(tmp_path / f"{prior}.csv")])
        assert status == (0 if independent else 2)
        assert (tmp_path / f"{prior}.csv").exists() is independent
        if not independent:
            assert "score the data in memory" in capsys.readouterr().err


def test_nan_rows_of_a_memory_mapped_file_are_named_by_their_row_in_the_file(tmp_path, capsys, monkeypatch):
    """Reviewer-found: a NaN in the validation/test split surfaced mid-training as "first rows [0]" (the position
    in a mini-batch), and `score --memory-map` named the row within its block. Both now name the file row, and
    fit refuses before training. Mutations caught: block-relative rows; validation/test splits not scanned."""
    from vaekit.cli import score as score_cli

    x = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    np.save(tmp_path / "clean.npy", x)
    x[137, 2] = np.nan
    np.save(tmp_path / "nan.npy", x)
    code = main(["fit", "--data", str(tmp_path / "nan.npy"), "--epochs", "1", "--hidden", "8", "--latent-dim", "2",
                 "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code == 2 and "first file rows, counted from 0: [137]" in err and not (tmp_path / "bad").exists()
    assert main(["fit", "--data", str(tmp_path / "clean.npy"), "--epochs", "1", "--hidden", "8", "--latent-dim",
                 "2", "--importance-samples", "2", "--out", str(tmp_path / "run")]) == 0
    monkeypatch.setattr(score_cli, "MAPPED_BLOCK_ROWS", 64)
    code = main(["score", str(tmp_path / "run"), "--data", str(tmp_path / "nan.npy"), "--memory-map",
                 "--importance-samples", "2", "--output", str(tmp_path / "s.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "nan.npy: 1 rows" in err and "[137]" in err and not (tmp_path / "s.csv").exists()


def test_a_memory_mapped_value_beyond_float32_is_named_not_reported_as_infinite(tmp_path):
    """Reviewer-found: a float64 value beyond float32 overflowed in the cast (a bare numpy warning) and was then
    reported as 'NaN or infinite'; the in-memory path says to rescale."""
    x = np.random.default_rng(0).normal(size=(50, 3))
    x[20, 1] = 1e300
    np.save(tmp_path / "big.npy", x)
    with pytest.raises(DataError, match="beyond the float32 range"):
        MappedRows(open_memory_map(tmp_path / "big.npy")).gather(slice(0, 50))


def test_memory_mapped_fit_applies_the_test_subsample_tracking_and_records_what_it_chose(tmp_path, capsys):
    """Reviewer-found: --test-subsample was recorded in run.toml but not applied, trackers were dropped silently,
    --device auto was refused on a CPU-only path, and run.toml / result.json lacked the chosen likelihood and
    split."""
    from vaekit.tracking import Tracker

    x = np.random.default_rng(1).normal(size=(300, 5)).astype(np.float32)
    np.save(tmp_path / "rows.npy", x)
    np.savez(tmp_path / "rows.npz", x=x)
    options = dict(latent_dim=2, hidden=(8,), importance_samples=3, test_subsample=7)
    seen = []

    class Recorder(Tracker):
        def on_epoch(self, epoch, metrics):
            seen.append(epoch)

        def on_end(self, params, metrics, artifacts=()):
            seen.append(("end", "test_log_likelihood" in metrics))

    _, mapped = fit_memory_mapped(tmp_path / "rows.npy", train=config(), callbacks=[Recorder()], **options)
    _, memory = fit(tmp_path / "rows.npz", train=config(), **options)
    assert mapped["n_test"] == memory["n_test"] == 7 and mapped["test_subsample"] == 7
    assert mapped["test_log_likelihood"] == pytest.approx(memory["test_log_likelihood"], abs=1e-4)  # same 7 rows
    assert seen == [1, 2, 3, ("end", True)]
    assert mapped["split"] == memory["split"] and mapped["split_source"] == memory["split_source"]
    code = main(["fit", "--data", str(tmp_path / "rows.npy"), "--epochs", "1", "--hidden", "8", "--latent-dim", "2",
                 "--importance-samples", "2", "--device", "auto", "--out", str(tmp_path / "run"), "--json"])
    assert code == 0
    assert 'likelihood = "student-t"' in (tmp_path / "run" / "run.toml").read_text()
    assert json.loads((tmp_path / "run" / "result.json").read_text())["split"] == [0.8, 0.1, 0.1]


def test_evaluate_reads_a_memory_mapped_runs_test_split_through_the_map(tmp_path, capsys, monkeypatch):
    """Reviewer-found: `vaekit evaluate RUN` of a memory-mapped fit loaded the whole file into memory."""
    from vaekit import fitting

    np.save(tmp_path / "rows.npy", np.random.default_rng(2).normal(size=(400, 5)).astype(np.float32))
    assert main(["fit", "--data", str(tmp_path / "rows.npy"), "--epochs", "2", "--hidden", "8", "--latent-dim", "2",
                 "--importance-samples", "50", "--out", str(tmp_path / "run"), "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    monkeypatch.setattr(fitting, "training_data_rows", lambda *a, **k: pytest.fail("read the whole file"))
    results = []
    for extra in ([], [], ["--test-subsample", "5"]):
        assert main(["evaluate", str(tmp_path / "run"), "--importance-samples", "50", "--no-progress", "--json",
                     *extra]) == 0
        results.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert results[0]["n_test"] == fitted["n_test"] == 40 and results[2]["n_test"] == 5
    assert results[0]["test_log_likelihood"] == results[1]["test_log_likelihood"]  # seeded
    assert results[0]["test_log_likelihood"] == pytest.approx(fitted["test_log_likelihood"], abs=0.05)
    assert "memory-mapped" in results[0]["data"]
    np.save(tmp_path / "rows.npy", np.zeros((400, 5), dtype=np.float32))
    assert main(["evaluate", str(tmp_path / "run")]) == 2
    assert "changed since this model was trained" in capsys.readouterr().err


def test_likelihood_options_without_a_likelihood_are_refused_on_the_memory_mapped_path(tmp_path, capsys):
    """Reviewer-found: --nu-init/--bounded-mean were dropped without a word when the likelihood was left to the data."""
    np.save(tmp_path / "rows.npy", np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32))
    tiny = ["--epochs", "1", "--hidden", "4", "--latent-dim", "2", "--importance-samples", "2", "--batch-size", "20"]
    assert main(["fit", "--data", str(tmp_path / "rows.npy"), "--nu-init", "3", *tiny, "--out", str(tmp_path / "a")]) == 2
    assert "--nu-init needs --likelihood" in capsys.readouterr().err and not (tmp_path / "a").exists()
    assert main(["fit", "--data", str(tmp_path / "rows.npy"), "--likelihood", "student-t", "--nu-init", "3", *tiny,
                 "--out", str(tmp_path / "b"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model"]["likelihood_kwargs"]["nu_init"] == 3


@pytest.mark.parametrize("options", [{"test_subsample": 0}, {"importance_samples": 0}, {"test_subsample": 2.5}])
def test_evaluation_options_are_checked_before_training_on_both_paths(tmp_path, monkeypatch, options):
    """Reviewer-found: a bad test_subsample failed only after training (and importance_samples was not checked at all
    on the memory-mapped path)."""
    from vaekit.errors import ConfigError
    from vaekit.training import Trainer

    np.save(tmp_path / "rows.npy", binary_rows(100, 4))
    monkeypatch.setattr(Trainer, "fit", lambda *a, **k: pytest.fail("trained before checking the options"))
    for run in (lambda: fit(binary_rows(100, 4), latent_dim=2, hidden=(4,), **options),
                lambda: fit_memory_mapped(tmp_path / "rows.npy", latent_dim=2, hidden=(4,), **options)):
        with pytest.raises(ConfigError, match="must be a whole number >= 1"):
            run()


def test_plot_reads_only_the_plotted_test_rows_of_a_memory_mapped_run_through_the_map(tmp_path, capsys,
                                                                                       monkeypatch):
    """Reviewer-found: `vaekit plot RUN` of a memory-mapped fit read the whole file for its latent-space plot. It
    now shows the same rows of the test split as the in-memory path would, gathered through the map."""
    from vaekit import data, plotting
    from vaekit.trained import TrainedModel

    np.save(tmp_path / "rows.npy", np.random.default_rng(4).normal(size=(400, 5)).astype(np.float32))
    run = str(tmp_path / "run")
    assert main(["fit", "--data", str(tmp_path / "rows.npy"), "--epochs", "1", "--hidden", "8", "--latent-dim", "3",
                 "--importance-samples", "5", "--out", run, "--json"]) == 0
    trained = TrainedModel.load(run)
    in_memory = plotting._run_data({k: v for k, v in trained.info.items() if k != "memory_mapped"}, None)
    expected = trained.transform(in_memory.subset(plotting._plotted_rows(len(in_memory), 7)).x)
    seen, real = [], plotting.plot_latent
    monkeypatch.setattr(plotting, "plot_latent", lambda z, *a, **k: seen.append(z) or real(z, *a, **k))
    monkeypatch.setattr(data, "training_data", lambda *a, **k: pytest.fail("read the whole file"))
    assert main(["plot", run, "--max-points", "7", "--json"]) == 0
    assert len(in_memory) == 40 and len(seen) == 1 and seen[0].shape == (7, 3)
    by_rows = lambda z: z[np.lexsort(z.T[::-1])]  # noqa: E731 (the same rows, in file order or split order)
    np.testing.assert_allclose(by_rows(seen[0]), by_rows(expected), rtol=1e-5, atol=1e-6)
    np.save(tmp_path / "rows.npy", np.zeros((400, 5), dtype=np.float32))
    assert main(["plot", run, "--json"]) == 0  # a changed file: the other figures, no latent plot
    assert "latent.png" not in capsys.readouterr().out.strip().splitlines()[-1]
