"""Monitoring a served model: data drift of new inputs against the training inputs."""

from dlpipe.monitoring.drift import DriftReport, FeatureDrift, detect_drift

__all__ = ["DriftReport", "FeatureDrift", "detect_drift"]
