"""The Keras-style front door: ``Sequential``/``Model`` + ``compile``/``fit``/``evaluate``/``predict`` on dlpipe's engine.

Change the import lines of a Keras program and it runs here::

    from dlpipe.keras import Sequential, layers, callbacks

A final ``sigmoid``/``softmax`` is folded into a logits-based loss (no double activation), image
inputs are channels-last as in Keras, and ``model.save`` writes a dlpipe bundle (JSON + safetensors,
never pickle) that ``dlpipe predict/evaluate/serve/export/drift`` accept.
"""

from dlpipe.keras import (
    callbacks,
    datasets,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    regularizers,
    utils,
)
from dlpipe.keras.layers import Input
from dlpipe.keras.model import History, Model, Sequential

__all__ = [
    "Sequential",
    "Model",
    "Input",
    "History",
    "layers",
    "callbacks",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "regularizers",
    "datasets",
    "utils",
]
