"""Running the app under uvicorn: the bundle is checked before the port opens, then each worker loads it once.

Every worker runs :class:`~dlpipe.serving.protocol.GuardedHTTPProtocol`: uvicorn's own protocol with
a deadline for request heads, an idle timeout for bodies, a head size cap and a connection cap (uvicorn
alone holds a half-sent request for ever). The limits travel to worker processes in the same
environment variable as the rest of the :class:`ServeConfig`.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from dlpipe.core.errors import InvalidConfigError
from dlpipe.core.runtime import require
from dlpipe.serving.app import ServeConfig, create_app

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["run_server", "app_from_env"]

_ENV = "DLPIPE_SERVE_CONFIG"
_WORKER_PING_S = 60


def run_server(
    config: ServeConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "warning",
) -> None:
    """Check the bundle and options, then serve with uvicorn (``workers`` processes, each loading the model once).

    Raises:
        BundleError: the bundle is missing, incomplete or damaged (the server does not start).
        InvalidConfigError: a bad option (workers, port, body limit, timeouts, API key variable).
    """
    uvicorn = require("uvicorn", extra="serve")
    _check(config, workers, port)
    # Load once here: a broken bundle or a missing API key stops the start with one sentence.
    app = create_app(config.bundle, config)
    from dlpipe.serving.protocol import GuardedHTTPProtocol

    _configure(config)
    options = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        "http": GuardedHTTPProtocol,
        "timeout_keep_alive": config.keep_alive_s,
        # h11 only (httptools has no such knob; GuardedHTTPProtocol caps heads for both)
        "h11_max_incomplete_event_size": int(config.max_header_kb * 1000),
    }
    if workers == 1:
        uvicorn.run(app, **options)
        return
    os.environ[_ENV] = config.to_env()
    # uvicorn kills a worker that does not answer its supervisor's ping within this many seconds, and
    # the ping thread starts only after the worker's imports: with its default (5 s) a worker on a
    # busy machine was killed and respawned every ~6 s and the server never answered (load ~28 on
    # 2 cores, 2026-12-07). A hung worker is now replaced after a minute instead.
    uvicorn.run(
        "dlpipe.serving.server:app_from_env",
        factory=True,
        workers=workers,
        timeout_worker_healthcheck=_WORKER_PING_S,
        **options,
    )


def app_from_env() -> FastAPI:
    """The app factory each uvicorn worker process calls (its config travels in the environment)."""
    config = ServeConfig.from_env(os.environ[_ENV])
    _configure(config)
    return create_app(config.bundle, config)


def _configure(config: ServeConfig) -> None:
    from dlpipe.serving.protocol import Limits, configure

    configure(
        Limits(
            header_timeout=config.header_timeout_s,
            body_timeout=config.body_timeout_s,
            max_header_bytes=int(config.max_header_kb * 1000),
            max_connections=config.max_connections,
            max_body_bytes=int(config.max_body_mb * 1e6),
        )
    )


def _check(config: ServeConfig, workers: int, port: int) -> None:
    problems = []
    if workers < 1:
        problems.append(f"`workers` is {workers!r} but must be at least 1")
    if not 0 < port < 65536:
        problems.append(f"`port` is {port!r} but must be between 1 and 65535")
    positive = {
        "max_body_mb": config.max_body_mb,
        "header_timeout_s": config.header_timeout_s,
        "body_timeout_s": config.body_timeout_s,
        "keep_alive_s": config.keep_alive_s,
        "max_header_kb": config.max_header_kb,
    }
    for key, value in positive.items():
        if not (math.isfinite(value) and value > 0):
            problems.append(f"`{key}` is {value!r} but must be a positive number")
    if config.max_connections < 1:
        problems.append(f"`max_connections` is {config.max_connections!r} but must be at least 1")
    if not 1 <= config.drift_window <= 100_000:
        problems.append(
            f"`drift_window` is {config.drift_window!r} but must be between 1 and 100000"
        )
    if not (math.isfinite(config.batch_window_ms) and config.batch_window_ms >= 0):
        problems.append(f"`batch_window_ms` is {config.batch_window_ms!r} but must be >= 0")
    if problems:
        raise InvalidConfigError("; ".join(problems) + ".")
