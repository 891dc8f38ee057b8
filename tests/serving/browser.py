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

_spec = importlib.util.spec_from_file_location("_dlpipe_test_chromium", Path(__file__).parents[1] / "reports" / "chromium.py")
assert _spec is not None and _spec.loader is not None
chromium = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(chromium)


def fill_and_submit(url: str, values: dict[str, str], *, wait_for: str = "#prediction-value, #error", timeout: float = 30) -> dict[str, Any]:
    """Open ``url``, set each ``#field-<name>`` (and ``#api-key``) to ``values``, click Predict,
    wait for ``wait_for`` to appear; return {'text': ..., 'result': innerText of #result, 'exceptions': [...]}."""
    exe = chromium.chromium_path()
    assert exe, "chromium is not installed (scripts/test-services.sh installs it)"
    profile = tempfile.mkdtemp(prefix="dlpipe-serve-chromium-")
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()

    def _fds() -> None:
        a, b = fcntl.fcntl(to_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_w, fcntl.F_DUPFD, 10)
        os.dup2(a, 3)
        os.dup2(b, 4)

    proc = subprocess.Popen([exe, *chromium.FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
                            preexec_fn=_fds, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_r)
    os.close(from_w)
    cdp = chromium._Pipe(proc, to_w, from_r)
    try:
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime"):
            cdp.send(f"{domain}.enable", session=session)
        cdp.send("Page.navigate", {"url": url}, session=session)
        cdp.wait_event("Page.loadEventFired", timeout=timeout)

        def js(expr: str) -> Any:
            return cdp.send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=session)["result"].get("value")

        for name, value in values.items():
            sel = "#api-key" if name == "__api_key__" else f"#field-{name}"
            ok = js(f"(() => {{ const el = document.querySelector({json.dumps(sel)}); if (!el) return false; el.value = {json.dumps(value)}; return true; }})()")
            assert ok, f"the page has no field {sel}"
        js("document.getElementById('submit').click()")
        deadline = time.monotonic() + timeout
        text = None
        while time.monotonic() < deadline:
            text = js(f"(() => {{ const el = document.querySelector({json.dumps(wait_for)}); return el ? el.textContent : null; }})()")
            if text:
                break
            time.sleep(0.05)
        result = js("document.getElementById('result').innerText")
        exceptions = [e["params"]["exceptionDetails"].get("text") for e in cdp.events if e.get("method") == "Runtime.exceptionThrown"]
        return {"text": text, "result": result, "exceptions": exceptions}
    finally:
        try:
            cdp.send("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(to_w)
        os.close(from_r)
        shutil.rmtree(profile, ignore_errors=True)
