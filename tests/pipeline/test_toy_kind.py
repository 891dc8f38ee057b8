"""A new data kind registered from this test module alone trains, evaluates, saves, reports and serves.

The toy kind: points given in polar coordinates (``r theta label`` per line of a ``.polar`` file); the
label says whether the point lies in the ring 1 < r < 2. Its recipe turns (r, theta) into scaled x/y
features (fitted on the training split only), trains the registry's MLP and scores it beside the
majority class and a logistic model; its adapter does the same for raw points at predict time.
Nothing in the package changes for it: a recipe, a detector, an adapter and a report section.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.core.errors import InvalidInputError
from dlpipe.data.inputs import PreparedBatch, register_adapter
from dlpipe.pipeline.recipe import (
    Evaluation,
    Prepared,
    Recipe,
    RunContext,
    register_recipe,
    registered_recipes,
)
from dlpipe.reports.sections import Section, register_section

pytestmark = pytest.mark.slow

KIND = "polar"


@dataclass
class PolarData:
    points: np.ndarray  # (n, 2): r, theta
    labels: np.ndarray  # (n,) "ring" / "other"
    name: str = "points"
    kind: str = KIND
    target: str = "label"


def _read_polar(path: str | Path) -> PolarData:
    rows = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    return PolarData(
        np.array([[float(r), float(t)] for r, t, _ in rows]),
        np.array([label for *_, label in rows]),
        name=Path(path).stem,
    )


def _detect(data: Any, cfg: Any, test: Any) -> PolarData | None:
    return (
        _read_polar(data)
        if isinstance(data, (str, Path)) and str(data).endswith(".polar")
        else None
    )


def _cartesian(points: np.ndarray) -> np.ndarray:
    return np.stack(
        [points[:, 0] * np.cos(points[:, 1]), points[:, 0] * np.sin(points[:, 1])], axis=1
    )


class PolarAdapter:
    """Raw points (a list of [r, theta]) -> the model's scaled x/y input; state is plain JSON."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        self.mean, self.std = np.asarray(mean), np.asarray(std)

    @classmethod
    def fit(cls, points: np.ndarray) -> PolarAdapter:
        xy = _cartesian(points)
        return cls(xy.mean(axis=0).tolist(), (xy.std(axis=0) + 1e-9).tolist())

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PolarAdapter:
        return cls(state["mean"], state["std"])

    def state(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @property
    def input_names(self) -> list[str]:
        return ["r", "theta"]

    def features(self, points: np.ndarray) -> np.ndarray:
        return ((_cartesian(points) - self.mean) / self.std).astype(np.float32)

    def prepare(self, data: Any, *, with_target: bool = False) -> PreparedBatch:
        points = np.asarray(data, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise InvalidInputError(
                f"a polar model takes [r, theta] pairs, but got an array of shape {points.shape}; send `inputs` as [[r, theta], ...]."
            )
        x = self.features(points)
        return PreparedBatch([x], baseline_features=x)


class PolarRecipe(Recipe):
    kind = KIND

    def prepare(self, ds: PolarData, cfg: Any) -> Prepared:
        import torch

        from dlpipe.data.splits import split_indices
        from dlpipe.tasks.task import infer_task
        from dlpipe.training.trainer import TensorData

        task = infer_task(pd.Series(ds.labels), target=ds.target, task=cfg.data.task)
        y = task.encode(pd.Series(ds.labels))
        tr, va, te = split_indices(
            len(ds.points),
            val_fraction=cfg.data.val_fraction,
            test_fraction=cfg.data.test_fraction,
            seed=cfg.seed,
            stratify=y.reshape(-1).astype(np.int64),
        )
        adapter = PolarAdapter.fit(ds.points[tr])  # fitted on the training split only
        x = adapter.features(ds.points)
        part = {"train": tr, "val": va, "test": te}
        data = {
            k: TensorData((torch.from_numpy(x[i]),), torch.from_numpy(y[i]))
            for k, i in part.items()
        }
        return Prepared(
            task=task,
            train=data["train"],
            val=data["val"],
            rows={k: len(i) for k, i in part.items()},
            state={"adapter": adapter, "x": x, "y": y, "split": part},
        )

    def build(self, ctx: RunContext) -> tuple[Any, dict[str, Any]]:
        from dlpipe.models.registry import build_model

        spec = {
            "family": "mlp",
            "n_numeric": 2,
            "n_outputs": ctx.prep.task.n_outputs,
            "hidden": [32, 32],
            "activation": "relu",
            "dropout": 0.0,
            "batch_norm": False,
            "cardinalities": [],
            "embedding_dims": [],
        }
        return build_model(spec), spec

    def evaluate(self, ctx: RunContext) -> Evaluation:
        import torch

        from dlpipe.evaluation.baselines import fit_baselines
        from dlpipe.evaluation.scoring import score
        from dlpipe.training.trainer import predict_logits

        st, task = ctx.prep.state, ctx.prep.task
        tr, te = st["split"]["train"], st["split"]["test"]
        y_tr, y_te = (
            st["y"][tr].reshape(-1).astype(np.int64),
            st["y"][te].reshape(-1).astype(np.int64),
        )
        baselines = fit_baselines(task.kind, st["x"][tr], y_tr, 2, ctx.cfg.seed)
        _, proba = task.decode(
            predict_logits(ctx.model, [torch.from_numpy(st["x"][te])]).float().numpy()
        )
        test = score(task.kind, y_te, proba, st["x"][te], baselines, task.classes)
        manifest = {
            "kind": KIND,
            "task": task.to_dict(),
            "preprocessor": st["adapter"].state(),
            "baselines": baselines,
            "feature_names": ["x", "y"],
        }
        return Evaluation(test=test, manifest=manifest, metrics={"polar": {"ring": [1, 2]}})


def _polar_section(run: Any) -> list[Section]:
    return [
        Section("polar", "Polar points").text(
            f"points in the ring {run.metrics['polar']['ring']} are the positive class."
        )
    ]


@pytest.fixture(scope="module", autouse=True)
def polar_kind():
    register_recipe(KIND, PolarRecipe(), detect=_detect, priority=50)
    register_adapter(KIND, PolarAdapter)
    register_section(KIND, _polar_section)
    yield


@pytest.fixture(scope="module")
def polar_file(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    r, theta = rng.uniform(0, 3, 1200), rng.uniform(-np.pi, np.pi, 1200)
    path = tmp_path_factory.mktemp("polar") / "ring.polar"
    path.write_text(
        "\n".join(f"{a:.5f} {b:.5f} {'ring' if 1 < a < 2 else 'other'}" for a, b in zip(r, theta))
        + "\n"
    )
    return path


@pytest.fixture(scope="module")
def polar_run(polar_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "ring"
    run = dl.train(str(polar_file), epochs=60, learning_rate=3e-3, progress="quiet", out=out)
    return run, out


def test_the_kind_is_in_the_one_table_by_priority():
    kinds = [k for k, _ in registered_recipes()]
    assert (
        kinds[0] == KIND and kinds[-1] == "table"
    )  # priority 50 is tried first; tables are the fallback


def test_trains_and_beats_its_baselines(polar_run):
    run, out = polar_run
    test = run.metrics["test"]
    assert run.metrics["dataset"] == "ring" and run.metrics["task"] == "binary"
    # a ring is not linearly separable in x/y: the logistic baseline sits near the majority class
    assert test["model"]["accuracy"] > 0.9 > test["baselines"]["logistic"]["accuracy"] + 0.1
    assert test["verdict"].startswith("The model beats its best baseline")
    assert run.metrics["rows"] == {
        "train": 720,
        "val": 240,
        "test": 240,
    }  # the default 60/20/20 split


def test_saves_a_run_folder_that_loads_and_predicts(polar_run):
    run, out = polar_run
    assert {"config.yaml", "metrics.json", "history.csv", "report.html", "bundle"} <= {
        p.name for p in out.iterdir()
    }
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["polar"] == {"ring": [1, 2]} and metrics["data_sources"]["train"]["sha256"]
    bundle = dl.load_bundle(out / "bundle")
    assert bundle.kind == KIND
    pred = bundle.predict([[1.5, 0.3], [0.2, 2.0], [2.7, -1.0]])
    assert pred["prediction"].tolist() == ["ring", "other", "other"]


def test_report_has_the_standard_sections_and_its_own(polar_run):
    _, out = polar_run
    page = (out / "report.html").read_text()
    for section in (
        "Model vs baselines",
        "Data",
        "Model",
        "Training",
        "Evaluation on the test split",
        "Environment",
        "Polar points",
    ):
        assert f">{section}" in page, section
    assert "points in the ring [1, 2]" in page and "could not be built" not in page


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serves_over_a_real_uvicorn_server(polar_run):
    import uvicorn

    from dlpipe.serving import create_app

    _, out = polar_run
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(str(out / "bundle")), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
            assert json.loads(r.read())["kind"] == KIND
        body = json.dumps({"inputs": [[1.5, 0.3], [0.2, 2.0]]}).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=body,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            preds = json.loads(r.read())["predictions"]
        assert [p["prediction"] for p in preds] == ["ring", "other"]
        bad = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=json.dumps({"inputs": [[1.0, 2.0, 3.0]]}).encode(),
            headers={"content-type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=10)
        assert err.value.code == 422 and "[r, theta] pairs" in err.value.read().decode()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
