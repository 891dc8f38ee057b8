"""Open a page from disk in real headless Chromium and report what a reader's browser would see.

Talks the DevTools protocol over ``--remote-debugging-pipe`` (fds 3 and 4, NUL-separated JSON), so
no websocket client or browser-automation package is needed. Collects console errors, uncaught
exceptions, failed or off-machine requests and broken images, and saves a full-page screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class _Pipe:
    def __init__(self, proc: subprocess.Popen, write_fd: int, read_fd: int) -> None:
        self.proc, self.w, self.r = proc, write_fd, read_fd
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 30,
    ) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        want = self.next_id
        deadline = time.monotonic() + timeout
        while True:
            for m in self._read(deadline):
                if m.get("id") == want:
                    if "error" in m:
                        raise RuntimeError(f"{method}: {m['error']}")
                    return m.get("result", {})
                self.events.append(m)

    def wait_event(
        self, name: str, session: str | None = None, since: int = 0, timeout: float = 30
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = since
        while True:
            for m in self.events[seen:]:
                if m.get("method") == name and (session is None or m.get("sessionId") == session):
                    return m
            seen = len(self.events)
            self.events.extend(self._read(deadline))

    def _read(self, deadline: float) -> list[dict[str, Any]]:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self.r], [], [], left)
            if ready:
                chunk = os.read(self.r, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the pipe (exit code {self.proc.poll()})")
                self.buf += chunk
        *msgs, self.buf = self.buf.split(b"\0")
        return [json.loads(m) for m in msgs if m]


class Chromium:
    """One headless Chromium for several pages: ``with Chromium() as b: b.inspect(page, shot)``."""

    def __enter__(self) -> Chromium:
        exe = chromium_path()
        assert exe, "chromium is not installed (scripts/test-services.sh installs it)"
        self.profile = tempfile.mkdtemp(prefix="dlpipe-chromium-")
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def _fds() -> None:  # Chromium reads commands on fd 3 and writes replies on fd 4
            a, b = (
                fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10),
                fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10),
            )
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [
                exe,
                *FLAGS,
                f"--user-data-dir={self.profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            preexec_fn=_fds,
            close_fds=False,  # Python's own fds are close-on-exec anyway
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.cdp = _Pipe(self.proc, self._w, self._r)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.cdp.send("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)
        shutil.rmtree(self.profile, ignore_errors=True)

    def inspect(
        self,
        page: Path,
        screenshot: Path | None = None,
        width: int = 1280,
        measure: str | None = None,
    ) -> dict[str, Any]:
        """Load ``page`` (a file) in a new tab and return {'console_errors', 'exceptions', 'requests',
        'off_machine', 'failed', 'broken_images', 'images', 'title', 'height'}; write a full-page PNG.
        ``measure``: a JavaScript expression evaluated in the page; its JSON value is 'measured'."""
        cdp = self.cdp
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        start = len(cdp.events)
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.send(f"{domain}.enable", session=session)
        cdp.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        cdp.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        cdp.wait_event("Page.loadEventFired", session=session, since=start, timeout=60)
        time.sleep(0.3)  # late console messages
        probe = cdp.send(
            "Runtime.evaluate",
            {
                "returnByValue": True,
                "expression": """JSON.stringify({
            images: document.images.length,
            broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt || i.src.slice(0, 60)),
            title: document.title,
            height: Math.ceil(document.documentElement.scrollHeight)})""",
            },
            session=session,
        )
        info = json.loads(probe["result"]["value"])
        if measure is not None:
            info["measured"] = cdp.send(
                "Runtime.evaluate", {"returnByValue": True, "expression": measure}, session=session
            )["result"].get("value")
        if screenshot is not None:
            shot = cdp.send(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": info["height"], "scale": 1},
                },
                session=session,
                timeout=60,
            )
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        events = [e for e in cdp.events[start:] if e.get("sessionId") == session]
        cdp.send("Target.closeTarget", {"targetId": target})
        console = [
            e["params"]
            for e in events
            if e.get("method") == "Runtime.consoleAPICalled"
            and e["params"].get("type") in ("error", "assert")
        ]
        logs = [
            e["params"]["entry"]
            for e in events
            if e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error"
        ]
        requests = [
            e["params"]["request"]["url"]
            for e in events
            if e.get("method") == "Network.requestWillBeSent"
        ]
        return {
            "console_errors": [str(c.get("args")) for c in console]
            + [str(entry.get("text")) for entry in logs],
            "exceptions": [
                e["params"]["exceptionDetails"].get("text")
                for e in events
                if e.get("method") == "Runtime.exceptionThrown"
            ],
            "requests": requests,
            "off_machine": [u for u in requests if not u.startswith(("file:", "data:", "about:"))],
            "failed": [e["params"] for e in events if e.get("method") == "Network.loadingFailed"],
            "broken_images": info["broken"],
            "images": info["images"],
            "title": info["title"],
            "height": info["height"],
            "measured": info.get("measured"),
        }


def inspect_page(page: Path, screenshot: Path | None = None, width: int = 1280) -> dict[str, Any]:
    """One page in a fresh browser (see :meth:`Chromium.inspect`)."""
    with Chromium() as browser:
        return browser.inspect(page, screenshot, width)
