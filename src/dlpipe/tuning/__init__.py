"""Hyper-parameter tuning with Optuna: TPE, pruning on the per-epoch validation loss, resumable studies."""

from dlpipe.tuning.report import build_tuning_report
from dlpipe.tuning.space import DEFAULT_SPACE, SearchSpace, load_space
from dlpipe.tuning.study import TuneResult, connect_storage, parse_timeout, tune
from dlpipe.tuning.trial import PruningCallback

__all__ = [
    "tune",
    "TuneResult",
    "load_space",
    "SearchSpace",
    "DEFAULT_SPACE",
    "PruningCallback",
    "connect_storage",
    "parse_timeout",
    "build_tuning_report",
]
