"""The table MLP's numeric input layer (robust scaling + smooth clipping + per-feature scale)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

import dlpipe as dl
from dlpipe.bundle import load_bundle
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


def test_default_table_run_fits_statistics_on_training_rows(tmp_path):
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
