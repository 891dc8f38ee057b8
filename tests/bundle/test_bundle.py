import json
from pathlib import Path

import pandas as pd
import pytest
import torch

import dlpipe as dl
from dlpipe.core.errors import BundleError, DataWarning, InvalidInputError

FAST = dict(epochs=3, progress="quiet")


@pytest.fixture
def bundle_dir(binary_frame, tmp_path):
    run = dl.train(binary_frame, "y", out=tmp_path / "run", **FAST)
    return run.path / "bundle"


def test_round_trip_predicts_the_same(bundle_dir, binary_frame):
    b = dl.load_bundle(bundle_dir)
    out = b.predict(binary_frame.drop(columns="y"))
    assert list(out.columns) == ["prediction", "proba_no", "proba_yes"]
    assert set(out["prediction"]) <= {"yes", "no"}
    again = dl.load_bundle(bundle_dir).predict(binary_frame.drop(columns="y").to_dict("records"))
    pd.testing.assert_frame_equal(out, again)


def test_bundle_holds_only_json_and_safetensors(bundle_dir):
    assert sorted(p.name for p in Path(bundle_dir).iterdir()) == [
        ".dlpipe",
        "MODEL_CARD.md",
        "manifest.json",
        "weights.safetensors",
    ]  # .dlpipe: JSON marker; MODEL_CARD.md: text for people, never read by a loader
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    for key in (
        "format_version",
        "task",
        "preprocessor",
        "model_spec",
        "metrics",
        "reference_statistics",
        "versions",
        "baselines",
    ):
        assert key in manifest
    assert manifest["reference_statistics"]["a"]["kind"] == "numeric"


def test_other_format_version_is_refused(bundle_dir):
    m = json.loads((bundle_dir / "manifest.json").read_text())
    m["format_version"] = 99
    (bundle_dir / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="format version 99, but dlpipe .* reads version 1"):
        dl.load_bundle(bundle_dir)


def test_corrupted_weights_are_refused(bundle_dir):
    w = bundle_dir / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-5] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="corrupted"):
        dl.load_bundle(bundle_dir)


def test_shape_mismatch_names_the_weight(bundle_dir):
    m = json.loads((bundle_dir / "manifest.json").read_text())
    m["model_spec"]["hidden"] = [m["model_spec"]["hidden"][0] + 1] + m["model_spec"]["hidden"][1:]
    (bundle_dir / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match=r"weight 'body.0.weight' .* has shape"):
        dl.load_bundle(bundle_dir)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="is not a dlpipe bundle"):
        dl.load_bundle(tmp_path)


def test_predict_missing_and_extra_columns(bundle_dir, binary_frame):
    b = dl.load_bundle(bundle_dir)
    with pytest.raises(InvalidInputError, match=r"missing the columns b, c"):
        b.predict(binary_frame[["a", "d"]])
    with pytest.warns(DataWarning, match="ignored columns.*zzz"):
        b.predict(binary_frame.assign(zzz=1))


def test_evaluate_shows_baselines(bundle_dir, binary_frame):
    scores = dl.load_bundle(bundle_dir).evaluate(binary_frame)
    assert set(scores["baselines"]) == {"majority", "logistic"} and "accuracy" in scores["model"]
    with pytest.raises(InvalidInputError, match="no target 'y'"):
        dl.load_bundle(bundle_dir).evaluate(binary_frame.drop(columns="y"))


def test_bundle_loading_runs_no_code(bundle_dir):
    # The manifest is data: a hostile-looking value is just a string, never executed or imported.
    m = json.loads((bundle_dir / "manifest.json").read_text())
    m["model_spec"]["family"] = "__import__('os').system('echo pwned')"
    (bundle_dir / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(Exception, match="unknown model family"):
        dl.load_bundle(bundle_dir)


def test_large_tensors_go_to_half_the_bytes_only_when_nothing_is_lost():
    from dlpipe.bundle.bundle import COMPACT_MIN_VALUES, _compact, round_to_float16
    from dlpipe.models.text import TextTfidf

    t = torch.randn(COMPACT_MIN_VALUES, generator=torch.Generator().manual_seed(0))
    assert _compact(t).dtype == torch.float32  # float16 would change its values: kept
    rounded = t.half().float()
    assert _compact(rounded).dtype == torch.float16
    assert torch.equal(_compact(rounded).float(), rounded)
    assert _compact(torch.zeros(COMPACT_MIN_VALUES - 1)).dtype == torch.float32  # small: as it is
    ids = torch.arange(COMPACT_MIN_VALUES, dtype=torch.int64)
    assert _compact(ids).dtype == torch.int32 and torch.equal(_compact(ids).long(), ids)
    assert _compact(ids * 2**31).dtype == torch.int64  # beyond int32: kept
    m = TextTfidf(10, 3, n_features=6, table_sizes=(5, 7), hidden=4)
    with torch.no_grad():
        m.embed.weight[0, 0] = 1e6  # beyond float16's range
    before = m.embed.weight.clone()
    assert round_to_float16(m) == [] and torch.equal(m.embed.weight, before)
    with torch.no_grad():
        m.embed.weight[0, 0] = 0.1
    assert round_to_float16(m) == ["embed.weight"]  # the linear path (`skip`) was not built
    assert m.embed.weight[0, 0].item() == torch.tensor(0.1).half().item()
