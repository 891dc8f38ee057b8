"""The layer table of a text bundle runs its example forward pass: output shapes are known."""

from __future__ import annotations

import pytest

import dlpipe as dl
from dlpipe.reports.summary import summary

from .conftest import documents


@pytest.mark.parametrize("family", ["text_tfidf", "text_bag", "text_rnn", "text_transformer"])
def test_text_bundles_layer_table_has_output_shapes(family, tmp_path):
    run = dl.train(
        documents(60),
        "label",
        model={"family": family},
        epochs=1,
        progress="quiet",
        out=str(tmp_path / family),
    )
    s = summary(run.bundle)
    # before: "output shapes unknown: no example input is known" (or a failed forward pass)
    assert s.note == ""
    assert s.leaves[-1].output_shape == [2, 3]  # two example documents, three topics
    assert s.total_params == sum(p.numel() for p in run.bundle.model.parameters())
