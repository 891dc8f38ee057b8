"""The table MLP's numeric input layer (robust scaling + smooth clipping + per-feature scale)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import dlpipe as dl
from dlpipe.bundle import load_bundle
from dlpipe.core.errors import InvalidConfigError
from dlpipe.models.mlp import MLP, NumericInput
from dlpipe.models.registry import build_model


def test_numeric_input_statistics_and_clipping():
    x = torch.tensor(
        [[0.0, 1.0, 5.0], [1.0, 1.0, 5.0], [2.0, 1.0, 5.0], [3.0, 0.0, 5.0], [100.0, 1.0, 5.0]]
    )
    layer = NumericInput(3).fit(x)
    assert torch.allclose(layer.center, torch.tensor([2.0, 1.0, 5.0]))
    # IQR 2 -> 0.5; quartiles equal -> 2 / range; constant -> 1
    assert torch.allclose(layer.inv_scale, torch.tensor([0.5, 2.0, 1.0]))
    out = layer(x)
    assert out.abs().max() < 3.0  # the outlier 100 is smoothly clipped below 3
    assert torch.isfinite(out).all()


def test_spec_round_trip_keeps_statistics():
    model = build_model(
        {
            "family": "mlp",
            "n_numeric": 4,
            "n_outputs": 2,
            "hidden": [8],
            "numeric_input": "robust_clip",
        }
    )
    assert isinstance(model, MLP) and model.fast_path_layers() is None
    model.numeric_input.fit(torch.randn(50, 4) * 3 + 1)
    again = build_model(
        {
            "family": "mlp",
            "n_numeric": 4,
            "n_outputs": 2,
            "hidden": [8],
            "numeric_input": "robust_clip",
        }
    )
    again.load_state_dict(model.state_dict())
    x = torch.randn(5, 4)
    assert torch.allclose(model(x), again(x))


def test_table_run_with_the_input_layer_fits_statistics_on_training_rows(tmp_path, monkeypatch):
    from dlpipe.pipeline import _fit

    monkeypatch.setitem(_fit.TABLE_MODEL_DEFAULTS, "numeric_input", "robust_clip")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(50, 10, 60), "b": rng.normal(size=60)})
    frame["y"] = np.where(frame["a"] > 50, "hi", "lo")
    run = dl.train(frame, "y", epochs=2, progress="quiet", save=False)
    assert run.bundle.manifest["model_spec"]["numeric_input"] == "robust_clip"
    layer = run.bundle.model.numeric_input
    assert not torch.allclose(layer.inv_scale, torch.ones(2))  # fitted, not the initial values
    path = run.bundle.save(tmp_path / "b")
    assert not list(path.rglob("*.pkl")) and (path / "weights.safetensors").is_file()
    loaded = load_bundle(path)
    assert torch.equal(loaded.model.numeric_input.center, layer.center)
    pd.testing.assert_frame_equal(
        loaded.predict(frame.drop(columns="y")), run.bundle.predict(frame.drop(columns="y"))
    )


def test_piecewise_linear_bins_widen_the_input():
    layer = NumericInput(3, bins=4).fit(torch.randn(200, 3))
    out = layer(torch.randn(5, 3))
    assert out.shape == (5, 3 * 5) and layer.out_features == 15
    assert out[:, 3:].min() >= 0.0 and out[:, 3:].max() <= 1.0  # each interval's share in [0, 1]
    model = build_model(
        {
            "family": "mlp",
            "n_numeric": 3,
            "n_outputs": 1,
            "hidden": [8],
            "numeric_input": "robust_clip",
            "bins": 4,
        }
    )
    assert model(torch.zeros(2, 3)).shape == (2, 1)


def test_per_column_bins_give_low_cardinality_columns_one_interval_per_step():
    from dlpipe.models.mlp import column_bins

    rng = torch.Generator().manual_seed(0)
    x = torch.stack(
        [
            torch.randint(0, 5, (400,), generator=rng).float(),  # 5 values: 4 steps
            torch.randn(400, generator=rng),  # many values: quantile intervals
            torch.randint(0, 2, (400,), generator=rng).float(),  # 0/1: none
        ],
        dim=1,
    )
    counts = column_bins([len(torch.unique(x[:, j])) for j in range(3)], most=8)
    assert counts == [4, 8, 0]
    layer = NumericInput(3, bins=counts).fit(x)
    assert layer.out_features == 3 + 12 and "keep" not in layer.state_dict()
    out = layer(x)
    assert out.shape == (400, 15)
    # the 5-valued column: a thermometer code of its value (0 -> 0000, 3 -> 1110, 4 -> 1111)
    assert torch.equal(out[:, 3:7].sum(dim=1), x[:, 0])
    assert set(out[:, 3:7].unique().tolist()) == {0.0, 1.0}
    # the state travels: a fresh layer of the same counts gives the same outputs
    again = NumericInput(3, bins=counts)
    again.load_state_dict(layer.state_dict())
    assert torch.equal(again(x), out)
    # one count for every column is the uniform layout of before
    assert NumericInput(3, bins=4).fit(x)(x).shape == (400, 15)


def test_column_bins_fit_a_width_budget_by_capping_the_many_valued_columns_first():
    from dlpipe.models.mlp import column_bins

    assert column_bins([2, 5, 1000, 1000]) == [0, 4, 16, 16]
    # budget 20: 4 columns + 16 intervals -> the cap falls to 6 (0 + 4 + 6 + 6)
    assert column_bins([2, 5, 1000, 1000], width=20) == [0, 4, 6, 6]
    assert column_bins([1000] * 10, width=10) == [0] * 10  # not even one interval each fits
    assert column_bins([2, 5, 1000], fewest=17) == [0, 0, 16]  # many-valued columns only


def test_per_column_bins_on_a_wide_table_travel_with_the_bundle(tmp_path, monkeypatch):
    # tried, not the default (TABLE_MODEL_DEFAULTS["wide_bins"]): a block wider than 32 columns
    from dlpipe.pipeline import _fit

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {f"c{j}": rng.integers(0, 2 + j % 6, 3_400).astype(float) for j in range(34)}
    )
    frame["y"] = frame["c5"] + rng.normal(size=3_400)
    plain = dl.train(frame, "y", epochs=1, progress="quiet", save=False)
    assert "bins" not in plain.bundle.manifest["model_spec"]  # the default: none over 32 columns
    monkeypatch.setitem(_fit.TABLE_MODEL_DEFAULTS, "wide_bins", {})
    run = dl.train(frame, "y", epochs=1, progress="quiet", out=tmp_path / "run", report=False)
    bins = run.bundle.manifest["model_spec"]["bins"]
    assert bins == [min(16, 1 + j % 6) if j % 6 else 0 for j in range(34)]
    got = dl.load_bundle(tmp_path / "run" / "bundle").predict(frame.drop(columns="y").head(40))
    pd.testing.assert_frame_equal(got, run.bundle.predict(frame.drop(columns="y").head(40)))


def test_bins_must_be_counts():
    with pytest.raises(InvalidConfigError, match="`bins`"):
        build_model(
            {
                "family": "mlp",
                "n_numeric": 2,
                "n_outputs": 1,
                "numeric_input": "robust_clip",
                "bins": [1, -1],
            }
        )


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_the_input_layer_exports(tmp_path, monkeypatch, fmt):
    from dlpipe.export import export_bundle
    from dlpipe.pipeline import _fit

    monkeypatch.setitem(_fit.TABLE_MODEL_DEFAULTS, "numeric_input", "robust_clip")
    monkeypatch.setitem(_fit.TABLE_MODEL_DEFAULTS, "bins", 4)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(50, 10, 80), "b": rng.standard_cauchy(80)})
    frame["y"] = np.where(frame["a"] > 50, "hi", "lo")
    bundle = dl.train(frame, "y", epochs=2, progress="quiet", save=False).bundle
    assert bundle.model.numeric_input.bins == 4
    res = export_bundle(bundle, tmp_path / f"m.{fmt}", format=fmt, data=frame)
    assert res.parity["max_abs_diff"] <= 1e-4


# ---------------------------------------------------------------------------- members (TabM-mini)
def _members_spec(average: str, n_outputs: int) -> dict:
    return {
        "family": "mlp",
        "n_numeric": 4,
        "n_outputs": n_outputs,
        "hidden": [8],
        "members": 5,
        "average": average,
    }


@pytest.mark.parametrize(("average", "n_outputs"), [("mean", 1), ("sigmoid", 1), ("softmax", 3)])
def test_members_train_apart_and_predict_their_average(average, n_outputs):
    model = build_model(_members_spec(average, n_outputs))
    x = torch.randn(6, 4)
    model.train()
    each = model(x)
    assert each.shape == (5, 6, n_outputs)  # one output per member in training
    model.eval()
    out = model(x)
    assert out.shape == (6, n_outputs)
    if average == "mean":
        assert torch.allclose(out, each.mean(0), atol=1e-6)
    elif average == "sigmoid":
        assert torch.allclose(torch.sigmoid(out), torch.sigmoid(each).mean(0), atol=1e-5)
    else:
        assert torch.allclose(out.softmax(-1), each.softmax(-1).mean(0), atol=1e-5)
    # members differ (own signs and heads), so the average is not one member's output
    assert not torch.allclose(each[0], each[1])


def test_losses_average_the_members_losses():
    from dlpipe.tasks.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss

    k, b = 4, 7
    z1, y1 = torch.randn(k, b, 1), torch.randn(b, 1)
    assert torch.allclose(MSELoss()(z1, y1), torch.stack([MSELoss()(z, y1) for z in z1]).mean())
    yb = torch.randint(0, 2, (b, 1)).float()
    bce = BCEWithLogitsLoss()
    assert torch.allclose(bce(z1, yb), torch.stack([bce(z, yb) for z in z1]).mean())
    z3, yc = torch.randn(k, b, 3), torch.randint(0, 3, (b,))
    ce = CrossEntropyLoss()
    assert torch.allclose(ce(z3, yc), torch.stack([ce(z, yc) for z in z3]).mean())
    # a plain (B, C) batch is unchanged
    assert torch.allclose(ce(z3[0], yc), torch.nn.functional.cross_entropy(z3[0], yc))


def test_members_spec_is_checked():
    from dlpipe.core.errors import InvalidConfigError

    with pytest.raises(InvalidConfigError, match="`members` is 0"):
        build_model({**_members_spec("mean", 1), "members": 0})
    with pytest.raises(InvalidConfigError, match="`average` is 'median'"):
        build_model({**_members_spec("mean", 1), "average": "median"})


def test_a_members_bundle_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"a": rng.normal(size=80), "b": rng.normal(size=80), "c": rng.choice(list("xyz"), 80)}
    )
    frame["y"] = np.where(frame["a"] + (frame["c"] == "x") > 0.3, "hi", "lo")
    run = dl.train(frame, "y", epochs=3, progress="quiet", save=False, model={"members": 4})
    spec = run.bundle.manifest["model_spec"]
    assert spec["members"] == 4 and spec["average"] == "sigmoid"
    path = run.bundle.save(tmp_path / "b")
    loaded = load_bundle(path)
    assert torch.equal(loaded.model.member_input.signs, run.bundle.model.member_input.signs)
    got = loaded.predict(frame.drop(columns="y"))
    pd.testing.assert_frame_equal(got, run.bundle.predict(frame.drop(columns="y")))
    p = got["proba_hi"].to_numpy()
    assert ((p > 0) & (p < 1)).all()


def test_members_default_by_rows_and_a_plain_mlp_on_request():
    from dlpipe.models.mlp import default_members

    assert [default_members(n) for n in (100, 5_000, 50_000)] == [32, 8, 8]
    # regression: 8 at every size (a plain MLP from 2,000 rows until the encodings of default_bins)
    assert [default_members(n, "regression") for n in (100, 1_999, 2_000)] == [8, 8, 8]
    frame = pd.DataFrame({"a": np.random.default_rng(0).normal(size=60), "y": np.arange(60) % 2})
    run = dl.train(frame, "y", epochs=1, progress="quiet", save=False)
    assert run.bundle.manifest["model_spec"]["members"] == 32
    assert run.config["model"]["members"] == 32
    # an ensemble's default dropout is 0; one the user sets is kept
    assert (
        run.bundle.manifest["model_spec"]["dropout"] == 0.0 and run.config["model"]["dropout"] == 0
    )
    given = dl.train(frame, "y", epochs=1, progress="quiet", save=False, dropout=0.1)
    assert given.bundle.manifest["model_spec"]["dropout"] == 0.1
    plain = dl.train(frame, "y", epochs=1, progress="quiet", save=False, model={"members": 1})
    assert plain.bundle.model.fast_path_members() is None
    with pytest.raises(dl.DlpipeError, match="`members` is 0"):
        dl.train(frame, "y", epochs=1, progress="quiet", save=False, model={"members": 0})


# ------------------------------------------------------------------ the linear skip path (wide & deep)
@pytest.mark.parametrize("members", [1, 3])
def test_the_skip_path_starts_at_zero_and_adds_a_linear_function(members):
    torch.manual_seed(0)
    model = build_model(
        {"family": "mlp", "n_numeric": 4, "n_outputs": 1, "hidden": [8], "members": members}
    )
    torch.manual_seed(0)
    skipped = build_model(
        {
            "family": "mlp",
            "n_numeric": 4,
            "n_outputs": 1,
            "hidden": [8],
            "members": members,
            "skip": True,
        }
    )
    x = torch.randn(6, 4)
    model.eval()
    skipped.eval()
    # zero-initialised: the same network as without it until it learns
    assert torch.allclose(skipped(x), model(x), atol=1e-6)
    with torch.no_grad():
        skipped.skip.weight.copy_(torch.tensor([[1.0, -2.0, 0.0, 0.5]]))
        skipped.skip.bias.fill_(3.0)
    linear = x @ torch.tensor([1.0, -2.0, 0.0, 0.5]).unsqueeze(1) + 3.0
    assert torch.allclose(skipped(x), model(x) + linear, atol=1e-5)


def test_default_skip_is_for_small_regression_tables_only():
    from dlpipe.models.mlp import default_skip

    assert default_skip(1_999, "regression") and not default_skip(2_000, "regression")
    assert not default_skip(300, "binary") and not default_skip(300, "multiclass")


def test_default_bins_from_2000_rows_on_narrow_numeric_blocks():
    from dlpipe.models.mlp import default_bins

    assert [default_bins(n, "binary", 10) for n in (1_999, 2_000)] == [0, 16]
    assert default_bins(5_000, "binary", 32) == 16 and default_bins(5_000, "binary", 33) == 0
    # regression: up to 32 intervals within 32 x 17 encoded inputs, never fewer than 16
    widths = {f: default_bins(5_000, "regression", f) for f in (9, 16, 17, 26, 32, 33)}
    assert widths == {9: 32, 16: 32, 17: 31, 26: 19, 32: 16, 33: 0}
    assert default_bins(1_999, "regression", 9) == 0


def test_the_default_model_encodes_numbers_piecewise_from_2000_rows(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=3_400), "b": rng.uniform(size=3_400)})
    frame["y"] = (frame["a"] > 0.3).astype(int)
    run = dl.train(frame, "y", epochs=1, progress="quiet", out=tmp_path / "run", report=False)
    spec = run.bundle.manifest["model_spec"]
    assert (spec["numeric_input"], spec["bins"], spec["members"]) == ("robust_clip", 16, 8)
    # the fitted quantile edges travel with the weights: a reloaded bundle predicts the same
    got = dl.load_bundle(tmp_path / "run" / "bundle").predict(frame.drop(columns="y").head(50))
    pd.testing.assert_frame_equal(got, run.bundle.predict(frame.drop(columns="y").head(50)))
    plain = dl.train(frame, "y", epochs=1, progress="quiet", save=False, model={"members": 8})
    assert plain.bundle.manifest["model_spec"].get("numeric_input", "none") == "none"


def test_a_rerun_from_config_yaml_keeps_the_auto_models_linear_path(tmp_path):
    # config.yaml records `members: auto` when the auto model added parts a number would drop
    frame = pd.DataFrame({"a": np.arange(60.0), "b": np.arange(60.0) % 7})
    frame["y"] = 2 * frame["a"] + frame["b"]
    run = dl.train(frame, "y", epochs=2, progress="quiet", out=tmp_path / "r1", report=False)
    assert run.bundle.manifest["model_spec"]["skip"] and run.config["model"]["members"] == "auto"
    again = dl.train(
        frame, "y", config=tmp_path / "r1" / "config.yaml", progress="quiet", save=False
    )
    assert again.bundle.manifest["model_spec"] == run.bundle.manifest["model_spec"]
    assert again.metrics["test"]["model"]["rmse"] == pytest.approx(
        run.metrics["test"]["model"]["rmse"]
    )
