"""The app in-process (TestClient): predictions equal bundle.predict; every bad request is one clear 4xx."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.core.errors import InvalidInputError
from dlpipe.serving import ServeConfig, create_app


@pytest.fixture(scope="module")
def bundle(table_bundle):
    return dl.load_bundle(table_bundle)


@pytest.fixture(scope="module")
def client(bundle, make_client):
    return make_client(create_app(bundle))


def test_predict_matches_bundle_predict(client, bundle, rows):
    r = client.post("/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    got = r.json()["predictions"]
    want = bundle.predict(pd.DataFrame(rows))
    assert [g["prediction"] for g in got] == want["prediction"].tolist()
    for g, (_, w) in zip(got, want.iterrows()):
        assert set(g["probabilities"]) == {"no", "yes"}
        assert abs(g["probabilities"]["yes"] - w["proba_yes"]) < 1e-6


def test_nulls_are_imputed_like_the_library(client, bundle, rows):
    row = dict(rows[0], income=None, city=None)
    got = client.post("/predict", json={"rows": [row]}).json()["predictions"][0]
    want = bundle.predict(pd.DataFrame([row]))
    assert abs(got["probabilities"]["yes"] - want["proba_yes"].iloc[0]) < 1e-6


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"drop": "income"}, "missing the field 'income'"),
        ({"age": "forty"}, "field 'age' of row 0 is 'forty'"),
        ({"age": [1, 2]}, "field 'age' of row 0"),
        ({"city": ["Paris"]}, "field 'city' of row 0 is ['Paris'] (list) but must be a category"),
        ({"shop": {"a": 1}}, "field 'shop' of row 0 is {'a': 1} (object) but must be a category"),
        ({"member": "maybe"}, "field 'member' of row 0 is 'maybe' but must be true or false"),
    ],
)
def test_bad_fields_are_422_naming_the_field(client, rows, change, needle):
    row = dict(rows[0])
    if "drop" in change:
        del row[change["drop"]]
    else:
        row.update(change)
    r = client.post("/predict", json={"rows": [row]})
    assert r.status_code == 422
    assert needle in r.json()["detail"]
    assert client.post("/predict", json={"rows": rows[:1]}).status_code == 200  # still serving


@pytest.mark.parametrize(
    ("kwargs", "status", "needle"),
    [
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "not valid JSON",
        ),
        ({"json": {"rows": []}}, 422, "`rows` is empty"),
        ({"json": {"rows": "a"}}, 422, "must be a list of objects"),
        ({"json": [1, 2]}, 422, "JSON object"),
        (
            {"content": b"age=1", "headers": {"content-type": "application/x-www-form-urlencoded"}},
            415,
            "not accepted",
        ),
    ],
)
def test_malformed_requests(client, kwargs, status, needle):
    r = client.post("/predict", **kwargs)
    assert r.status_code == status
    assert needle in r.json()["detail"]


def test_body_over_limit_is_413(bundle, make_client, rows):
    c = make_client(create_app(bundle, ServeConfig(bundle="", max_body_mb=0.001)))
    r = c.post("/predict", json={"rows": rows * 40})
    assert r.status_code == 413
    assert "over the limit of 0.001 MB" in r.json()["detail"]
    assert c.post("/predict", json={"rows": rows[:1]}).status_code == 200


def test_api_key(bundle, make_client, rows):
    c = make_client(create_app(bundle, api_key="s3cret"))
    assert c.get("/health").status_code == 200  # liveness stays open
    r = c.post("/predict", json={"rows": rows[:1]})
    assert r.status_code == 401 and "API key" in r.json()["detail"]
    assert (
        c.post("/predict", json={"rows": rows[:1]}, headers={"X-API-Key": "wrong"}).status_code
        == 401
    )
    assert (
        c.post("/predict", json={"rows": rows[:1]}, headers={"X-API-Key": "s3cret"}).status_code
        == 200
    )
    assert c.get("/metadata", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_api_key_env_must_be_set(bundle, monkeypatch):
    monkeypatch.delenv("DLPIPE_TEST_KEY", raising=False)
    with pytest.raises(InvalidInputError, match="DLPIPE_TEST_KEY"):
        create_app(bundle, ServeConfig(bundle="", api_key_env="DLPIPE_TEST_KEY"))


def test_csv_round_trip_and_missing_columns(client, bundle):
    data = io.BytesIO()
    src = pd.DataFrame(
        [{"age": 41.0, "income": 60.0, "city": "Seoul", "shop": "s01", "member": True}] * 3
    )
    src.to_csv(data, index=False)
    r = client.post("/predict/csv", files={"file": ("new.csv", data.getvalue(), "text/csv")})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    out = pd.read_csv(io.StringIO(r.text))
    assert list(out.columns[-3:]) == ["prediction", "proba_no", "proba_yes"] and len(out) == 3
    assert np.allclose(out["proba_yes"], bundle.predict(src)["proba_yes"])
    r = client.post("/predict/csv", content=b"a,b\n1,2\n", headers={"content-type": "text/csv"})
    assert r.status_code == 422 and "missing the columns" in r.json()["detail"]
    r = client.post("/predict/csv", json={"rows": []})
    assert r.status_code == 415


def test_health_metadata_docs_page(client):
    assert client.get("/health").json()["status"] == "ok"
    meta = client.get("/metadata").json()
    assert meta["task"] == "binary" and meta["classes"] == ["no", "yes"]
    cols = {c["name"]: c for c in meta["inputs"]}
    assert cols["city"]["kind"] == "categorical" and "Seoul" in cols["city"]["categories"]
    assert "torch" in meta["versions"]
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["rows"]["items"]["required"] == [
        "age",
        "income",
        "city",
        "shop",
        "member",
    ]
    assert client.get("/docs").status_code == 200
    page = client.get("/").text
    for name in ("age", "income", "city", "shop", "member"):
        assert f'id="field-{name}"' in page
    assert '<option value="Lima">' in page


def test_drift_window(bundle, make_client, rows):
    c = make_client(create_app(bundle, ServeConfig(bundle="", drift_window=50)))
    assert c.get("/drift").json()["rows"] == 0
    shifted = [dict(r, age=r["age"] + 40) for r in rows] * 10
    c.post("/predict", json={"rows": shifted})
    report = c.get("/drift").json()
    assert report["rows"] == 50 and "age" in report["drifted"]
    assert {f["feature"]: f["test"] for f in report["features"]}["city"] == "chi2"


def test_micro_batching_gathers_concurrent_requests(bundle, rows):
    import httpx

    app = create_app(bundle, ServeConfig(bundle="", batch_window_ms=20))
    want = bundle.predict(pd.DataFrame(rows))["proba_yes"].to_numpy()

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            rs = await asyncio.gather(*(c.post("/predict", json={"rows": [r]}) for r in rows * 4))
        return [r.json()["predictions"][0]["probabilities"]["yes"] for r in rs]

    got = np.array(asyncio.run(go()))
    assert np.allclose(got, np.tile(want, 4), atol=1e-6)
    batcher = app.state.batcher
    assert batcher.requests == 24 and batcher.batches < 24


def test_not_an_image_is_one_sentence():
    from dlpipe.serving.app import _decode_image

    with pytest.raises(InvalidInputError, match="is not an image that could be read"):
        _decode_image(b"GIF89a but not really", "file 'x.gif'")


def test_openapi_answers_have_schemas_and_examples(client, bundle):
    """The 200 of POST /predict says what a prediction holds (was `{}`), with the model's own answer
    for the request example as its example; errors are `{"detail": one sentence}`."""
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/predict"]["post"]
    ok = post["responses"]["200"]["content"]["application/json"]
    item = ok["schema"]["properties"]["predictions"]["items"]
    assert item["properties"]["prediction"]["enum"] == ["no", "yes"]
    assert set(item["properties"]["probabilities"]["properties"]) == {"no", "yes"}
    example_row = post["requestBody"]["content"]["application/json"]["example"]["rows"][0]
    answer = client.post("/predict", json={"rows": [example_row]}).json()
    assert ok["example"]["predictions"][0]["prediction"] == answer["predictions"][0]["prediction"]
    bad = post["responses"]["422"]["content"]["application/json"]
    assert bad["schema"]["required"] == ["detail"] and bad["example"]["detail"].endswith(".")
    csv = spec["paths"]["/predict/csv"]["post"]["responses"]["200"]["content"]["text/csv"]
    assert csv["example"].splitlines()[0].endswith("prediction,proba_no,proba_yes")
    for path in ("/health", "/metadata"):
        assert spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"][
            "example"
        ]


def test_docs_pages_load_their_files_from_this_server(client):
    docs, redoc = client.get("/docs").text, client.get("/redoc").text
    assert 'src="/docs/assets/swagger-ui-bundle.js"' in docs and "cdn" not in docs
    assert 'src="/docs/assets/redoc.standalone.js"' in redoc and "cdn" not in redoc
    js = client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in js.content
    assert client.get("/docs/assets/redoc.standalone.js").status_code == 200
    assert client.get("/docs/assets/swagger-ui.css").headers["content-type"].startswith("text/css")
    assert client.get("/docs/assets/app.py").status_code == 404  # only the listed files
    assert client.get("/docs/assets/..%2Fapp.py").status_code == 404


def test_docs_assets_need_the_key_like_the_pages(bundle, make_client):
    c = make_client(create_app(bundle, api_key="k"))
    r = c.get("/docs/assets/swagger-ui.css")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert c.get("/docs/assets/swagger-ui.css", headers={"X-API-Key": "k"}).status_code == 200


@pytest.mark.slow
def test_regression_answer_schema_names_the_value_and_its_intervals(make_client):
    from tests.serving.conftest import deploy_frame

    frame = deploy_frame().drop(columns="y")
    run = dl.train(frame, "age", epochs=1, progress="quiet", save=False)
    spec = make_client(create_app(run.bundle)).get("/openapi.json").json()
    ok = spec["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    props = ok["schema"]["properties"]["predictions"]["items"]["properties"]
    assert props["prediction"]["type"] == "number" and "intervals" in props
    assert "probabilities" not in props
    assert isinstance(ok["example"]["predictions"][0]["prediction"], float)
