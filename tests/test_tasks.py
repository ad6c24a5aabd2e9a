"""Chapter 5: CVAE / VFAE / beta-CVAE / proposed model as options of one VAE, multi-task data and protocols,
representation metrics, the task weighting of the aggregated posterior, and the CLI."""

import bz2
import io
import json
from itertools import pairwise

import numpy as np
import pytest
import torch
from scipy.io import savemat

from vaekit import VAE, Dataset
from vaekit.cli import main
from vaekit.data import load_dataset
from vaekit.data import transfer as tr
from vaekit.errors import ConfigError, DataError, DatasetNotFoundError
from vaekit.evaluation import log_likelihood
from vaekit.priors import ImplicitOptimalPrior
from vaekit.priors.ratio import DensityRatioNet
from vaekit.metrics import gaussian_mmd, task_mmd
from vaekit.tasks import labelled_rows, pick_alpha, representation_metrics
from vaekit.trained import train_vae
from vaekit.training import TrainConfig


def two_task_data(n: int = 120, d: int = 6, binary: bool = True, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    s = np.repeat([0, 1], n // 2)
    y = rng.integers(0, 2, n)
    p = 0.2 + 0.6 * y[:, None] * np.ones(d) - 0.1 * s[:, None]
    x = (rng.random((n, d)) < p).astype(np.float32) if binary else rng.normal(y[:, None] + s[:, None], 1, (n, d))
    return Dataset("toy", x, y, s, split=(0.6, 0.2, 0.2), binary=binary, meta={"standardise": not binary})


# ------------------------------------------------------------------------------------------------- VFAE / MMD
def mmd_model(shift: float) -> VAE:
    """A VFAE whose task posteriors differ only through the first-layer weight of the task-1 one-hot column, and
    whose posterior scale is negligible, so identical inputs give identical posteriors at shift 0."""
    torch.manual_seed(0)
    model = VAE(5, 2, "bernoulli", hidden=(16,), n_tasks=2, mmd_alpha=2.0)
    first = model.encoder.body[0]
    with torch.no_grad():
        first.weight[:, 5:] = 0.0
        first.weight[:, 6] = shift
        model.encoder.log_variance.weight.zero_()
        model.encoder.log_variance.bias.fill_(-25.0)
    return model


def test_mmd_term_zero_for_identical_task_posteriors_and_grows_with_a_shift():
    x = (torch.rand(40, 5) < 0.5).float()
    xs, s = torch.cat([x, x]), torch.repeat_interleave(torch.tensor([0, 1]), 40)
    values = []
    for shift in (0.0, 0.05, 0.1, 0.2):  # small shifts: the median-heuristic kernel saturates for large ones
        model = mmd_model(shift)
        torch.manual_seed(1)
        terms = model.loss(xs, s)
        values.append(float(terms.mmd.detach()))
        plain = -(terms.reconstruction - terms.kl).mean()
        assert float(terms.loss.detach()) == pytest.approx(float(plain.detach() + 2.0 * terms.mmd.detach()), rel=1e-5)
        assert "mmd" in terms.diagnostics
    assert values[0] == pytest.approx(0.0, abs=1e-6)
    assert all(a < b for a, b in pairwise(values)), values


def test_mmd_for_three_tasks_sums_each_task_against_the_pooled_batch():
    torch.manual_seed(0)
    z, s = torch.randn(60, 2), torch.arange(60) % 3
    z[s == 2] += 3.0
    expected = sum(gaussian_mmd(z[s == k], z) for k in range(3))
    assert float(task_mmd(z, s, 3)) == pytest.approx(float(expected))
    assert float(task_mmd(z, torch.zeros(60, dtype=torch.long), 3)) == 0.0  # one task in the batch: no penalty


def test_mmd_and_task_latent_need_tasks():
    with pytest.raises(ConfigError, match="n_tasks >= 2"):
        VAE(4, 2, "bernoulli", hidden=(8,), n_tasks=1, mmd_alpha=1.0)
    with pytest.raises(ConfigError, match="task conditioning"):
        VAE(4, 2, "bernoulli", hidden=(8,), task_latent_dim=2)


def test_alpha_selection_keeps_the_best_validation_elbo():
    """The one alpha selection (chapter 5's reports pick each seed's VFAE run with it)."""
    assert pick_alpha({0.01: 10.0, 1.0: 9.0, 100.0: None}) == 1.0
    assert pick_alpha({1000.0: 5.0, 0.1: 5.0}) == 0.1  # a tie goes to the smaller alpha
    with pytest.raises(ValueError, match="finite"):
        pick_alpha({1.0: None, 10.0: float("nan")})


# ------------------------------------------------------------------------------------------------- beta-CVAE
def test_beta_cvae_loss_terms_by_name():
    torch.manual_seed(0)
    model = VAE(6, 2, "bernoulli", hidden=(8,), n_tasks=2, task_latent_dim=3)
    x, s = (torch.rand(10, 6) < 0.5).float(), torch.tensor([0, 1] * 5)
    terms = model.loss(x, s)
    assert terms.task_kl.shape == (10,) and terms.task_log_q_s.shape == (10,)
    assert bool((terms.task_kl >= 0).all()) and bool((terms.task_log_q_s <= 0).all())
    assert torch.allclose(terms.elbo, terms.reconstruction - terms.kl - terms.task_kl)
    objective = terms.reconstruction - terms.kl - terms.task_kl + terms.task_log_q_s
    assert float(terms.loss.detach()) == pytest.approx(float(-objective.mean().detach()), rel=1e-5)
    assert terms.mmd is None and {"task_kl", "task_log_q_s"} <= set(terms.diagnostics)
    # the decoder is p(x|z, zeta) (Eq. 5.33): it needs zeta, and the task reaches it only through zeta
    with pytest.raises(ConfigError, match="zeta"):
        model.decode(terms.z, s)
    assert model.decoder_body[0].in_features == 2 + 3
    assert torch.isfinite(log_likelihood(model, x, s, n_samples=4)).all()
    assert model.sample(3, torch.tensor([0, 1, 1])).shape == (3, 6)


# ---------------------------------------------------------------------------------------- unseen task indices
@pytest.mark.parametrize("options", [{}, {"mmd_alpha": 1.0}, {"task_latent_dim": 2}, {"prior": "implicit"}])
def test_conditional_models_reject_an_unseen_task(options):
    model = VAE(4, 2, "bernoulli", hidden=(8,), n_tasks=2, **options)
    x = torch.zeros(3, 4)
    with pytest.raises(DataError, match="was not seen in training: this model knows tasks 0..1"):
        model.loss(x, torch.tensor([0, 1, 2]))
    with pytest.raises(DataError, match="pass the task index"):
        model.loss(x)


# ---------------------------------------------------------------------------------------------- short training
MODELS = {"vfae": {"mmd_alpha": 1.0}, "beta-cvae": {"task_latent_dim": 2},
          "proposed": {"prior": "implicit", "prior_kwargs": {"ratio_epochs": 2, "ratio_hidden": (16,)}}}
EXPECTED = {"vfae": "mmd", "beta-cvae": "task_kl", "proposed": "ratio_accuracy"}


@pytest.mark.parametrize("likelihood", ["bernoulli", "student-t"])
@pytest.mark.parametrize("name", list(MODELS))
def test_chapter5_models_train(name, likelihood):
    data = two_task_data(binary=likelihood == "bernoulli")
    train, val, test = data.splits(seed=0)
    trained, result = train_vae(train, val, likelihood=likelihood, latent_dim=2, hidden=(16,), n_tasks=2,
                                dropout=0.1, train=TrainConfig(epochs=2, batch_size=24, lr=1e-3, patience=None),
                                **MODELS[name])
    assert result.epochs_run == 2 and not result.diverged
    assert all(r[EXPECTED[name]] is not None for r in result.history)
    metrics = representation_metrics(trained, test, labelled_rows(train, None), None, n_samples=4)
    assert np.isfinite(metrics["test_log_likelihood"])
    assert 0 <= metrics["active_units"] <= 2 and 0 <= metrics["knn_accuracy"] <= 1
    assert metrics["task_mutual_information"] >= 0


def test_representation_metrics_show_bars_over_importance_sampling_and_knn(capsys):
    train, val, test = two_task_data().splits(seed=0)
    trained, _ = train_vae(train, val, likelihood="student-t", latent_dim=2, hidden=(8,), n_tasks=2,
                           train=TrainConfig(epochs=1, batch_size=24, patience=None))
    capsys.readouterr()
    representation_metrics(trained, test, labelled_rows(train, None), None, n_samples=2, progress=True)
    err = capsys.readouterr().err
    assert "log p(x), K=2" in err and "3-NN" in err
    representation_metrics(trained, test, labelled_rows(train, None), None, n_samples=2)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------- the aggregated posterior
def test_ancestral_sampling_weights_tasks_by_their_share_or_equally():
    s = torch.tensor([0] * 90 + [1] * 10)
    loc = torch.where(s[:, None] == 1, 10.0, -10.0).expand(100, 2).contiguous()
    scale = torch.full((100, 2), 1e-3)
    torch.manual_seed(0)
    for weights, share in (("data", 0.1), ("equal", 0.5)):
        prior = ImplicitOptimalPrior(2, task_weights=weights)
        w = prior.row_weights(s)
        z = prior._ancestral(loc, scale, 20_000, w)
        assert float((z[:, 0] > 0).float().mean()) == pytest.approx(share, abs=0.015)
    with pytest.raises(ConfigError, match="task_weights"):
        ImplicitOptimalPrior(2, task_weights="uniform")


def test_equal_task_weights_through_the_classifier_phase():
    data = two_task_data()
    x = torch.from_numpy(data.x[:100])
    s = torch.from_numpy(np.r_[np.zeros(90), np.ones(10)].astype(np.int64))
    for weights in ("data", "equal"):
        model = VAE(6, 2, "bernoulli", hidden=(8,), n_tasks=2, prior="implicit",
                    prior_kwargs={"ratio_epochs": 1, "ratio_hidden": (8,), "task_weights": weights})
        model.prior.observe(model.loss(x, s).posterior, s)  # the trainer's step: each row's posterior, its task
        model.prior.fit_auxiliary(x, s)
        loc, _, w = model.prior._snapshot
        assert torch.equal(loc, model.prior._posteriors[0][0]) and torch.equal(model.prior._posteriors[0][2], s)
        if weights == "data":
            assert w is None  # uniform rows: task k has weight N_k / N (Eq. 5.8)
        else:
            assert float(w[s == 0].sum()) == pytest.approx(0.5) and float(w[s == 1].sum()) == pytest.approx(0.5)
        assert model.prior.sample(5).shape == (5, 2)


def test_ratio_dropout_on_the_last_hidden_layer_only():
    count = lambda net: sum(isinstance(m, torch.nn.Dropout) for m in net.modules())
    assert count(DensityRatioNet(4, (8, 8), 0.5)) == 2
    assert count(DensityRatioNet(4, (8, 8), 0.5, last_only=True)) == 1


# -------------------------------------------------------------------------------------------- data: parsers
def test_usps_libsvm_parser():
    lines = ["3 1:-1 2:1 256:0", "10 5:1"]
    out = tr.parse_usps_libsvm(bz2.compress("\n".join(lines).encode()))
    assert out["x"].shape == (2, 16, 16) and out["y"].tolist() == [2, 9]
    flat = out["x"].reshape(2, -1)
    assert flat[0, 0] == 0.0 and flat[0, 1] == 1.0 and flat[0, 255] == 0.5 and flat[1, 4] == 1.0
    with pytest.raises(DataError, match="LIBSVM"):
        tr.parse_usps_libsvm(b"11 1:0")



def test_a_usps_h5_placed_by_hand_is_read_instead_of_fetching(tmp_path, monkeypatch):
    """parse_usps_h5 was documented (docs/chapter5.md) but nothing called it: a usps.h5 in VAEKIT_DATA was ignored."""
    (tmp_path / "usps.h5").write_bytes(b"h5")
    y = np.concatenate([np.repeat(np.arange(10), tr.USPS_TRAIN_COUNTS), np.zeros(2007, dtype=int)]).astype(np.int8)
    monkeypatch.setattr(tr.sources, "find_file", lambda name: tmp_path / name if name == "usps.h5" else None)
    monkeypatch.setattr(tr.sources, "fetch", lambda url: pytest.fail(f"fetched {url}"))
    monkeypatch.setattr(tr, "parse_usps_h5", lambda payload: {"x": np.zeros((9298, 16, 16), np.float32), "y": y})
    monkeypatch.setattr(tr, "_h5py_available", lambda: True)
    arrays = tr.download_usps()
    assert arrays["x"].shape == (9298, 16, 16) and arrays["y"].tolist() == y.tolist()
    # without h5py the file is passed over (with a warning) for LIBSVM's files, not a dead end
    monkeypatch.setattr(tr, "_h5py_available", lambda: False)
    asked = []
    monkeypatch.setattr(tr, "_raw_or_fetch", lambda name, filename, url: asked.append(filename) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        tr.download_usps()
    assert asked == ["usps.bz2"]


def mat_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    savemat(buffer, arrays)
    return buffer.getvalue()


def test_svhn_olivetti_umist_parsers():
    rgb = np.zeros((32, 32, 3, 2), np.uint8)
    rgb[:, :, 1, :] = 255  # pure green (X is [32, 32, 3, N]): luma 0.587
    out = tr.parse_svhn_mat(mat_bytes(X=rgb, y=np.array([[10], [3]])))
    assert out["x"].shape == (2, 32, 32) and out["y"].tolist() == [0, 3]
    assert out["x"][0, 0, 0] == round(0.587 * 255)
    image = np.arange(64 * 64).reshape(64, 64) % 256
    faces = np.stack([image.flatten(order="F")] * 20, 1).astype(float)  # columns are column-major images
    olivetti = tr.parse_olivetti(mat_bytes(faces=faces))
    assert olivetti["x"].shape == (20, 64, 64) and np.array_equal(olivetti["x"][0], image)
    assert olivetti["y"].tolist() == [0] * 10 + [1] * 10
    cells = np.empty((1, 2), dtype=object)
    cells[0, 0], cells[0, 1] = np.zeros((112, 92, 3), np.uint8), np.ones((112, 92, 2), np.uint8)
    umist = tr.parse_umist(mat_bytes(facedat=cells))
    assert umist["x"].shape == (5, 112, 92) and umist["y"].tolist() == [0, 0, 0, 1, 1]


def test_missing_files_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    for name, filename in (("svhn", "svhn.npz"), ("synthdigits", "synthdigits.npz"), ("umist", "umist.npz"),
                           ("usps", "usps.npz")):
        with pytest.raises(DatasetNotFoundError, match=filename):
            load_dataset(name)
    with pytest.raises(DatasetNotFoundError, match="usps.npz"):
        load_dataset("usps->digits")
    with pytest.raises(DatasetNotFoundError, match="no stable public download"):
        tr.download_cropped_digits("synthdigits", "synth_train_32x32.mat", "synth_test_32x32.mat", None)


# ------------------------------------------------------------------------------------------ data: real files
def test_digits_shapes_and_binarisation():
    data = load_dataset("digits")
    assert data.x.shape == (1797, 784) and data.split == (1000, 297, 500) and data.binary
    train, val, test = data.splits()
    assert train.x.min() >= 0 and train.x.max() <= 1 and not np.isin(train.x, (0, 1)).all()  # grey: dynamic
    assert np.isin(val.x, (0, 1)).all() and np.isin(test.x, (0, 1)).all()
    assert data.meta["batch_transform"] is not None and data.meta["image_shape"] == (28, 28)


def test_usps_and_faces_shapes(data_dir):
    usps = load_dataset("usps")
    assert usps.x.shape == (9298, 784) and usps.split == (6438, 1000, 1860)
    assert np.isin(usps.splits()[2].x, (0, 1)).all() and usps.y is not None
    faces = load_dataset("freyfaces+olivetti")
    assert faces.x.shape[1] == 560 and faces.split == (1715, 300, 350)
    assert faces.meta["tasks"] == ["freyfaces", "olivetti"] and set(faces.s.tolist()) == {0, 1}
    assert 0.0 <= faces.x.min() and faces.x.max() <= 1.0 and not faces.binary


def test_transfer_protocol_and_knn_use_only_the_100_target_labels(data_dir):
    data = tr.transfer_dataset("digits", "mnist", seed=3, max_val=50, max_test=200)
    train, val, test = data.splits()
    assert len(train) == 1297 + 100 and (train.s == 1).sum() == 100 and set(val.s.tolist()) == {1}
    assert (test.s == 1).sum() == 200 and (test.s == 0).sum() == 200  # target test, then source test
    other = tr.transfer_dataset("digits", "mnist", seed=4, max_val=50, max_test=200)
    assert not np.array_equal(train.x[train.s == 1], other.splits()[0].x[other.splits()[0].s == 1])
    labelled = labelled_rows(train, 1)
    assert len(labelled) == 100 and set(labelled.s.tolist()) == {1}
    trained, _ = train_vae(train, val, likelihood="bernoulli", latent_dim=4, hidden=(32,), n_tasks=2,
                           train=TrainConfig(epochs=1, patience=None))
    base = representation_metrics(trained, test, labelled, 1, n_samples=2)
    assert base["n_labelled"] == 100 and base["n_test"] == 200
    # every label but the 100 labelled target rows (and the scored test rows) can change without effect
    scrambled = test.subset(np.arange(len(test)))
    scrambled.y = np.where(scrambled.s == 0, 0, scrambled.y)
    assert representation_metrics(trained, scrambled, labelled, 1, n_samples=2)["knn_accuracy"] == base["knn_accuracy"]
    relabelled = labelled.subset(np.arange(100))
    relabelled.y = (relabelled.y + 1) % 10
    assert representation_metrics(trained, test, relabelled, 1, n_samples=2)["knn_accuracy"] != base["knn_accuracy"]


# ------------------------------------------------------------------------------------------------------- CLI
def test_cli_fit_conditional_and_evaluate_task_metrics(tmp_path, capsys):
    data = two_task_data(n=200)
    path = tmp_path / "tasks.npz"
    np.savez(path, x=data.x, y=data.y, s=data.s)
    out = tmp_path / "run"
    code = main(["fit", "--data", str(path), "--likelihood", "bernoulli", "--latent-dim", "2", "--hidden", "8",
                 "--epochs", "2", "--batch-size", "20", "--importance-samples", "3", "--mmd-alpha", "1",
                 "--task-latent-dim", "2", "--target-task", "1", "--out", str(out), "--json"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and summary["model"]["n_tasks"] == 2 and summary["model"]["mmd_alpha"] == 1.0
    assert summary["model"]["task_latent_dim"] == 2
    code = main(["evaluate", str(out), "--data", str(path), "--importance-samples", "3", "--json"])
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and metrics["target_task"] == 1
    for key in ("test_log_likelihood", "active_units", "task_mutual_information"):
        assert metrics[key] is not None
    assert metrics["n_test"] == 100  # the target task's rows only
    # no task column: --conditional fails with one clear line
    np.savez(tmp_path / "plain.npz", x=data.x)
    code = main(["fit", "--data", str(tmp_path / "plain.npz"), "--likelihood", "bernoulli", "--conditional",
                 "--epochs", "1", "--out", str(tmp_path / "r2")])
    assert code == 2 and "no task indices" in capsys.readouterr().err


def test_decode_feeds_z_with_the_task_one_hot_or_zeta_to_the_decoder():
    """p(x|z, s) is the decoder on [z, onehot(s)] (CVAE, Eq. 5.3), broadcast over leading sample dimensions, and
    p(x|z, zeta) the decoder on [z, zeta] (beta-CVAE, Eq. 5.33). Mutations caught (issue 13's mutation run): z,
    the task one-hot, its row count or zeta not passed on."""
    torch.manual_seed(0)
    cvae = VAE(3, 2, hidden=(8,), n_tasks=3)
    z, s = torch.randn(4, 5, 2), torch.tensor([0, 2, 1, 2, 0])
    with torch.no_grad():
        mean = cvae.decode(z, s).base_dist.loc
        onehot = torch.nn.functional.one_hot(s, 3).float().expand(4, 5, 3)
        expected = cvae.likelihood(cvae.decoder_body(torch.cat([z, onehot], -1))).base_dist.loc
    torch.testing.assert_close(mean, expected)
    with pytest.raises(DataError, match="got 4 task indices for 5 rows"):
        cvae.decode(z, s[:4])
    beta = VAE(3, 2, hidden=(8,), n_tasks=2, task_latent_dim=2)
    zeta = torch.randn(5, 2)
    with torch.no_grad():
        expected = beta.likelihood(beta.decoder_body(torch.cat([z[0], zeta], -1))).base_dist.loc
        torch.testing.assert_close(beta.decode(z[0], zeta=zeta).base_dist.loc, expected)
    with pytest.raises(ConfigError, match="needs the task-specific latent zeta"):
        beta.decode(z[0])


# ------------------------------------------------------------------------------ vaekit.fit and the task indices
TINY = dict(latent_dim=2, hidden=(4,), epochs=1, batch_size=20, importance_samples=2)


def test_fit_warns_when_task_indices_would_be_ignored(caplog):
    from vaekit import fit

    with caplog.at_level("WARNING", logger="vaekit.fitting"):
        trained, _ = fit(two_task_data(), **TINY)
    assert trained.model.config.n_tasks == 0
    assert "n_tasks=2" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="vaekit.fitting"):
        trained, _ = fit(two_task_data(), n_tasks=0, **TINY)  # the VAE baseline, on purpose
    assert trained.model.config.n_tasks == 0 and "n_tasks" not in caplog.text


def test_fit_conditions_the_vfae_and_beta_cvae_on_every_task_of_the_data():
    from vaekit import fit

    assert fit(two_task_data(), mmd_alpha=1.0, **TINY)[0].model.config.n_tasks == 2
    assert fit(two_task_data(), task_latent_dim=1, **TINY)[0].model.config.n_tasks == 2


def test_fit_refuses_task_conditioning_the_data_cannot_feed():
    from vaekit import fit

    plain = two_task_data()
    plain.s = None
    with pytest.raises(ConfigError, match="no task indices"):
        fit(plain, n_tasks=2, **TINY)
    three = two_task_data()
    three.s = np.arange(len(three.x)) % 3
    with pytest.raises(ConfigError, match="pass n_tasks=3"):
        fit(three, n_tasks=2, **TINY)


def test_detect_refuses_a_task_conditioned_fit_run_and_names_the_command_that_scores_it(tmp_path, capsys):
    data = two_task_data(binary=False)
    np.savez(tmp_path / "tasks.npz", x=data.x, s=data.s)
    assert main(["fit", "--data", str(tmp_path / "tasks.npz"), "--mmd-alpha", "1", "--latent-dim", "2", "--hidden",
                 "4", "--epochs", "1", "--batch-size", "20", "--importance-samples", "2", "--out",
                 str(tmp_path / "vfae")]) == 0
    capsys.readouterr()
    assert main(["detect", "--model", str(tmp_path / "vfae"), "--data", str(tmp_path / "tasks.npz")]) == 2
    assert "conditioned on 2 tasks" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "vfae"), "--data", str(tmp_path / "tasks.npz"), "--json"]) == 0


def test_evaluate_says_why_a_target_task_or_the_knn_accuracy_is_missing(tmp_path, capsys):
    data = two_task_data(binary=False)
    np.savez(tmp_path / "tasks.npz", x=data.x, s=data.s, y=data.y)
    assert main(["fit", "--data", str(tmp_path / "tasks.npz"), "--conditional", "--latent-dim", "2", "--hidden", "4",
                 "--epochs", "1", "--batch-size", "20", "--importance-samples", "2", "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run"), "--target-task", "5", "--importance-samples", "2"]) == 2
    assert "task 5 has no rows" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "run"), "--knn-neighbours", "500", "--importance-samples", "2",
                 "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["knn_accuracy"] is None and "500-NN needs at least 500 labelled rows" in result["knn_accuracy_note"]
    assert "no kNN accuracy" in err and "tasks.npz (test split): test log-likelihood" in err  # the rows, named


def test_representation_metrics_explain_a_task_with_a_single_evaluated_row():
    """Reviewer-found: one row of a task made I(S;Z) raise (a traceback from vaekit evaluate --test-subsample)."""
    data = two_task_data(binary=False)
    trained, _ = train_vae(data, None, likelihood="gaussian", latent_dim=2, hidden=(4,),
                           train=TrainConfig(epochs=1, batch_size=20), n_tasks=2)
    rows = np.r_[np.flatnonzero(data.s == 0)[:5], np.flatnonzero(data.s == 1)[:1]]
    metrics = representation_metrics(trained, data.subset(rows), None, None, n_samples=2)
    assert metrics["task_mutual_information"] is None
    assert "the rarest has 1" in metrics["task_mutual_information_note"]
    rows = np.r_[np.flatnonzero(data.s == 0)[:5], np.flatnonzero(data.s == 1)[:2]]
    assert representation_metrics(trained, data.subset(rows), None, None, n_samples=2)["task_mutual_information"] >= 0


def test_the_beta_cvae_reconstructs_and_gives_mean_samples_like_every_conditioned_model():
    """Reviewer-found orthogonality gap: reconstruct and sample(mean=True) refused the beta-CVAE; its condition
    now gives E[zeta|x, s] for reconstruction and zeta ~ p(zeta|s) for samples, as the CVAE gives its one-hot."""
    data = two_task_data(binary=False)
    for options in ({"n_tasks": 2}, {"n_tasks": 2, "task_latent_dim": 2}):
        trained, _ = train_vae(data, None, likelihood="gaussian", latent_dim=2, hidden=(8,),
                               train=TrainConfig(epochs=2, batch_size=20), **options)
        rec = trained.reconstruct(data.x[:5], data.s[:5])
        assert rec.shape == (5, data.x.shape[1]) and np.isfinite(rec).all()
        np.testing.assert_array_equal(rec, trained.reconstruct(data.x[:5], data.s[:5]))  # no draw involved
        means = trained.sample(4, 1, mean=True, seed=3)
        assert means.shape == (4, data.x.shape[1]) and np.array_equal(means, trained.sample(4, 1, mean=True, seed=3))
    model = trained.model
    x, s = torch.as_tensor(data.x[:3]), torch.as_tensor(data.s[:3])
    zeta_mean = model.task_latent.encoder(torch.cat([x, torch.nn.functional.one_hot(s, 2).float()], -1)).mean
    z = torch.zeros(3, 2)
    expected = model._decode_with(z, zeta_mean).mean
    torch.testing.assert_close(model.reconstruction(x, z, s).mean, expected)


def test_a_plain_vae_trains_on_data_whose_task_codes_are_sparse(tmp_path, capsys):
    """Reviewer-found regression: the task-count check (recode sparse codes) ran for unconditioned models too, so
    `vaekit fit --task-column year` with years 2019/2020 stopped; only conditioned models need 0..K-1 codes."""
    data = two_task_data(binary=False)
    rows = "a,b,c,d,e,f,year\n" + "".join(",".join(f"{v:.4f}" for v in x) + f",{2019 + s}\n"
                                          for x, s in zip(data.x, data.s))
    (tmp_path / "years.csv").write_text(rows)
    tiny = ["--latent-dim", "2", "--hidden", "4", "--epochs", "1", "--batch-size", "20", "--importance-samples", "2"]
    assert main(["fit", "--data", str(tmp_path / "years.csv"), "--task-column", "year", *tiny, "--out",
                 str(tmp_path / "run")]) == 0
    assert main(["fit", "--data", str(tmp_path / "years.csv"), "--task-column", "year", "--conditional", *tiny,
                 "--out", str(tmp_path / "cvae")]) == 2
    assert "recode them" in capsys.readouterr().err
