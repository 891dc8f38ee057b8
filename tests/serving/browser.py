"""Drive the serving page in real headless Chromium: fill the form, submit, read what the page shows.

Reuses the reports tests' DevTools-over-pipe client (tests/reports/chromium.py: no websocket or
automation package); this adds navigating to an http URL and running page scripts.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

_spec = importlib.util.spec_from_file_location(
    "_dlpipe_test_chromium", Path(__file__).parents[1] / "reports" / "chromium.py"
)
assert _spec is not None and _spec.loader is not None
chromium = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(chromium)


class Page:
    """One tab of a fresh headless Chromium on ``url``: ``js(expr)``, ``alerts`` (calls of alert/confirm/
    prompt, hooked before any page script runs), ``dialogs`` and ``exceptions``. ``headers`` go with every
    request of the page (an ``Authorization`` header stands in for a browser's login prompt); requests off
    this machine fail at once instead of waiting for a resolver."""

    def __init__(
        self, url: str, *, headers: dict[str, str] | None = None, timeout: float = 30
    ) -> None:
        self.url, self.headers, self.timeout = url, headers, timeout

    def __enter__(self) -> Page:
        exe = chromium.chromium_path()
        assert exe, "chromium is not installed (scripts/test-services.sh installs it)"
        self.profile = tempfile.mkdtemp(prefix="dlpipe-serve-chromium-")
        to_r, self._w = os.pipe()
        self._r, from_w = os.pipe()

        def _fds() -> None:
            a, b = fcntl.fcntl(to_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        flags = [*chromium.FLAGS, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
        self.proc = subprocess.Popen(
            [
                exe,
                *flags,
                f"--user-data-dir={self.profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            preexec_fn=_fds,
            pass_fds=(3, 4),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_r)
        os.close(from_w)
        self.cdp = cdp = chromium._Pipe(self.proc, self._w, self._r)
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Network"):
            cdp.send(f"{domain}.enable", session=self.session)
        if self.headers:
            cdp.send("Network.setExtraHTTPHeaders", {"headers": self.headers}, session=self.session)
        cdp.send("Page.addScriptToEvaluateOnNewDocument", {"source": _HOOK}, session=self.session)
        cdp.send("Page.navigate", {"url": self.url}, session=self.session)
        cdp.wait_event("Page.loadEventFired", timeout=self.timeout)
        return self

    def js(self, expr: str) -> Any:
        reply = self.cdp.send(
            "Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=self.session
        )
        return reply["result"].get("value")

    def wait_for(self, selector: str, timeout: float | None = None) -> str | None:
        """The text of the first element matching ``selector`` once it has some (None at the deadline)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            text = self.js(
                f"(() => {{ const el = document.querySelector({json.dumps(selector)}); return el ? el.textContent : null; }})()"
            )
            if text:
                return str(text)
            time.sleep(0.05)
        return None

    @property
    def alerts(self) -> list[str]:
        return list(self.js("window.__alerts || []") or [])

    @property
    def status(self) -> int | None:
        """The HTTP status of the page itself (the first document response)."""
        for e in self.cdp.events:
            if (
                e.get("method") == "Network.responseReceived"
                and e["params"].get("type") == "Document"
            ):
                return int(e["params"]["response"]["status"])
        return None

    @property
    def dialogs(self) -> list[dict[str, Any]]:
        return [
            e["params"]
            for e in self.cdp.events
            if e.get("method") == "Page.javascriptDialogOpening"
        ]

    @property
    def exceptions(self) -> list[str]:
        return [
            e["params"]["exceptionDetails"].get("text")
            for e in self.cdp.events
            if e.get("method") == "Runtime.exceptionThrown"
        ]

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


# Runs before any script of the page: a script smuggled in through the data would call these.
_HOOK = """
window.__alerts = [];
for (const name of ['alert', 'confirm', 'prompt']) {
  window[name] = (m) => { window.__alerts.push(name + ':' + String(m)); return null; };
}
"""


def fill_and_submit(
    url: str,
    values: dict[str, str],
    *,
    wait_for: str = "#prediction-value, #error",
    timeout: float = 30,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Open ``url``, set each ``field-<name>`` to ``values``, click Predict, wait for ``wait_for`` to
    appear; return {'text': ..., 'result': innerText of #result, 'body': the page's text, 'status': its HTTP status,
    'exceptions': [...], 'alerts': [...]}."""
    with Page(url, headers=headers, timeout=timeout) as page:
        body = page.js("document.body ? document.body.innerText : ''")
        if page.js("document.getElementById('submit') !== null"):
            for name, value in values.items():
                ok = page.js(
                    f"(() => {{ const el = document.getElementById({json.dumps('field-' + name)}); if (!el) return false; el.value = {json.dumps(value)}; return true; }})()"
                )
                assert ok, f"the page has no field {name!r}"
            page.js("document.getElementById('submit').click()")
            text = page.wait_for(wait_for, timeout)
        else:
            text = None
        return {
            "text": text,
            "result": page.js("(document.getElementById('result') || {}).innerText"),
            "body": body,
            "status": page.status,
            "exceptions": page.exceptions,
            "alerts": page.alerts,
        }
