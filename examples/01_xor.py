"""XOR, the smallest problem a straight line cannot solve: one hidden layer learns it (Keras style).

What it shows: `Sequential` + `add`, `Dense(input_dim=...)`, `compile` with an optimizer object,
`fit` on four rows, and `predict` returning probabilities (the final sigmoid is folded into the loss
for training and applied at predict).

    python examples/01_xor.py            # 1,000 epochs
    python examples/01_xor.py --quick    # 300 epochs (or DLPIPE_EXAMPLE_QUICK=1)

Full run (seed 4): accuracy 1.0, probabilities 0.001 / 1.000 / 1.000 / 0.000.
"""

import os
import sys

import numpy as np

from dlpipe.keras import Sequential, layers, optimizers, utils

quick = "--quick" in sys.argv or os.environ.get("DLPIPE_EXAMPLE_QUICK") == "1"
utils.set_random_seed(4)  # 4 ReLU units can all die on XOR (in Keras too); this seed trains

# The whole data set: the truth table of XOR.
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")
y = np.array([0, 1, 1, 0])

model = Sequential()
model.add(layers.Dense(4, input_dim=2, activation="relu"))  # the hidden layer bends the boundary
model.add(layers.Dense(1, activation="sigmoid"))  # P(xor = 1)
model.compile(
    loss="binary_crossentropy", optimizer=optimizers.Adam(learning_rate=0.05), metrics=["accuracy"]
)
history = model.fit(X, y, epochs=300 if quick else 1000, verbose=0)

probabilities = model.predict(X, verbose=0).ravel()
for row, p in zip(X.astype(int).tolist(), probabilities):
    print(f"{row} -> {p:.3f}")
print(f"final loss: {history.history['loss'][-1]:.4f}")
print(f"accuracy: {((probabilities > 0.5) == y).mean():.4f}")
