"""Six classes of images, heavily imbalanced: class weights so the rare classes are not ignored (Keras style).

What it shows: an imbalanced 6-class image set (sklearn's 8x8 digits 0-5, kept at 100% of the 0s down
to 8% of the 5s: real images, imbalance made here), a small CNN trained twice — plainly, then with
`fit(class_weight=...)` from scikit-learn's "balanced" weights — and the per-class recall and
balanced accuracy of both on a test split that keeps the imbalance. Accuracy alone hides the rare
classes; balanced accuracy (the mean of the per-class recalls) does not.

    python examples/05_imbalanced_six_classes.py           # 15 epochs per model
    python examples/05_imbalanced_six_classes.py --quick   # 3 epochs (or DLPIPE_EXAMPLE_QUICK=1)

Full run (seed 0): balanced accuracy 0.93 plain (recall of the two rarest classes 0.86, 0.75) vs
1.00 with class weights; quick run: 0.37 vs 0.90.
"""

import os
import sys

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import balanced_accuracy_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight

from dlpipe.keras import Sequential, layers, utils

quick = "--quick" in sys.argv or os.environ.get("DLPIPE_EXAMPLE_QUICK") == "1"
epochs = 3 if quick else 15
rng = np.random.default_rng(0)

# 1. Data: digits 0-5, keeping a shrinking share of each class -> roughly 180, 110, 65, 40, 25, 15 images.
digits = load_digits()
keep_share = [1.0, 0.6, 0.35, 0.22, 0.13, 0.08]
keep = np.concatenate(
    [
        rng.choice(idx, size=int(round(share * len(idx))), replace=False)
        for c, share in enumerate(keep_share)
        for idx in [np.flatnonzero(digits.target == c)]
    ]
)
X = digits.images[keep].reshape(-1, 8, 8, 1).astype("float32") / 16.0  # channels-last, [0, 1]
y = digits.target[keep]
print("images per class:", np.bincount(y).tolist())
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)  # stratified: every class keeps its share in both splits

# 2. "balanced" weights: n_rows / (n_classes * rows of the class), so each class counts the same.
weights = compute_class_weight("balanced", classes=np.arange(6), y=y_train)
class_weight = {c: float(w) for c, w in enumerate(weights)}
print("class weights:", {c: round(w, 2) for c, w in class_weight.items()})


def build_model():
    model = Sequential(
        [
            layers.Input(shape=(8, 8, 1)),
            layers.Conv2D(32, (3, 3), activation="relu", padding="same"),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(6, activation="softmax"),
        ]
    )
    # sparse_categorical_crossentropy takes the labels 0-5 as they are (no one-hot needed)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# 3. The same network and seed, without and with class weights.
results = {}
for name, cw in [("plain", None), ("class_weight", class_weight)]:
    utils.set_random_seed(0)
    model = build_model()
    model.fit(X_train, y_train, epochs=epochs, batch_size=32, class_weight=cw, verbose=0)
    y_pred = model.predict(X_test, verbose=0).argmax(axis=1)
    recalls = recall_score(y_test, y_pred, labels=np.arange(6), average=None, zero_division=0)
    results[name] = balanced_accuracy_score(y_test, y_pred)
    print(f"{name:>12}: recall per class {np.round(recalls, 2).tolist()}")

for name, value in results.items():
    print(f"{name} balanced accuracy: {value:.4f}")
# Digits are easy: trained for 40 epochs the plain model catches up (both 1.0 at seed 0). The
# weighted one gets the rare classes right sooner (15 epochs, seed 0: 0.93 plain vs 1.0 weighted).
