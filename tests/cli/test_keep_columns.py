"""`dlpipe predict --keep-columns` and `dlpipe anomalies --keep-columns`: ids and inputs beside each
row's answer (issue #20, item 6); refusals are one sentence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.cli import main


def _frame(n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    a = rng.normal(size=n)
    return pd.DataFrame(
        {
            "a": a,
            "b": rng.normal(size=n),
            "city": rng.choice(["Seoul", "Lima"], n),
            "y": np.where(a > 0, "yes", "no"),
        }
    )


@pytest.mark.slow
def test_predict_keeps_ids_and_inputs_beside_predictions(tmp_path, capsys):
    run = dl.train(_frame(), "y", epochs=1, progress="quiet", out=tmp_path / "run")
    new = _frame(12).drop(columns="y")
    new.insert(0, "customer_id", [f"c{i:03d}" for i in range(12)])  # not a model input: kept anyway
    new.to_csv(tmp_path / "new.csv", index=False)
    bundle = str(run.path / "bundle")
    assert (
        main(
            [
                "predict",
                bundle,
                str(tmp_path / "new.csv"),
                "--keep-columns",
                "-o",
                str(tmp_path / "p.csv"),
            ]
        )
        == 0
    )
    got = pd.read_csv(tmp_path / "p.csv")
    assert list(got.columns) == [
        "customer_id",
        "a",
        "b",
        "city",
        "prediction",
        "proba_no",
        "proba_yes",
    ]
    assert got["customer_id"].tolist() == new["customer_id"].tolist()
    assert np.allclose(got["a"], new["a"])
    plain = run.bundle.predict(new)
    assert got["prediction"].tolist() == plain["prediction"].tolist()
    assert np.allclose(got["proba_yes"], plain["proba_yes"])
    # a file that already holds a prediction column: one sentence, nothing written
    got.to_csv(tmp_path / "again.csv", index=False)
    capsys.readouterr()
    code = main(
        [
            "predict",
            bundle,
            str(tmp_path / "again.csv"),
            "--keep-columns",
            "-o",
            str(tmp_path / "q.csv"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "would repeat the columns prediction, proba_no, proba_yes" in err
    assert "Traceback" not in err and not (tmp_path / "q.csv").exists()


@pytest.mark.slow
def test_anomalies_keeps_ids_and_inputs(tmp_path, capsys):
    frame = _frame().drop(columns=["y", "city"])
    frame["c"], frame["d"] = frame["a"] - frame["b"], frame["a"] * 0.5
    run = dl.train(
        frame,
        task="reconstruction",
        model={"family": "autoencoder", "latent": 2},
        epochs=1,
        progress="quiet",
        out=tmp_path / "ae",
    )
    new = frame.head(10).copy()
    new.insert(0, "id", range(100, 110))
    new.to_csv(tmp_path / "new.csv", index=False)
    bundle = str(run.path / "bundle")
    assert (
        main(
            [
                "anomalies",
                bundle,
                str(tmp_path / "new.csv"),
                "--keep-columns",
                "-o",
                str(tmp_path / "s.csv"),
            ]
        )
        == 0
    )
    got = pd.read_csv(tmp_path / "s.csv")
    assert list(got.columns) == ["id", "a", "b", "c", "d", "score", "anomaly"]
    assert got["id"].tolist() == list(range(100, 110)) and np.allclose(got["b"], new["b"])
    assert (
        main(["anomalies", bundle, str(tmp_path / "new.csv"), "-o", str(tmp_path / "plain.csv")])
        == 0
    )
    assert np.allclose(pd.read_csv(tmp_path / "plain.csv")["score"], got["score"])
    np.savez(tmp_path / "x.npz", x=frame.to_numpy())
    capsys.readouterr()
    assert main(["anomalies", bundle, str(tmp_path / "x.npz"), "--keep-columns"]) == 2
    err = capsys.readouterr().err
    assert "is an .npz of arrays" in err and "Traceback" not in err
