"""Micro-batching: concurrent single-row requests gathered for a few milliseconds, one forward pass.

A request joins the pending batch and awaits its future; the first request of a batch schedules the
flush ``window`` seconds later (or at once when ``max_rows`` rows are waiting). The flush
concatenates the inputs, runs the model once in the event loop and hands each request its rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["MicroBatcher"]

RunFn = Callable[[list[np.ndarray]], tuple["np.ndarray | None", ...]]


class MicroBatcher:
    """Gathers ``submit`` calls for ``window`` seconds and runs them as one batch.

    Args:
        run: Model inputs (arrays in forward order) -> a tuple of per-row arrays (or None), e.g.
            (labels, probabilities, rows whose output was not finite); each request gets its rows of each.
        window: Seconds to wait after the first request of a batch.
        max_rows: Run the batch at once when this many rows are waiting. Defaults to `256`.
    """

    def __init__(self, run: RunFn, window: float, max_rows: int = 256) -> None:
        self.run = run
        self.window = window
        self.max_rows = max_rows
        self._pending: list[tuple[list[np.ndarray], asyncio.Future[Any]]] = []
        self._rows = 0
        self._timer: asyncio.TimerHandle | None = None
        self.batches = 0
        self.requests = 0

    async def submit(self, inputs: list[np.ndarray]) -> tuple[Any, ...]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((inputs, future))
        self._rows += int(inputs[0].shape[0])
        if self._rows >= self.max_rows:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.window, self._flush)
        return await future  # type: ignore[no-any-return]

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending, self._rows = self._pending, [], 0
        if not pending:
            return
        self.batches += 1
        self.requests += len(pending)
        try:
            inputs = [np.concatenate([p[0][k] for p in pending]) for k in range(len(pending[0][0]))]
            outputs = self.run(inputs)
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
            for _, fut in pending:
                if not fut.done():
                    fut.set_exception(exc)
            return
        start = 0
        for inp, fut in pending:
            n = int(inp[0].shape[0])
            if not fut.done():
                fut.set_result(
                    tuple(a[start : start + n] if a is not None else None for a in outputs)
                )
            start += n
