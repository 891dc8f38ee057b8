"""The seed notes' Keras programs with only the import lines changed (`keras` -> `dlpipe.keras`)."""

from __future__ import annotations

import numpy as np
import pytest

from dlpipe.keras import Sequential, callbacks, layers, optimizers, utils
from dlpipe.keras.models import load_model


@pytest.mark.slow
def test_xor_dense4_relu_sigmoid():
    """The notes' program scores the four rows it trained on, as the notes do: what this claims is that
    the program runs with only its imports changed and fits XOR. XOR on points it was not trained on is
    checked in tests/pipeline/test_acceptance.py."""
    utils.set_random_seed(
        4
    )  # 4 ReLU units can die on XOR (as in Keras); this seed is one that trains
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")
    y = np.array([0, 1, 1, 0])
    model = Sequential()
    model.add(layers.Dense(4, input_dim=2, activation="relu"))
    model.add(layers.Dense(1, activation="sigmoid"))
    model.compile(
        loss="binary_crossentropy",
        optimizer=optimizers.Adam(learning_rate=0.05),
        metrics=["accuracy"],
    )
    history = model.fit(X, y, epochs=300, verbose=0)
    assert history.history["accuracy"][-1] == 1.0
    assert ((model.predict(X).ravel() > 0.5) == y).all()


@pytest.mark.slow
def test_make_classification_dnn():
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(n_samples=1000, n_features=20, n_informative=10, random_state=42)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    scaler = StandardScaler()
    X_train = scaler.fit_transform(X_train)
    X_test = scaler.transform(X_test)
    model = Sequential(
        [
            layers.Input(shape=(20,)),
            layers.Dense(64, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(32, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(
        X_train,
        y_train,
        epochs=30,
        batch_size=32,
        validation_split=0.2,
        verbose=0,
        callbacks=[callbacks.EarlyStopping(patience=10, restore_best_weights=True)],
    )
    loss, acc = model.evaluate(X_test, y_test, verbose=0)
    assert acc >= 0.85 and "val_accuracy" in history.history


@pytest.mark.slow
def test_make_regression_dnn():
    from sklearn.datasets import make_regression
    from sklearn.model_selection import train_test_split

    X, y = make_regression(n_samples=1000, n_features=10, noise=10, random_state=42)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    model = Sequential(
        [
            layers.Dense(64, activation="relu", input_shape=(10,)),
            layers.Dense(32, activation="relu"),
            layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.fit(X_train, y_train, epochs=100, batch_size=32, validation_split=0.2, verbose=0)
    mse, mae = model.evaluate(X_test, y_test, verbose=0)
    assert (
        mae < 0.2 * np.abs(y_test - y_train.mean()).mean()
    )  # far below predicting the training mean


@pytest.mark.slow
def test_mnist_shaped_cnn_on_digits(tmp_path):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = digits.images.reshape(-1, 8, 8, 1).astype("float32") / 16.0  # channels-last, as Keras
    y = utils.to_categorical(digits.target, 10)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    model = Sequential(
        [
            layers.Input(shape=(8, 8, 1)),
            layers.Conv2D(32, (3, 3), activation="relu", padding="same"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dropout(0.3),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(X_train, y_train, epochs=15, batch_size=64, validation_split=0.1, verbose=0)
    loss, acc = model.evaluate(X_test, y_test, verbose=0)
    assert acc >= 0.95
    model.save(tmp_path / "cnn")
    again = load_model(tmp_path / "cnn")
    np.testing.assert_allclose(again.predict(X_test), model.predict(X_test), atol=1e-6)


def _windows(series: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    X = np.array([series[i : i + steps] for i in range(len(series) - steps)])
    return X.reshape(-1, steps, 1), series[steps:]


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["SimpleRNN", "LSTM"])
def test_rnn_on_arange_windows(cell):
    series = np.arange(0, 100, dtype="float32") / 100.0
    X, y = _windows(series, 5)
    model = Sequential(
        [layers.Input(shape=(5, 1)), getattr(layers, cell)(32, activation="tanh"), layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, y, epochs=100, batch_size=16, verbose=0)
    nxt = model.predict(np.array([0.95, 0.96, 0.97, 0.98, 0.99]).reshape(1, 5, 1))[0, 0]
    assert abs(nxt - 1.0) < 0.1  # the next value of the ramp
    assert model.evaluate(X, y, verbose=0) < 1e-3
