"""Experiment tracking: an MLflow logger handed to the trainer as a callback (training never imports it)."""

from dlpipe.tracking.mlflow import MlflowTracker, tracker_from_flag

__all__ = ["MlflowTracker", "tracker_from_flag"]
