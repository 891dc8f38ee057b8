"""House prices with a dense network, and the notes' fix for overfitting: an L2 penalty (Keras style).

Data: Boston housing cannot ship with dlpipe (scikit-learn removed it; the original has an
ethically problematic column). The project's shared data folder holds ISLP's copy
(`../shared/data/tabular/boston.csv`: 12 features without that column, target `medv`, median value
in $1000s), which this script reads when it is there; otherwise it uses scikit-learn's bundled
diabetes table (442 patients, 10 features, a disease-progression score) and says so.

What it shows: a wide network on ~400 rows overfits (training loss far below validation loss);
`kernel_regularizer=regularizers.l2(0.001)` plus `Dropout` narrows the gap. Both are scored on the
same held-out test rows beside a linear regression, the baseline a network must beat.

    python examples/06_regression_l2.py           # 300 epochs per model
    python examples/06_regression_l2.py --quick   # 20 epochs (or DLPIPE_EXAMPLE_QUICK=1)

Full run (seed 0, Boston): without regularisation train MAE 0.78 vs validation 2.32, test 2.43;
with L2 + dropout train 1.61 vs validation 2.15, test 2.15; linear regression test MAE 3.11.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from dlpipe.keras import Sequential, layers, regularizers, utils

quick = "--quick" in sys.argv or os.environ.get("DLPIPE_EXAMPLE_QUICK") == "1"
epochs = 20 if quick else 300

# 1. Data.
boston = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tabular" / "boston.csv"
if boston.is_file():
    frame = pd.read_csv(boston).drop(columns="split")
    X, y = frame.drop(columns="medv").to_numpy("float32"), frame["medv"].to_numpy("float32")
    print(f"data: Boston housing (ISLP's copy, {boston}), target medv in $1000s")
else:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    print("data: Boston housing is not on this machine; using scikit-learn's diabetes table")
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
scaler = StandardScaler().fit(X_train)  # fitted on the training rows only
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
print(f"train {X_train.shape}, test {X_test.shape}")


def build_model(l2=None, dropout=0.0):
    reg = regularizers.l2(l2) if l2 else None  # adds l2 * sum(kernel ** 2) to the loss
    model = Sequential([layers.Input(shape=(X.shape[1],))])
    for units in (128, 128, 64):
        model.add(layers.Dense(units, activation="relu", kernel_regularizer=reg))
        if dropout:
            model.add(layers.Dropout(dropout))
    model.add(layers.Dense(1))  # one linear output for a number
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model


# 2. The same network, without and with the fix; the last 20% of the training rows validate.
for name, kwargs in [("no regularisation", {}), ("L2 + dropout", {"l2": 0.001, "dropout": 0.2})]:
    utils.set_random_seed(0)
    model = build_model(**kwargs)
    history = model.fit(
        X_train, y_train, epochs=epochs, batch_size=32, validation_split=0.2, verbose=0
    )
    # the last epoch's errors (with L2, `loss` also holds the penalty, so compare `mae`)
    train_mae, val_mae = history.history["mae"][-1], history.history["val_mae"][-1]
    mse, mae = model.evaluate(X_test, y_test, verbose=0)
    print(
        f"{name:>18}: train MAE {train_mae:.2f}, validation MAE {val_mae:.2f}, test MAE {mae:.2f}"
    )

# 3. The baseline.
linear = LinearRegression().fit(X_train, y_train)
print(f"linear regression test MAE: {np.abs(linear.predict(X_test) - y_test).mean():.2f}")
