"""A MiniRocket sequence bundle and a windows-of-a-series bundle are served like any model (issue #18)."""

import numpy as np
import pandas as pd

import dlpipe as dl
from dlpipe.data.sequences import load_sequences
from dlpipe.serving import create_app


def test_minirocket_and_window_bundles_answer_like_bundle_predict(make_client):
    rng = np.random.default_rng(0)
    labels = np.array(["early", "late"] * 12)
    x = 0.3 * rng.normal(size=(24, 30))
    for i, lab in enumerate(labels):
        x[i, (5 if lab == "early" else 20) : (9 if lab == "early" else 24)] += 2.0
    dl.train(load_sequences((x, labels)), progress="quiet", out="seq", report=False)
    bundle = dl.load_bundle("seq/bundle")
    client = make_client(create_app(bundle))
    r = client.post("/predict", json={"inputs": x[:4].tolist()})
    assert r.status_code == 200, r.text
    got = [p["prediction"] for p in r.json()["predictions"]]
    assert got == bundle.predict(x[:4])["prediction"].tolist() == labels[:4].tolist()

    prices = pd.DataFrame(
        {
            "day": np.arange(80),
            "close": 100 + np.cumsum(rng.normal(size=80)),
            "volume": rng.random(80),
        }
    )
    dl.train(
        prices,
        task="binary",
        time_column="day",
        lookback=6,
        progress="quiet",
        out="w",
        report=False,
    )
    wb = dl.load_bundle("w/bundle")
    client = make_client(create_app(wb))
    rows = prices.tail(10).to_dict(orient="records")
    r = client.post("/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    expect = wb.predict(prices.tail(10))
    assert len(preds) == 5 and [p["day"] for p in preds] == expect["day"].tolist()
    assert [p["prediction"] for p in preds] == expect["prediction"].tolist()
    r = client.post("/predict", json={"rows": rows[:3]})  # fewer rows than one window
    assert r.status_code == 422 and "lookback" in r.json()["detail"]
