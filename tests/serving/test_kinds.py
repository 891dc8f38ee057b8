"""Other bundle kinds over HTTP: images (base64 JSON, multipart, not-an-image) and series (recent rows)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

import dlpipe as dl
from dlpipe.serving import create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def image_app(tmp_path_factory, make_client):
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (root / "data" / label).mkdir(parents=True)
        for i in range(10):
            a = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
            if label == "dog":
                a[:8] = 255
            Image.fromarray(a).save(root / "data" / label / f"{i}.png")
    run = dl.train(str(root / "data"), epochs=1, progress="quiet", save=False)
    png = io.BytesIO()
    Image.fromarray((rng.random((16, 16, 3)) * 255).astype(np.uint8)).save(png, format="PNG")
    return make_client(create_app(run.bundle)), run.bundle, png.getvalue()


def test_base64_and_multipart_agree_with_predict(image_app):
    from PIL import Image

    client, bundle, png = image_app
    want = bundle.predict([Image.open(io.BytesIO(png))])
    r = client.post("/predict", json={"images": [base64.b64encode(png).decode()]})
    assert r.status_code == 200, r.text
    got = r.json()["predictions"][0]
    assert got["prediction"] == want["prediction"].iloc[0]
    assert abs(got["probabilities"]["dog"] - want["proba_dog"].iloc[0]) < 1e-6
    r2 = client.post("/predict", files={"file": ("x.png", png, "image/png")})
    assert r2.status_code == 200 and r2.json()["predictions"][0] == got


def test_bad_images_are_422_and_the_page_has_an_upload(image_app):
    client, _, png = image_app
    r = client.post("/predict", files={"file": ("x.png", b"not an image", "image/png")})
    assert (
        r.status_code == 422
        and "file 'x.png' is not an image that could be read" in r.json()["detail"]
    )
    r = client.post("/predict", json={"images": ["%%%"]})
    assert r.status_code == 422 and "not valid base64" in r.json()["detail"]
    r = client.post("/predict", json={"rows": [{"a": 1}]})
    assert r.status_code == 422
    assert (
        client.post("/predict", files={"file": ("x.png", png, "image/png")}).status_code == 200
    )  # still serving
    assert 'id="field-image"' in client.get("/").text


def test_series_bundle_takes_recent_rows(make_client):
    import pandas as pd

    t = np.arange(200)
    frame = pd.DataFrame(
        {"value": np.sin(t / 10) + 0.1 * np.random.default_rng(0).normal(size=200)}
    )
    run = dl.train(
        frame,
        "value",
        task="forecast",
        lookback=12,
        horizon=3,
        epochs=1,
        progress="quiet",
        save=False,
    )
    client = make_client(create_app(run.bundle))
    rows = frame.tail(20).to_dict("records")
    r = client.post("/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    got = [p["value"] for p in r.json()["predictions"]]
    assert np.allclose(got, run.bundle.predict(frame.tail(20))["value"].to_numpy())
    short = client.post("/predict", json={"rows": rows[:3]})
    assert short.status_code == 422 and "looks back 12 rows" in short.json()["detail"]
