"""Serving a bundle over HTTP: a FastAPI app (predict, CSV, health, metadata, drift, a page) and its runner."""

from dlpipe.serving.app import ServeConfig, create_app
from dlpipe.serving.server import run_server

__all__ = ["ServeConfig", "create_app", "run_server"]
