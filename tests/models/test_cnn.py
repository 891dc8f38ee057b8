"""The CNN: shapes from a dummy forward, the seed notes' network, spec errors, shape arithmetic, summary."""

import pytest
import torch

import dlpipe.models as models
from dlpipe.core.errors import InvalidConfigError
from dlpipe.models.cnn import CNN, default_cnn_spec, seed_cnn_spec
from dlpipe.models.registry import build_model
from dlpipe.models.shapes import conv_output_size, pool_output_size, summary


def test_shape_arithmetic_matches_torch():
    for size, k, s, p, d in [(28, 3, 1, 0, 1), (28, 3, 1, 1, 1), (32, 5, 2, 2, 1), (7, 3, 2, 1, 2)]:
        out = torch.nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)(
            torch.zeros(1, 1, size, size)
        ).shape[-1]
        assert conv_output_size(size, k, s, p, d) == out
    assert (
        pool_output_size(26, 2) == torch.nn.MaxPool2d(2)(torch.zeros(1, 1, 26, 26)).shape[-1] == 13
    )
    assert models.conv_output_size is conv_output_size
    with pytest.raises(
        InvalidConfigError, match="a kernel of 5 .* does not fit an input of size 3"
    ):
        conv_output_size(3, 5)
    with pytest.raises(InvalidConfigError, match="`stride` is 0 but must be an integer >= 1"):
        conv_output_size(8, 3, stride=0)


def test_seed_cnn_is_the_keras_network():
    model = build_model(seed_cnn_spec())
    # Keras' summary of the seed notes: 320 + 18,496 + 16,010 parameters, flatten 5*5*64
    assert model.flat_features == 1600 and sum(p.numel() for p in model.parameters()) == 34_826
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.slow
def test_default_cnn_on_small_and_rgb_images():
    for c, size in [(1, (8, 8)), (3, (32, 32)), (3, (20, 12))]:
        model = build_model(default_cnn_spec(c, size, 4))
        assert model(torch.zeros(2, c, *size)).shape == (2, 4)
    model = CNN(
        3,
        (32, 32),
        10,
        channels=(16, 32, 64),
        kernel_size=[5, 3, 3],
        convs_per_block=2,
        dense=(64, 32),
    )
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10) and model.flat_features == 64 * 4 * 4


def test_default_cnn_normalises_after_the_pool_and_old_specs_keep_their_layout():
    new = build_model(default_cnn_spec(1, (28, 28), 10))
    kinds = [type(m).__name__ for m in new.features]
    assert kinds == ["Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"] * 2
    # a spec saved before norm_after_pool existed (no key) rebuilds conv-BN-pool-ReLU: its weights load
    old_spec = {
        k: v for k, v in default_cnn_spec(1, (28, 28), 10).items() if k != "norm_after_pool"
    }
    old = build_model(old_spec)
    assert [type(m).__name__ for m in old.features] == [
        "Conv2d",
        "BatchNorm2d",
        "MaxPool2d",
        "ReLU",
    ] * 2
    assert old.load_state_dict(build_model(old_spec).state_dict()) is not None
    assert new.flat_features == old.flat_features == 3136
    # the batch norm sees the pooled map: in training its output has per-channel mean 0 on 14x14
    captured = {}
    new.features[2].register_forward_hook(lambda m, i, o: captured.setdefault("bn", o))
    new.train()(torch.randn(4, 1, 28, 28))
    assert captured["bn"].shape == (4, 32, 14, 14)
    assert captured["bn"].mean((0, 2, 3)).abs().max() < 1e-5
    # tanh never decreases: pool, BN, tanh; GELU does not, so conv-BN-GELU-pool stays as it was
    tanh = CNN(1, (28, 28), 10, activation="tanh", norm_after_pool=True)
    assert [type(m).__name__ for m in tanh.features][:4] == [
        "Conv2d",
        "MaxPool2d",
        "BatchNorm2d",
        "Tanh",
    ]
    gelu = CNN(1, (28, 28), 10, activation="gelu", norm_after_pool=True)
    assert [type(m).__name__ for m in gelu.features][:4] == [
        "Conv2d",
        "BatchNorm2d",
        "GELU",
        "MaxPool2d",
    ]


def test_bad_cnn_specs():
    with pytest.raises(InvalidConfigError, match=r"`channels` is \[\].*`activation` is 'rellu'"):
        build_model(
            {
                "family": "cnn",
                "image_size": [8, 8],
                "n_outputs": 2,
                "channels": [],
                "activation": "rellu",
            }
        )
    with pytest.raises(InvalidConfigError, match=r"does not fit images of size \(4, 4\)"):
        build_model(
            {
                "family": "cnn",
                "image_size": [4, 4],
                "n_outputs": 2,
                "channels": [8, 8],
                "kernel_size": 5,
                "padding": 0,
            }
        )


def test_summary_lists_shapes_and_parameters():
    text = summary(build_model(seed_cnn_spec()), (1, 1, 28, 28))
    assert "[1, 32, 26, 26]" in text and "[1, 64, 5, 5]" in text and "34,826" in text


def test_pooling_before_a_monotone_activation_is_the_same_function():
    # relu(maxpool(x)) == maxpool(relu(x)): the CNN pools first for relu (cheaper), not for gelu.
    torch.manual_seed(0)
    relu = CNN(1, (12, 12), 3, channels=(4,), batch_norm=False, dense=(), dropout=0.0)
    kinds = [type(m).__name__ for m in relu.features]
    assert kinds == ["Conv2d", "MaxPool2d", "ReLU"]
    x = torch.randn(5, 1, 12, 12)
    conv, pool = relu.features[0], relu.features[1]
    reference = relu.classifier(pool(torch.relu(conv(x))))
    torch.testing.assert_close(relu(x), reference)
    gelu = CNN(
        1, (12, 12), 3, channels=(4,), batch_norm=False, dense=(), dropout=0.0, activation="gelu"
    )
    assert [type(m).__name__ for m in gelu.features] == ["Conv2d", "GELU", "MaxPool2d"]
