"""Contract suite over the model registry: shape, backward, state_dict and config round trips, seeds."""

import io

import pytest
import torch

from dlpipe.core.errors import InvalidConfigError
from dlpipe.models.registry import build_model, model_families

SPECS = {
    "mlp": {
        "family": "mlp",
        "n_numeric": 5,
        "n_outputs": 3,
        "hidden": [8, 4],
        "dropout": 0.1,
        "batch_norm": True,
        "cardinalities": [4, 7],
        "embedding_dims": [2, 3],
    },
    "cnn": {
        "family": "cnn",
        "in_channels": 3,
        "image_size": [12, 10],
        "n_outputs": 4,
        "channels": [4, 8],
        "hidden": [6],
        "dense": [6],
        "batch_norm": True,
        "dropout": 0.1,
    },
    "resnet18": {"family": "resnet18", "in_channels": 1, "image_size": [32, 32], "n_outputs": 3},
    "resnet34": {"family": "resnet34", "in_channels": 1, "image_size": [32, 32], "n_outputs": 3},
    "resnet50": {"family": "resnet50", "in_channels": 3, "image_size": [32, 32], "n_outputs": 2},
    # the table MLP as an ensemble (the classification default): eval output is the members' average
    "mlp_members": {
        "family": "mlp",
        "n_numeric": 5,
        "n_outputs": 3,
        "hidden": [8, 4],
        "dropout": 0.1,
        "cardinalities": [4, 7],
        "embedding_dims": [2, 3],
        "members": 4,
        "average": "softmax",
    },
    # generative families: "_input"/"_output" are the sample shapes (without the batch axis) the contract uses
    "autoencoder": {
        "family": "autoencoder",
        "n_inputs": 10,
        "latent": 3,
        "hidden": [8],
        "_input": [10],
        "_output": [10],
    },
    "conv_autoencoder": {
        "family": "conv_autoencoder",
        "channels": 1,
        "size": 8,
        "latent": 2,
        "decoder": "unpool",
        "_input": [1, 8, 8],
        "_output": [1, 8, 8],
    },
    "recurrent_autoencoder": {
        "family": "recurrent_autoencoder",
        "n_features": 2,
        "seq_len": 5,
        "latent": 3,
        "cell": "lstm",
        "_input": [5, 2],
        "_output": [5, 2],
    },
    "vae": {
        "family": "vae",
        "n_inputs": 64,
        "latent": 2,
        "hidden": [8],
        "shape": [1, 8, 8],
        "_input": [1, 8, 8],
        "_output": [68],
    },
    "gan": {
        "family": "gan",
        "arch": "dcgan",
        "latent": 4,
        "shape": [1, 8, 8],
        "width": 4,
        "_input": [4],
        "_output": [1, 8, 8],
    },
    "gan_discriminator": {
        "family": "gan_discriminator",
        "arch": "dcgan",
        "latent": 4,
        "shape": [1, 8, 8],
        "width": 4,
        "_input": [1, 8, 8],
        "_output": [1],
    },
    # sequence families (B, T, F) -> (B, n_outputs); tests/models/test_rnn.py also covers masks, forecasting heads, causality
    "rnn": {
        "family": "rnn",
        "n_features": 2,
        "n_outputs": 3,
        "hidden": [8, 8],
        "dropout": 0.1,
        "_input": [7, 2],
    },
    "lstm": {
        "family": "lstm",
        "n_features": 2,
        "n_outputs": 3,
        "hidden": [8],
        "forecast": True,
        "horizon": 3,
        "target_index": [1],
        "residual": True,
        "_input": [7, 2],
    },
    "gru": {
        "family": "gru",
        "n_features": 2,
        "n_outputs": 3,
        "hidden": [8, 6],
        "bidirectional": True,
        "_input": [7, 2],
    },
    "transformer": {
        "family": "transformer",
        "n_features": 2,
        "n_outputs": 3,
        "hidden": [8],
        "heads": 2,
        "dropout": 0.1,
        "_input": [7, 2],
    },
    "tcn": {
        "family": "tcn",
        "n_features": 2,
        "n_outputs": 3,
        "hidden": [4, 4],
        "forecast": True,
        "_input": [7, 2],
    },
    "cnn1d": {
        "family": "cnn1d",
        "n_features": 2,
        "n_outputs": 3,
        "hidden": [4, 8],
        "_input": [7, 2],
    },
    "fcn": {
        "family": "fcn",
        "n_features": 2,
        "n_outputs": 3,
        "hidden": [4, 8],
        "_input": [7, 2],
    },
    "nbeats": {
        "family": "nbeats",
        "n_features": 1,
        "lookback": 6,
        "horizon": 2,
        "n_outputs": 2,
        "forecast": True,
        "_input": [6, 1],
    },
    # fixed features (buffers) and a linear head; tests/models/test_minirocket.py covers fitting
    "minirocket": {
        "family": "minirocket",
        "n_features": 2,
        "length": 20,
        "n_outputs": 3,
        "num_features": 168,
        "_input": [20, 2],
    },
}


def _inputs(spec):
    if "_input" in spec:
        return (torch.randn(6, *spec["_input"]),)
    if "image_size" in spec:  # image families: (B, C, H, W)
        return (torch.randn(6, spec.get("in_channels", 1), *spec["image_size"]),)
    x = torch.randn(6, spec["n_numeric"])
    cats = torch.stack([torch.randint(0, k, (6,)) for k in spec["cardinalities"]], dim=1)
    return (x, cats)


# Families whose input cannot be made up generically here, and the test file that holds their contract.
ELSEWHERE = {
    "text_bag": "tests/text",
    "text_tfidf": "tests/text",
    "text_rnn": "tests/text",
    "text_transformer": "tests/text",
    "text_vectors": "tests/text",
    "text_encoder": "tests/text",
    "text_static": "tests/text",
    "text_tabular": "tests/text",
}


def test_every_family_has_a_contract_spec():
    from pathlib import Path

    families = {spec["family"] for spec in SPECS.values()}
    missing = set(model_families()) - families - set(ELSEWHERE)
    assert not missing, f"families without a contract spec: {sorted(missing)}"
    root = Path(__file__).resolve().parents[2]
    assert all((root / where).exists() for where in ELSEWHERE.values())


@pytest.mark.parametrize("family", sorted(SPECS))
def test_contract(family):
    spec = SPECS[family]
    torch.manual_seed(0)
    model = build_model(spec)
    torch.manual_seed(0)
    twin = build_model(spec).eval()  # same seed, same weights
    inputs = _inputs(spec)
    out = model(*inputs)
    shape = (6, *spec.get("_output", [spec.get("n_outputs")]))
    members = spec.get("members", 1)  # an ensemble trains on every member's output
    assert out.shape == ((members, *shape) if members > 1 else shape)
    out.sum().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []  # no dead weights
    model.eval()
    assert model(*inputs).shape == shape
    model.train()
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    again = build_model(spec)
    again.load_state_dict(torch.load(buf, weights_only=True))
    model.eval(), again.eval()
    torch.testing.assert_close(model(*inputs), again(*inputs))
    twin.load_state_dict({k: v for k, v in twin.state_dict().items()})
    fresh_state = {
        k: v for k, v in twin.state_dict().items() if "running" not in k and "num_batches" not in k
    }
    trained_state = {
        k: v for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k
    }
    for key, value in fresh_state.items():
        torch.testing.assert_close(value, trained_state[key])


def test_unknown_family_and_bad_params():
    with pytest.raises(InvalidConfigError, match=r"unknown model family 'mpl'.*did you mean `mlp`"):
        build_model({"family": "mpl"})
    with pytest.raises(
        InvalidConfigError, match=r"`hidden` is \[0\].*`activation` is 'rellu'.*did you mean `relu`"
    ):
        build_model(
            {"family": "mlp", "n_numeric": 2, "n_outputs": 1, "hidden": [0], "activation": "rellu"}
        )
