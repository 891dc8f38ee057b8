"""The sequence families (rnn, lstm, gru, transformer, tcn, cnn1d): the registry contract, masks, refusals."""

import io

import pytest
import torch

from dlpipe.core.errors import InvalidConfigError
from dlpipe.models.registry import build_model, model_families

SEQUENCE_SPECS = {
    "rnn": {"family": "rnn", "hidden": [8, 8]},
    "lstm": {"family": "lstm", "hidden": [8, 6]},
    "gru": {"family": "gru", "hidden": [8], "bidirectional": True},
    "transformer": {"family": "transformer", "hidden": [8, 8], "heads": 2},
    "tcn": {"family": "tcn", "hidden": [8, 8]},
    "cnn1d": {"family": "cnn1d", "hidden": [8, 8]},
}


def _spec(family, forecast):
    spec = {
        **SEQUENCE_SPECS[family],
        "n_features": 2,
        "n_outputs": 3,
        "dropout": 0.1,
        "forecast": forecast,
    }
    if forecast:
        spec.pop("bidirectional", None)
        spec.update(horizon=3, target_index=[1], residual=True)
    return spec


def test_families_are_registered():
    assert set(SEQUENCE_SPECS) <= set(model_families())


@pytest.mark.parametrize("forecast", [True, False], ids=["forecast", "classify"])
@pytest.mark.parametrize("family", sorted(SEQUENCE_SPECS))
def test_contract(family, forecast):
    spec = _spec(family, forecast)
    torch.manual_seed(0)
    model = build_model(spec)
    x = torch.randn(5, 12, 2)
    mask = None if forecast else torch.ones(5, 12)
    out = model(x, mask)
    assert out.shape == (5, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    again = build_model(spec)
    again.load_state_dict(torch.load(buf, weights_only=True))
    model.eval(), again.eval()
    torch.testing.assert_close(model(x, mask), again(x, mask))
    torch.manual_seed(0)
    twin = build_model(spec)
    torch.manual_seed(0)
    for p, q in zip(build_model(spec).parameters(), twin.parameters()):
        assert torch.equal(p, q)  # same seed, same weights


@pytest.mark.parametrize("family", ["lstm", "transformer", "tcn", "cnn1d"])
def test_padding_is_ignored_by_classifiers(family):
    model = build_model(_spec(family, False)).eval()
    x = torch.randn(1, 8, 2)
    padded = torch.cat([x, torch.zeros(1, 4, 2)], dim=1)
    mask = torch.cat([torch.ones(1, 8), torch.zeros(1, 4)], dim=1)
    if family in ("lstm", "transformer"):  # pooling over real steps only
        torch.testing.assert_close(
            model(padded, mask), model(x, torch.ones(1, 8)), atol=1e-5, rtol=1e-4
        )
    else:  # convolutions see the zeros near the end, but masked pooling must still change the result
        assert not torch.allclose(model(padded, mask), model(padded, torch.ones(1, 12)))


def test_residual_head_starts_at_the_naive_forecast():
    spec = _spec("lstm", True)
    model = build_model(spec).eval()
    torch.nn.init.zeros_(model.head.linear.weight), torch.nn.init.zeros_(model.head.linear.bias)
    x = torch.randn(4, 12, 2)
    assert torch.equal(model(x), x[:, -1, [1]].repeat(1, 3))


def test_tcn_is_causal():
    model = build_model(_spec("tcn", True)).eval()
    x = torch.randn(1, 12, 2)
    h1 = model.blocks(x.transpose(1, 2))
    y = x.clone()
    y[:, 8:] += 5.0  # change the future
    h2 = model.blocks(y.transpose(1, 2))
    torch.testing.assert_close(h1[..., :8], h2[..., :8])


def test_bidirectional_refused_for_forecasting_and_bad_params_collected():
    with pytest.raises(
        InvalidConfigError, match=r"`bidirectional=True` is refused for forecasting"
    ):
        build_model(
            {
                "family": "lstm",
                "n_features": 1,
                "n_outputs": 1,
                "forecast": True,
                "bidirectional": True,
            }
        )
    with pytest.raises(InvalidConfigError, match=r"`hidden` is \[0\].*`n_features` is 0"):
        build_model({"family": "gru", "n_features": 0, "n_outputs": 1, "hidden": [0]})
    with pytest.raises(
        InvalidConfigError,
        match=r"`heads` is 3 but must be a positive integer that divides the width 16",
    ):
        build_model(
            {"family": "transformer", "n_features": 1, "n_outputs": 1, "hidden": [16], "heads": 3}
        )
    with pytest.raises(InvalidConfigError, match=r"`kernel_size` is 1"):
        build_model({"family": "tcn", "n_features": 1, "n_outputs": 1, "kernel_size": 1})


@pytest.mark.parametrize("family", ["gru", "transformer", "tcn"])
def test_relative_inputs_make_forecasts_level_free(family):
    spec = {**_spec(family, True), "relative": True}
    model = build_model(spec).eval()
    x = torch.randn(4, 12, 2)
    # the window minus its last row feeds the network, the residual head adds the last value back:
    # shifting the whole window by 100 shifts the forecast by exactly 100
    torch.testing.assert_close(model(x + 100.0), model(x) + 100.0, atol=1e-4, rtol=1e-5)
