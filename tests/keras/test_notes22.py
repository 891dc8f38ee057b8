"""Issue #22: the seed notes' Keras code, with only the imports changed to ``dlpipe.keras``.

Each test copies the notes' calls (``LSTM(32, activation='relu')``, ``fit(class_weight=...)``,
``kernel_regularizer=regularizers.l2(0.001)``, ``plot_model``, ``get_weights``, ``model.save`` then the
deployment chapter, ``mnist.load_data()``) and checks what a Keras user expects, against Keras'
equations computed here in numpy from the layer's ``get_weights()`` where the semantics matter.
Imports of names the facade gained in #22 sit inside the tests, so each fails on its own before.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlpipe.core.errors import InvalidConfigError
from dlpipe.keras import Sequential, layers, optimizers
from tests.conftest import shared_data


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _relu(x):
    return np.maximum(x, 0)


def _keras_lstm(x, kernel, recurrent, bias, act, ract=_sig):
    """Keras' LSTM cell (gates i, f, c, o), the last hidden state."""
    u = recurrent.shape[0]
    h = np.zeros((x.shape[0], u))
    c = np.zeros((x.shape[0], u))
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, cc, o = (z[:, k * u : (k + 1) * u] for k in range(4))
        c = ract(f) * c + ract(i) * act(cc)
        h = ract(o) * act(c)
    return h


def _keras_gru(x, kernel, recurrent, bias, act, ract=_sig):
    """Keras' GRU cell, reset_after=True (gates z, r, h; bias rows: input, recurrent)."""
    u = recurrent.shape[0]
    h = np.zeros((x.shape[0], u))
    for t in range(x.shape[1]):
        xz = x[:, t] @ kernel + bias[0]
        hz = h @ recurrent + bias[1]
        z = ract(xz[:, :u] + hz[:, :u])
        r = ract(xz[:, u : 2 * u] + hz[:, u : 2 * u])
        hh = act(xz[:, 2 * u :] + r * hz[:, 2 * u :])
        h = z * h + (1 - z) * hh
    return h


def _windows(n=96, steps=10, seed=0):
    rng = np.random.default_rng(seed)
    series = np.cumsum(rng.normal(size=n + steps)) * 0.1
    series = (series - series.min()) / (
        series.max() - series.min()
    )  # MinMax, as the notes scale prices
    X = np.array([series[i : i + steps] for i in range(n)]).reshape(-1, steps, 1)
    return X.astype("float32"), series[steps : steps + n].astype("float32")


# ---------------------------------------------------------------------- recurrent layers
def test_relu_lstm_of_the_notes_trains_and_computes_keras_lstm():
    from dlpipe.keras import utils

    utils.set_random_seed(0)
    X, y = _windows()
    model = Sequential()
    model.add(layers.LSTM(32, activation="relu", input_shape=(10, 1)))
    model.add(layers.Dense(1))
    model.compile(optimizer="adam", loss="mse")
    before = model.evaluate(X, y, verbose=0)
    model.fit(X, y, epochs=15, batch_size=16, verbose=0)
    assert model.evaluate(X, y, verbose=0) < 0.3 * before
    # the layer's output is Keras' relu LSTM of its own weights (Keras' layout: i, f, c, o)
    probe = Sequential([layers.Input(shape=(10, 1)), layers.LSTM(8, activation="relu")])
    kernel, recurrent, bias = probe.layers[0].get_weights()
    assert kernel.shape == (1, 32) and recurrent.shape == (8, 32) and bias.shape == (32,)
    np.testing.assert_allclose(
        probe.predict(X[:5]), _keras_lstm(X[:5], kernel, recurrent, bias, _relu), atol=1e-5
    )


@pytest.mark.parametrize(
    ("activation", "recurrent_activation", "act", "ract"),
    [
        ("tanh", "sigmoid", np.tanh, _sig),  # torch's fused kernel
        ("relu", "hard_sigmoid", _relu, lambda v: np.clip(v / 6 + 0.5, 0, 1)),  # the unrolled cell
    ],
)
def test_gru_activations_follow_keras(activation, recurrent_activation, act, ract):
    X, _ = _windows(8, 6)
    m = Sequential(
        [
            layers.Input(shape=(6, 1)),
            layers.GRU(5, activation=activation, recurrent_activation=recurrent_activation),
        ]
    )
    rng = np.random.default_rng(1)
    weights = [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in m.get_weights()]
    m.set_weights(weights)  # Keras' layout in: kernel (1, 15), recurrent (5, 15), bias (2, 15)
    np.testing.assert_allclose(m.predict(X), _keras_gru(X, *weights, act, ract), atol=1e-5)
    assert [w.shape for w in m.get_weights()] == [(1, 15), (5, 15), (2, 15)]


def test_fused_and_unrolled_lstm_agree_and_dropout_masks_whole_sequences():
    lstm = layers.LSTM(6, return_sequences=True, dropout=0.5)
    module, _ = lstm.build((7, 3))
    assert module.fused  # tanh/sigmoid: torch's kernel
    x = torch.randn(4, 7, 3)
    module.eval()
    fused = module(x)
    module.fused = False
    np.testing.assert_allclose(module(x).detach().numpy(), fused.detach().numpy(), atol=1e-5)
    # Keras' input dropout: one mask per sequence and feature, the same at every step
    module.train()
    seen = []
    module.rnn.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    module.fused = True
    module(torch.ones(4, 7, 3))
    dropped = seen[0] == 0
    assert dropped.any() and (dropped == dropped[:, :1]).all()


def test_bidirectional_lstm_with_dropout_and_return_sequences():
    X, y = _windows(32, 6)
    model = Sequential(
        [
            layers.Input(shape=(6, 1)),
            layers.Bidirectional(layers.LSTM(16, return_sequences=True, dropout=0.2)),
            layers.Bidirectional(layers.LSTM(4, dropout=0.2, recurrent_dropout=0.1)),
            layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, y, epochs=1, batch_size=16, verbose=0)
    assert model.layers[0].get_weights()[0].shape == (1, 64)  # forward kernel (F, 4 * units)
    assert len(model.layers[1].get_weights()) == 6  # forward and backward: kernel, recurrent, bias
    np.testing.assert_array_equal(
        model.predict(X[:4]), model.predict(X[:4])
    )  # no dropout at predict
    assert model.predict(X[:4]).shape == (4, 1)


# ---------------------------------------------------------------------- fit's keywords
def _imbalanced(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype("float32")
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 1.0).astype("int64")  # ~16% positives
    return X, y


def _classifier():
    from dlpipe.keras import utils

    utils.set_random_seed(3)
    m = Sequential(
        [
            layers.Input(shape=(4,)),
            layers.Dense(8, activation="relu"),
            layers.Dense(2, activation="softmax"),
        ]
    )
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def test_class_weight_changes_training_as_the_same_sample_weights_do():
    X, y = _imbalanced()
    plain = _classifier()
    plain.fit(X, y, epochs=5, batch_size=16, verbose=0, seed=0)
    weighted = _classifier()
    class_weight = {0: 1.0, 1: 5.0}
    weighted.fit(X, y, epochs=5, batch_size=16, verbose=0, seed=0, class_weight=class_weight)
    by_rows = _classifier()
    by_rows.fit(
        X, y, epochs=5, batch_size=16, verbose=0, seed=0, sample_weight=np.where(y == 1, 5.0, 1.0)
    )
    p_plain, p_weighted = plain.predict(X), weighted.predict(X)
    assert not np.allclose(p_plain, p_weighted, atol=1e-4)
    assert p_weighted[y == 1, 1].mean() > p_plain[y == 1, 1].mean()  # the rare class counts more
    np.testing.assert_allclose(by_rows.predict(X), p_weighted, atol=1e-5)
    # the loss is Keras' mean of weighted per-row losses
    w = np.where(y == 1, 5.0, 1.0)
    p = weighted.predict(X)
    expected = np.mean(w * -np.log(p[np.arange(len(y)), y]))
    got = weighted.evaluate(X, y, sample_weight=w, verbose=0, return_dict=True)["loss"]
    assert got == pytest.approx(expected, rel=1e-4)


def test_unknown_keywords_are_refused_with_the_closest_name():
    X, y = _imbalanced(32)
    m = _classifier()
    with pytest.raises(
        InvalidConfigError,
        match=r"`fit` got the unknown keyword argument `class_weights` \(did you mean `class_weight`\?\)",
    ):
        m.fit(X, y, epochs=1, verbose=0, class_weights={0: 1.0, 1: 2.0})
    with pytest.raises(InvalidConfigError, match=r"did you mean `metrics`"):
        m.compile(optimizer="adam", loss="mse", metric=["mae"])
    with pytest.raises(
        InvalidConfigError,
        match=r"`Dense` got the unknown keyword argument `kernel_regulariser` \(did you mean `kernel_regularizer`\?\)",
    ):
        layers.Dense(4, kernel_regulariser=None)
    with pytest.raises(InvalidConfigError, match=r"did you mean `return_sequences`"):
        layers.LSTM(4, return_sequence=True)
    with pytest.raises(InvalidConfigError, match="`fit\\(steps_per_epoch=...\\)` is 3"):
        m.fit(X, y, epochs=1, verbose=0, steps_per_epoch=3)
    with pytest.raises(Exception, match="classes \\[7\\] but the model has classes 0..1"):
        m.fit(X, y, epochs=1, verbose=0, class_weight={7: 2.0})


# ---------------------------------------------------------------------- regularizers
def test_l2_kernel_regularizer_is_added_to_the_loss_as_keras_does():
    from dlpipe.keras import regularizers

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 13)).astype("float32")
    y = (X @ rng.normal(size=13)).astype("float32")
    model = Sequential(
        [
            layers.Dense(
                64, activation="relu", input_shape=(13,), kernel_regularizer=regularizers.l2(0.001)
            ),
            layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    loss, mae = model.evaluate(X, y, verbose=0)
    mse = float(np.mean((model.predict(X).ravel() - y) ** 2))
    kernel = model.layers[0].get_weights()[0]
    assert loss == pytest.approx(mse + 0.001 * float(np.sum(kernel**2)), rel=1e-4)
    # an activity penalty is on the layer's output, per sample (tf.keras' convention)
    m = Sequential(
        [layers.Input(shape=(13,)), layers.Dense(1, activity_regularizer=regularizers.l2(0.01))]
    )
    m.compile(optimizer="adam", loss="mse")
    out = m.predict(X).ravel()
    expected = float(np.mean((out - y) ** 2) + 0.01 * np.sum(out**2) / len(y))
    assert m.evaluate(X, y, verbose=0) == pytest.approx(expected, rel=1e-4)
    # a strong penalty shrinks the kernel that training would otherwise grow
    norms = []
    for reg in (None, regularizers.l1_l2(l1=0.1, l2=1.0)):
        from dlpipe.keras import utils

        utils.set_random_seed(0)
        m = Sequential(
            [layers.Input(shape=(13,)), layers.Dense(8, kernel_regularizer=reg), layers.Dense(1)]
        )
        m.compile(optimizer=optimizers.Adam(learning_rate=0.05), loss="mse")
        m.fit(X, y, epochs=30, verbose=0, seed=0)
        norms.append(float(np.abs(m.layers[0].get_weights()[0]).sum()))
    assert norms[1] < 0.8 * norms[0]


# ---------------------------------------------------------------------- diagram, weights, names, lr
def test_plot_model_get_weights_and_keras_layer_names(tmp_path):
    from dlpipe.keras import utils
    from dlpipe.keras.utils import plot_model

    utils.clear_session()
    model = Sequential(
        [
            layers.Input(shape=(8, 8, 1)),
            layers.Conv2D(4, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(16, activation="relu"),
            layers.Dense(3, activation="softmax"),
        ]
    )
    assert [layer.name for layer in model.layers] == [
        "conv2d",
        "max_pooling2d",
        "flatten",
        "dense",
        "dense_1",
    ]
    out = plot_model(model, to_file=str(tmp_path / "model.png"), show_shapes=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 2000
    import dlpipe as dl

    assert dl.plot_model(model, tmp_path / "dl.png").read_bytes()[:4] == b"\x89PNG"
    assert [r.output_shape for r in dl.summary(model).leaves][-1] == [2, 3]
    kernel, bias = model.layers[0].get_weights()
    assert kernel.shape == (3, 3, 1, 4) and bias.shape == (4,)  # Keras' (kh, kw, in, out)
    w = model.get_layer("dense").get_weights()[0]
    assert w.shape == (36, 16)  # (inputs, units): the notes' weight heatmap
    x = np.random.default_rng(0).random((2, 8, 8, 1)).astype("float32")
    before = model.predict(x)
    model.layers[0].set_weights([kernel * 0, bias * 0])
    assert not np.allclose(model.predict(x), before)
    with pytest.raises(InvalidConfigError, match="shapes"):
        model.layers[0].set_weights([kernel])


def test_history_has_lr_when_a_schedule_runs():
    from dlpipe.keras import callbacks

    X, y = _imbalanced(64)
    m = _classifier()
    h = m.fit(
        X,
        y,
        epochs=3,
        verbose=0,
        validation_split=0.25,
        callbacks=[callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 * 0.5**epoch)],
    )
    assert h.history["lr"] == pytest.approx([0.01, 0.005, 0.0025])
    h = m.fit(
        X,
        y,
        epochs=2,
        verbose=0,
        validation_split=0.25,
        callbacks=[callbacks.ReduceLROnPlateau(patience=1)],
    )
    assert len(h.history["lr"]) == 2
    assert "lr" not in m.fit(X, y, epochs=1, verbose=0).history


# ---------------------------------------------------------------------- functional API
def test_functional_api_with_two_inputs_and_two_outputs(tmp_path):
    from dlpipe.keras import Input, Model
    from dlpipe.keras.models import load_model

    rng = np.random.default_rng(0)
    a = rng.normal(size=(64, 3)).astype("float32")
    b = rng.normal(size=(64, 5)).astype("float32")
    y_cls = (a[:, 0] + b[:, 0] > 0).astype("float32")
    y_reg = (a.sum(1) - b.sum(1)).astype("float32")
    in_a, in_b = Input(shape=(3,), name="a"), Input(shape=(5,), name="b")
    merged = layers.concatenate(
        [layers.Dense(8, activation="relu")(in_a), layers.Dense(8, activation="relu")(in_b)]
    )
    summed = layers.add([layers.Dense(8)(merged), layers.Dense(8)(merged)])
    out_cls = layers.Dense(1, activation="sigmoid", name="cls")(summed)
    out_reg = layers.Dense(1, name="reg")(summed)
    model = Model(inputs=[in_a, in_b], outputs=[out_cls, out_reg])
    model.compile(
        optimizer="adam",
        loss={"cls": "binary_crossentropy", "reg": "mse"},
        loss_weights={"cls": 1.0, "reg": 0.5},
        metrics={"cls": ["accuracy"]},
    )
    h = model.fit(
        {"a": a, "b": b}, {"cls": y_cls, "reg": y_reg}, epochs=3, verbose=0, validation_split=0.25
    )
    assert {"loss", "cls_loss", "reg_loss", "cls_accuracy", "val_cls_accuracy"} <= set(h.history)
    p_cls, p_reg = model.predict([a, b])
    assert p_cls.shape == (64, 1) and p_reg.shape == (64, 1) and ((p_cls > 0) & (p_cls < 1)).all()
    out = model.evaluate([a, b], [y_cls, y_reg], verbose=0, return_dict=True)
    assert out["loss"] == pytest.approx(out["cls_loss"] + 0.5 * out["reg_loss"], rel=1e-4)
    model.save(tmp_path / "two")
    again = load_model(tmp_path / "two")
    for x1, x2 in zip(again.predict([a, b]), model.predict([a, b])):
        np.testing.assert_allclose(x1, x2, atol=1e-6)
    import dlpipe

    with pytest.raises(Exception, match="2 input\\(s\\) and 2 output\\(s\\).*load_model"):
        dlpipe.load_bundle(tmp_path / "two")


# ---------------------------------------------------------------------- data sets
def test_mnist_load_data_reads_the_idx_files_and_never_downloads(tmp_path, monkeypatch):
    from dlpipe.keras.datasets import cifar10, mnist

    folder = shared_data("mnist")
    (x_train, y_train), (x_test, y_test) = mnist.load_data(path=folder)
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_test.shape == (10000,) and set(np.unique(y_test)) == set(range(10))
    cache = tmp_path / "cache"
    (cache / "mnist").mkdir(parents=True)
    for f in folder.glob("*-ubyte.gz"):
        (cache / "mnist" / f.name).symlink_to(f)
    monkeypatch.setenv("DLPIPE_DATASETS", str(cache))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert mnist.load_data()[1][0].shape == (10000, 28, 28)  # from the documented cache folder
    monkeypatch.setenv("DLPIPE_DATASETS", str(tmp_path / "empty"))
    with pytest.raises(Exception, match="dlpipe never downloads data; copy the four IDX files"):
        mnist.load_data()
    with pytest.raises(Exception, match="extract the binary version"):
        cifar10.load_data()


def test_kernel_initializers_draw_as_keras_does():
    from dlpipe.keras import utils

    utils.set_random_seed(0)
    m = Sequential(
        [
            layers.Input(shape=(400,)),
            layers.Dense(300, kernel_initializer="he_normal", bias_initializer="ones"),
            layers.Dense(200, kernel_initializer="glorot_uniform"),
        ]
    )
    kernel, bias = m.layers[0].get_weights()
    std = np.sqrt(2 / 400)  # he_normal: truncated normal with variance 2 / fan_in
    assert (
        kernel.std() == pytest.approx(std, rel=0.05)
        and np.abs(kernel).max() <= 2 * std / 0.8796 + 1e-6
    )
    assert (bias == 1).all()
    limit = np.sqrt(6 / (300 + 200))
    w = m.layers[1].get_weights()[0]
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit
    with pytest.raises(InvalidConfigError, match="did you mean `he_normal`"):
        layers.Dense(3, kernel_initializer="he_norml")
