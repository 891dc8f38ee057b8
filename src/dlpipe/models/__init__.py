"""The model zoo: JSON-able specs built into ``nn.Module`` networks."""

from dlpipe.models import autoencoder as _ae  # noqa: F401  (registers the family)
from dlpipe.models import cnn as _cnn  # noqa: F401  (registers the family)
from dlpipe.models import cnn1d as _cnn1d  # noqa: F401  (registers the family)
from dlpipe.models import encoders as _encoders  # noqa: F401  (registers text_encoder, text_static)
from dlpipe.models import gan as _gan  # noqa: F401  (registers the family)
from dlpipe.models import minirocket as _minirocket  # noqa: F401  (registers the family)
from dlpipe.models import nbeats as _nbeats  # noqa: F401  (registers the family)
from dlpipe.models import resnet as _resnet  # noqa: F401  (registers the family)
from dlpipe.models import rnn as _rnn  # noqa: F401  (registers the family)
from dlpipe.models import tcn as _tcn  # noqa: F401  (registers the family)
from dlpipe.models import text as _text  # noqa: F401  (registers the text families)
from dlpipe.models import transformer as _transformer  # noqa: F401  (registers the family)
from dlpipe.models import vae as _vae  # noqa: F401  (registers the family)
from dlpipe.models.mlp import MLP, default_hidden
from dlpipe.models.registry import build_model, model_families, register_model
from dlpipe.models.shapes import conv_output_size, pool_output_size

__all__ = [
    "MLP",
    "build_model",
    "conv_output_size",
    "default_hidden",
    "model_families",
    "pool_output_size",
    "register_model",
]
