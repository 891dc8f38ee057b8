"""Images end to end: the seed exercises, an image folder through the CLI, transfer learning, bad input."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import dlpipe as dl
from dlpipe.cli.app import main
from dlpipe.core.errors import DataWarning
from dlpipe.data.images import ImageDataset
from dlpipe.models.registry import build_model


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLPIPE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.uint8), d.target


def _upsampled(images, side=28):
    x = torch.from_numpy(images.astype(np.float32))[:, None]
    up = torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    return (up * (255 / 16)).clamp(0, 255).round().to(torch.uint8).numpy()


def _png_folder(root, images, labels, names):
    for name, wanted in names.items():
        (root / name).mkdir(parents=True)
        for i in np.flatnonzero(labels == wanted):
            Image.fromarray((images[i] * 15).astype(np.uint8), "L").resize((16, 16)).save(
                root / name / f"{i}.png"
            )
    return root


@pytest.mark.slow
def test_digits_default_cnn_reaches_098(digits):
    x, y = digits
    # the image defaults as they are (issue #21): one-cycle to 3e-3 over ~1,500 steps, batch 32 here
    # (45 epochs for 1,078 training images); no tuning arguments, one thread: the same sums everywhere
    run = dl.train(
        ImageDataset(x[:, None], y, name="digits"), threads=1, progress="quiet", save=False
    )
    assert run.config["train"]["schedule"] == "onecycle" and run.metrics["epochs_run"] <= 45
    test = run.metrics["test"]
    assert (
        run.metrics["task"] == "multiclass" and run.bundle.manifest["model_spec"]["family"] == "cnn"
    )
    assert test["model"]["accuracy"] >= 0.98, test["model"]["accuracy"]
    assert (
        test["model"]["accuracy"]
        > test["baselines"]["logistic"]["accuracy"]
        > test["baselines"]["majority"]["accuracy"]
    )
    assert "beats its best baseline" in test["verdict"]


@pytest.mark.slow
def test_seed_mnist_dense_net_with_sgd(digits, tmp_path):
    x, y = digits
    run = dl.train(
        ImageDataset(_upsampled(x[:600]), y[:600]),
        model={"family": "mlp", "hidden": [128, 64], "dropout": 0.0},
        optimizer="sgd",
        learning_rate=0.01,
        momentum=0.9,
        weight_decay=0.0,
        epochs=8,
        progress="quiet",
        out=tmp_path / "r",
    )
    spec = run.bundle.manifest["model_spec"]
    assert spec["family"] == "mlp" and spec["n_numeric"] == 784 and spec["hidden"] == [128, 64]
    assert (
        sum(p.numel() for p in run.bundle.model.parameters())
        == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    )
    assert run.metrics["test"]["model"]["accuracy"] > 0.85
    out = dl.load_bundle(run.path / "bundle").predict(_upsampled(x[:5])[:, 0])  # (5, 28, 28) arrays
    assert out.shape == (5, 11) and list(out["prediction"]) == list(
        run.bundle.predict(_upsampled(x[:5]))["prediction"]
    )


@pytest.mark.slow
def test_seed_cnn(digits):
    x, y = digits
    run = dl.train(
        ImageDataset(_upsampled(x[:500]), y[:500]),
        channels=[32, 64],
        padding="valid",
        batch_norm=False,
        model={"family": "cnn", "hidden": [], "dropout": 0.0},
        epochs=4,
        progress="quiet",
        save=False,
    )
    assert (
        sum(p.numel() for p in run.bundle.model.parameters()) == 34_826
    )  # the seed notes' Keras summary
    assert run.metrics["test"]["model"]["accuracy"] > 0.8


@pytest.mark.slow
def test_three_channel_32px_cnn_and_rgb_predict():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    x = rng.integers(0, 80, (90, 32, 32, 3)).astype(np.uint8)
    x[np.arange(90), :, :, y] += 120  # the class is the dominant colour
    run = dl.train((x, y), epochs=3, progress="quiet", save=False)
    assert (
        run.metrics["image"]["shape"] == [3, 32, 32] and run.metrics["image"]["storage"] == "uint8"
    )
    assert run.metrics["test"]["model"]["accuracy"] > 0.7
    img = Image.fromarray(x[0], "RGB")
    assert run.bundle.predict(img)["prediction"][0] == run.bundle.predict(x[:1])["prediction"][0]


@pytest.mark.slow
def test_image_folder_binary_through_the_cli(digits, tmp_path, capsys):
    x, y = digits
    root = _png_folder(tmp_path / "photos", x, y, {"zero": 0, "one": 1})
    assert (
        main(
            [
                "train",
                str(root),
                "--epochs",
                "4",
                "--augment",
                "crop",
                "-o",
                str(tmp_path / "run"),
                "--quiet",
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (
        metrics["task"] == "binary"
        and metrics["classes"] == ["one", "zero"]
        and metrics["image"]["augment"] == ["crop"]
    )
    assert metrics["test"]["model"]["accuracy"] >= 0.95
    manifest = json.loads((tmp_path / "run" / "bundle" / "manifest.json").read_text())
    assert manifest["kind"] == "image" and manifest["preprocessor"]["color"] == "L"
    one_file = next((root / "zero").glob("*.png"))
    capsys.readouterr()
    assert (
        main(
            [
                "predict",
                str(tmp_path / "run" / "bundle"),
                str(one_file),
                str(root / "one"),
                "-o",
                str(tmp_path / "p.csv"),
            ]
        )
        == 0
    )
    preds = pd.read_csv(tmp_path / "p.csv")
    assert list(preds.columns) == ["path", "prediction", "proba_one", "proba_zero"]
    assert (
        len(preds) == 1 + len(list((root / "one").glob("*.png")))
        and preds["prediction"].iloc[0] == "zero"
    )
    assert (preds["prediction"].iloc[1:] == "one").mean() > 0.9
    scores = dl.evaluate(tmp_path / "run" / "bundle", str(root))
    assert scores["model"]["accuracy"] > 0.9 and "logistic" in scores["baselines"]
    # issue #20: saliency of test images across both classes (integrated gradients that add up), in the report
    att = metrics["attributions"]
    assert att["method"] == "integrated_gradients" and att["completeness_error"] <= 0.01
    with np.load(tmp_path / "run" / "saliency.npz") as z:
        assert set(z["y_true"].tolist()) == {0, 1} and z["attributions"].shape == (8, 16, 16)
    assert 'id="saliency"' in (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    capsys.readouterr()
    out = tmp_path / "why"
    args = ["explain", str(tmp_path / "run" / "bundle"), str(root / "one"), "-o", str(out)]
    args += ["--max-rows", "2"]  # each image costs 65-4097 passes of the model
    assert main(args) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 2 and (out / "items.csv").is_file()
    with Image.open(out / pngs[0]) as overlay:
        assert overlay.size == (16, 16)
    assert "attributions add up" in capsys.readouterr().out
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err  # never replaced silently
    assert main([*args, "--overwrite"]) == 0


@pytest.mark.slow
def test_pretrained_resnet_frozen_then_finetuned(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 32)
    # 8x8 images: the test is about loading, freezing and finetuning, not accuracy, and the run's
    # integrated-gradients saliency of a resnet18 costs ~4x as much at 16x16 (~20 s of ~30 s)
    x = rng.integers(0, 60, (32, 3, 8, 8)).astype(np.uint8)
    x[y == 1, 0] += 150
    torch.manual_seed(5)
    torch.save(
        build_model({"family": "resnet18", "n_outputs": 10}).state_dict(), tmp_path / "imagenet.pth"
    )
    run = dl.train(
        (x, y),
        model={"family": "resnet18"},
        pretrained=str(tmp_path / "imagenet.pth"),
        freeze_backbone=True,
        finetune_epochs=1,
        epochs=2,
        batch_size=16,
        progress="quiet",
        out=tmp_path / "r",
    )
    assert (
        run.metrics["image"]["not_loaded"] == ["fc.weight", "fc.bias"]
        and run.metrics["image"]["finetune"]["epochs"] == 1
    )
    assert len(run.history) == 3 and run.history.records[-1]["phase"] == 2.0
    again = dl.load_bundle(tmp_path / "r" / "bundle")
    np.testing.assert_allclose(
        again.predict(x[:4]).iloc[:, 1:].to_numpy(float),
        run.bundle.predict(x[:4]).iloc[:, 1:].to_numpy(float),
        rtol=1e-5,
    )


@pytest.mark.slow
def test_bf16_precision_option_trains(digits):
    x, y = digits
    run = dl.train(
        ImageDataset(x[:400, None], y[:400]),
        precision="bf16",
        epochs=2,
        progress="quiet",
        save=False,
    )
    assert run.metrics["image"]["precision"] == "bf16" and np.isfinite(
        run.history.records[-1]["loss"]
    )
    assert not any(
        "inner" in k for k in run.bundle.model.state_dict()
    )  # the bundle holds the plain model


def test_grey_bundle_converts_rgb_input_with_a_warning(digits):
    x, y = digits
    run = dl.train(ImageDataset(x[:200, None], y[:200]), epochs=1, progress="quiet", save=False)
    with pytest.warns(DataWarning, match="converted"):
        out = run.bundle.predict(Image.fromarray(np.zeros((8, 8, 3), np.uint8), "RGB"))
    assert len(out) == 1


def _cli_error(args, capsys, tmp_path):
    code = main(["train", *args, "-o", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".run*"))
    return err


def test_bad_inputs_say_one_sentence_and_write_nothing(tmp_path, capsys, digits):
    (tmp_path / "empty").mkdir()
    assert "holds no images in class folders" in _cli_error(
        [str(tmp_path / "empty")], capsys, tmp_path
    )
    x, y = digits
    one = _png_folder(tmp_path / "one", x[:20], y[:20], {"zero": 0})
    assert "single class ('zero')" in _cli_error([str(one)], capsys, tmp_path)
    mixed = _png_folder(tmp_path / "mixed", x[:40], y[:40], {"zero": 0, "one": 1})
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(mixed / "one" / "big.png")
    err = _cli_error([str(mixed), "--no-resize"], capsys, tmp_path)
    assert "resizing is off" in err and "'big.png' is 20x20" in err
    np.savez(tmp_path / "odd.npz", pixels=np.zeros((4, 8, 8)), classes=np.arange(4))
    err = _cli_error([str(tmp_path / "odd.npz"), "--task", "multiclass"], capsys, tmp_path)
    assert "classes, pixels" in err
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04" + b"\x00" * 16)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x00")
    assert "magic number 01020304" in _cli_error(
        [
            str(tmp_path / "train-images-idx3-ubyte"),
            "--labels",
            str(tmp_path / "train-labels-idx1-ubyte"),
        ],
        capsys,
        tmp_path,
    )
    torch.save({"conv1.weight": torch.zeros(3)}, tmp_path / "w.pth")
    err = _cli_error(
        [str(mixed), "--model", "resnet18", "--pretrained", str(tmp_path / "w.pth")],
        capsys,
        tmp_path,
    )
    assert "'conv1.weight'" in err and "has shape (3,)" in err
    err = _cli_error([str(mixed), "--freeze-backbone"], capsys, tmp_path)
    assert "`--freeze-backbone` needs `--pretrained` weights" in err
