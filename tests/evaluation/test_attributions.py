"""Attributions for images, sequences and text (issue #20 item 1, issue #19 item 5): integrated gradients add up
to the output minus the baseline's output (completeness) for every kind that uses them; occlusion is what it says."""

import numpy as np
import pytest
import torch

from dlpipe.evaluation.attributions import (
    class_output,
    image_attributions,
    overlay_image,
    pick_across_classes,
    sequence_attributions,
    token_attributions,
)
from dlpipe.models.cnn1d import FCN
from dlpipe.models.encoders import MiniLM, TextEncoderClassifier
from dlpipe.models.rnn import RecurrentNet
from dlpipe.models.text import TextBag, TextRNN, TextTransformer, TextVectors


def _complete(a, rel=0.01):
    """The check itself, not the function's own report of it: per row, |sum - (out - base)| <= rel * |out - base|."""
    sums = a.values.reshape(len(a.output), -1).sum(axis=1)
    gap = np.abs(sums - (a.output - a.baseline_output))
    scale = np.maximum(
        np.abs(a.output - a.baseline_output), 0.05 * np.abs(a.output - a.baseline_output).mean()
    )
    assert (gap <= rel * scale).all(), (gap, scale)
    assert a.completeness_error <= rel and a.method == "integrated_gradients"


def test_image_integrated_gradients_are_complete_and_attribute_the_class_asked():
    torch.manual_seed(0)
    model = torch.nn.Sequential(  # conv -> ReLU -> max-pool: a gradient that jumps along the path
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 3),
    )
    x = np.random.default_rng(0).normal(size=(3, 1, 8, 8)).astype(np.float32)
    black = np.full((1, 8, 8), -1.5, np.float32)
    a = image_attributions(model, x, black, np.array([0, 1, 2]))
    _complete(a)
    assert a.values.shape == (3, 1, 8, 8) and a.targets.tolist() == [0, 1, 2]
    with torch.no_grad():
        logits = model(torch.from_numpy(x))
    np.testing.assert_allclose(a.output, logits[[0, 1, 2], [0, 1, 2]].numpy(), rtol=1e-4)


@pytest.mark.parametrize("family", ["cnn1d", "lstm"])
def test_sequence_integrated_gradients_are_complete_with_a_mask(family):
    torch.manual_seed(0)
    spec = {
        "family": family,
        "n_features": 2,
        "n_outputs": 3,
        "hidden": [16],
        "dropout": 0.0,
        "bidirectional": False,
        "forecast": False,
    }
    model = (
        RecurrentNet(spec) if family == "lstm" else FCN(spec)
    )  # the registry's classes, built directly
    x = np.random.default_rng(1).normal(size=(3, 20, 2)).astype(np.float32)
    mask = np.ones((3, 20), np.float32)
    mask[0, 14:] = 0  # a shorter case: padding stays padding along the path
    a = sequence_attributions(model, x, mask, temperature=2.0)
    _complete(a)
    assert a.values.shape == (3, 20, 2)


def test_sequence_occlusion_finds_the_window_a_model_reads():
    class Peak(
        torch.nn.Module
    ):  # class 1's logit is the value at steps 10-11: nothing else matters
        def forward(self, x, mask):
            z = x[:, 10:12, 0].sum(dim=1)
            return torch.stack([-z, z], dim=1)

    x = np.ones((1, 64, 1), np.float32)
    a = sequence_attributions(
        Peak(), x, np.ones((1, 64), np.float32), np.array([1]), occlusion=True
    )
    assert a.method == "occlusion" and np.isnan(a.completeness_error)
    assert set(np.flatnonzero(a.values[0, :, 0])) == {10, 11}  # windows of 64 // 32 = 2 steps
    assert a.values[0, 10, 0] == pytest.approx(1.0)  # removing 2 of output 2, shared by 2 steps


@pytest.mark.parametrize("kind", ["rnn", "transformer", "minilm"])
def test_token_integrated_gradients_on_the_embeddings_are_complete(kind):
    torch.manual_seed(0)
    if (
        kind == "minilm"
    ):  # the pretrained encoder's architecture, tiny: its hook is on `encoder.word`
        model = TextEncoderClassifier(
            MiniLM(vocab=40, dim=8, layers=1, heads=2, ffn=16, positions=16), TextVectors(8, 3)
        )
    elif kind == "rnn":
        model = TextRNN(40, 3, dim=8, hidden=8)
    else:
        model = TextTransformer(40, 3, dim=8, heads=2, layers=1, max_length=16)
    ids = np.random.default_rng(2).integers(2, 40, size=(3, 12))
    ids[1, 7:] = 0
    a = token_attributions(model, ids)
    _complete(a)
    assert a.values.shape == (3, 12) and (a.values[1, 7:] == 0).all()  # padding gets nothing


def test_bag_tokens_are_scored_by_occlusion():
    torch.manual_seed(0)
    model = TextBag(30, 2, dim=6, buckets=11).eval()
    ids = np.array([[5, 7, 9, 0]])
    a = token_attributions(model, ids, np.array([1]))
    assert a.method == "occlusion" and a.values[0, 3] == 0.0
    with torch.no_grad():
        full = model(torch.tensor([[5, 7, 9]]))[0, 1]
        without_7 = model(torch.tensor([[5, 0, 9]]))[0, 1]  # its two bigrams go, no new one comes
    assert a.values[0, 1] == pytest.approx(float(full - without_7), abs=1e-6)


def test_one_logit_binary_attributes_the_log_odds_of_the_class_asked():
    z = torch.tensor([[2.0], [2.0]])
    assert class_output(z, torch.tensor([1, 0]), 2.0).tolist() == [1.0, -1.0]


def test_inputs_are_picked_across_classes_not_in_folder_order():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)  # sorted, as a folder of class folders reads
    rows = pick_across_classes(labels, 6, seed=0)
    assert sorted(np.bincount(labels[rows]).tolist()) == [2, 2, 2] and len(set(rows)) == 6
    assert rows.tolist() != list(range(6))
    assert len(pick_across_classes(labels[:3], 8)) == 3  # fewer inputs than asked: all of them


def test_overlay_marks_positive_red_and_negative_blue():
    img = np.zeros((1, 4, 4))
    attr = np.zeros((4, 4))
    attr[0, 0], attr[3, 3] = 1.0, -1.0
    rgb = overlay_image(img, attr)
    assert rgb.shape == (4, 4, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0] > rgb[0, 0, 2] and rgb[3, 3, 2] > rgb[3, 3, 0]
    assert rgb[1, 1, 0] == rgb[1, 1, 1] == rgb[1, 1, 2]  # no attribution: grey
