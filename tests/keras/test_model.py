"""The Keras-style API: functional models, folding, callbacks, saving, and bad input in one sentence."""

from __future__ import annotations

import numpy as np
import pytest

from dlpipe.core.errors import BundleError, DlpipeError, InvalidConfigError, InvalidInputError
from dlpipe.keras import Input, Model, Sequential, callbacks, layers, losses, optimizers
from dlpipe.keras.models import load_model


def _binary(n=64):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4)).astype("float32")
    return X, (X[:, 0] + X[:, 1] > 0).astype("float32")


def test_sigmoid_is_folded_into_the_loss_not_applied_twice():
    X, y = _binary()
    m = Sequential([layers.Input(shape=(4,)), layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy")
    assert m.net.fold
    z = m.net(__import__("torch").from_numpy(X)).detach().numpy()  # training output: logits
    np.testing.assert_allclose(m.predict(X), 1 / (1 + np.exp(-z)), rtol=1e-5)
    assert (m.predict(X) > 0).all() and (m.predict(X) < 1).all()


def test_functional_api_callbacks_history_and_save(tmp_path):
    X, y = _binary()
    inputs = Input(shape=(4,))
    x = layers.Dense(8, activation="relu")(inputs)
    x = layers.BatchNormalization()(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = Model(inputs, outputs)
    model.compile(
        optimizer=optimizers.SGD(learning_rate=0.05, momentum=0.9),
        loss="binary_crossentropy",
        metrics=["accuracy", "precision", "recall", "auc"],
    )
    ckpt = tmp_path / "best"
    h = model.fit(
        X,
        y,
        epochs=5,
        batch_size=16,
        validation_data=(X[:16], y[:16]),
        verbose=0,
        callbacks=[
            callbacks.EarlyStopping(monitor="val_loss", patience=2),
            callbacks.ReduceLROnPlateau(patience=1),
            callbacks.ModelCheckpoint(str(ckpt), save_best_only=True),
        ],
    )
    assert list(h.history)[:2] == ["loss", "accuracy"] and {
        "val_loss",
        "val_auc",
        "val_precision",
        "val_recall",
    } <= set(h.history)
    assert 0 <= h.history["val_auc"][-1] <= 1
    assert load_model(ckpt).predict(X).shape == (64, 1)
    out = model.evaluate(X, y, verbose=0, return_dict=True)
    assert set(out) == {"loss", "accuracy", "precision", "recall", "auc"}


def test_custom_keras_callback_sees_zero_based_epochs():
    seen = []

    class Log(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, round(logs["loss"], 6) > 0, self.model.name))

    X, y = _binary()
    m = Sequential([layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="rmsprop", loss="binary_crossentropy")
    m.fit(X, y, epochs=2, verbose=0, callbacks=[Log()])
    assert seen == [(0, True, "sequential"), (1, True, "sequential")]


def test_recurrent_embedding_bidirectional_shapes():
    m = Sequential(
        [
            layers.Input(shape=(7,)),
            layers.Embedding(50, 8),
            layers.Bidirectional(layers.GRU(4, return_sequences=True)),
            layers.LSTM(3),
            layers.Dense(2, activation="softmax"),
        ]
    )
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).integers(0, 50, size=(20, 7))
    h = m.fit(x, np.arange(20) % 2, epochs=1, verbose=0)
    assert m.predict(x).shape == (20, 2) and "accuracy" in h.history
    lines: list[str] = []
    m.summary(print_fn=lines.append)
    assert "(None, 7, 8)" in lines[0] and "(None, 7, 8)" in lines[0].replace("\n", " ")


def test_unknown_names_list_the_known_ones_and_suggest():
    with pytest.raises(DlpipeError, match=r"no layer 'Dense2'.*known layers are: Input, Dense"):
        layers.Dense2  # noqa: B018
    m = Sequential([layers.Input(shape=(4,)), layers.Dense(1, activation="sigmoid")])
    with pytest.raises(
        InvalidConfigError,
        match=r"unknown loss 'binary_crossentropyy' \(did you mean `binary_crossentropy`\?\); known losses are",
    ):
        m.compile(optimizer="adam", loss="binary_crossentropyy")
    with pytest.raises(
        InvalidConfigError, match=r"unknown optimizer 'adamm' \(did you mean `adam`\?\)"
    ):
        m.compile(optimizer="adamm", loss="binary_crossentropy")
    with pytest.raises(
        InvalidConfigError, match=r"unknown metric 'acuracy' \(did you mean `accuracy`\?\)"
    ):
        m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["acuracy"])
    with pytest.raises(InvalidConfigError, match=r"activation 'rellu' \(did you mean `relu`\?\)"):
        layers.Dense(3, activation="rellu")


def test_loss_that_does_not_fit_the_last_layer():
    m = Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    with pytest.raises(
        InvalidConfigError,
        match=r"loss 'binary_crossentropy' expects a last layer with activation='sigmoid'.*Dense\(units=3, activation='softmax'.*use loss='categorical_crossentropy'",
    ):
        m.compile(optimizer="adam", loss="binary_crossentropy")
    m2 = Sequential([layers.Input(shape=(4,)), layers.Dense(1)])
    with pytest.raises(InvalidConfigError, match="from_logits=True"):
        m2.compile(optimizer="adam", loss="binary_crossentropy")
    m2.compile(optimizer="adam", loss=losses.BinaryCrossentropy(from_logits=True))


def test_input_shape_mismatch_and_bad_targets():
    m = Sequential(
        [layers.Input(shape=(8, 8, 1)), layers.Flatten(), layers.Dense(3, activation="softmax")]
    )
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(
        InvalidInputError,
        match=r"`x` has shape \(5, 8, 8\) but the model's input expects \(None, 8, 8, 1\) \(add the channel axis",
    ):
        m.fit(np.zeros((5, 8, 8)), np.zeros(5))
    with pytest.raises(InvalidInputError, match="classes 0..7 but the last layer has 3 units"):
        m.fit(np.zeros((5, 8, 8, 1)), np.arange(5) * 7 // 4)
    with pytest.raises(BundleError, match="not a dlpipe bundle"):
        load_model("nowhere")
