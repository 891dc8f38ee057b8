"""Issue #22: a model built and saved with the facade is a dlpipe bundle, as the notes' deployment chapter needs.

The notes save the trained Keras model, load it back, serve it behind POST /predict, track the run in
MLflow and check new data for drift; with only the imports changed, each step here runs on the
folder ``model.save`` wrote, through dlpipe's own commands.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest

from dlpipe.cli import main
from dlpipe.keras import Sequential, layers


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from sklearn.datasets import make_classification

    root = tmp_path_factory.mktemp("keras_bundle")
    X, y = make_classification(n_samples=200, n_features=6, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    model = Sequential(
        [
            layers.Input(shape=(6,)),
            layers.Dense(16, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(frame, pd.Series(y, name="label"), epochs=5, verbose=0)
    model.save(root / "model")
    data = frame.assign(label=y)
    data.to_csv(root / "rows.csv", index=False)
    (frame + 2.0).to_csv(root / "shifted.csv", index=False)
    return root, model, frame, y


def test_save_writes_a_bundle_that_load_model_and_load_bundle_read(saved):
    import dlpipe
    from dlpipe.keras.models import load_model

    root, model, frame, y = saved
    assert sorted(p.name for p in (root / "model").iterdir() if not p.name.startswith(".")) == [
        "MODEL_CARD.md",
        "manifest.json",
        "weights.safetensors",
    ]
    bundle = dlpipe.load_bundle(root / "model")
    assert (
        bundle.kind == "table"
        and bundle.task.kind == "binary"
        and bundle.input_columns == list(frame.columns)
    )
    proba = bundle.predict(frame.head(10))["proba_1"].to_numpy()
    np.testing.assert_allclose(proba, model.predict(frame.head(10)).ravel(), atol=1e-6)
    again = load_model(root / "model")
    np.testing.assert_allclose(
        again.predict(frame.to_numpy()), model.predict(frame.to_numpy()), atol=1e-6
    )
    assert again.evaluate(frame.to_numpy(), y, verbose=0) == pytest.approx(
        model.evaluate(frame.to_numpy(), y, verbose=0), rel=1e-5
    )


def test_dlpipe_predict_evaluate_export_drift_accept_it(saved, capsys):
    root, _, _, _ = saved
    bundle = str(root / "model")
    assert main(["predict", bundle, str(root / "rows.csv"), "-o", str(root / "pred.csv")]) == 0
    assert len(pd.read_csv(root / "pred.csv")) == 200
    assert main(["evaluate", bundle, str(root / "rows.csv")]) == 0
    assert "roc_auc" in capsys.readouterr().out
    assert main(["drift", bundle, str(root / "shifted.csv")]) == 0
    assert "6 of 6 features drifted" in capsys.readouterr().out


@pytest.mark.slow
def test_dlpipe_export_writes_onnx_with_parity(saved, capsys):
    root, _, _, _ = saved
    assert main(["export", str(root / "model"), "-o", str(root / "m.onnx")]) == 0
    assert "parity with PyTorch" in capsys.readouterr().out and (root / "m.onnx").is_file()


def test_serve_answers_predict(saved):
    from fastapi.testclient import TestClient

    from dlpipe.serving.app import create_app

    root, model, frame, _ = saved
    with TestClient(create_app(str(root / "model"))) as client:
        r = client.post("/predict", json={"rows": frame.head(3).to_dict(orient="records")})
    assert r.status_code == 200, r.text
    got = [p["probabilities"]["1"] for p in r.json()["predictions"]]
    np.testing.assert_allclose(got, model.predict(frame.head(3)).ravel(), atol=1e-5)


def test_image_model_is_an_arrays_bundle(tmp_path):
    import dlpipe

    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, 32)
    model = Sequential(
        [
            layers.Input(shape=(8, 8, 1)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "cnn")
    bundle = dlpipe.load_bundle(tmp_path / "cnn")
    assert bundle.kind == "arrays" and bundle.classes == [0, 1, 2]
    probs = bundle.predict(x[:4])[["proba_0", "proba_1", "proba_2"]].to_numpy()
    np.testing.assert_allclose(probs, model.predict(x[:4]), atol=1e-5)


@pytest.mark.slow
def test_mlflow_tracker_with_the_facade_finishes_the_run_with_the_model(tmp_path):
    from dlpipe.tracking import MlflowTracker

    os.chdir(tmp_path)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype("float32")
    y = (X[:, 0] > 0).astype("float32")
    model = Sequential([layers.Input(shape=(4,)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    tracker = MlflowTracker(runs_dir="runs")
    model.fit(X, y, epochs=2, verbose=0, callbacks=[tracker])
    assert not tracker.disabled and tracker.model_version == "dlpipe-y/1"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracker.tracking_uri)
        run = client.get_run(tracker.run_id)
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(tracker.run_id, "loss")] == [1, 2]
        names = {a.path for a in client.list_artifacts(tracker.run_id, "bundle")}
        assert {"bundle/manifest.json", "bundle/weights.safetensors"} <= names


def test_bad_input_to_save_and_load_is_one_sentence(tmp_path):
    from dlpipe.core.errors import BundleError, DlpipeWarning, InvalidConfigError
    from dlpipe.keras.datasets import boston_housing
    from dlpipe.keras.models import load_model

    m = Sequential([layers.Input(shape=(3,)), layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    with pytest.raises(InvalidConfigError, match="`feature_names` must be 3 distinct column names"):
        m.save(tmp_path / "m", feature_names=["a", "a", "b"])
    with pytest.raises(InvalidConfigError, match="did you mean `feature_names`"):
        m.save(tmp_path / "m", feature_name=["a", "b", "c"])
    assert not (tmp_path / "m").exists()  # nothing half-written
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "model.json").write_text("{}")
    with pytest.raises(BundleError, match="saved by an earlier dlpipe.keras"):
        load_model(tmp_path / "old")
    with pytest.warns(DlpipeWarning, match="no effect"):
        m.fit(np.zeros((8, 3)), np.zeros(8), epochs=1, verbose=0, shuffle=False)
    with pytest.raises(Exception, match="dlpipe never downloads data"):
        boston_housing.load_data(path=tmp_path / "nothing.npz")


def test_every_layer_survives_save_and_load_model(tmp_path):
    from dlpipe.keras import Input, Model, regularizers
    from dlpipe.keras.models import load_model

    rng = np.random.default_rng(0)
    seq_in = Input(shape=(5, 3), name="seq")
    img_in = Input(shape=(6, 6, 2), name="img")
    r = layers.SimpleRNN(4, activation="relu", return_sequences=True, dropout=0.1)(seq_in)
    r = layers.GRU(
        4, activation="relu", recurrent_activation="hard_sigmoid", return_sequences=True
    )(r)
    r = layers.Bidirectional(layers.LSTM(3, activation="relu", recurrent_dropout=0.2))(r)
    c = layers.Conv2D(
        3, 3, padding="same", activation="elu", kernel_regularizer=regularizers.l2(0.01)
    )(img_in)
    c = layers.AveragePooling2D()(layers.MaxPooling2D(1)(c))
    c = layers.Flatten()(layers.BatchNormalization()(c))
    merged = layers.concatenate([r, layers.Dense(6, activity_regularizer="l1")(c)])
    merged = layers.average(
        [layers.Dense(5)(merged), layers.Dense(5, bias_regularizer="l1_l2")(merged)]
    )
    out = layers.Dense(3, activation="softmax")(
        layers.Dropout(0.3)(layers.Activation("gelu")(merged))
    )
    model = Model([seq_in, img_in], out)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    xs = [rng.random((16, 5, 3)).astype("float32"), rng.random((16, 6, 6, 2)).astype("float32")]
    y = np.eye(3)[rng.integers(0, 3, 16)]
    model.fit(xs, y, epochs=1, verbose=0)
    model.save(tmp_path / "all")
    again = load_model(tmp_path / "all")
    np.testing.assert_allclose(again.predict(xs), model.predict(xs), atol=1e-5)
    assert again.evaluate(xs, y, verbose=0)[0] == pytest.approx(
        model.evaluate(xs, y, verbose=0)[0], rel=1e-5
    )
    assert [layer.name for layer in again.layers] == [layer.name for layer in model.layers]
    emb = Sequential(
        [layers.Input(shape=(4,)), layers.Embedding(10, 3), layers.Flatten(), layers.Dense(1)]
    )
    emb.compile(optimizer="sgd", loss="mae")
    ids = rng.integers(0, 10, (8, 4))
    emb.save(tmp_path / "emb")
    np.testing.assert_allclose(
        load_model(tmp_path / "emb").predict(ids), emb.predict(ids), atol=1e-6
    )


def test_a_damaged_keras_spec_is_refused_before_allocating(tmp_path):
    import json

    import dlpipe
    from dlpipe.core.errors import BundleError

    m = Sequential([layers.Input(shape=(3,)), layers.Dense(4), layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    m.save(tmp_path / "m")
    path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(path.read_text())
    for item in manifest["model_spec"]["config"]["layers"]:
        item["config"]["units"] = 10**6  # 4 TB of weights
    path.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="needs about 4,000.0 GB for its weights"):
        dlpipe.load_bundle(tmp_path / "m")
    manifest["model_spec"]["config"]["layers"][0]["config"] = {"units": 4, "code": "import os"}
    path.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="unknown keyword argument `code`"):
        dlpipe.load_bundle(tmp_path / "m")


def test_json_architecture_and_weights_files(tmp_path):
    from dlpipe.core.errors import InvalidConfigError, InvalidInputError
    from dlpipe.keras.models import model_from_json

    model = Sequential(
        [
            layers.Input(shape=(4,)),
            layers.Dense(3, activation="relu"),
            layers.Dense(2, activation="softmax"),
        ]
    )
    assert model.input_shape == (None, 4) and model.output_shape == (None, 2)
    x = np.random.default_rng(0).random((5, 4)).astype("float32")
    twin = model_from_json(model.to_json())
    assert [layer.name for layer in twin.layers] == [layer.name for layer in model.layers]
    assert not np.allclose(twin.predict(x), model.predict(x))  # architecture only: fresh weights
    model.save_weights(tmp_path / "w.weights.h5")
    twin.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_allclose(twin.predict(x), model.predict(x), atol=1e-6)
    other = Sequential([layers.Input(shape=(4,)), layers.Dense(5)])
    with pytest.raises(InvalidInputError, match="do not fit this model"):
        other.load_weights(tmp_path / "w.weights.h5")
    with pytest.raises(InvalidConfigError, match="not JSON"):
        model_from_json("{")
    with pytest.raises(InvalidConfigError, match="exists"):
        model.save_weights(tmp_path / "w.weights.h5", overwrite=False)
    model.save_weights(tmp_path / "w.weights.h5")  # its own file: replaced
    from dlpipe.keras import callbacks

    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    ckpt = callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}.weights.h5"), save_weights_only=True)
    model.fit(x, np.zeros(5), epochs=2, verbose=0, callbacks=[ckpt])
    twin.load_weights(tmp_path / "e2.weights.h5")
    np.testing.assert_allclose(twin.predict(x), model.predict(x), atol=1e-6)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InvalidConfigError, match="not a weights file"):
        model.save_weights(tmp_path / "notes.txt")
    from dlpipe.keras.utils import plot_model

    (tmp_path / "x.png").write_text("mine")
    with pytest.raises(InvalidInputError, match="not a PNG image"):
        plot_model(model, to_file=tmp_path / "x.png")
    assert (tmp_path / "notes.txt").read_text() == "mine" and (
        tmp_path / "x.png"
    ).read_text() == "mine"
