"""Anomaly detection with an autoencoder trained on normal rows only (Keras style).

Data: scikit-learn's breast cancer table (569 tumours, 30 measurements). The autoencoder learns to
rebuild *benign* tumours only; a malignant one it has never seen rebuilds worse, so the
reconstruction error is an anomaly score.

What it shows: `fit(X, X)` (the input is the target), a bottleneck of 8 units, a threshold at the
95th percentile of the errors of held-out *normal* rows (no anomaly is used to choose it), precision
and recall of the flags, and ROC-AUC beside PCA's reconstruction error with the same 8 components,
the linear baseline.

    python examples/08_autoencoder_anomalies.py           # 200 epochs
    python examples/08_autoencoder_anomalies.py --quick   # 20 epochs (or DLPIPE_EXAMPLE_QUICK=1)

Full run (seed 0): ROC-AUC 0.924 vs PCA 0.920 (a tie: on 30 measurements a linear code does as
well); precision 0.97, recall 0.69 at the threshold.
"""

import os
import sys

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.decomposition import PCA
from sklearn.metrics import precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from dlpipe.keras import Sequential, callbacks, layers, utils

quick = "--quick" in sys.argv or os.environ.get("DLPIPE_EXAMPLE_QUICK") == "1"
utils.set_random_seed(0)

# 1. Data: in sklearn's labels 1 is benign (normal), 0 malignant (the anomaly to find).
X, y = load_breast_cancer(return_X_y=True)
anomaly = (y == 0).astype(int)
normal, malignant = X[anomaly == 0], X[anomaly == 1]
normal_train, normal_rest = train_test_split(normal, test_size=0.4, random_state=0)
normal_val, normal_test = train_test_split(normal_rest, test_size=0.5, random_state=0)
X_test = np.vstack([normal_test, malignant])  # held-out normal rows and every anomaly
y_test = np.r_[np.zeros(len(normal_test)), np.ones(len(malignant))]
scaler = StandardScaler().fit(normal_train)  # normal training rows only
normal_train, normal_val, X_test = (scaler.transform(a) for a in (normal_train, normal_val, X_test))

# 2. Encoder 30 -> 16 -> 8, decoder 8 -> 16 -> 30; linear output for standardised values.
autoencoder = Sequential(
    [
        layers.Input(shape=(30,)),
        layers.Dense(16, activation="relu"),
        layers.Dense(8, activation="relu", name="code"),
        layers.Dense(16, activation="relu"),
        layers.Dense(30),
    ]
)
autoencoder.compile(optimizer="adam", loss="mse")
autoencoder.fit(
    normal_train,
    normal_train,  # reconstruct the input
    epochs=20 if quick else 200,
    batch_size=32,
    validation_data=(normal_val, normal_val),
    verbose=0,
    callbacks=[callbacks.EarlyStopping(patience=20, restore_best_weights=True)],
)


def errors(model_output, x):
    return ((model_output - x) ** 2).mean(axis=1)  # mean squared error per row


# 3. Threshold from normal validation rows, then flag the test rows.
threshold = np.percentile(errors(autoencoder.predict(normal_val, verbose=0), normal_val), 95)
score = errors(autoencoder.predict(X_test, verbose=0), X_test)
flags = score > threshold
print(f"threshold (95th percentile of normal validation errors): {threshold:.3f}")
print(f"precision {precision_score(y_test, flags):.3f}, recall {recall_score(y_test, flags):.3f}")

# 4. The linear baseline: PCA with as many components as the code.
pca = PCA(n_components=8).fit(normal_train)
pca_score = errors(pca.inverse_transform(pca.transform(X_test)), X_test)
print(f"PCA ROC-AUC: {roc_auc_score(y_test, pca_score):.4f}")
print(f"autoencoder ROC-AUC: {roc_auc_score(y_test, score):.4f}")
