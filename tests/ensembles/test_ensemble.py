"""Ensembles are bundles: soft voting, stacking on out-of-fold predictions, save/load, CLI, bad members."""

from __future__ import annotations

import numpy as np
import pytest

import dlpipe as dl
from dlpipe.cli.app import main
from dlpipe.core.errors import InvalidConfigError, InvalidInputError
from dlpipe.ensembles import EnsembleBundle, build_ensemble

FAST = {"epochs": 3, "progress": "quiet"}


@pytest.fixture
def members(binary_frame, tmp_path):
    paths = []
    for seed in (0, 1, 2):
        run = dl.train(
            binary_frame, "y", seed=seed, save=False, **FAST
        )  # no run folder/report: only the bundle matters here
        paths.append(run.bundle.save(tmp_path / f"m{seed}"))
    return paths


def test_soft_vote_is_the_mean_of_member_probabilities_and_round_trips(
    members, binary_frame, tmp_path
):
    ens = build_ensemble(members, "soft")
    rows = binary_frame.drop(columns=["y"]).head(10)
    out = ens.predict(rows)
    probs = [dl.load_bundle(p).predict(rows)["proba_yes"].to_numpy() for p in members]
    np.testing.assert_allclose(out["proba_yes"].to_numpy(), np.mean(probs, axis=0), atol=1e-6)
    ens.save(tmp_path / "ens")
    again = dl.load_bundle(tmp_path / "ens")  # the generic loader dispatches on kind "ensemble"
    assert isinstance(again, EnsembleBundle) and again.kind == "ensemble"
    np.testing.assert_allclose(again.predict(rows)["proba_yes"], out["proba_yes"], atol=1e-6)
    scores = again.evaluate(binary_frame)
    assert "model" in scores and scores["baselines"]  # scored beside the baselines, like any bundle
    weighted = build_ensemble(members, "soft", weights=[1, 0, 0]).predict(rows)
    np.testing.assert_allclose(weighted["proba_yes"], probs[0], atol=1e-6)


@pytest.mark.slow
def test_stacking_fits_a_logistic_meta_model_on_out_of_fold_predictions(members, binary_frame):
    ens = build_ensemble(members, "stack", data=binary_frame, folds=2)
    meta = ens.manifest["meta"]
    assert (
        meta["model"] == "logistic"
        and np.asarray(meta["coef"]).shape == (1, 3)
        and meta["folds"] == 2
    )
    p = ens.predict(binary_frame.head(5))["proba_yes"]
    assert ((p > 0) & (p < 1)).all()


def test_members_of_different_tasks_or_labels_are_refused(
    members, binary_frame, regression_frame, tmp_path
):
    reg = dl.train(regression_frame, "y", save=False, **FAST)
    with pytest.raises(
        InvalidInputError,
        match=r"same task, but member 0 is binary on 'y' and member 1 is regression on 'y'",
    ):
        build_ensemble([members[0], reg.bundle])
    other = binary_frame.assign(y=binary_frame["y"].map({"yes": "Y", "no": "N"}))
    diff = dl.train(other, "y", save=False, **FAST)
    with pytest.raises(InvalidInputError, match="share one label set"):
        build_ensemble([members[0], diff.bundle])
    with pytest.raises(InvalidConfigError, match="weights"):
        build_ensemble(members, weights=[1, 2])
    with pytest.raises(InvalidConfigError, match="needs the labelled training table"):
        build_ensemble(members, "stack")


@pytest.mark.service
def test_cli_ensemble_then_predict(members, binary_frame, tmp_path, capsys):
    assert (
        main(["ensemble", *map(str, members), "--method", "soft", "-o", str(tmp_path / "ens")]) == 0
    )
    binary_frame.drop(columns=["y"]).head(3).to_csv(tmp_path / "rows.csv", index=False)
    assert main(["predict", str(tmp_path / "ens"), str(tmp_path / "rows.csv")]) == 0
    assert "proba_yes" in capsys.readouterr().out
    assert main(["ensemble", str(members[0]), "-o", str(tmp_path / "bad")]) == 2
    assert (
        "at least 2 member bundles" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    )


def test_an_ensemble_serves_like_any_bundle(members, binary_frame, tmp_path):
    import warnings

    from dlpipe.serving.app import create_app

    with warnings.catch_warnings():  # starlette deprecates its httpx-based test client on import
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    build_ensemble(members).save(tmp_path / "ens")
    rows = binary_frame.drop(columns=["y"]).head(2).to_dict(orient="records")
    with TestClient(create_app(str(tmp_path / "ens"))) as client:
        r = client.post("/predict", json={"rows": rows})
    assert r.status_code == 200 and set(r.json()["predictions"][0]["probabilities"]) == {
        "no",
        "yes",
    }
