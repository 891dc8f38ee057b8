"""The server under hostile data and hostile requests (issue #15, items 3, 4 and 5 for serving).

A bundle trained on names that are HTML/script payloads is served by a real uvicorn; its page and
docs must run none of it. Requests that are huge, chunked, deeply nested, non-finite, slow or
unauthenticated each end with one sentence and the documented status, memory stays bounded, and
after every one of them a plain prediction still succeeds.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

COL = "x</script><script>alert(document.cookie)</script>"
TARGET = "</title><script>alert(1)</script>"
CAT = "<img src=x onerror=alert(2)>"
KEY = "hostile-test-key"


# ---------------------------------------------------------------------- fixtures
def _frame(n: int = 64) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, n)
    frame = pd.DataFrame(
        {COL: x, "age": rng.normal(40, 10, n), "city": rng.choice([CAT, "Lima", "Seoul"], n)}
    )
    frame[TARGET] = np.where(x > 0, "yes", "no")
    return frame


ROW = {COL: 0.5, "age": 41.0, "city": CAT}


@pytest.fixture(scope="module")
def hostile_bundle(tmp_path_factory):
    import dlpipe as dl

    run = dl.train(
        _frame(), TARGET, epochs=1, progress="quiet", out=tmp_path_factory.mktemp("hostile") / "run"
    )
    return run.path / "bundle"


@pytest.fixture(scope="module")
def client(hostile_bundle):
    from dlpipe.serving import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette deprecates its own httpx-based TestClient
        from fastapi.testclient import TestClient
    return TestClient(create_app(hostile_bundle))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(
    bundle: Path, log: Path, *flags: str, env: dict[str, str] | None = None
) -> tuple[str, subprocess.Popen]:
    port = _free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dlpipe", "serve", str(bundle), "--port", str(port), *flags],
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}: {log.read_text()[-800:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return url, proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("the server did not answer /health within 90 s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def server(hostile_bundle, tmp_path_factory):
    """The server as a user starts it: no key, the default limits (10 MB bodies)."""
    url, proc = _start(hostile_bundle, tmp_path_factory.mktemp("serve") / "server.log")
    yield url, proc.pid
    _stop(proc)


@pytest.fixture(scope="module")
def guarded(hostile_bundle, tmp_path_factory):
    """With an API key and short limits, so that the timeouts can be watched within a test."""
    url, proc = _start(
        hostile_bundle,
        tmp_path_factory.mktemp("serve") / "guarded.log",
        "--api-key-env",
        "DLPIPE_HOSTILE_KEY",
        "--header-timeout",
        "1",
        "--body-timeout",
        "1",
        "--max-connections",
        "4",
        "--max-body-mb",
        "1",
        env={"DLPIPE_HOSTILE_KEY": KEY},
    )
    yield url
    _stop(proc)


def _strict(text: str) -> object:
    """Parse as strict JSON: a bare NaN/Infinity fails the test."""

    def refuse(token: str) -> None:
        pytest.fail(f"the answer holds a bare {token}, which is not JSON: {text[:200]}")

    return json.loads(text, parse_constant=refuse)


def _one_sentence(reply: httpx.Response) -> str:
    detail = _strict(reply.text)["detail"]
    assert (
        isinstance(detail, str)
        and detail.endswith(".")
        and "\n" not in detail
        and "Traceback" not in detail
    ), detail
    return detail


def _still_serving(base: str, headers: dict[str, str] | None = None) -> None:
    r = httpx.post(base + "/predict", json={"rows": [ROW]}, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    assert _strict(r.text)["predictions"][0]["prediction"] in ("yes", "no")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


def _browser():
    spec = importlib.util.spec_from_file_location(
        "_dlpipe_serving_browser", Path(__file__).parents[1] / "serving" / "browser.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not module.chromium.chromium_path():
        pytest.skip("chromium is not installed; scripts/test-services.sh installs it")
    return module


# ---------------------------------------------------------------------- 3: stored XSS
def test_page_and_docs_hold_the_names_only_escaped(client):
    page = client.get("/").text
    for path in ("/", "/docs", "/redoc"):
        html = client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html, path
    assert "&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown, as text
    data = page.split('<script type="application/json" id="page-data">', 1)[1].split(
        "</script>", 1
    )[0]
    assert json.loads(data)["fields"][0]["name"] == COL  # the script reads the names as data
    assert "script-src 'sha256-" in client.get("/").headers["content-security-policy"]
    info = client.get("/openapi.json").json()["info"]
    assert (
        "<script" not in info["description"] and "<" not in info["description"]
    )  # ReDoc renders it as HTML


@pytest.mark.service
def test_page_runs_no_script_from_the_data_and_still_predicts(server):
    browser = _browser()
    url, _ = server
    with browser.Page(url + "/") as page:
        assert page.js("document.querySelector('label').textContent") == COL
        assert page.js("document.title") == f"dlpipe · {TARGET}"
        assert page.js("document.querySelector('h1').textContent") == f"Predict {TARGET}"
        options = page.js("[...document.querySelectorAll('select option')].map(o => o.textContent)")
        assert (
            CAT in options and page.js("document.images.length") == 0
        )  # the category is text, not an <img>
        assert page.js(
            f"document.getElementById({json.dumps('field-' + COL)}).value = '2'; "
            f"document.getElementById('field-city').value = {json.dumps(CAT)}; "
            "document.getElementById('submit').click(); true"
        )
        shown = page.wait_for("#prediction-value, #error")
        assert shown in ("yes", "no"), page.js("document.getElementById('result').innerText")
        assert page.alerts == [] and page.dialogs == [] and page.exceptions == []


@pytest.mark.service
def test_docs_pages_run_no_script_from_the_data(server):
    browser = _browser()
    url, _ = server
    for path, suffix in (("/docs", " - Swagger UI"), ("/redoc", " - ReDoc")):
        with browser.Page(
            url + path
        ) as page:  # the viewers' own scripts come from a CDN: blocked here
            assert page.js("document.title") == f"dlpipe · binary · {TARGET}{suffix}"
            assert page.js("document.querySelectorAll('script:not([src])').length") <= 1
            assert page.alerts == [] and page.dialogs == [], path
    _still_serving(url)


# ---------------------------------------------------------------------- 4a: /drift keeps typed fields only
@pytest.mark.service
def test_junk_fields_do_not_grow_memory_or_drift(server):
    url, pid = server
    junk = "x" * 8_000_000
    with httpx.Client(base_url=url, timeout=60) as c:
        for _ in range(2):  # warm up: the first drift check imports scipy
            assert c.post("/predict", json={"rows": [dict(ROW, junk=junk)]}).status_code == 200
        rows_before = c.get("/drift").json()["rows"]
        before = _rss_mb(pid)
        for _ in range(16):  # 128 MB of junk; the old server kept every byte of it
            r = c.post(
                "/predict",
                json={"rows": [dict(ROW, junk=junk), dict(ROW, age="0" * 1_000_000 + "7")]},
            )  # a 1 MB number
            assert r.status_code == 200, r.text
        grown = _rss_mb(pid) - before
        drift = c.get("/drift")
        after_drift = _rss_mb(pid) - before
    assert grown < 40, f"RSS grew by {grown:.0f} MB"
    assert after_drift < 60, f"RSS grew by {after_drift:.0f} MB after GET /drift"
    assert drift.status_code == 200 and len(drift.content) < 20_000
    report = _strict(drift.text)
    assert {f["feature"] for f in report["features"]} <= {COL, "age", "city"} and report[
        "rows"
    ] == rows_before + 32
    _still_serving(url)


def test_drift_rows_are_plain_numbers_and_training_categories(hostile_bundle):
    from dlpipe.bundle.bundle import load_bundle
    from dlpipe.serving.rows import RowEncoder

    enc = RowEncoder(load_bundle(hostile_bundle).preprocessor)
    typed = enc.typed(
        [
            dict(ROW, age="0" * 100_000 + "7", junk=[1] * 1000),
            {COL: None, "age": float("nan"), "city": "Mars"},
        ]
    )
    by_name = [dict(zip(enc.names, t)) for t in typed]
    assert by_name[0] == {COL: 0.5, "age": 7.0, "city": CAT}
    assert (
        by_name[0]["city"] is enc.categories["city"][enc.categories["city"].index(CAT)]
    )  # the bundle's string, not the request's
    assert (
        math.isnan(by_name[1][COL]) and math.isnan(by_name[1]["age"]) and by_name[1]["city"] is None
    )
    # the server's path: the numbers and codes `encode` parsed, not parsed twice; the same rows
    rows = enc.validate(
        [ROW, {COL: None, "age": 41, "city": "Mars"}, {COL: 1.5, "age": None, "city": None}]
    )
    parsed: dict = {}
    enc.encode(rows, [], parsed)
    again = enc.typed(rows, parsed)
    plain = enc.typed(rows)
    assert [str(t) for t in again] == [str(t) for t in plain]  # NaN != NaN: compared as text
    assert dict(zip(enc.names, again[1]))["city"] is None  # unseen: no category


# ---------------------------------------------------------------------- 4b: streamed body limit
def _multipart_csv(megabytes: float, boundary: str = "dlpipe-test"):
    line = f"{0.5},41,Lima\r\n".encode()
    block = line * (1_000_000 // len(line))
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\n"
    ).encode() + b"a,age,city\r\n"
    for _ in range(math.ceil(megabytes)):
        yield block
    yield f"\r\n--{boundary}--\r\n".encode()


@pytest.mark.service
def test_chunked_upload_over_the_limit_is_413(server):
    url, _ = server
    with httpx.Client(base_url=url, timeout=60) as c:
        r = c.post(
            "/predict/csv",
            content=_multipart_csv(16.8),
            headers={"content-type": "multipart/form-data; boundary=dlpipe-test"},
        )
        assert (
            r.request.headers.get("transfer-encoding") == "chunked"
            and "content-length" not in r.request.headers
        )
        assert r.status_code == 413
        assert _one_sentence(r).startswith("the request body is over the limit of 10 MB")
        r = c.post(
            "/predict",
            content=(b'{"rows": [' + b" " * 11_000_000 + b"]}" for _ in range(1)),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413 and "over the limit of 10 MB" in _one_sentence(r)
    _still_serving(url)


# ---------------------------------------------------------------------- 4c and 5: malformed and non-finite requests
def _row_text(value: str) -> bytes:
    return (
        '{"rows": [{' + json.dumps(COL) + ": " + value + ', "age": 41, "city": "Lima"}]}'
    ).encode()


@pytest.mark.service
@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (
            _row_text("9" * 401),
            422,
            f"field {COL!r} of row 0 is an integer of 401 digits, a number too large for a float",
        ),
        (b"9" * 401, 422, "must be a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "nests arrays or objects too deeply"),
        (
            b'{"rows": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            400,
            "nests arrays or objects too deeply",
        ),
        (_row_text("9" * 5000), 400, "an integer of over 4300 digits"),
        (
            _row_text("1e308"),
            422,
            f"field {COL!r} of row 0 is 1e+308, which the training scaling turns into a number beyond",
        ),
        (_row_text("1e400"), 422, f"field {COL!r} of row 0 is inf, which is not a finite number"),
        (_row_text("NaN"), 422, f"field {COL!r} of row 0 is nan, which is not a finite number"),
        (
            _row_text("-Infinity"),
            422,
            f"field {COL!r} of row 0 is -inf, which is not a finite number",
        ),
        (
            _row_text('"1e999"'),
            422,
            f"field {COL!r} of row 0 is '1e999', which is not a finite number",
        ),
        (b'{"rows": [{"age": 1', 400, "not valid JSON"),
        (b'\xff\xfe{"rows": []}', 400, "not valid JSON"),
    ],
    ids=[
        "401-digit-field",
        "401-digit-body",
        "nested-100k",
        "nested-in-rows",
        "5000-digits",
        "1e308",
        "1e400",
        "NaN",
        "-Infinity",
        "string-1e999",
        "truncated",
        "not-utf8",
    ],
)
def test_malformed_and_non_finite_requests_are_one_sentence(server, body, status, needle):
    url, _ = server
    r = httpx.post(
        url + "/predict", content=body, headers={"content-type": "application/json"}, timeout=30
    )
    assert r.status_code == status, r.text[:300]
    assert needle in _one_sentence(r)
    _still_serving(url)


def test_nan_weights_give_a_500_sentence_never_nan(hostile_bundle):
    import torch

    from dlpipe.bundle.bundle import load_bundle
    from dlpipe.serving import create_app

    b = load_bundle(hostile_bundle)
    with torch.no_grad():
        next(b.model.parameters()).fill_(float("nan"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    c = TestClient(create_app(b))
    r = c.post("/predict", json={"rows": [ROW]})
    assert r.status_code == 500
    assert "the bundle's weights hold NaN or infinite values" in _one_sentence(r)
    r = c.post(
        "/predict/csv",
        content=f"{json.dumps(COL)},age,city\n0.5,41,Lima\n".encode(),
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 500 and "weights hold NaN" in _one_sentence(r)


def test_metadata_and_drift_are_strict_json_with_nan_inside(hostile_bundle):
    from dlpipe.bundle.bundle import load_bundle
    from dlpipe.serving import create_app

    b = load_bundle(hostile_bundle)
    b.manifest["metrics"]["test"]["model"]["accuracy"] = float("nan")  # a run that scored NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    c = TestClient(create_app(b))
    meta = c.get("/metadata")
    assert (
        meta.status_code == 200
        and _strict(meta.text)["metrics"]["test"]["model"]["accuracy"] is None
    )
    assert c.post("/predict", json={"rows": [dict(ROW, age=None)] * 3}).status_code == 200
    drift = c.get("/drift")  # no age values: its statistics are NaN
    assert drift.status_code == 200
    age = next(f for f in _strict(drift.text)["features"] if f["feature"] == "age")
    assert age["p_value"] is None
    r = c.get("/drift?level=nan")
    assert r.status_code == 422 and "`level`" in _one_sentence(r)
    assert c.get("/openapi.json").status_code == 200


def test_inputs_that_overflow_float32_are_refused_for_array_models():
    from dlpipe.core.errors import InvalidInputError
    from dlpipe.serving.app import _float32

    with pytest.raises(
        InvalidInputError,
        match=r"`inputs` holds 1e\+300 at position \[0, 1\], which is not a finite number",
    ):
        _float32([[1.0, 1e300]], "`inputs`")
    with pytest.raises(InvalidInputError, match="not a number"):
        _float32([[1.0, 10**400]], "`inputs`")


# ---------------------------------------------------------------------- 4d: slow and greedy clients
def _read_until_closed(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closed the connection (or `limit`), and what it sent."""
    sock.settimeout(limit)
    start, data = time.monotonic(), b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return math.inf, data
    except ConnectionResetError:
        pass
    return time.monotonic() - start, data


@pytest.mark.service
def test_half_sent_headers_are_closed_within_the_header_timeout(guarded):
    host, port = guarded.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nX-API-Key: " + KEY.encode() + b"\r\n"
        )  # and then nothing
        took, data = _read_until_closed(s, 6)
    assert took < 3, "the half-sent request was still open after 6 s"
    assert data.startswith(b"HTTP/1.1 408") and b"headers did not arrive within 1 s" in data
    with socket.create_connection((host, int(port))) as s:  # a connection that never sends a byte
        took, data = _read_until_closed(s, 6)
    assert took < 3 and data == b""
    _still_serving(guarded, {"X-API-Key": KEY})


@pytest.mark.service
def test_stalled_body_is_408_within_the_body_timeout(guarded):
    host, port = guarded.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(
            f"POST /predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n".encode()
            + b'{"rows": ['
        )
        took, data = _read_until_closed(s, 6)
    assert (
        took < 3
        and data.startswith(b"HTTP/1.1 408")
        and b"the request body stopped arriving for 1 s" in data
    )
    _still_serving(guarded, {"X-API-Key": KEY})


@pytest.mark.service
def test_oversized_headers_are_431(guarded):
    host, port = guarded.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * 200_000)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed mid-send; its answer is already in our buffer
        took, data = _read_until_closed(s, 6)
    assert data.startswith(b"HTTP/1.1 431") and b"head is over 64 kB" in data
    _still_serving(guarded, {"X-API-Key": KEY})


@pytest.mark.service
def test_connections_over_the_cap_get_a_503_sentence(guarded):
    host, port = guarded.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(4)]
    try:
        time.sleep(0.2)
        with socket.create_connection((host, int(port))) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            took, data = _read_until_closed(s, 6)
        assert data.startswith(b"HTTP/1.1 503") and b"4 open connections, its limit" in data
    finally:
        for s in idle:
            s.close()
    time.sleep(0.2)
    _still_serving(guarded, {"X-API-Key": KEY})


@pytest.mark.service
def test_body_limit_counts_chunked_bytes_with_a_key(guarded):
    r = httpx.post(
        guarded + "/predict/csv",
        content=_multipart_csv(3),
        timeout=30,
        headers={"content-type": "multipart/form-data; boundary=dlpipe-test", "X-API-Key": KEY},
    )
    assert r.status_code == 413 and "over the limit of 1 MB" in _one_sentence(r)
    _still_serving(guarded, {"X-API-Key": KEY})


# ---------------------------------------------------------------------- 4e: the key guards every metadata path
@pytest.mark.service
@pytest.mark.parametrize(
    "path",
    ["/", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect", "/metadata", "/drift"],
)
def test_every_path_that_shows_the_model_needs_the_key(guarded, path):
    with httpx.Client(base_url=guarded, timeout=10) as c:
        r = c.get(path)
        assert r.status_code == 401 and "needs an API key" in _one_sentence(r)
        assert COL not in r.text and "city" not in r.text
        if path in ("/", "/docs", "/redoc", "/openapi.json"):
            assert r.headers["www-authenticate"].startswith("Basic")  # a browser asks for the key
        assert c.get(path, headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.get(path, headers={"X-API-Key": KEY}).status_code == 200
        assert c.get(path, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        basic = base64.b64encode(f"anyone:{KEY}".encode()).decode()
        assert c.get(path, headers={"Authorization": f"Basic {basic}"}).status_code == 200


@pytest.mark.service
def test_health_stays_open_but_says_nothing(guarded):
    r = httpx.get(guarded + "/health", timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = httpx.post(guarded + "/predict", json={"rows": [ROW]}, timeout=10)
    assert r.status_code == 401
    _still_serving(guarded, {"X-API-Key": KEY})


@pytest.mark.service
def test_page_behind_the_key_works_in_a_browser(guarded):
    browser = _browser()
    basic = {"Authorization": "Basic " + base64.b64encode(f"me:{KEY}".encode()).decode()}
    out = browser.fill_and_submit(
        guarded + "/", {COL: "2", "age": "40", "city": "Lima"}, headers=basic
    )
    assert out["status"] == 200 and out["text"] in ("yes", "no"), out
    assert out["alerts"] == [] and out["exceptions"] == []
    assert browser.fill_and_submit(guarded + "/", {})["status"] == 401


def test_a_non_finite_output_is_422_for_its_own_request_only(hostile_bundle):
    """A row whose output is not a number (inputs far outside training can overflow a network's sums;
    here a wrapper makes it so for age > 1000) gets a 422 sentence, never a NaN prediction, and the
    other requests that shared its micro-batch still get theirs."""
    import asyncio

    import torch

    from dlpipe.bundle.bundle import load_bundle
    from dlpipe.serving import ServeConfig, create_app

    b = load_bundle(hostile_bundle)
    age = [e["name"] for e in b.preprocessor.state()["numeric"]].index("age")  # its column in x_num

    class Overflowing(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
            out = self.inner(x, *rest).clone()
            out[x[:, age] > 50] = float("inf")  # (B, 1): scaled age > 50 ~ raw age > 500
            return out

    b.model = Overflowing(b.model)
    app = create_app(b, ServeConfig(bundle="", batch_window_ms=30))
    far = dict(ROW, age=5000.0)

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await asyncio.gather(
                *(c.post("/predict", json={"rows": [row]}) for row in [ROW, far, ROW, ROW])
            )

    good, bad, *rest = asyncio.run(go())
    assert app.state.batcher.batches < 4  # they did share a forward pass
    assert bad.status_code == 422
    assert "the model's output for row 0 is not a finite number" in _one_sentence(bad)
    for r in (good, *rest):
        assert r.status_code == 200 and _strict(r.text)["predictions"][0]["prediction"] in (
            "yes",
            "no",
        )
