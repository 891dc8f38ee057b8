"""Keras' ``datasets``: ``mnist.load_data()``, ``cifar10.load_data()``, ``boston_housing.load_data()``.

dlpipe never downloads: each loader reads files already on the machine, from ``path`` or from the
cache folder ``$DLPIPE_DATASETS/<name>`` (default ``~/.cache/dlpipe/datasets/<name>``), and also
Keras' own cache file (``~/.keras/datasets/mnist.npz``...) when it is there. When the files are
missing, the error says which files to put where.
"""

from dlpipe.keras.datasets import boston_housing, cifar10, mnist
from dlpipe.keras.datasets._files import cache_dir

__all__ = ["mnist", "cifar10", "boston_housing", "cache_dir"]
