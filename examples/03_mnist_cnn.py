"""MNIST with a small CNN, Keras style: the notes' convolutional network, read from the IDX files.

What it shows: `mnist.load_data(path=...)` reading the four IDX files already on the machine (never a
download), scaling pixels to [0, 1], channels-last images `(N, 28, 28, 1)` as in Keras, a
Conv-Pool-Conv-Pool-Dense network with a softmax head (folded into the loss: no double softmax), and
`evaluate` on the official 10,000 test digits. The full run reaches >= 0.99 test accuracy (the notes
report 0.9905).

    python examples/03_mnist_cnn.py                 # full: 60,000 images, 10 epochs
    python examples/03_mnist_cnn.py --quick         # a 2,000-image slice, 1 epoch (or DLPIPE_EXAMPLE_QUICK=1)
    python examples/03_mnist_cnn.py --seed 1 --data /path/to/mnist

The MNIST files: `--data`, else the project's `../shared/data/mnist`, else dlpipe's cache folder
(`$DLPIPE_DATASETS/mnist`, see docs/keras.md "Data sets").

Full runs (10 epochs, seeds 0, 1, 2, run together under `nice -n 5` on the shared 2-core machine,
load average 25 falling to 10): test accuracy 0.9915, 0.9905, 0.9923; ~3,650 s of training each
(146-600 s per epoch, depending on the load). Quick run: 0.635 after one epoch on 2,000 images.
"""

import argparse
import os
import time
from pathlib import Path

from dlpipe.keras import Sequential, callbacks, layers, utils
from dlpipe.keras.datasets import mnist

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="a small slice and 1 epoch")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--data", help="folder with the MNIST IDX files")
args = parser.parse_args()
quick = args.quick or os.environ.get("DLPIPE_EXAMPLE_QUICK") == "1"
utils.set_random_seed(args.seed)  # Python, NumPy and torch in one call

# 1. Data: uint8 arrays (60000, 28, 28) and labels 0-9.
shared = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
path = args.data or (shared if shared.is_dir() else None)
(x_train, y_train), (x_test, y_test) = mnist.load_data(path=path)
if quick:
    x_train, y_train, x_test, y_test = x_train[:2000], y_train[:2000], x_test[:1000], y_test[:1000]

# Scale to [0, 1] and add the channel axis: Keras images are channels-last (N, H, W, C).
x_train = x_train.reshape(-1, 28, 28, 1).astype("float32") / 255.0
x_test = x_test.reshape(-1, 28, 28, 1).astype("float32") / 255.0
y_train = utils.to_categorical(y_train, 10)  # one-hot, for categorical_crossentropy
y_test = utils.to_categorical(y_test, 10)
print(f"train {x_train.shape}, test {x_test.shape}")

# 2. The network: two convolution blocks learn local strokes, the dense layers combine them.
model = Sequential(
    [
        layers.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.5),  # against overfitting: half the units are dropped in training
        layers.Dense(10, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.summary()

# 3. Train: the last 10% of the training images are the validation set (Keras' validation_split).
# The learning rate starts at Adam's 1e-3 and shrinks by 20% per epoch, so the last epochs settle.
schedule = callbacks.LearningRateScheduler(lambda epoch, lr: 1e-3 * 0.8**epoch)
start = time.perf_counter()
history = model.fit(
    x_train,
    y_train,
    epochs=1 if quick else 10,
    batch_size=128,
    validation_split=0.1,
    callbacks=[schedule],
    verbose=2,
)
seconds = time.perf_counter() - start

# 4. Evaluate once on the held-out test digits.
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"training seconds: {seconds:.1f}")
print(f"test accuracy: {accuracy:.4f}")
