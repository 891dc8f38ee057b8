"""The workflow in one call: ``train`` (data to run folder), ``evaluate``, ``Run``, ``load_run``."""

from dlpipe.pipeline import kinds as _kinds  # noqa: F401  (the table of data kinds: detectors, recipes, priorities)
from dlpipe.pipeline.run import Run, load_run
from dlpipe.pipeline.train import evaluate, train

__all__ = ["Run", "evaluate", "load_run", "train"]
