"""ONNX exports of tables take raw category strings and NaN (issue #20, item 6), and int8 without data."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.cli import main


def _penguins(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Penguins-like: numeric measurements with gaps, string categories with gaps, an integer year
    declared categorical (its keys look like integers)."""
    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Chinstrap", "Gentoo"], n)
    shift = {"Adelie": 0.0, "Chinstrap": 1.0, "Gentoo": 2.0}
    s = np.array([shift[v] for v in species])
    frame = pd.DataFrame(
        {
            "island": np.where(s == 2, "Biscoe", rng.choice(["Dream", "Torgersen", "Biscoe"], n)),
            "bill_length_mm": 38 + 5 * s + rng.normal(0, 2, n),
            "bill_depth_mm": 18 - 1.5 * s + rng.normal(0, 1, n),
            "flipper_length_mm": 190 + 12 * s + rng.normal(0, 5, n),
            "body_mass_g": 3700 + 700 * s + rng.normal(0, 300, n),
            "sex": rng.choice(["male", "female"], n).astype(object),
            "year": rng.choice([2007, 2008, 2009], n),
            "species": species,
        }
    )
    frame.loc[::7, "bill_length_mm"] = np.nan
    frame.loc[::11, "body_mass_g"] = np.nan
    frame.loc[::5, "sex"] = None
    frame.loc[3, ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]] = np.nan
    return frame


@pytest.fixture(scope="module")
def penguins(tmp_path_factory):
    root = tmp_path_factory.mktemp("penguins")
    frame = _penguins()
    run = dl.train(
        frame, "species", epochs=3, categorical=["year"], progress="quiet", out=root / "run"
    )
    frame.drop(columns="species").to_csv(root / "new.csv", index=False)
    return root, run.path / "bundle"


def _raw_feeds(path, side):
    """What a client outside Python does: read the CSV as text; numbers as float32 (empty -> NaN),
    categories as the text itself (empty -> "")."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    num = [c["name"] for c in side["inputs"]["numeric"]["columns"]]
    cat = [c["name"] for c in side["inputs"]["categorical"]["columns"]]
    numeric = np.array(
        [[float(r[c]) if r[c] != "" else np.nan for c in num] for r in rows], dtype=np.float32
    )
    categorical = np.array([[r[c] for c in cat] for r in rows], dtype=object)
    return numeric, categorical, cat


@pytest.mark.slow
def test_onnx_takes_raw_strings_and_nan_and_matches_dlpipe_predict(penguins, capsys):
    import onnxruntime as ort

    root, bundle = penguins
    assert main(["export", str(bundle), "-o", str(root / "p.onnx")]) == 0
    assert main(["predict", str(bundle), str(root / "new.csv")]) == 0
    out = capsys.readouterr().out
    cli = pd.read_csv(io.StringIO(out[out.index("prediction") :]))
    side = json.loads((root / "p.onnx.json").read_text())
    numeric, categorical, cat = _raw_feeds(root / "new.csv", side)
    assert {"island", "sex", "year"} <= set(cat) and (categorical == "").any()
    assert np.isnan(numeric).any() and np.isnan(numeric[3]).all()
    session = ort.InferenceSession(str(root / "p.onnx"), providers=["CPUExecutionProvider"])
    proba = session.run(None, {"numeric": numeric, "categorical": categorical})[0]
    classes = side["output"]["classes"]
    want = cli[[f"proba_{c}" for c in classes]].to_numpy()
    assert np.abs(proba - want).max() <= 1e-5
    assert [classes[i] for i in proba.argmax(1)] == cli["prediction"].tolist()
    # an integer-looking key is the same category whether written "2008" or "2008.0", never "unseen"
    year = cat.index("year")
    as_float = categorical.copy()
    as_float[:, year] = [f"{v}.0" for v in categorical[:, year]]
    again = session.run(None, {"numeric": numeric, "categorical": as_float})[0]
    assert np.abs(again - proba).max() <= 1e-6
    unseen = categorical.copy()
    unseen[:, year] = "1999"
    assert (
        np.abs(session.run(None, {"numeric": numeric, "categorical": unseen})[0] - proba).max() > 0
    )


def test_category_keys_map_integer_twins_and_missing():
    from dlpipe.export.strings import category_keys

    keys = category_keys([2007, "2008.0", "Dream"])
    assert keys["2007"] == keys["2007.0"] == 1
    assert keys["2008.0"] == keys["2008"] == 2
    assert keys["Dream"] == 3 and keys[""] == -1 and "Dream.0" not in keys
    assert category_keys(["3", "3.0"])["3.0"] == 2  # a real category wins over a twin
    assert category_keys(["", "a"])[""] == 1  # "" is missing only when it was not a category


@pytest.mark.slow
def test_int8_without_data_works_and_reports_the_change(penguins, capsys):
    root, bundle = penguins
    code = main(["export", str(bundle), "--quantize", "int8", "-o", str(root / "q.onnx")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "int8: max abs diff from the float model" in out and "--data" in out
    q = json.loads((root / "q.onnx.json").read_text())["quantization"]
    assert q["bytes_int8"] > 0 and q["max_abs_diff"] < 0.5 and "metric" not in q


def test_nothing_is_written_when_the_export_fails(penguins, tmp_path, capsys):
    root, bundle = penguins
    pd.DataFrame({"island": ["Dream"]}).to_csv(tmp_path / "one.csv", index=False)
    code = main(
        ["export", str(bundle), "--data", str(tmp_path / "one.csv"), "-o", str(tmp_path / "m.onnx")]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.csv"]
    missing = tmp_path / "no" / "m.onnx"
    assert main(["export", str(bundle), "-o", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "no").exists()


@pytest.mark.slow
def test_a_year_read_as_float_is_not_unseen_in_predict_or_onnx(penguins, tmp_path, capsys):
    """A gap in an integer category column makes pandas read it as float ('2008.0'): `dlpipe predict`
    called every year unseen; the ONNX graph and the server match the twin, and so does predict now."""
    import onnxruntime as ort

    root, bundle = penguins
    new = pd.read_csv(root / "new.csv").head(12)
    new.loc[0, "year"] = np.nan
    new.to_csv(tmp_path / "gap.csv", index=False)
    assert (
        main(["predict", str(bundle), str(tmp_path / "gap.csv"), "-o", str(tmp_path / "p.csv")])
        == 0
    )
    err = capsys.readouterr().err
    assert "not seen in training" not in err
    assert main(["export", str(bundle), "-o", str(tmp_path / "m.onnx")]) == 0
    side = json.loads((tmp_path / "m.onnx.json").read_text())
    numeric, categorical, cat = _raw_feeds(tmp_path / "gap.csv", side)
    assert categorical[1, cat.index("year")].endswith(".0")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    proba = session.run(None, {"numeric": numeric, "categorical": categorical})[0]
    cli = pd.read_csv(tmp_path / "p.csv")
    want = cli[[f"proba_{c}" for c in side["output"]["classes"]]].to_numpy()
    assert np.abs(proba - want).max() <= 1e-5
