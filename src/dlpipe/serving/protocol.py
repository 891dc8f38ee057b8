"""Slow and greedy clients at the connection level: uvicorn's HTTP protocol with deadlines and caps.

uvicorn times out only idle kept-alive connections (after a response): a connection that opens and
sends nothing, or half of its headers, or half of its body, is held for ever, and nothing bounds the
number of them. :class:`GuardedHTTPProtocol` is uvicorn's protocol class (httptools or h11) with:

- a head deadline: the request line and headers must be complete within ``header_timeout_s`` of the
  connection opening or of the previous response, else the connection is closed (with a 408 when
  some of the request had arrived);
- a head size cap (``max_header_kb``): more bytes without the end of the headers get a 431 and a close;
- a body idle timeout: a body that stops arriving for ``body_timeout_s`` gets a 408 and a close (the
  endpoint sees a disconnect and stops);
- a connection cap (``max_connections`` per worker): a connection over it gets a 503 sentence to its
  first request and is closed;
- after an early answer (a 413 before the body was read), at most the body limit is read and thrown
  away before the connection is closed, so the client still gets to read the answer.

Only the ``cycle``/``transport``/``loop`` attributes and ``on_response_complete`` that both uvicorn
protocols share are used, and the cost is one timer per connection and a few comparisons per read.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

__all__ = ["Limits", "configure", "GuardedHTTPProtocol"]


@dataclass(frozen=True)
class Limits:
    """The connection-level limits of one worker (seconds and bytes)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 64_000
    max_connections: int = 200
    max_body_bytes: int = 10_000_000


_limits = Limits()


def configure(limits: Limits) -> None:
    """Set the limits for protocols created from now on in this process (each worker calls it)."""
    global _limits
    _limits = limits


def _response(status: int, reason: str, detail: str) -> bytes:
    body = json.dumps({"detail": detail}).encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
        + body
    )


async def _busy(scope: Any, receive: Any, send: Any) -> None:
    """The app a connection over the cap gets: one 503 sentence, then the connection closes."""
    detail = f"the server has {_limits.max_connections} open connections, its limit; retry in a moment (or start it with a larger `--max-connections`)."
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (b"retry-after", b"1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Guarded:
    """Mixed in before uvicorn's protocol class; see the module docstring."""

    cycle: Any
    transport: Any
    loop: asyncio.AbstractEventLoop
    connections: Any
    app: Any

    def connection_made(self, transport: Any) -> None:
        self._limits = _limits
        self._timer: asyncio.TimerHandle | None = None
        self._seen: Any = (
            None  # the newest request cycle whose headers were complete at the last look
        )
        self._head_bytes = (
            0  # bytes since the last request or response (head, or a body being thrown away)
        )
        self._allowance = self._limits.max_header_bytes
        self._last_read = 0.0
        super().connection_made(transport)  # type: ignore[misc]
        if len(self.connections) > self._limits.max_connections:
            self.app = _busy
        self._wait_for_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if self.transport.is_closing():
            self._cancel()
            return
        cycle = self.cycle
        if cycle is not before:  # a new request's headers are complete
            self._seen = cycle
            self._head_bytes = 0
            self._allowance = self._limits.max_header_bytes
            self._cancel()
            if cycle.more_body and not cycle.response_complete:
                self._last_read = self.loop.time()
                self._timer = self.loop.call_later(self._limits.body_timeout, self._check_body)
        elif cycle is None or cycle.response_complete:
            # bytes of the next request's head, or the rest of a body after an early answer
            self._head_bytes += len(data)
            if self._head_bytes > self._allowance:
                self._close(
                    431,
                    "Request Header Fields Too Large",
                    f"the request's head is over {self._limits.max_header_bytes // 1000} kB; send fewer or shorter headers.",
                )
        else:
            self._last_read = self.loop.time()  # more of the current body

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and not self.transport.is_closing():
            # an answer sent before its body was read (a 413): let the rest of it arrive, up to the body limit
            self._allowance = self._limits.max_header_bytes + (
                self._limits.max_body_bytes if cycle.more_body else 0
            )
            self._wait_for_head()

    # ------------------------------------------------------------------ timers
    def _wait_for_head(self) -> None:
        self._cancel()
        self._seen = self.cycle
        self._head_bytes = 0
        self._timer = self.loop.call_later(self._limits.header_timeout, self._head_timeout)

    def _head_timeout(self) -> None:
        self._timer = None
        if self.cycle is self._seen and not self.transport.is_closing():
            if self._head_bytes and not self._draining():
                self._close(
                    408,
                    "Request Timeout",
                    f"the request's headers did not arrive within {self._limits.header_timeout:g} s; send the whole request at once.",
                )
            else:  # nothing sent (an idle connection), or the rest of an already answered body
                self.transport.close()

    def _draining(self) -> bool:
        return self._allowance > self._limits.max_header_bytes

    def _check_body(self) -> None:
        self._timer = None
        cycle = self.cycle
        if (
            cycle is not self._seen
            or not cycle.more_body
            or cycle.response_complete
            or self.transport.is_closing()
        ):
            return
        if getattr(getattr(self, "flow", None), "read_paused", False):
            self._last_read = (
                self.loop.time()
            )  # we stopped reading (the endpoint is behind): not the client's pause
        idle = self.loop.time() - self._last_read
        if idle < self._limits.body_timeout:
            self._timer = self.loop.call_later(self._limits.body_timeout - idle, self._check_body)
            return
        if not cycle.response_started:
            cycle.response_started = True
            self.transport.write(
                _response(
                    408,
                    "Request Timeout",
                    f"the request body stopped arriving for {self._limits.body_timeout:g} s; send it without pauses.",
                )
            )
        cycle.disconnected = (
            True  # the endpoint's next read returns a disconnect; its answer is dropped
        )
        cycle.message_event.set()
        self.transport.close()

    def _close(self, status: int, reason: str, detail: str) -> None:
        self._cancel()
        if not self._draining():  # else the request was answered already
            self.transport.write(_response(status, reason, detail))
        self.transport.close()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class GuardedHTTPProtocol(_Guarded, AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol (httptools when installed, else h11) with the limits above; module-level
    so that uvicorn's worker processes can import it."""
