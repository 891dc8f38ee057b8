"""N-BEATS: the last block owns no backcast layer; states saved with one still load."""

from pathlib import Path

import pytest
import torch

from dlpipe.bundle.bundle import load_checked_state
from dlpipe.core.errors import BundleError
from dlpipe.models.registry import build_model

SPEC = {
    "family": "nbeats",
    "n_features": 1,
    "lookback": 6,
    "horizon": 2,
    "n_outputs": 2,
    "hidden": [8],
    "blocks": 3,
}


def test_last_block_has_no_backcast():
    model = build_model(SPEC)
    names = [n for n, _ in model.named_parameters()]
    assert any(n.startswith("blocks.1.backcast.") for n in names)
    assert not any(n.startswith("blocks.2.backcast.") for n in names)
    one = build_model({**SPEC, "blocks": 1})
    assert not any("backcast" in n for n, _ in one.named_parameters())


def test_state_saved_with_the_last_backcast_still_loads():
    torch.manual_seed(0)
    model = build_model(SPEC).eval()
    old = dict(model.state_dict())  # an earlier version also saved the last block's backcast
    old["blocks.2.backcast.weight"] = torch.randn(6, 8)
    old["blocks.2.backcast.bias"] = torch.randn(6)
    again = build_model(SPEC).eval()
    load_checked_state(again, old, Path("old-bundle"))
    x = torch.randn(4, 6, 1)
    torch.testing.assert_close(again(x), model(x))
    with pytest.raises(BundleError, match="holds weights the model does not have"):
        load_checked_state(again, {**old, "blocks.1.other.weight": torch.zeros(1)}, Path("b"))
