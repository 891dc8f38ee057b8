"""A real uvicorn server (2 workers, API key) on 127.0.0.1, and its page in headless Chromium."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = [pytest.mark.service, pytest.mark.slow]

KEY = "test-key-123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(table_bundle, tmp_path_factory):
    port = _free_port()
    env = dict(os.environ, DLPIPE_TEST_SERVE_KEY=KEY)
    log = open(tmp_path_factory.mktemp("serve") / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dlpipe",
            "serve",
            str(table_bundle),
            "--port",
            str(port),
            "--workers",
            "2",
            "--api-key-env",
            "DLPIPE_TEST_SERVE_KEY",
            "--batch-window-ms",
            "2",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.close()
            pytest.fail(f"the server exited with {proc.returncode}: {open(log.name).read()[-800:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the server did not answer /health within 90 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def test_predict_with_and_without_key(server, rows):
    with httpx.Client(base_url=server, timeout=10) as c:
        assert c.post("/predict", json={"rows": rows}).status_code == 401
        assert c.get("/health").json() == {"status": "ok"}  # open, but says nothing about the model
        r = c.post("/predict", json={"rows": rows}, headers={"X-API-Key": KEY})
        assert r.status_code == 200 and len(r.json()["predictions"]) == len(rows)
        bad = c.post(
            "/predict", json={"rows": [dict(rows[0], age="forty")]}, headers={"X-API-Key": KEY}
        )
        assert bad.status_code == 422 and "'age'" in bad.json()["detail"]
        # a category never seen in training is the unknown category, with a warning (not a 422)
        new = c.post(
            "/predict", json={"rows": [dict(rows[0], city="Mars")]}, headers={"X-API-Key": KEY}
        )
        assert new.status_code == 200 and "'city' (1 row, e.g. 'Mars')" in new.json()["warnings"][0]


def test_50_mb_body_is_refused_and_the_server_keeps_serving(server, rows):
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            f"POST /predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\nContent-Length: {50_000_000}\r\n\r\n".encode()
        )
        s.sendall(b"{" + b" " * 65536)
        data = b""
        while (
            b"}" not in data.partition(b"\r\n\r\n")[2]
        ):  # headers and body may come in separate packets
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head = data.decode(errors="replace")
    assert head.startswith("HTTP/1.1 413"), head[:200]
    assert "over the limit of 10 MB" in head
    with httpx.Client(base_url=server, timeout=10) as c:
        assert (
            c.post("/predict", json={"rows": rows[:1]}, headers={"X-API-Key": KEY}).status_code
            == 200
        )


def test_page_in_headless_chromium(server):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "_dlpipe_serving_browser", Path(__file__).with_name("browser.py")
    )
    assert spec is not None and spec.loader is not None
    browser = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(browser)
    chromium, fill_and_submit = browser.chromium, browser.fill_and_submit
    if not chromium.chromium_path():
        pytest.skip("chromium is not installed; scripts/test-services.sh installs it")
    # With a key the page itself is behind it: a browser sends it as Basic auth (any user name, the key as
    # password) after its login prompt, and the page's own requests carry it too.
    basic = {"Authorization": "Basic " + base64.b64encode(f"me:{KEY}".encode()).decode()}
    out = fill_and_submit(
        server + "/",
        {"age": "71", "income": "90", "city": "Seoul", "shop": "s03", "member": "true"},
        headers=basic,
    )
    assert out["exceptions"] == []
    assert out["text"] == "yes", out
    assert "yes" in out["result"] and "%" in out["result"]  # the probability bars
    wrong = fill_and_submit(
        server + "/",
        {},
        headers={"Authorization": "Basic " + base64.b64encode(b"me:nope").decode()},
    )
    assert wrong["status"] == 401 and wrong["text"] is None


def _browser():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "_dlpipe_serving_browser", Path(__file__).with_name("browser.py")
    )
    assert spec is not None and spec.loader is not None
    browser = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(browser)
    if not browser.chromium.chromium_path():
        pytest.skip("chromium is not installed; scripts/test-services.sh installs it")
    return browser


def _requested(page) -> list[str]:
    """URLs the page asked for, less those its Content-Security-Policy stopped inside the browser."""
    blocked = {
        e["params"]["requestId"]
        for e in page.cdp.events
        if e.get("method") == "Network.loadingFailed" and e["params"].get("blockedReason") == "csp"
    }
    return [
        e["params"]["request"]["url"]
        for e in page.cdp.events
        if e.get("method") == "Network.requestWillBeSent"
        and e["params"]["requestId"] not in blocked
    ]


def test_docs_and_redoc_render_offline_in_chromium(server):
    """Every host but 127.0.0.1 is unresolvable in this browser (browser.Page): the viewers' files
    must come from the server itself (the serve extra installs them), or the pages stay blank."""
    browser = _browser()
    basic = {"Authorization": "Basic " + base64.b64encode(f"me:{KEY}".encode()).decode()}
    with browser.Page(server + "/docs", headers=basic) as page:
        title = page.wait_for(".swagger-ui .info .title", timeout=30)
        assert title is not None and "dlpipe" in title, page.exceptions
        assert page.wait_for("#operations-default-predict_predict_post .opblock-summary-path")
        # open POST /predict: the 200 answer's example (the model's own answer for one row) is shown
        page.js(
            "document.querySelector('#operations-default-predict_predict_post .opblock-summary-control').click(); true"
        )
        shown = page.wait_for(".responses-table tr.response[data-code='200'] pre")
        assert shown is not None and "predictions" in shown and "probabilities" in shown, shown
        assert page.exceptions == []
        urls = _requested(page)
        assert any(u.endswith("/docs/assets/swagger-ui-bundle.js") for u in urls)
        assert [u for u in urls if u.startswith("http") and not u.startswith(server)] == []
    with browser.Page(server + "/redoc", headers=basic) as page:
        heading = page.wait_for(".api-info h1", timeout=30)
        assert heading is not None and "dlpipe" in heading, page.exceptions
        assert page.wait_for("[data-section-id]") is not None
        assert page.exceptions == []
        urls = _requested(page)
        assert any(u.endswith("/docs/assets/redoc.standalone.js") for u in urls)
        assert [u for u in urls if u.startswith("http") and not u.startswith(server)] == []


def test_bundle_without_weights_refuses_to_start(table_bundle, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(table_bundle, broken)
    (broken / "weights.safetensors").unlink()
    r = subprocess.run(
        [sys.executable, "-m", "dlpipe", "serve", str(broken), "--port", str(_free_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert (
        r.stderr.startswith("error: ")
        and "has no weights file" in r.stderr
        and "Traceback" not in r.stderr
    )
