"""Values a model never saw in training: the CLI's `dlpipe predict`, `bundle.predict` and the server
treat them alike (an unseen category is the unknown category, with a warning; a later year is a number)."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.cli import main
from dlpipe.core.errors import DataWarning
from dlpipe.serving import create_app

UNSEEN = "categories not seen in training were treated as unknown"


@pytest.fixture(scope="module")
def bundle(table_bundle):
    return dl.load_bundle(table_bundle)


@pytest.fixture(scope="module")
def client(bundle, make_client):
    return make_client(create_app(bundle))


def test_unseen_category_is_unknown_in_the_server_with_a_warning(client, bundle, rows):
    # 'city' is one-hot (3 cities), 'shop' embedded (30 shops): both kinds of unknown
    row = dict(rows[0], city="Mars", shop="s99")
    r = client.post("/predict", json={"rows": [row, rows[1]]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["warnings"]) == 1
    assert UNSEEN in body["warnings"][0]
    assert "'city' (1 row, e.g. 'Mars')" in body["warnings"][0]
    assert "'shop' (1 row, e.g. 's99')" in body["warnings"][0]
    with pytest.warns(DataWarning, match=UNSEEN):
        want = bundle.predict(pd.DataFrame([row, rows[1]]))
    got = body["predictions"]
    assert [g["prediction"] for g in got] == want["prediction"].tolist()
    for g, w in zip(got, want["proba_yes"]):
        assert abs(g["probabilities"]["yes"] - w) < 1e-6
    # unknown is its own input, not the missing value's (the training mode)
    missing = client.post("/predict", json={"rows": [dict(rows[0], city=None)]}).json()
    assert "warnings" not in missing


def test_known_rows_have_no_warnings_field(client, rows):
    assert "warnings" not in client.post("/predict", json={"rows": rows}).json()


def test_cli_predict_and_the_server_agree_on_an_unseen_category(
    table_bundle, client, rows, tmp_path, capsys
):
    row = dict(rows[0], city="Atlantis")
    pd.DataFrame([row]).to_csv(tmp_path / "new.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("always", DataWarning)  # pyproject ignores them elsewhere
        assert main(["predict", str(table_bundle), str(tmp_path / "new.csv")]) == 0
    out, err = capsys.readouterr()
    assert f"warning: {UNSEEN}" in err and "'city' (1 row, e.g. 'Atlantis')" in err
    cli = pd.read_csv(io.StringIO(out))
    served = client.post("/predict", json={"rows": [row]}).json()
    assert served["predictions"][0]["prediction"] == cli["prediction"].iloc[0]
    assert abs(served["predictions"][0]["probabilities"]["yes"] - cli["proba_yes"].iloc[0]) < 1e-6
    assert "'city' (1 row, e.g. 'Atlantis')" in served["warnings"][0]


def test_csv_upload_carries_the_warning_in_a_header(client, rows):
    text = pd.DataFrame([dict(rows[0], city="Mars")]).to_csv(index=False)
    r = client.post("/predict/csv", content=text, headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    notes = json.loads(r.headers["x-dlpipe-warnings"])
    assert UNSEEN in notes[0] and "'city'" in notes[0]
    plain = pd.DataFrame(rows[:1]).to_csv(index=False)
    r = client.post("/predict/csv", content=plain, headers={"content-type": "text/csv"})
    assert "x-dlpipe-warnings" not in r.headers


def _penguins(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mass = rng.normal(4200, 600, n)
    return pd.DataFrame(
        {
            "year": rng.choice([2007, 2008, 2009], n),
            "island": rng.choice(["Biscoe", "Dream", "Torgersen"], n),
            "mass": mass,
            "species": np.where(mass > 4200, "Gentoo", "Adelie"),
        }
    )


def test_a_later_year_is_accepted_by_cli_predict_and_the_server(tmp_path, capsys, make_client):
    run = dl.train(_penguins(), "species", epochs=2, progress="quiet", out=tmp_path / "run")
    kinds = {c.name: c.kind for c in run.bundle.preprocessor.schema.columns}
    assert kinds["year"] == "numeric"
    row = {"year": 2010, "island": "Dream", "mass": 4000.0}
    pd.DataFrame([row]).to_csv(tmp_path / "next.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("always", DataWarning)
        assert main(["predict", str(run.path / "bundle"), str(tmp_path / "next.csv")]) == 0
    out, err = capsys.readouterr()
    assert "warning" not in err
    cli = pd.read_csv(io.StringIO(out))
    client = make_client(create_app(dl.load_bundle(run.path / "bundle")))
    r = client.post("/predict", json={"rows": [row]})
    assert r.status_code == 200, r.text
    assert "warnings" not in r.json()
    assert r.json()["predictions"][0]["prediction"] == cli["prediction"].iloc[0]
