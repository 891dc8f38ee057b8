import pytest
import torch
from torch import nn

import dlpipe as dl
from dlpipe.bundle import load_bundle
from dlpipe.cli import main
from dlpipe.core.errors import InvalidInputError
from dlpipe.reports.summary import (
    first_layer_weight,
    model_diagram,
    register_example_inputs,
    summary,
)


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
        self.shortcut = nn.Identity()

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNetLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.block = Block(8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.block(self.flat(self.pool(self.stem(x)))))


def test_summary_of_a_module_lists_layers_shapes_and_parameters():
    s = summary(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1)), input_size=(2, 4))
    assert s.total_params == 4 * 3 + 3 + 3 + 1
    assert [r.type for r in s.leaves] == ["Linear", "ReLU", "Linear"]
    assert [r.output_shape for r in s.leaves] == [[2, 3], [2, 3], [2, 1]]
    text = str(s)
    assert "(N, 3)" in text and "total parameters 19" in text


def test_residual_block_is_marked_and_drawn():
    model = ResNetLike()
    s = summary(model, example_inputs=[torch.zeros(2, 3, 8, 8)])
    assert any(r.residual and r.type == "Block" for r in s.layers)
    assert model_diagram(s).ok
    name, w = first_layer_weight(model, s.leaves)
    assert name.startswith("stem") and w.shape == (8, 3, 3, 3)


def test_without_an_example_the_table_says_shapes_are_unknown():
    s = summary(nn.Sequential(nn.Linear(4, 3)))
    assert s.leaves[0].output_shape is None and "pass example_inputs= or input_size=" in s.note
    assert s.total_params == 15


def test_a_failing_forward_still_gives_a_table():
    s = summary(nn.Sequential(nn.Linear(4, 3)), input_size=(2, 5))
    assert "example forward pass failed" in s.note and s.total_params == 15


def test_model_method_and_registered_family_provide_examples():
    class WithExample(nn.Sequential):
        def example_inputs(self):
            return torch.zeros(2, 4)

    assert summary(WithExample(nn.Linear(4, 2))).leaves[0].output_shape == [2, 2]
    register_example_inputs("tiny-test", lambda spec: [torch.zeros(2, spec["width"])])
    from dlpipe.reports.summary import _example_inputs

    assert _example_inputs(nn.Linear(3, 1), {"family": "tiny-test", "width": 3})[0].shape == (2, 3)


def test_summary_rejects_other_objects():
    with pytest.raises(InvalidInputError, match="needs a torch nn.Module, a Bundle, a Run"):
        summary(42)


@pytest.mark.slow
def test_bundle_summary_plot_model_and_cli(make_run, tmp_path, capsys):
    path = make_run("binary", report=False)
    s = dl.summary(path / "bundle")
    # the default table model is an ensemble: members' input copies, shared layers, their heads, the average
    types = [r.type for r in s.leaves]
    assert (
        types[0] == "MemberInput"
        and "Linear" in types
        and types[-2:] == ["MemberHeads", "MemberAverage"]
    )
    assert s.leaves[-1].output_shape == [2, 1]
    assert s.total_params == sum(p.numel() for p in load_bundle(path / "bundle").model.parameters())
    out = dl.plot_model(path / "bundle", tmp_path / "model.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["summary", str(path / "bundle"), "--diagram", str(tmp_path / "d.png")]) == 0
    printed = capsys.readouterr().out
    assert "Linear" in printed and "total parameters" in printed and (tmp_path / "d.png").is_file()
    assert main(["summary", str(tmp_path)]) == 2
    assert "is not a dlpipe bundle" in capsys.readouterr().err


@pytest.mark.parametrize(
    "spec",
    [
        {"family": "autoencoder", "n_inputs": 30, "latent": 2},
        {"family": "vae", "n_inputs": 64, "latent": 2, "shape": [1, 8, 8]},
        {"family": "conv_autoencoder", "channels": 1, "size": 8, "latent": 2, "widths": [16]},
        {"family": "recurrent_autoencoder", "n_features": 2, "seq_len": 10, "latent": 4},
        {"family": "gan", "arch": "dcgan", "latent": 16, "shape": [1, 8, 8]},
        {"family": "gan", "arch": "mlp", "latent": 8, "shape": [4]},
    ],
    ids=lambda s: f"{s['family']}-{s.get('arch', '')}",
)
def test_generative_families_get_every_output_shape(spec: dict) -> None:
    from dlpipe.models.registry import build_model
    from dlpipe.reports.summary import _example_inputs

    model = build_model(spec)
    table = summary(model, example_inputs=_example_inputs(model, spec)).table()
    assert table and all(row["output_shape"] != "?" for row in table), [
        r for r in table if r["output_shape"] == "?"
    ]
    assert all(
        row["output_shape"].startswith("(N,")
        for row in table
        if row["type"] in ("Linear", "Conv2d", "ConvTranspose2d")
    )
