"""A text bundle over HTTP (TestClient and a real uvicorn on 127.0.0.1), the form page's textarea, ONNX."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest

import dlpipe as dl
from dlpipe.cli.app import main


@pytest.fixture(scope="module")
def client(text_run):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from dlpipe.serving import create_app

    _, out = text_run
    return TestClient(create_app(str(out / "bundle")))


def test_predict_takes_text_rows_and_refuses_bad_text(client):
    r = client.post("/predict", json={"rows": [{"text": "the coach and the team score a goal"}]})
    assert r.status_code == 200
    p = r.json()["predictions"][0]
    assert p["prediction"] == "sport" and set(p["probabilities"]) == {"food", "money", "sport"}
    empty = client.post("/predict", json={"rows": [{"text": ""}]})
    assert empty.status_code == 422 and "is an empty text" in empty.json()["detail"]
    csv = "text\nbread and cheese soup\n".encode("latin-1") + "caf\xe9\n".encode("latin-1")
    bad = client.post("/predict/csv", content=csv, headers={"content-type": "text/csv"})
    assert bad.status_code == 422 and "could not be read as CSV" in bad.json()["detail"]


def test_form_page_has_a_textarea(client):
    page = client.get("/").text
    assert '<textarea id="field-text" name="text"' in page
    assert '"kind": "text"' in page


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.service
def test_serves_over_a_real_uvicorn_server(text_run):
    import uvicorn

    from dlpipe.serving import create_app

    _, out = text_run
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(str(out / "bundle")), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        body = json.dumps({"rows": [{"text": "stock price of the bank"}, {"text": "apple salad"}]})
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=body.encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            preds = json.loads(r.read())["predictions"]
        assert [p["prediction"] for p in preds] == ["money", "food"]
        big = json.dumps({"rows": [{"text": "word " * 1_000_000}]}).encode()  # a 5 MB document
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=big,
            headers={"content-type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=30)
        assert err.value.code in (413, 422)
        detail = json.loads(err.value.read())["detail"]
        assert "5,000,000 characters long" in detail or "larger than" in detail
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.slow
def test_export_command_writes_onnx_that_matches_the_bundle(text_run, capsys):
    import onnxruntime as ort

    _, out = text_run
    assert main(["export", str(out / "bundle"), "--output", "m.onnx"]) == 0
    side = json.loads(Path("m.onnx.json").read_text(encoding="utf-8"))
    # the parity check ran on other documents than the traced ones (another batch size and length)
    assert side["inputs"]["names"] == ["ids"] and side["parity"]["max_abs_diff"] < 1e-5
    bundle = dl.load_bundle(out / "bundle")
    texts = ["cheese soup", "the coach and the team and the ball", "profit and loss"]
    ids = bundle.preprocessor.prepare(texts).inputs[0]
    got = ort.InferenceSession("m.onnx").run(None, {"ids": ids})[0]  # class probabilities
    expected = bundle.predict(texts).filter(like="proba_").to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
