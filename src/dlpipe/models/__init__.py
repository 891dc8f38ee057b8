"""The model zoo: JSON-able specs built into ``nn.Module`` networks."""

from dlpipe.models import cnn as _cnn  # noqa: F401  (registers "cnn")
from dlpipe.models import resnet as _resnet  # noqa: F401  (registers "resnet18/34/50")
from dlpipe.models.mlp import MLP, default_hidden
from dlpipe.models.registry import build_model, model_families, register_model
from dlpipe.models.shapes import conv_output_size, pool_output_size
from dlpipe.models import cnn1d as _cnn1d, rnn as _rnn, tcn as _tcn, transformer as _transformer  # noqa: E402,F401  (register the sequence families)
from dlpipe.models import autoencoder as _ae, gan as _gan, vae as _vae  # noqa: E402,F401  (register the generative families)

__all__ = ["MLP", "build_model", "conv_output_size", "default_hidden", "model_families", "pool_output_size", "register_model"]
