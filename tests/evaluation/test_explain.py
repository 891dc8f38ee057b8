"""Permutation importance and integrated gradients (dlpipe.evaluation.explain, dl.explain, dlpipe explain)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import dlpipe as dl
from dlpipe.cli import main
from dlpipe.data.preprocessing import TabularPreprocessor
from dlpipe.data.schema import infer_schema
from dlpipe.evaluation.explain import (
    completeness_error,
    feature_groups,
    integrated_gradients,
    model_output,
)
from dlpipe.models.registry import build_model


def test_feature_groups_move_a_columns_inputs_together():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "a": np.where(
                rng.random(80) < 0.2, np.nan, rng.normal(size=80)
            ),  # with a missing indicator
            "city": rng.choice(["x", "y", "z"], 80),  # one-hot
            "shop": [f"s{i}" for i in rng.integers(0, 40, 80)],  # embedded
            "b": rng.normal(size=80),
            "y": rng.integers(0, 2, 80),
        }
    )
    pre = TabularPreprocessor(infer_schema(frame, "y"), max_onehot=5).fit(frame)
    groups = {g.name: g for g in feature_groups(pre.state())}
    assert list(groups) == ["a", "city", "shop", "b"]
    names = pre.feature_names
    assert [names[i] for i in groups["a"].num] == ["a", "a.missing"]
    assert [names[i] for i in groups["city"].num] == ["city=x", "city=y", "city=z"] or sorted(
        names[i] for i in groups["city"].num
    ) == ["city=x", "city=y", "city=z"]
    assert groups["shop"].num == () and groups["shop"].cat == (0,)
    assert sum(len(g.num) for g in groups.values()) == pre.n_numeric


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_integrated_gradients_are_complete_within_one_percent(kind):
    torch.manual_seed(0)
    n_out = 3 if kind == "multiclass" else 1
    spec = {
        "family": "mlp",
        "n_numeric": 6,
        "n_outputs": n_out,
        "hidden": [32, 16],
        "cardinalities": [5],
        "embedding_dims": [3],
    }
    model = build_model(spec).eval()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 6)).astype(np.float32)
    cats = rng.integers(0, 5, size=(12, 1))
    targets = rng.integers(0, 3, 12) if kind == "multiclass" else None
    fn = model_output(model, kind, y_std=2.0, temperature=1.5, double=True)
    attr, out_x, out_b = integrated_gradients(
        fn, x, np.zeros(6), cats, targets, steps=32, dtype=torch.float64
    )
    gap = np.abs(attr.sum(axis=1) - (out_x - out_b))
    delta = np.abs(out_x - out_b)
    # within 1% of each row's difference (at least 5% of the mean difference: see completeness_error)
    assert (gap <= 0.01 * np.maximum(delta, 0.05 * delta.mean())).all()
    assert completeness_error(attr, out_x, out_b) <= 0.01
    assert gap.sum() <= 0.01 * delta.sum()
    # the outputs are the model's (after the temperature / in target units), not something else
    with torch.no_grad():
        logits = model(torch.from_numpy(x), torch.from_numpy(cats)).double().numpy()
    want = {
        "binary": logits[:, 0] / 1.5,
        "regression": logits[:, 0] * 2.0,
        "multiclass": logits[np.arange(12), targets if targets is not None else 0] / 1.5,
    }[kind]
    assert out_x == pytest.approx(want, rel=1e-5)


@pytest.fixture(scope="module")
def informative_run(tmp_path_factory):
    """make_classification, seeded: 5 informative columns f0..f4 first (shuffle=False), 15 noise columns."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=2000,
        n_features=20,
        n_informative=5,
        n_redundant=0,
        n_repeated=0,
        shuffle=False,
        random_state=0,
    )
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(20)]).assign(y=y)
    out = tmp_path_factory.mktemp("explain") / "run"
    run = dl.train(frame, "y", out=out, seed=0, epochs=10, progress="quiet", report=False)
    return run, frame, out


@pytest.mark.slow
def test_permutation_importance_ranks_informative_columns_first(informative_run):
    _, _, out = informative_run
    ex = json.loads((out / "metrics.json").read_text())["explanations"]
    perm = ex["permutation"]
    assert perm["metric"] == "roc_auc" and perm["repeats"] == 5
    mean = {k: v["mean"] for k, v in perm["features"].items()}
    informative = [mean[f"f{i}"] for i in range(5)]
    noise = [mean[f"f{i}"] for i in range(5, 20)]
    assert min(informative) > max(noise), mean
    assert all(v["std"] >= 0 for v in perm["features"].values())
    assert ex["integrated_gradients"]["completeness_error"] <= 0.01


@pytest.mark.slow
def test_bundle_explain_and_the_cli_agree(informative_run, tmp_path, capsys):
    run, frame, out = informative_run
    rows = frame.sample(60, random_state=1)
    e = run.bundle.explain(rows, repeats=3)
    assert e.metric == "roc_auc" and e.rows == 60
    # 60 rows are few for the weakest informative column; the strongest leads and the groups separate
    assert e.importance["column"][0] == "f1"
    imp = e.importance.set_index("column")["importance"]
    assert imp[[f"f{i}" for i in range(5)]].mean() > 5 * imp[[f"f{i}" for i in range(5, 20)]].mean()
    a = e.attributions
    delta = a["output"] - a["baseline_output"]
    total = a[[f"f{i}" for i in range(20)]].sum(axis=1)
    scale = np.maximum(delta.abs(), 0.05 * delta.abs().mean())
    assert ((total - delta).abs() <= 0.01 * scale).all()
    assert (total - delta).abs().sum() <= 0.001 * delta.abs().sum()
    assert e.completeness_error <= 0.01
    # attributions only when the rows carry no target
    e2 = dl.explain(run.bundle, rows.drop(columns="y"))
    assert e2.metric is None and e2.importance["importance"].isna().all()
    assert np.allclose(e2.attributions.to_numpy(), a.to_numpy())

    rows.to_csv(tmp_path / "rows.csv", index=False)
    code = main(
        ["explain", str(out / "bundle"), str(tmp_path / "rows.csv"), "-o", str(tmp_path / "a.csv")]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "drop in roc_auc" in printed and "f0" in printed
    written = pd.read_csv(tmp_path / "a.csv")
    assert list(written.columns) == [*(f"f{i}" for i in range(20)), "output", "baseline_output"]
    assert len(written) == 60


@pytest.mark.slow
def test_explain_refuses_bad_options_and_one_class_rows(informative_run, tmp_path, capsys):
    run, frame, out = informative_run
    with pytest.raises(ValueError, match="`steps` is 0 but must be an integer of at least 1"):
        dl.explain(run.bundle, frame.head(5), steps=0)
    with pytest.raises(ValueError, match="hold one class only"):
        dl.explain(run.bundle, frame[frame["y"] == 0].head(20))
    frame.head(5).to_csv(tmp_path / "rows.csv", index=False)
    code = main(["explain", str(out / "bundle"), str(tmp_path / "rows.csv"), "--repeats", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "must be an integer of at least 1" in err and "Traceback" not in err
    assert not (tmp_path / "a.csv").exists()
