"""Generative runs end to end: autoencoders on tables and images, VAE and GAN sampling, anomaly
scores, embeddings, the CLI commands and their bad-input sentences."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import dlpipe as dl
from dlpipe.cli.app import main
from dlpipe.core.errors import BundleError, DlpipeWarning, InvalidConfigError, RunFailedError
from dlpipe.data.arrays import ArrayDataset, load_digits_images
from dlpipe.data.splits import split_indices
from dlpipe.pipeline._fit_generative import GANTrainer
from dlpipe.pipeline.generative import embed, sample, score_anomalies

QUIET = {"progress": "quiet"}


@pytest.fixture(scope="module")
def digits_small():
    ds = load_digits_images()
    return ArrayDataset(ds.x[:400], ds.y[:400], name="digits400")


@pytest.mark.slow
def test_table_autoencoder_run_folder_embeddings_and_anomaly_scores():
    run = dl.train(
        "breast_cancer",
        task="reconstruction",
        model={"family": "autoencoder", "latent": 4},
        epochs=3,
        save=False,
        **QUIET,
    )
    m = json.loads(json.dumps(run.metrics))  # what metrics.json holds
    assert m["task"] == "reconstruction" and m["model_family"] == "autoencoder"
    assert set(m["test"]["baselines"]) == {"mean", "pca"}
    assert m["anomaly"]["positive"].startswith(
        "the rarest training label"
    )  # both classes were trained on
    # The run's ROC-AUC is the bundle's anomaly score on the test rows (the same split the run made),
    # malignant (the rarer label) as positive; trained on both classes for 3 epochs it still ranks
    # malignant rows higher: 0.66 / 0.80 / 0.65 on seeds 0-2 (PCA's error 0.53 / 0.64 / 0.56).
    frame = dl.datasets.load("breast_cancer").frame
    _, _, test_rows = split_indices(
        len(frame),
        val_fraction=run.config["data"]["val_fraction"],
        test_fraction=run.config["data"]["test_fraction"],
        seed=run.config["seed"],
        stratify=pd.factorize(frame["target"])[0],
    )
    assert len(test_rows) == m["test"]["rows"]
    _, on_test = score_anomalies(run.bundle, frame.iloc[test_rows])
    assert on_test["positive"] == m["anomaly"]["positive"]
    assert m["anomaly"]["roc_auc"] == pytest.approx(on_test["roc_auc"], abs=1e-9)
    assert m["anomaly"]["roc_auc"] >= 0.6, m["anomaly"]
    # the codes separate the classes (kNN, k=5): 0.92 / 0.93 / 0.95 on seeds 0-2; one class is 0.63
    assert m["embedding"]["knn_accuracy"] >= 0.85, m["embedding"]
    assert {"plots/anomaly_scores.png", "plots/embeddings_pca.png"} <= set(
        run.extras["files"]
    )  # written into the run folder
    run.bundle.save("bundle")
    z = embed("bundle", frame.head(10))
    assert z.shape == (10, 4) and list(z.columns) == ["z0", "z1", "z2", "z3"]
    scored, summary = score_anomalies("bundle", frame, contamination=0.1)
    assert scored.shape == (len(frame), 2) and "roc_auc" in summary
    assert (
        summary["threshold"]
        < score_anomalies(run.bundle, frame, threshold_percentile=99.5)[1]["threshold"]
    )


@pytest.mark.slow
def test_benign_only_autoencoder_flags_malignant_rows():
    from sklearn.model_selection import train_test_split

    frame = dl.datasets.load("breast_cancer").frame
    tr, te = train_test_split(frame, test_size=0.3, stratify=frame["target"], random_state=0)
    run = dl.train(
        tr[tr["target"] == "benign"],
        "target",
        task="reconstruction",
        model={"family": "autoencoder", "latent": 8},
        test_fraction=0.0,
        save=False,
        **QUIET,
    )
    _, summary = score_anomalies(run.bundle, te)
    assert summary["positive"] == "labels not seen in training: malignant"
    assert summary["roc_auc"] >= 0.90
    assert summary["precision"] > 0.7


@pytest.mark.slow
def test_latent_as_wide_as_the_table_warns():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    with pytest.warns(
        DlpipeWarning, match=r"`latent` is 3 but the input has only 3 values.*learn the identity"
    ):
        dl.train(
            frame,
            task="reconstruction",
            model={"family": "autoencoder", "latent": 3},
            epochs=1,
            save=False,
            **QUIET,
        )


@pytest.mark.slow
def test_cli_train_embed_anomalies_and_bad_input(tmp_path, capsys):
    frame = dl.datasets.load("breast_cancer").frame.drop(columns=["target"])
    frame.to_csv("data.csv", index=False)
    assert (
        main(
            [
                "train",
                "data.csv",
                "--task",
                "reconstruction",
                "--model",
                "autoencoder",
                "--latent",
                "8",
                "--epochs",
                "2",
                "-o",
                "runs/ae",
                "-q",
                "--no-checkpoint",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "reconstruction_error" in out and "pca" in out
    assert main(["embed", "runs/ae/bundle", "data.csv", "-o", "emb.csv"]) == 0
    assert pd.read_csv("emb.csv").shape == (len(frame), 8)
    assert (
        main(
            [
                "anomalies",
                "runs/ae/bundle",
                "data.csv",
                "-o",
                "scored.csv",
                "--contamination",
                "0.01",
            ]
        )
        == 0
    )
    scored = pd.read_csv("scored.csv")
    assert list(scored.columns) == ["score", "anomaly"] and scored["anomaly"].dtype == bool
    capsys.readouterr()
    frame.drop(columns=["mean radius", "worst area"]).to_csv("other.csv", index=False)
    assert main(["anomalies", "runs/ae/bundle", "other.csv"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: input is missing the columns mean radius, worst area")
        and "Traceback" not in err
    )
    assert (
        main(
            [
                "anomalies",
                "runs/ae/bundle",
                "data.csv",
                "--contamination",
                "0.01",
                "--threshold-percentile",
                "99",
            ]
        )
        == 2
    )
    assert "either `--contamination` or `--threshold-percentile`" in capsys.readouterr().err
    assert main(["sample", "runs/ae/bundle", "-n", "4", "-o", "s.png"]) == 2
    assert "needs a model that can sample" in capsys.readouterr().err
    assert not (tmp_path / "s.png").exists()


@pytest.mark.slow
def test_sample_on_a_classifier_bundle_is_refused(capsys):
    run = dl.train("iris", epochs=2, save=False, **QUIET)
    run.bundle.save("clf")
    assert main(["sample", "clf", "-n", "8", "-o", "s.png"]) == 2
    err = capsys.readouterr().err
    assert (
        "`sample` needs a generative bundle (an autoencoder, VAE or GAN), but this bundle holds a multiclass 'mlp' model"
        in err
    )
    with pytest.raises(BundleError, match="`embed` needs a generative bundle"):
        embed(run.bundle, dl.datasets.load("iris").frame)


@pytest.mark.slow
def test_digits_vae_samples_interpolations_and_cli_sample(digits_small, capsys):
    run = dl.train(
        digits_small,
        task="generate",
        model={"family": "vae", "latent": 4, "kl_anneal": 2},
        epochs=3,
        out="runs/vae",
        **QUIET,
    )
    assert run.bundle.kind == "arrays"
    assert [r["kl_weight"] for r in run.history.records] == [0.0, 0.5, 1.0]
    plots = {p.name for p in (run.path / "plots").glob("*.png")}
    assert {
        "samples.png",
        "interpolations.png",
        "reconstructions.png",
        "embeddings_pca.png",
    } <= plots
    report = run.report().read_text()  # the reports hook adds the generative figures
    assert ">Samples<" in report and ">Embeddings<" in report and "could not be built" not in report
    gen = run.metrics["generation"]
    assert gen["model"] > 0 and gen["independent_noise"] > 0
    x = sample(run.path / "bundle", 16, seed=1)
    assert x.shape == (16, 1, 8, 8) and 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_allclose(
        x, sample(run.path / "bundle", 16, seed=1)
    )  # same seed, same samples
    assert main(["sample", str(run.path / "bundle"), "-n", "9", "-o", "grid.png"]) == 0
    from PIL import Image

    with Image.open("grid.png") as im:
        assert im.size[0] > 8 * 3


@pytest.mark.slow
def test_conv_autoencoder_with_unpooling_on_images(digits_small):
    run = dl.train(
        digits_small,
        task="reconstruction",
        model={"family": "autoencoder", "latent": 2, "decoder": "unpool"},
        epochs=2,
        save=False,
        **QUIET,
    )
    assert run.bundle.manifest["model_spec"]["family"] == "conv_autoencoder"
    assert run.bundle.manifest["generative"]["loss"] == "bce"  # images in [0, 1]: BCE on logits
    # The run's kNN accuracy (k=5) is that of the bundle's codes: fitted on the training images'
    # codes, scored on the test images' (the split the run made), and its baselines likewise. Codes
    # of an unpooling decoder's encoder stay near chance (0.11-0.23 after 2-40 epochs, against 0.73
    # for PCA's 2 components): the pooling indices carry the image, so the check is the equality.
    from sklearn.decomposition import PCA
    from sklearn.neighbors import KNeighborsClassifier

    x, y = digits_small.x, digits_small.y  # pixels in [0, 1]: the bundle's scale is 1
    train_rows, _, test_rows = split_indices(
        len(x),
        val_fraction=run.config["data"]["val_fraction"],
        test_fraction=run.config["data"]["test_fraction"],
        seed=run.config["seed"],
        stratify=pd.factorize(y)[0],
    )
    assert len(test_rows) == run.metrics["rows"]["test"]

    def knn(train, test):
        return (
            KNeighborsClassifier(n_neighbors=5).fit(train, y[train_rows]).score(test, y[test_rows])
        )

    codes = {k: embed(run.bundle, x[rows]) for k, rows in (("tr", train_rows), ("te", test_rows))}
    flat_tr, flat_te = (
        x[train_rows].reshape(len(train_rows), -1),
        x[test_rows].reshape(len(test_rows), -1),
    )
    pca = PCA(n_components=2, random_state=0).fit(flat_tr)
    reported = run.metrics["embedding"]
    assert reported["knn_accuracy"] == pytest.approx(knn(codes["tr"], codes["te"]), abs=1e-9)
    assert reported["baselines"]["pca2"]["knn_accuracy"] == pytest.approx(
        knn(pca.transform(flat_tr), pca.transform(flat_te)), abs=1e-9
    )
    assert reported["baselines"]["raw_inputs"]["knn_accuracy"] == pytest.approx(
        knn(flat_tr, flat_te), abs=1e-9
    )
    assert run.bundle.manifest["preprocessor"]["scale"] == 1.0  # the fixture's pixels are in [0, 1]
    assert codes["te"].shape == (len(test_rows), 2)


@pytest.mark.slow
def test_recurrent_autoencoder_scores_windows():
    t = np.linspace(0, 20, 24)
    rng = np.random.default_rng(0)
    x = np.stack([np.sin(t + p)[:, None] for p in rng.uniform(0, 6, 80)]).astype(np.float32)
    ds = ArrayDataset(x, name="waves", modality="sequence")
    run = dl.train(
        ds,
        task="reconstruction",
        model={"family": "autoencoder", "latent": 3},
        epochs=2,
        save=False,
        **QUIET,
    )
    assert run.bundle.manifest["model_spec"]["family"] == "recurrent_autoencoder"
    scored, _ = score_anomalies(run.bundle, np.concatenate([x[:3], 5 * x[:3]]))
    assert (
        scored["score"].iloc[3:].min() > scored["score"].iloc[:3].max()
    )  # amplified windows score higher


@pytest.mark.slow
def test_cli_train_generate_from_npz_with_a_gan(tmp_path, digits_small):
    np.savez("digits.npz", x=(digits_small.x[:192, 0] * 255).astype(np.uint8))
    assert (
        main(
            [
                "train",
                "digits.npz",
                "--task",
                "generate",
                "--model",
                "gan",
                "--epochs",
                "2",
                "-o",
                "runs/gan",
                "-q",
                "--no-checkpoint",
            ]
        )
        == 0
    )
    m = json.loads((tmp_path / "runs/gan/metrics.json").read_text())
    assert m["model_family"] == "gan" and {"d_loss", "g_loss"} <= set(
        pd.read_csv(tmp_path / "runs/gan/history.csv").columns
    )
    assert (tmp_path / "runs/gan/plots/samples_epoch_0001.png").is_file()
    assert (
        main(["sample", "runs/gan/bundle", "-n", "8", "-o", "g.png"]) == 0
        and (tmp_path / "g.png").is_file()
    )


class _Poison:
    """Sets a generator weight to NaN after epoch 2, so epoch 3's losses are NaN."""

    def __init__(self, g):
        self.g = g

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch == 2:
            with torch.no_grad():
                next(self.g.parameters()).fill_(float("nan"))


def test_gan_that_goes_nan_stops_and_keeps_the_last_good_generator(digits_small):
    from dlpipe.models.registry import build_model

    spec = {"family": "gan", "arch": "dcgan", "latent": 8, "shape": [1, 8, 8], "width": 8}
    g, d = build_model(spec), build_model({**spec, "family": "gan_discriminator"})
    trainer = GANTrainer(epochs=5, batch_size=64, callbacks=[_Poison(g)])
    with pytest.warns(
        DlpipeWarning,
        match=r"GAN losses became NaN at epoch 3.*generator from epoch 2, the last good one, was kept",
    ):
        history = trainer.fit(g, d, torch.from_numpy(digits_small.x[:128]) * 2 - 1, 8)
    assert len(history) == 2 and history.stopped_epoch == 3
    assert all(torch.isfinite(p).all() for p in g.parameters())
    g.eval()
    assert torch.isfinite(g(torch.randn(4, 8))).all()


def test_gan_that_is_nan_from_the_start_fails_in_one_sentence():
    from dlpipe.models.registry import build_model

    spec = {"family": "gan", "arch": "mlp", "latent": 4, "shape": [3], "hidden": [8]}
    g, d = build_model(spec), build_model({**spec, "family": "gan_discriminator"})
    x = torch.full((64, 3), float("nan"))
    with pytest.raises(RunFailedError, match="GAN losses became NaN in the first epoch"):
        GANTrainer(epochs=2, batch_size=32).fit(g, d, x, 4)


def test_bad_task_and_model_pairs(digits_small):
    with pytest.raises(
        InvalidConfigError,
        match="task='generate' needs a model that can sample, but 'autoencoder' only reconstructs",
    ):
        dl.train(
            digits_small,
            task="generate",
            model={"family": "autoencoder"},
            epochs=1,
            save=False,
            **QUIET,
        )
    with pytest.raises(
        InvalidConfigError, match="task='reconstruction' needs an encoder, which a GAN lacks"
    ):
        dl.train(
            digits_small,
            task="reconstruction",
            model={"family": "gan"},
            epochs=1,
            save=False,
            **QUIET,
        )
    with pytest.raises(
        InvalidConfigError, match="array data trains generative models only, but `task` is 'auto'"
    ):
        dl.train(digits_small, epochs=1, save=False, **QUIET)


@pytest.mark.slow
def test_image_folder_trains_a_vae_through_the_images_loader(tmp_path, digits_small):
    from PIL import Image

    for i in range(40):
        folder = tmp_path / "digits" / str(int(digits_small.y[i]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((digits_small.x[i, 0] * 255).astype(np.uint8)).save(folder / f"{i}.png")
    run = dl.train(
        str(tmp_path / "digits"),
        task="generate",
        model={"family": "vae", "latent": 2},
        epochs=1,
        save=False,
        **QUIET,
    )
    assert run.bundle.kind == "arrays" and run.bundle.manifest["preprocessor"]["shape"] == [1, 8, 8]
    assert sample(run.bundle, 4).shape == (4, 1, 8, 8)


def test_predict_and_evaluate_on_an_autoencoder_bundle_say_what_to_use():
    from dlpipe.core.errors import InvalidInputError

    run = dl.train(
        "breast_cancer",
        task="reconstruction",
        model={"family": "autoencoder", "latent": 4},
        epochs=1,
        save=False,
        **QUIET,
    )
    frame = dl.datasets.load("breast_cancer").frame.head(5)
    with pytest.raises(InvalidInputError, match=r"task is 'reconstruction'.*use `dlpipe embed`"):
        run.bundle.predict(frame)
    with pytest.raises(InvalidInputError, match=r"no labels or values to evaluate"):
        run.bundle.evaluate(frame)


def test_gan_learning_rate_is_dcgans_unless_one_was_given():
    from dlpipe.core.config import build_config
    from dlpipe.pipeline._fit_generative import GANRecipe
    from dlpipe.pipeline.settings import resolve_settings

    def rate(layer):
        return resolve_settings(build_config(layer), GANRecipe(), 300).learning_rate

    assert rate({}) == 2e-4  # the shared 1e-3 default is not a choice
    assert rate({"learning_rate": 1e-3}) == 1e-3  # given, even if equal to the default
    assert rate({"train": {"learning_rate": 5e-4}}) == 5e-4
    assert rate({"learning_rate": "auto"}) == 2e-4  # no range test for two losses
