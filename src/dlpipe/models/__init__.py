"""The model zoo: JSON-able specs built into ``nn.Module`` networks."""

from dlpipe.models.mlp import MLP, default_hidden
from dlpipe.models.registry import build_model, model_families, register_model

__all__ = ["MLP", "build_model", "default_hidden", "model_families", "register_model"]
