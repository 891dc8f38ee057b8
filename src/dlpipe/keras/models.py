"""``dlpipe.keras.models``: ``Sequential``, ``Model`` and ``load_model`` where Keras keeps them."""

from dlpipe.keras.model import Model, Sequential, load_model, model_from_json

__all__ = ["Model", "Sequential", "load_model", "model_from_json"]
