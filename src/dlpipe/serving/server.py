"""Running the app under uvicorn: the bundle is checked before the port opens, then each worker loads it once."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dlpipe.core.errors import InvalidConfigError
from dlpipe.core.runtime import require
from dlpipe.serving.app import ServeConfig, create_app

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["run_server", "app_from_env"]

_ENV = "DLPIPE_SERVE_CONFIG"


def run_server(config: ServeConfig, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, log_level: str = "warning") -> None:
    """Check the bundle and options, then serve with uvicorn (``workers`` processes, each loading the model once).

    Raises:
        BundleError: the bundle is missing, incomplete or damaged (the server does not start).
        InvalidConfigError: a bad option (workers, port, body limit, API key variable).
    """
    uvicorn = require("uvicorn", extra="serve")
    problems = []
    if workers < 1:
        problems.append(f"`--workers` is {workers!r} but must be at least 1")
    if not 0 < port < 65536:
        problems.append(f"`--port` is {port!r} but must be between 1 and 65535")
    if config.max_body_mb <= 0:
        problems.append(f"`--max-body-mb` is {config.max_body_mb!r} but must be positive")
    if config.batch_window_ms < 0:
        problems.append(f"`--batch-window-ms` is {config.batch_window_ms!r} but must be >= 0")
    if problems:
        raise InvalidConfigError("; ".join(problems) + ".")
    # Load once here: a broken bundle or a missing API key stops the start with one sentence.
    app = create_app(config.bundle, config)
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
        return
    os.environ[_ENV] = config.to_env()
    uvicorn.run("dlpipe.serving.server:app_from_env", factory=True, host=host, port=port, workers=workers, log_level=log_level, access_log=False)


def app_from_env() -> FastAPI:
    """The app factory each uvicorn worker process calls (its config travels in the environment)."""
    return create_app(ServeConfig.from_env(os.environ[_ENV]).bundle, ServeConfig.from_env(os.environ[_ENV]))
