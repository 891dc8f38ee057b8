"""Image, sequence and series bundles export too (issue #22, item 4), each checked against the bundle's
own predictions; a bundle that cannot be exported is refused in one sentence before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.cli import main
from dlpipe.export import export_bundle, run_exported

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (root / "data" / label).mkdir(parents=True)
        for i in range(8):
            a = (rng.random((12, 12, 3)) * 255).astype(np.uint8)
            if label == "dog":
                a[:6] = 255
            Image.fromarray(a).save(root / "data" / label / f"{i}.png")
    run = dl.train(str(root / "data"), epochs=1, progress="quiet", out=root / "run")
    return root, run


def test_image_bundle_to_onnx_matches_bundle_predict_on_files(image_run):
    import onnxruntime as ort

    root, run = image_run
    bundle = dl.load_bundle(run.path / "bundle")
    assert main(["export", str(run.path / "bundle"), "-o", str(root / "img.onnx")]) == 0
    side = json.loads((root / "img.onnx.json").read_text())
    assert side["kind"] == "image" and side["parity"]["max_abs_diff"] <= 1e-5
    assert side["inputs"]["names"] == ["image"] and side["output"]["classes"] == ["cat", "dog"]
    files = sorted(str(p) for p in (root / "data").rglob("*.png"))
    pixels = bundle.preprocessor.load(files)  # decoded and resized, 0..255: no normalisation
    session = ort.InferenceSession(str(root / "img.onnx"), providers=["CPUExecutionProvider"])
    proba = session.run(None, {"image": pixels})[0]
    want = bundle.predict(files)[["proba_cat", "proba_dog"]].to_numpy()
    assert proba.shape == (16, 2) and np.abs(proba - want).max() <= 1e-5


@pytest.mark.parametrize("fmt", ["torchscript", "pt2"])
def test_image_bundle_torch_formats(image_run, tmp_path, fmt):
    _, run = image_run
    res = export_bundle(run.path / "bundle", tmp_path / f"m.{fmt}", format=fmt)
    assert res.parity["max_abs_diff"] <= 1e-5


def test_sequence_bundle_to_onnx(tmp_path):
    rng = np.random.default_rng(0)
    lines = ["@problemName Toy", "@univariate true", "@classLabel true a b", "@data"]
    for i in range(40):
        label = "a" if i % 2 else "b"
        xs = np.sin(np.arange(10) / (2 if label == "a" else 5)) + rng.normal(0, 0.1, 10)
        lines.append(",".join(f"{v:.3f}" for v in xs) + ":" + label)
    (tmp_path / "seq.ts").write_text("\n".join(lines) + "\n")
    run = dl.train(str(tmp_path / "seq.ts"), epochs=1, progress="quiet", save=False)
    assert run.bundle.kind == "sequence"
    res = export_bundle(run.bundle, tmp_path / "q.onnx", data=str(tmp_path / "seq.ts"))
    assert res.parity["max_abs_diff"] <= 1e-5 and res.parity["rows"] == 40
    prepared = run.bundle.preprocessor.prepare(str(tmp_path / "seq.ts")).inputs
    got = run_exported(res.path, "onnx", {"x": prepared[0], "mask": prepared[1]})
    want = run.bundle.predict(str(tmp_path / "seq.ts"))[["proba_a", "proba_b"]].to_numpy()
    assert np.abs(got - want).max() <= 1e-5


def test_series_bundle_to_onnx_forecasts_like_predict(tmp_path):
    from dlpipe.data.series import roll_forecast

    frame = pd.DataFrame({"value": np.sin(np.arange(200) / 10)})
    run = dl.train(
        frame,
        "value",
        task="forecast",
        lookback=12,
        horizon=3,
        epochs=1,
        progress="quiet",
        save=False,
    )
    res = export_bundle(run.bundle, tmp_path / "s.onnx")
    assert res.parity["max_abs_diff"] <= 1e-5
    side = json.loads(res.sidecar.read_text())
    assert side["adapter"]["lookback"] == 12 and side["inputs"]["names"] == ["x"]
    # the whole forecast from the exported file, rolled as `dlpipe predict` rolls the bundle's network
    pre = run.bundle.preprocessor
    recent = frame.tail(30)
    window = pre.prepare(recent).inputs[0]
    z = roll_forecast(
        lambda a: run_exported(res.path, "onnx", {"x": np.ascontiguousarray(a, np.float32)}),
        window,
        3,
        pre.target_index,
        recursive=bool(pre.state()["recursive"]),
    )
    values = pre.scaler.inverse(z[0], pre.target_index)[:, 0]
    assert np.abs(values - run.bundle.predict(recent)["value"].to_numpy()).max() <= 1e-5


def test_a_bundle_that_cannot_be_exported_is_one_sentence(tmp_path, capsys):
    from dlpipe.data.arrays import ArrayDataset, load_digits_images

    d = load_digits_images()
    run = dl.train(
        ArrayDataset(d.x[:64], d.y[:64], name="digits"),
        task="reconstruction",
        model={"family": "autoencoder", "latent": 2},
        epochs=1,
        progress="quiet",
        out=tmp_path / "ae",
    )
    code = main(["export", str(run.path / "bundle"), "-o", str(tmp_path / "ae.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "export covers predictive bundles" in err and "Traceback" not in err
    assert not (tmp_path / "ae.onnx").exists() and not (tmp_path / "ae.onnx.json").exists()
