"""Exports run outside dlpipe and agree with the bundle: onnxruntime parity <= 1e-4, TorchScript, pt2, int8."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.core.errors import InvalidConfigError
from dlpipe.export import export_bundle, run_exported, table_inputs


def _frame(n: int = 150, regression: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2))
    frame = pd.DataFrame(
        {
            "a": x[:, 0] * 10 + 50,
            "b": x[:, 1],
            "city": rng.choice(["Seoul", "Paris", "Lima"], n),
            "shop": rng.choice([f"s{i:02d}" for i in range(25)], n),  # embedded (> max_onehot)
            "member": rng.choice([True, False], n),
        }
    )
    frame.loc[::9, "b"] = np.nan
    frame.loc[::13, "city"] = None
    frame["y"] = (
        3 * x[:, 0] - x[:, 1] if regression else np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    )
    return frame


@pytest.fixture(scope="module")
def binary_bundle():
    return dl.train(_frame(), "y", epochs=2, progress="quiet", save=False).bundle


@pytest.mark.slow
def test_onnx_parity_and_raw_inputs(binary_bundle, tmp_path):
    frame = _frame()
    res = export_bundle(binary_bundle, tmp_path / "m.onnx", data=frame)
    assert res.parity["max_abs_diff"] <= 1e-4 and res.parity["rows"] == len(frame)
    assert not (tmp_path / "m.onnx.data").exists()  # one file
    side = json.loads(res.sidecar.read_text())
    assert [c["name"] for c in side["inputs"]["numeric"]["columns"]] == ["a", "b", "member"]
    assert [c["name"] for c in side["inputs"]["categorical"]["columns"]] == ["city", "shop"]
    assert side["output"]["classes"] == ["no", "yes"]

    # the documented way to call it: raw numbers (NaN = missing), raw category strings ("" = missing)
    import onnxruntime as ort

    cat = side["inputs"]["categorical"]
    assert cat["dtype"] == "string" and cat["missing"] == ""
    row = frame.iloc[[1, 9, 13]]
    numeric = row[["a", "b", "member"]].astype("float32").to_numpy()
    cats = np.array(
        [[v if isinstance(v, str) else "" for v in row["city"]], list(row["shop"])], dtype=object
    ).T
    session = ort.InferenceSession(str(res.path))
    proba = session.run(None, {"numeric": numeric, "categorical": cats})[0]
    want = binary_bundle.predict(row)[["proba_no", "proba_yes"]].to_numpy()
    assert np.abs(proba - want).max() <= 1e-4
    # any batch size, including one row
    one = {
        k: v[:1] for k, v in table_inputs(binary_bundle.preprocessor, frame, strings=True).items()
    }
    assert run_exported(res.path, "onnx", one).shape == (1, 2)


@pytest.mark.slow
def test_regression_onnx_returns_target_units(tmp_path):
    frame = _frame(regression=True)
    bundle = dl.train(frame, "y", epochs=2, progress="quiet", save=False).bundle
    res = export_bundle(bundle, tmp_path / "r.onnx", data=frame)
    assert res.parity["max_abs_diff"] <= 1e-4
    got = run_exported(res.path, "onnx", table_inputs(bundle.preprocessor, frame, strings=True))
    assert got.shape == (len(frame),)
    assert np.allclose(got, bundle.predict(frame)["prediction"], atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torchscript", "pt2"])
def test_torch_formats_parity(binary_bundle, tmp_path, fmt):
    res = export_bundle(
        binary_bundle, tmp_path / f"m.{fmt}", format=fmt
    )  # rows drawn from the training statistics
    assert res.parity["max_abs_diff"] <= 1e-4


def test_bad_options(binary_bundle, tmp_path):
    with pytest.raises(InvalidConfigError, match="`format` is 'tflite'"):
        export_bundle(binary_bundle, tmp_path / "m", format="tflite")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="int8 quantisation is offered for ONNX"):
        export_bundle(binary_bundle, tmp_path / "m", format="pt2", quantize="int8")
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_cli_export(binary_bundle, tmp_path, capsys):
    from dlpipe.cli import main

    binary_bundle.save(tmp_path / "b")
    _frame().to_csv(tmp_path / "d.csv", index=False)
    assert (
        main(
            [
                "export",
                str(tmp_path / "b"),
                "--format",
                "onnx",
                "--quantize",
                "int8",
                "--data",
                str(tmp_path / "d.csv"),
                "-o",
                str(tmp_path / "m.onnx"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "parity with PyTorch on 150 rows" in out and "int8: accuracy" in out
    side = json.loads((tmp_path / "m.onnx.json").read_text())
    q = side["quantization"]
    assert (
        side["quantized"] == "int8"
        and q["metric"] == "accuracy"
        and abs(q["int8"] - q["float"]) < 0.1
    )
    assert q["bytes_int8"] < q["bytes_float"]
    assert main(["export", str(tmp_path / "b"), "--format", "keras"]) == 2
