"""ResNets: torchvision key names, pretrained weights by path (identical outputs), mismatches, frozen backbone."""

import pytest
import torch
from safetensors.torch import save_file

from dlpipe.core.errors import InvalidInputError, UnsupportedFileError
from dlpipe.models.registry import build_model
from dlpipe.models.resnet import freeze_backbone, load_pretrained
from dlpipe.training.trainer import TensorData, Trainer

# A few of torchvision's resnet18 state_dict keys (torchvision.models.resnet18().state_dict()).
TORCHVISION_KEYS = [
    "conv1.weight",
    "bn1.running_mean",
    "layer1.0.conv1.weight",
    "layer2.0.downsample.0.weight",
    "layer2.0.downsample.1.num_batches_tracked",
    "layer4.1.bn2.bias",
    "fc.weight",
    "fc.bias",
]


@pytest.mark.slow
def test_torchvision_key_names_and_sizes():
    model = build_model({"family": "resnet18", "n_outputs": 1000})
    keys = list(model.state_dict())
    assert len(keys) == 122 and all(k in keys for k in TORCHVISION_KEYS)
    assert sum(p.numel() for p in model.parameters()) == 11_689_512  # torchvision's resnet18 count
    r50 = build_model({"family": "resnet50", "n_outputs": 1000})
    assert (
        sum(p.numel() for p in r50.parameters()) == 25_557_032
        and "layer1.0.conv3.weight" in r50.state_dict()
    )


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_state_dict_round_trip_gives_identical_outputs(tmp_path, suffix):
    torch.manual_seed(0)
    source = build_model({"family": "resnet18", "n_outputs": 10}).eval()
    state = {k: v.clone() for k, v in source.state_dict().items()}
    path = tmp_path / f"weights{suffix}"
    torch.save(state, path) if suffix == ".pth" else save_file(state, str(path))
    torch.manual_seed(1)
    target = build_model({"family": "resnet18", "n_outputs": 10}).eval()
    assert load_pretrained(target, path) == []
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(target(x), source(x), rtol=0, atol=0)


@pytest.mark.slow
def test_new_head_and_grey_input(tmp_path):
    torch.save(
        build_model({"family": "resnet18", "n_outputs": 1000}).state_dict(),
        tmp_path / "imagenet.pth",
    )
    model = build_model({"family": "resnet18", "n_outputs": 3, "in_channels": 1}).eval()
    assert load_pretrained(model, tmp_path / "imagenet.pth") == ["fc.weight", "fc.bias"]
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 3)


@pytest.mark.slow
def test_mismatching_weights_name_the_key(tmp_path):
    torch.save(
        build_model({"family": "resnet34", "n_outputs": 10}).state_dict(), tmp_path / "r34.pth"
    )
    with pytest.raises(
        InvalidInputError,
        match=r"holds the key 'layer1.2.conv1.weight' that the model does not have",
    ):
        load_pretrained(build_model({"family": "resnet18", "n_outputs": 10}), tmp_path / "r34.pth")
    torch.save(
        build_model({"family": "resnet18", "n_outputs": 10}).state_dict(), tmp_path / "r18.pth"
    )
    with pytest.raises(
        InvalidInputError,
        match=r"weight 'layer1.0.conv1.weight' .* has shape \(64, 64, 3, 3\) but the model expects \(64, 64, 1, 1\)",
    ):
        load_pretrained(build_model({"family": "resnet50", "n_outputs": 10}), tmp_path / "r18.pth")
    state = build_model({"family": "resnet18", "n_outputs": 10}).state_dict()
    state["layer3.0.conv1.weight"] = torch.zeros(256, 128, 5, 5)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(
        InvalidInputError,
        match=r"'layer3.0.conv1.weight' .* has shape \(256, 128, 5, 5\) but the model expects \(256, 128, 3, 3\)",
    ):
        load_pretrained(build_model({"family": "resnet18", "n_outputs": 10}), tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(UnsupportedFileError, match="could not be read as a state dict"):
        load_pretrained(build_model({"family": "resnet18", "n_outputs": 10}), tmp_path / "junk.pth")
    with pytest.raises(UnsupportedFileError, match="does not exist"):
        load_pretrained(build_model({"family": "resnet18", "n_outputs": 10}), tmp_path / "nope.pth")


@pytest.mark.slow
def test_frozen_backbone_updates_only_the_head():
    torch.manual_seed(0)
    model = build_model({"family": "resnet18", "n_outputs": 2})
    assert freeze_backbone(model) == ["fc.weight", "fc.bias"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 2, (16,))
    Trainer(epochs=2, batch_size=8, device="cpu", weight_decay=0.1).fit(
        model, torch.nn.functional.cross_entropy, TensorData((x,), y)
    )
    after = model.state_dict()
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed == ["fc.bias", "fc.weight"]  # BatchNorm statistics of the backbone stay put too
    freeze_backbone(model, False)
    assert all(p.requires_grad for p in model.parameters())
