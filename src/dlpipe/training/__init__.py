"""The training engine: Trainer, callbacks, flat fused optimisers, the LR range test."""

from dlpipe.training.callbacks import (
    Callback,
    CosineSchedule,
    EarlyStopping,
    OneCycleSchedule,
    ProgressCallback,
    ReduceLROnPlateau,
)
from dlpipe.training.history import History
from dlpipe.training.lr_finder import LRFinderResult, find_learning_rate
from dlpipe.training.optim import FlatOptimizer
from dlpipe.training.trainer import TensorData, Trainer, evaluate_tensors, predict_logits

__all__ = [
    "Callback",
    "CosineSchedule",
    "EarlyStopping",
    "FlatOptimizer",
    "History",
    "LRFinderResult",
    "OneCycleSchedule",
    "ProgressCallback",
    "ReduceLROnPlateau",
    "TensorData",
    "Trainer",
    "evaluate_tensors",
    "find_learning_rate",
    "predict_logits",
]
